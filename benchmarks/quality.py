"""Clustering quality of every benchmarked configuration against scikit-learn baselines.

For each data set and seed, fits every configuration of ``configs.QUALITY_CONFIGS`` plus
KMeans (``n_init=10``), GaussianMixture and Ward (``AgglomerativeClustering``) with
``n_clusters`` = number of classes, and reports ACC (Hungarian matching), NMI and ARI
(mean +- std over seeds) and the fit time. Failures are caught, reported and recorded.

Examples::

    python benchmarks/quality.py                                  # 4 small sets, 3 seeds, all rows
    python benchmarks/quality.py --datasets digits --methods KMeans --seeds 1
    python benchmarks/quality.py --dataset mnist --methods =AutoencoderKMeans =KMeans
    python benchmarks/quality.py --dataset mnist --max-rows 10000 --params pretrain_epochs=50

Results are written as JSON (``--out``, default ``benchmarks/results/quality-<time>.json``)
after every fit, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shlex
import sys
import time
import traceback
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import ALL_DATASETS, SMALL_DATASETS, load  # noqa: E402
from configs import QUALITY_CONFIGS  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Ward needs O(n^2) memory; above this many rows it is skipped (with a note).
WARD_MAX_ROWS = 20000

BASELINES = {
    "KMeans": ("sklearn:KMeans", {"n_init": 10}),
    "GaussianMixture": ("sklearn:GaussianMixture", {}),
    "Ward": ("sklearn:AgglomerativeClustering", {"linkage": "ward"}),
}


def clustering_accuracy(y_true, y_pred):
    """Best one-to-one matching accuracy between clusters and classes (Hungarian)."""
    try:
        from skdeepclust.metrics import clustering_accuracy as acc
    except ImportError:
        acc = None
    if acc is not None:
        return float(acc(y_true, y_pred))
    from scipy.optimize import linear_sum_assignment

    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((p.max() + 1, t.max() + 1), dtype=np.int64)
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(y_true))


def _estimator_class(name):
    if name.startswith("sklearn:"):
        return {"KMeans": KMeans, "GaussianMixture": GaussianMixture,
                "AgglomerativeClustering": AgglomerativeClustering}[name.split(":", 1)[1]]
    import skdeepclust

    return getattr(skdeepclust, name)


def _all_configs():
    configs = dict(QUALITY_CONFIGS)
    for label, cfg in BASELINES.items():
        configs.setdefault(label, cfg)
    return configs


def select_methods(patterns, configs):
    """Labels matching any pattern: a case-insensitive substring, or ``=Label`` for exact."""
    if not patterns:
        return list(configs)
    chosen = []
    for label in configs:
        for pat in patterns:
            hit = (label == pat[1:]) if pat.startswith("=") else pat.lower() in label.lower()
            if hit:
                chosen.append(label)
                break
    return chosen


def parse_overrides(items):
    """``key=value`` strings to a dict; values are Python literals when they parse as one."""
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--params expects key=value, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides


def build(cls_name, params, n_clusters, seed, overrides):
    cls = _estimator_class(cls_name)
    valid = cls().get_params()
    if not cls_name.startswith("sklearn:"):  # the baselines stay as they are
        params = {**params, **{k: v for k, v in overrides.items() if k in valid}}
    key = "n_components" if cls is GaussianMixture else "n_clusters"
    params[key] = n_clusters
    if "random_state" in valid:
        params["random_state"] = seed
    return cls(**params), params


def _fit_predict(est, X):
    if isinstance(est, GaussianMixture):
        return est.fit(X).predict(X)
    return est.fit_predict(X)


def environment():
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def summarise(records):
    """{(dataset, method): {metric: (mean, std)}, ...} over the successful seeds."""
    out = {}
    for rec in records:
        out.setdefault((rec["dataset"], rec["method"]), []).append(rec)
    table = {}
    for key, recs in out.items():
        ok = [r for r in recs if r.get("error") is None and r.get("acc") is not None]
        row = {"n_ok": len(ok), "n": len(recs),
               "errors": sorted({r["error"] for r in recs if r.get("error")})}
        for metric in ("acc", "nmi", "ari", "seconds"):
            vals = np.array([r[metric] for r in ok], dtype=float)
            row[metric] = (float(vals.mean()), float(vals.std())) if len(vals) else None
        table[key] = row
    return table


def markdown(table, datasets, methods):
    lines = []
    for ds in datasets:
        lines += [f"\n**{ds}**\n", "| method | ACC | NMI | ARI | fit s | seeds |",
                  "|---|---|---|---|---|---|"]
        for m in methods:
            row = table.get((ds, m))
            if row is None:
                continue
            if row["n_ok"] == 0:
                lines.append(f"| {m} | failed: {'; '.join(row['errors'])[:80]} | | | | 0 |")
                continue
            cells = [f"{row[k][0]:.3f} ± {row[k][1]:.3f}" for k in ("acc", "nmi", "ari")]
            seeds = f"{row['n_ok']}" + ("" if row["n_ok"] == row["n"] else f"/{row['n']}")
            lines.append(f"| {m} | {' | '.join(cells)} | {row['seconds'][0]:.1f} | {seeds} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=ALL_DATASETS, default=None,
                        help=f"data sets (default: {' '.join(SMALL_DATASETS)})")
    parser.add_argument("--dataset", choices=ALL_DATASETS, default=None,
                        help="one data set (e.g. mnist); same as --datasets NAME")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="labels to run: case-insensitive substrings, or =Label for an exact "
                             "label (default: every configuration and baseline)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds 0..N-1 (default 3; 1 when MNIST is among the sets)")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="random subsample of each data set (seed 0) for a reduced run")
    parser.add_argument("--params", nargs="+", default=None, metavar="KEY=VALUE",
                        help="parameter overrides, applied to every skdeepclust estimator that "
                             "has the parameter, not to the baselines (e.g. pretrain_epochs=50)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)

    datasets = args.datasets or ([args.dataset] if args.dataset else list(SMALL_DATASETS))
    if args.dataset and args.datasets and args.dataset not in args.datasets:
        datasets = args.datasets + [args.dataset]
    n_seeds = args.seeds if args.seeds is not None else (1 if "mnist" in datasets else 3)
    configs = _all_configs()
    methods = select_methods(args.methods, configs)
    if not methods:
        raise SystemExit(f"no configuration matches {args.methods}; known: {list(configs)}")
    overrides = parse_overrides(args.params)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"quality-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_start": os.getloadavg(),
        "environment": environment(),
        "datasets": datasets, "methods": methods, "seeds": list(range(n_seeds)),
        "max_rows": args.max_rows, "overrides": overrides,
        "configs": {m: configs[m] for m in methods},
        "records": [],
    }

    def save():
        report["load_average_now"] = os.getloadavg()
        out.write_text(json.dumps(report, indent=1, default=str))

    for ds in datasets:
        X, y = load(ds, max_rows=args.max_rows)
        n_clusters = len(np.unique(y))
        print(f"# {ds}: {X.shape[0]} x {X.shape[1]}, {n_clusters} classes", flush=True)
        for method in methods:
            cls_name, params = configs[method]
            for seed in range(n_seeds):
                rec = {"dataset": ds, "method": method, "seed": seed, "n_rows": int(X.shape[0]),
                       "error": None, "load_average": os.getloadavg()}
                if cls_name.endswith("AgglomerativeClustering") and X.shape[0] > WARD_MAX_ROWS:
                    rec["error"] = f"skipped: Ward needs O(n^2) memory above {WARD_MAX_ROWS} rows"
                else:
                    try:
                        est, used = build(cls_name, params, n_clusters, seed, overrides)
                        rec["params"] = used
                        t0 = time.perf_counter()
                        labels = _fit_predict(est, X)
                        rec["seconds"] = time.perf_counter() - t0
                        rec["acc"] = clustering_accuracy(y, labels)
                        rec["nmi"] = float(normalized_mutual_info_score(y, labels))
                        rec["ari"] = float(adjusted_rand_score(y, labels))
                        rec["n_labels"] = int(len(np.unique(labels)))
                        history = getattr(est, "history_", None)
                        if history:
                            rec["history"] = {k: [float(v) for v in vals]
                                              for k, vals in history.items()}
                    except Exception as exc:  # report and go on with the next fit
                        rec["error"] = f"{type(exc).__name__}: {exc}"
                        rec["traceback"] = traceback.format_exc()
                report["records"].append(rec)
                save()
                if rec["error"]:
                    print(f"  {method:<28} seed {seed}: {rec['error']}", flush=True)
                else:
                    print(f"  {method:<28} seed {seed}: ACC {rec['acc']:.3f} NMI {rec['nmi']:.3f} "
                          f"ARI {rec['ari']:.3f} ({rec['seconds']:.1f} s)", flush=True)

    table = summarise(report["records"])
    report["summary"] = [{"dataset": d, "method": m, **row} for (d, m), row in table.items()]
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    report["markdown"] = markdown(table, datasets, methods)
    save()
    print(report["markdown"])
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
