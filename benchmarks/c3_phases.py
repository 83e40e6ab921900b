"""C3 against Contrastive Clustering alone, from the same CC model.

For each seed the script fits ``C3(max_epochs=0)`` (Contrastive Clustering alone), scores
its labels, then refits it with ``warm_start=True`` and the default ``max_epochs``, which
runs the C3 phase only, from that CC model; it records ACC, NMI, ARI, the seconds of each
fit and ``mean_positives`` per C3 epoch. One CC training serves both rows, which halves the
cost of the comparison on large data.

Examples::

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python benchmarks/c3_phases.py --dataset digits
    OMP_WAIT_POLICY=PASSIVE python benchmarks/c3_phases.py --dataset mnist --seeds 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import ALL_DATASETS, load  # noqa: E402
from quality import RESULTS_DIR, clustering_accuracy, environment, parse_overrides  # noqa: E402

from skdeepclust import C3  # noqa: E402


def _scores(y, labels):
    return {"acc": float(clustering_accuracy(y, labels)),
            "nmi": float(normalized_mutual_info_score(y, labels)),
            "ari": float(adjusted_rand_score(y, labels))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=ALL_DATASETS, default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--params", nargs="*", default=[], metavar="KEY=VALUE",
                        help="C3 parameters of both fits (e.g. pretrain_epochs=30)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    X, y = load(args.dataset, max_rows=args.max_rows)
    params = parse_overrides(args.params)
    out = Path(args.out or RESULTS_DIR / f"c3-phases-{args.dataset}.json")
    report = {"command": " ".join(sys.argv), "environment": environment(),
              "dataset": args.dataset, "shape": list(X.shape), "params": params, "records": []}
    k = len(np.unique(y))
    for seed in range(args.seeds):
        est = C3(n_clusters=k, random_state=seed, **{**params, "max_epochs": 0})
        t0 = time.perf_counter()
        est.fit(X)
        cc = {"seconds": time.perf_counter() - t0, **_scores(y, est.labels_)}
        est.set_params(warm_start=True, max_epochs=params.get("max_epochs", C3().max_epochs))
        t0 = time.perf_counter()
        est.fit(X)
        c3 = {"seconds": time.perf_counter() - t0, **_scores(y, est.labels_),
              "mean_positives": est.history_["mean_positives"]}
        report["records"].append({"seed": seed, "cc": cc, "c3": c3})
        print(f"seed {seed}: CC ACC {cc['acc']:.3f} NMI {cc['nmi']:.3f} ARI {cc['ari']:.3f} "
              f"({cc['seconds']:.0f} s); C3 ACC {c3['acc']:.3f} NMI {c3['nmi']:.3f} "
              f"ARI {c3['ari']:.3f} (+{c3['seconds']:.0f} s), mean_positives "
              f"{c3['mean_positives'][0]:.1f} -> {c3['mean_positives'][-1]:.1f}", flush=True)
        out.write_text(json.dumps(report, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
