"""Fit the estimators and draw the figures of the documentation's gallery (``doc/gallery.rst``).

Four figures, written to ``doc/_static/figures/`` (``--out-dir``), and the numbers behind them
to ``benchmarks/results/gallery.json`` (``--out``):

* ``gallery_embeddings.png``: every estimator of the package at its defaults on scikit-learn's
  digits (standardised, ``n_clusters=10``, ``random_state=0``), its embedding
  (``transform``) projected to 2-D (t-SNE, or PCA with ``--projection pca``) and coloured by
  predicted cluster, beside KMeans' partition on the same projection of the raw features; ACC
  in each title;
* ``gallery_n_clusters.png``: choosing ``n_clusters`` without labels: the silhouette
  (``skdeepclust.metrics.silhouette_scorer``, computed on the input features) of
  AutoencoderKMeans and KMeans fits with ``n_clusters`` from 2 to 10 on wine (standardised),
  over ``--seeds`` seeds, with the number of classes marked;
* ``gallery_streaming.png``: ``PIPCDR.partial_fit`` over a shuffled stream of digits in 10
  chunks, passed over ``max_epochs`` times as in ``benchmarks/streaming.py``: ACC on the whole
  of digits after each chunk, beside ``MiniBatchKMeans.partial_fit`` on the same stream and the
  ACC of ``KMeans.fit`` and ``PIPCDR.fit`` on all rows;
* ``gallery_training.png``: the ``history_`` of each digits fit of the first figure, one row of
  small plots per estimator, one plot per key (losses by phase and what else the method
  records).

``--quick`` replaces the defaults with the tiny settings of the estimator checks, one seed and
two passes, so the whole script runs in a minute or two; its figures say so in their title
and its numbers go to ``gallery-quick.json``. Use it only to check that the script works.

Examples::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/gallery.py            # the real figures
    python benchmarks/gallery.py --quick --out-dir /tmp/figures
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
QUICK_NOTE = "quick check (--quick): tiny networks, not the defaults"
K_RANGE = range(2, 11)


def _scores(y, labels):
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from skdeepclust.metrics import clustering_accuracy

    return {"acc": float(clustering_accuracy(y, labels)),
            "nmi": float(normalized_mutual_info_score(y, labels)),
            "ari": float(adjusted_rand_score(y, labels))}


def load(name):
    """A scikit-learn data set, standardised, as float32."""
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def params_for(name, quick):
    if not quick:
        return {}
    from skdeepclust.utils._test_settings import TINY_PARAMS

    return dict(TINY_PARAMS.get(name, {}))


def make(name, n_clusters, seed, quick):
    import skdeepclust

    return getattr(skdeepclust, name)(n_clusters=n_clusters, random_state=seed,
                                      **params_for(name, quick))


def project(Z, how, seed=0):
    """2-D coordinates of the rows of ``Z``."""
    from sklearn.decomposition import PCA

    Z = np.asarray(Z, dtype=np.float64)
    if how == "pca" or Z.shape[1] <= 2:
        return PCA(2, random_state=seed).fit_transform(Z) if Z.shape[1] > 2 else Z
    from sklearn.manifold import TSNE

    return TSNE(2, init="pca", perplexity=30, random_state=seed).fit_transform(Z)


def _figure(plt, *args, quick=False, **kwargs):
    fig = plt.figure(*args, **kwargs)
    if quick:
        fig.text(0.5, 1.0, QUICK_NOTE, ha="center", va="bottom", color="firebrick", fontsize=10)
    return fig


# ------------------------------------------------------------------------------ figures


def embeddings(names, quick, projection, out_dir, plt):
    """Fit each estimator on digits; figure of the embeddings. Returns (numbers, fitted)."""
    from sklearn.cluster import KMeans

    X, y = load("digits")
    k = len(np.unique(y))
    panels, numbers, fitted = [], {}, {}
    t0 = time.perf_counter()
    km = KMeans(k, n_init=10, random_state=0).fit(X)
    numbers["KMeans"] = {**_scores(y, km.labels_), "seconds": time.perf_counter() - t0,
                         "space": "raw features"}
    panels.append(("KMeans", project(X, projection), km.labels_, "raw features"))
    print(f"embeddings: KMeans ACC {numbers['KMeans']['acc']:.3f}", flush=True)
    for name in names:
        est = make(name, k, 0, quick)
        t0 = time.perf_counter()
        est.fit(X)
        seconds = time.perf_counter() - t0
        Z = est.transform(X)
        numbers[name] = {**_scores(y, est.labels_), "seconds": seconds,
                         "params": params_for(name, quick), "embedding_dim": int(Z.shape[1]),
                         "space": "transform(X)"}
        fitted[name] = est
        panels.append((name, project(Z, projection), est.labels_, f"{name}.transform(X)"))
        print(f"embeddings: {name} ACC {numbers[name]['acc']:.3f} ({seconds:.0f} s)", flush=True)
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = _figure(plt, figsize=(4.2 * ncols, 4.0 * nrows), quick=quick)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, P, labels, space) in zip(axes, panels):
        ax.scatter(P[:, 0], P[:, 1], c=labels, cmap="tab10", s=4, linewidths=0)
        ax.set_title(f"{name}: ACC {numbers[name]['acc']:.3f}", fontsize=10)
        ax.set_xlabel(f"{projection.upper() if projection == 'pca' else 't-SNE'} of {space}",
                      fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(out_dir / "gallery_embeddings.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return numbers, fitted


def n_clusters_curve(name, seeds, quick, out_dir, plt):
    """Silhouette against n_clusters for ``name`` and KMeans on wine."""
    from sklearn.cluster import KMeans

    from skdeepclust.metrics import silhouette_scorer

    X, y = load("wine")
    true_k = len(np.unique(y))
    numbers = {"data": "wine", "true_n_clusters": true_k, "n_clusters": list(K_RANGE),
               "seeds": list(range(seeds))}
    for label in ("KMeans", name):
        sil = []
        for seed in range(seeds):
            row = []
            for k in K_RANGE:
                est = (KMeans(k, n_init=10, random_state=seed) if label == "KMeans"
                       else make(name, k, seed, quick))
                est.fit(X)
                row.append(float(silhouette_scorer(est, X)))
            sil.append(row)
            print(f"n_clusters: {label} seed {seed}: "
                  + " ".join(f"{s:.3f}" for s in row), flush=True)
        numbers[label] = {"silhouette": sil}
    fig = _figure(plt, figsize=(6.0, 3.6), quick=quick)
    ax = fig.subplots()
    ks = np.array(list(K_RANGE))
    for i, label in enumerate(("KMeans", name)):
        sil = np.array(numbers[label]["silhouette"])
        mean = sil.mean(axis=0)
        ax.plot(ks, mean, marker="o", color=f"C{i}",
                label=f"{label} (best k = {ks[mean.argmax()]})")
        if seeds > 1:
            ax.fill_between(ks, sil.min(axis=0), sil.max(axis=0), color=f"C{i}", alpha=0.2)
    ax.axvline(true_k, color="grey", ls="--", lw=1)
    ax.text(true_k, ax.get_ylim()[1], f" {true_k} classes", va="top", fontsize=8, color="grey")
    ax.set_xlabel("n_clusters")
    ax.set_ylabel("silhouette (input features)")
    ax.set_title("wine: silhouette of each fit" + (f", mean and range over {seeds} seeds"
                                                   if seeds > 1 else ""), fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "gallery_n_clusters.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return numbers


def streaming(name, chunks, passes, quick, fitted, out_dir, plt):
    """ACC on all of digits after each partial_fit call."""
    import matplotlib.ticker
    from sklearn.cluster import KMeans, MiniBatchKMeans

    X, y = load("digits")
    k = len(np.unique(y))
    parts = np.array_split(np.random.RandomState(0).permutation(len(X)), chunks)
    stream = make(name, k, 0, quick)
    n_passes = passes if passes is not None else getattr(stream, "max_epochs", 1)
    mbk = MiniBatchKMeans(k, random_state=0)
    acc, acc_mbk = [], []
    t0 = time.perf_counter()
    for _ in range(n_passes):
        for idx in parts:
            stream.partial_fit(X[idx])
            acc.append(_scores(y, stream.predict(X))["acc"])
            mbk.partial_fit(X[idx])
            acc_mbk.append(_scores(y, mbk.predict(X))["acc"])
    seconds = time.perf_counter() - t0
    kmeans_acc = _scores(y, KMeans(k, n_init=10, random_state=0).fit(X).labels_)["acc"]
    fit_acc = (_scores(y, fitted[name].labels_)["acc"] if name in fitted
               else _scores(y, make(name, k, 0, quick).fit(X).labels_)["acc"])
    numbers = {"data": "digits", "estimator": name, "chunks": chunks, "passes": n_passes,
               "chunk_rows": [len(p) for p in parts], "acc_after_each_call": acc,
               "minibatchkmeans_acc_after_each_call": acc_mbk, "stream_seconds": seconds,
               "kmeans_fit_acc": kmeans_acc, f"{name}_fit_acc": fit_acc}
    print(f"streaming: {name}.partial_fit ACC {acc[-1]:.3f} after {len(acc)} calls "
          f"({seconds:.0f} s); fit {fit_acc:.3f}; KMeans {kmeans_acc:.3f}", flush=True)
    fig = _figure(plt, figsize=(7.0, 3.6), quick=quick)
    ax = fig.subplots()
    calls = np.arange(1, len(acc) + 1)
    ax.plot(calls, acc, color="C0", lw=1.2, label=f"{name}.partial_fit")
    ax.plot(calls, acc_mbk, color="C2", lw=1.0, label="MiniBatchKMeans.partial_fit")
    ax.axhline(fit_acc, color="C0", ls=":", lw=1.2, label=f"{name}.fit on all rows")
    ax.axhline(kmeans_acc, color="C1", ls="--", lw=1.2, label="KMeans.fit on all rows")
    for p in range(1, n_passes):
        ax.axvline(p * chunks + 0.5, color="0.9", lw=0.5, zorder=0)
    ax.set_xlabel(f"partial_fit calls ({chunks} chunks of ~{len(parts[0])} rows per pass, "
                  f"{n_passes} passes)")
    ax.set_ylabel("ACC on all of digits")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "gallery_streaming.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return numbers


def training_curves(fitted, quick, out_dir, plt):
    histories = {name: {key: [float(v) for v in values] for key, values in est.history_.items()}
                 for name, est in fitted.items()}
    from matplotlib.ticker import MaxNLocator

    width = max((len(h) for h in histories.values()), default=1)
    fig = _figure(plt, figsize=(2.6 * width, 2.5 * len(histories)), quick=quick,
                  layout="constrained")
    rows = np.atleast_1d(fig.subfigures(len(histories), 1))
    for sub, (name, history) in zip(rows, histories.items()):
        sub.suptitle(f"{name}.history_ (digits)", fontsize=10, x=0.0, ha="left",
                     fontweight="bold")
        axes = sub.subplots(1, width, squeeze=False)[0]
        for ax, (key, values) in zip(axes, history.items()):
            x = np.arange(1, len(values) + 1)
            ax.plot(x, values, marker="o" if len(values) < 15 else None, ms=3, lw=1.2)
            ax.set_title(f'"{key}"', fontsize=9)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(0.5, max(len(values), 1) + 0.5)
            ax.set_xlabel("epoch" if key != "label_change" else "k-means refresh", fontsize=7)
            if not values:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.text(0.5, 0.5, "no values", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8, color="grey")
        for ax in axes[len(history):]:
            ax.set_visible(False)
    fig.savefig(out_dir / "gallery_training.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return histories


# --------------------------------------------------------------------------------- main


def environment(threads):
    import sklearn
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "sklearn": sklearn.__version__, "torch_threads": threads,
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings, one seed, two passes: checks that the script works")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "doc" / "_static" / "figures",
                        help="where the PNG files go (default doc/_static/figures)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON of the numbers (default benchmarks/results/gallery.json, "
                             "gallery-quick.json with --quick)")
    parser.add_argument("--estimators", nargs="+", default=None,
                        help="estimators of the package in the embedding and training figures "
                             "(default: all)")
    parser.add_argument("--projection", choices=("tsne", "pca"), default=None,
                        help="2-D projection of the embeddings (default tsne; pca with --quick)")
    parser.add_argument("--k-estimator", default="AutoencoderKMeans",
                        help="estimator of the n_clusters figure (default AutoencoderKMeans)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds of the n_clusters figure (default 3; 1 with --quick)")
    parser.add_argument("--stream-estimator", default="PIPCDR",
                        help="estimator of the streaming figure (one with partial_fit)")
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--passes", type=int, default=None,
                        help="passes over the chunks (default the estimator's max_epochs; 2 "
                             "with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--only", nargs="+", default=None,
                        choices=("embeddings", "n_clusters", "streaming", "training"),
                        help="draw only these figures (training needs embeddings)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from skdeepclust.utils import all_estimators

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="pynndescent")
    ours = [name for name, _ in all_estimators()]
    names = args.estimators or ours
    unknown = set(names) - set(ours)
    if unknown:
        raise SystemExit(f"unknown estimators {sorted(unknown)}; known: {ours}")
    projection = args.projection or ("pca" if args.quick else "tsne")
    seeds = args.seeds or (1 if args.quick else 3)
    passes = args.passes or (2 if args.quick else None)
    only = set(args.only or ("embeddings", "n_clusters", "streaming", "training"))
    out = args.out or RESULTS_DIR / ("gallery-quick.json" if args.quick else "gallery.json")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)

    report = {"command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "load_average_start": os.getloadavg(), "environment": environment(args.threads),
              "quick": args.quick, "projection": projection,
              "data": "scikit-learn's digits and wine, standardised (StandardScaler), float32"}
    fitted = {}
    if only & {"embeddings", "training"}:
        report["embeddings"], fitted = embeddings(names, args.quick, projection, args.out_dir,
                                                  plt)
    if "n_clusters" in only:
        report["n_clusters"] = n_clusters_curve(args.k_estimator, seeds, args.quick,
                                                args.out_dir, plt)
    if "streaming" in only:
        report["streaming"] = streaming(args.stream_estimator, args.chunks, passes, args.quick,
                                        fitted, args.out_dir, plt)
    if "training" in only:
        report["history"] = training_curves(fitted, args.quick, args.out_dir, plt)
    report["load_average_end"] = os.getloadavg()
    out.write_text(json.dumps(report, indent=1))
    print(f"figures in {args.out_dir}, numbers in {out}")


if __name__ == "__main__":
    main()
