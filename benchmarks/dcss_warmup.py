"""DCSS on separated Gaussian blobs with and without the MNet warm-up epoch.

Without the warm-up (``mnet_warmup_epochs=0``, the paper's phase 2), MNet can put two
separated blobs in one output in its first pair epoch and keep them there. For each
setting and seed the script fits both versions and reports ARI and the number of clusters
found.

Example::

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python benchmarks/dcss_warmup.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import RESULTS_DIR, environment  # noqa: E402

from skdeepclust import DCSS  # noqa: E402

SETTINGS = {
    "3000x50 defaults": dict(n_samples=3000, n_features=50, seeds=(0, 1), params={}),
    "2000x20 small net": dict(n_samples=2000, n_features=20, seeds=(0, 1, 2, 3),
                              params=dict(hidden_layer_sizes=(64,), batch_size=200,
                                          pretrain_epochs=20, max_epochs=1, mnet_epochs=6)),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS))
    parser.add_argument("--out", type=Path,
                        default=RESULTS_DIR / "dcss-warmup-blobs.json")
    args = parser.parse_args(argv)
    result = {"command": " ".join(sys.argv), "environment": environment(),
              "load_average": os.getloadavg(), "records": []}
    for name in args.settings:
        setting = SETTINGS[name]
        X, y = make_blobs(n_samples=setting["n_samples"], centers=10,
                          n_features=setting["n_features"], random_state=0)
        X = StandardScaler().fit_transform(X).astype(np.float32)
        for seed in setting["seeds"]:
            for warmup in (0, 1):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the 'fewer clusters' warning is the point
                    est = DCSS(n_clusters=10, mnet_warmup_epochs=warmup, random_state=seed,
                               **setting["params"]).fit(X)
                record = {"setting": name, "seed": seed, "mnet_warmup_epochs": warmup,
                          "ari": adjusted_rand_score(y, est.labels_),
                          "n_clusters_found": int(est.n_clusters_),
                          "seconds": time.perf_counter() - start}
                result["records"].append(record)
                print(json.dumps(record), flush=True)
                args.out.write_text(json.dumps(result, indent=1))
    print("\n| setting | seed | ARI, no warm-up (clusters) | ARI, warm-up (clusters) |")
    print("|---|---|---|---|")
    for name in args.settings:
        for seed in SETTINGS[name]["seeds"]:
            cells = []
            for warmup in (0, 1):
                (rec,) = [r for r in result["records"] if r["setting"] == name
                          and r["seed"] == seed and r["mnet_warmup_epochs"] == warmup]
                cells.append(f"{rec['ari']:.3f} ({rec['n_clusters_found']})")
            print(f"| {name} | {seed} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
