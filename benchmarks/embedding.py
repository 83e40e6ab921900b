"""How well an estimator's embedding separates the classes, and how much of that the last step uses.

For each configuration and seed the estimator is fitted and ``transform(X)`` taken. On that
embedding the script reports:

* ``fit``: ACC of the estimator's own ``labels_``;
* ``knn_purity``: the share of each row's 10 nearest rows (Euclidean, in the embedding) that
  carry its class label: local separation, which no clusterer is given;
* ACC of other clusterers on the same embedding: ``KMeans`` (``n_init=20``), k-means on the
  L2-normalised rows, Ward, ``GaussianMixture`` (full covariances), spectral clustering on the
  10-nearest-neighbour graph, and k-means with balanced clusters (equal sizes, entropic
  optimal transport; classes are nearly balanced on digits).

If ``knn_purity`` is high but every clusterer stays low, the embedding is locally right and
globally wrong for centroid clustering: a different final step would not help, the
embedding's global geometry has to change.

``--datasets`` takes the data sets of ``_data.py`` and the tables of ``suite.py`` (``suite``:
all 26, ``quick``: its 8-table subset); the summary is the mean over data sets and seeds.

Examples::

    python benchmarks/embedding.py --methods =RDC =PIPCDR --datasets digits
    python benchmarks/embedding.py --methods =AutoencoderKMeans --datasets suite --seeds 1
    python benchmarks/embedding.py --methods =AutoencoderKMeans --params batch_size=64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from sklearn.cluster import AgglomerativeClustering, KMeans, SpectralClustering
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402
from _data import SMALL_DATASETS, load  # noqa: E402
from configs import QUALITY_CONFIGS  # noqa: E402
from quality import (  # noqa: E402
    RESULTS_DIR,
    build,
    clustering_accuracy,
    environment,
    parse_overrides,
    select_methods,
)

KNOWN = (*SMALL_DATASETS, "mnist")


def knn_purity(Z, y, n_neighbors=10):
    """Mean share of each row's ``n_neighbors`` nearest other rows that share its label."""
    _, idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(Z).kneighbors(Z)
    return float((y[idx[:, 1:]] == y[:, None]).mean())


def balanced_kmeans(Z, n_clusters, seed, epsilon=0.05, n_iter=30):
    """k-means whose assignment step is entropic optimal transport to equal cluster sizes."""
    centers = KMeans(n_clusters, n_init=10, random_state=seed).fit(Z).cluster_centers_
    labels = None
    for _ in range(n_iter):
        cost = ((Z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        logits = -cost / (epsilon * cost.mean())
        u, v = np.zeros(len(Z)), np.zeros(n_clusters)
        for _ in range(100):  # Sinkhorn: rows sum to 1, columns to n / K
            u = -logsumexp(logits + v[None, :], axis=1)
            v = np.log(len(Z) / n_clusters) - logsumexp(logits + u[:, None], axis=0)
        labels = (logits + u[:, None] + v[None, :]).argmax(axis=1)
        centers = np.stack([Z[labels == k].mean(axis=0) if np.any(labels == k) else centers[k]
                            for k in range(n_clusters)])
    return labels


def clusterings(Z, n_clusters, seed):
    """ACC-ready labelings of ``Z`` by the clusterers listed in the module docstring."""
    return {
        "kmeans": KMeans(n_clusters, n_init=20, random_state=seed).fit_predict(Z),
        "kmeans_l2": KMeans(n_clusters, n_init=20, random_state=seed).fit_predict(normalize(Z)),
        "ward": AgglomerativeClustering(n_clusters).fit_predict(Z),
        "gmm": GaussianMixture(n_clusters, n_init=3, random_state=seed).fit(Z).predict(Z),
        "spectral": SpectralClustering(n_clusters, affinity="nearest_neighbors", n_neighbors=10,
                                       random_state=seed).fit_predict(Z),
        "balanced_kmeans": balanced_kmeans(Z, n_clusters, seed),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", "--dataset", nargs="+", default=["digits"])
    parser.add_argument("--methods", nargs="*", default=["=RDC", "=DCSS", "=PIPCDR",
                                                         "=AutoencoderKMeans"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--params", nargs="*", help="key=value overrides for the estimators")
    parser.add_argument("--raw", action="store_true",
                        help="also run the clusterers on the input features (method 'raw')")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    datasets = []
    for name in args.datasets:
        datasets += {"suite": list(suite.table_names()), "quick": list(suite.QUICK_TABLES)}.get(
            name, [name])
    overrides = parse_overrides(args.params)
    methods = select_methods(args.methods, QUALITY_CONFIGS)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tag = "-".join(args.datasets)
    out = args.out or RESULTS_DIR / f"embedding-{tag}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"command": " ".join(sys.argv), "datasets": datasets,
              "environment": environment(), "load_average": os.getloadavg(), "records": []}
    methods = (["raw"] if args.raw else []) + methods
    for dataset, method, seed in [(d, m, s) for d in datasets for m in methods
                                   for s in range(args.seeds)]:
        # _data's own sets as before (digits in [0, 1]); the suite's tables standardised.
        X, y = load(dataset) if dataset in KNOWN else suite.load_table(dataset)
        n_clusters = len(np.unique(y))
        start = time.perf_counter()
        if method == "raw":  # the clusterers on the input features themselves
            used, Z = {}, np.asarray(X, dtype=np.float64)
            labels = KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(Z)
        else:
            cls_name, params = QUALITY_CONFIGS[method]
            est, used = build(cls_name, dict(params), n_clusters, seed, overrides)
            labels = est.fit(X).labels_
            Z = np.asarray(est.transform(X), dtype=np.float64)
        seconds = time.perf_counter() - start
        record = {"dataset": dataset, "method": method,
                  "params": {k: repr(v) for k, v in used.items()}, "seed": seed,
                  "seconds": seconds, "fit": clustering_accuracy(y, labels),
                  "knn_purity": knn_purity(Z, y)}
        record.update({name: clustering_accuracy(y, labels)
                       for name, labels in clusterings(Z, n_clusters, seed).items()})
        result["records"].append(record)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                          for k, v in record.items() if k != "params"}), flush=True)
        out.write_text(json.dumps(result, indent=1))
    keys = ["fit", "knn_purity", "kmeans", "kmeans_l2", "ward", "gmm", "spectral",
            "balanced_kmeans"]
    print("\n| method | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for method in methods:
        recs = [r for r in result["records"] if r["method"] == method]
        print(f"| {method} | " + " | ".join(f"{np.mean([r[k] for r in recs]):.3f}"
                                            for k in keys) + " |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
