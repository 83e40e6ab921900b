"""Streaming versus batch: ``partial_fit`` over chunks against one ``fit`` on the whole data.

For each seed, fits the estimator once on the whole data set, and a second
instance (same parameters and seed) through ``partial_fit`` on ``--chunks``
consecutive chunks of a shuffled copy, repeated for ``--passes`` passes
(default: the estimator's ``max_epochs``, so both see every row equally
often). Reports ACC / NMI / ARI of each against the classes, the ARI between
the two labelings of the whole data, and the times.

Examples::

    python benchmarks/streaming.py --dataset digits --seeds 3
    python benchmarks/streaming.py --dataset digits --passes 1
    python benchmarks/streaming.py --dataset digits --seeds 2 --first-seed 3
    python benchmarks/streaming.py --dataset mnist --seeds 1 --chunks 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import ALL_DATASETS, load  # noqa: E402
from quality import clustering_accuracy  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _scores(y, labels):
    return {"ACC": clustering_accuracy(y, labels), "NMI": normalized_mutual_info_score(y, labels),
            "ARI": adjusted_rand_score(y, labels)}


def run(dataset, method, seeds, chunks, passes, params, max_rows=None, first_seed=0):
    import skdeepclust

    X, y = load(dataset, max_rows=max_rows)
    n_clusters = len(np.unique(y))
    cls = getattr(skdeepclust, method)
    records = []
    for seed in range(first_seed, first_seed + seeds):
        est = cls(n_clusters=n_clusters, random_state=seed, **params)
        n_passes = passes if passes is not None else est.max_epochs
        t0 = time.perf_counter()
        batch = est.fit(X).labels_
        t_fit = time.perf_counter() - t0
        order = np.random.RandomState(seed).permutation(len(X))
        parts = np.array_split(order, chunks)
        stream = cls(n_clusters=n_clusters, random_state=seed, **params)
        t0 = time.perf_counter()
        for _ in range(n_passes):
            for idx in parts:
                stream.partial_fit(X[idx])
        t_stream = time.perf_counter() - t0
        streamed = stream.predict(X)
        rec = {"seed": seed, "passes": n_passes, "chunks": chunks,
               "fit": _scores(y, batch), "partial_fit": _scores(y, streamed),
               "ARI_fit_vs_partial_fit": adjusted_rand_score(batch, streamed),
               "fit_s": t_fit, "partial_fit_s": t_stream}
        records.append(rec)
        print(f"seed {seed}: fit ACC {rec['fit']['ACC']:.3f} NMI {rec['fit']['NMI']:.3f} "
              f"ARI {rec['fit']['ARI']:.3f} ({t_fit:.0f} s) | partial_fit x{n_passes} passes "
              f"ACC {rec['partial_fit']['ACC']:.3f} NMI {rec['partial_fit']['NMI']:.3f} "
              f"ARI {rec['partial_fit']['ARI']:.3f} ({t_stream:.0f} s) | "
              f"ARI(fit, partial_fit) {rec['ARI_fit_vs_partial_fit']:.3f}", flush=True)
    for key in ("fit", "partial_fit"):
        acc = [r[key]["ACC"] for r in records]
        print(f"mean {key}: ACC {np.mean(acc):.3f} +- {np.std(acc):.3f}")
    agree = [r["ARI_fit_vs_partial_fit"] for r in records]
    print(f"mean ARI(fit, partial_fit): {np.mean(agree):.3f} +- {np.std(agree):.3f}")
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=ALL_DATASETS, default="digits")
    parser.add_argument("--method", default="PIPCDR")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--passes", type=int, default=None,
                        help="passes over the chunks (default: the estimator's max_epochs)")
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--params", default="{}", help="JSON dict of estimator parameters")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)
    records = run(args.dataset, args.method, args.seeds, args.chunks, args.passes,
                  json.loads(args.params), args.max_rows, args.first_seed)
    out = args.out or RESULTS_DIR / f"streaming-{args.method}-{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                               "records": records}, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
