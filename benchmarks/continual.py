"""Continual clustering: a data set split by class into tasks, learned one task at a time.

The classes are split into ``--tasks`` tasks of consecutive class ids (digits and MNIST: 5 tasks
of 2 classes), the rows standardised once (``StandardScaler`` on all rows, as a user's pipeline
would on a first sample). Each continual learner sees the tasks in order and never again:

* ``FBCC`` (defaults, ``n_clusters=<classes per task>``): one ``partial_fit`` per task, and
  its ablations ``n_students=1`` (no distillation) and ``use_prototypes=False``;
* ``PIPCDR(n_clusters=<all classes>)``: each task streamed in chunks of 256 rows through
  ``partial_fit``, ``--pipcdr-passes`` (3) passes per task (the other continual estimator);
* ``MiniBatchKMeans(<all classes>, batch_size=256)``: ``partial_fit`` on chunks of 256 rows,
  3 passes over each task;
* offline upper bound: ``FBCC(n_clusters=<all classes>).fit`` on all rows at once.

After each task ``j`` every learner predicts the rows of every task ``i <= j``. ``ACC_{i,j}``
is the clustering accuracy (Hungarian, within task ``i``'s rows) of

* ``within``: ``FBCC.predict_within_task(X_i, i)`` (the paper's task-aware rule);
* ``concat``, ``standardized``, ``centroid``: ``FBCC.predict`` under each ``task_inference``;
* ``predict``: the other learners' ``predict``.

From each matrix: average ACC (eq. 6.10) and average forgetting (eq. 6.11). ``final`` is the
class-incremental ACC: ``predict`` on all rows after the last task, Hungarian over all classes.

Examples::

    python benchmarks/continual.py --dataset digits --seeds 3
    python benchmarks/continual.py --dataset mnist --max-rows 10000 --seeds 1 \\
        --out benchmarks/results/continual-mnist10k.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from sklearn.cluster import MiniBatchKMeans  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _data import ALL_DATASETS, load  # noqa: E402

from skdeepclust import FBCC, PIPCDR  # noqa: E402
from skdeepclust.metrics import (  # noqa: E402
    accuracy_matrix,
    average_accuracy,
    average_forgetting,
    clustering_accuracy,
)

RESULTS_DIR = HERE / "results"
RULES = ("concat", "standardized", "centroid")
CHUNK = 256


def split_tasks(y, n_tasks):
    classes = np.unique(y)
    return [np.flatnonzero(np.isin(y, part)) for part in np.array_split(classes, n_tasks)]


def _chunks(idx, rng, passes):
    for _ in range(passes):
        order = rng.permutation(idx)
        yield from np.array_split(order, max(1, -(-len(order) // CHUNK)))


def run_fbcc(X, y, tasks, seed, params):
    k = len(np.unique(y[tasks[0]]))
    est = FBCC(n_clusters=k, random_state=seed, **params)
    preds = {rule: [] for rule in ("within", *RULES)}
    t0 = time.perf_counter()
    for j, idx in enumerate(tasks):
        est.partial_fit(X[idx])
        preds["within"].append([est.predict_within_task(X[t], i)
                                for i, t in enumerate(tasks[:j + 1])])
        for rule in RULES:
            est.set_params(task_inference=rule)
            preds[rule].append([est.predict(X[t]) for t in tasks[:j + 1]])
    seconds = time.perf_counter() - t0
    final = {}
    for rule in RULES:
        est.set_params(task_inference=rule)
        final[rule] = clustering_accuracy(y, est.predict(X))
    return preds, final, seconds


def run_stream(make, X, y, tasks, seed, passes):
    est = make(seed)
    rng = np.random.RandomState(seed)
    preds = {"predict": []}
    t0 = time.perf_counter()
    for j, idx in enumerate(tasks):
        for chunk in _chunks(idx, rng, passes):
            est.partial_fit(X[chunk])
        preds["predict"].append([est.predict(X[t]) for t in tasks[:j + 1]])
    seconds = time.perf_counter() - t0
    return preds, {"predict": clustering_accuracy(y, est.predict(X))}, seconds


def summarise(y, tasks, preds, final, seconds):
    truth = [y[t] for t in tasks]
    out = {"seconds": seconds, "rules": {}}
    for rule, after in preds.items():
        A = accuracy_matrix(truth, after)
        out["rules"][rule] = {"acc_matrix": np.where(np.isnan(A), None, A).tolist(),
                              "avg_acc": average_accuracy(A),
                              "avg_forgetting": average_forgetting(A),
                              "final_acc": final.get(rule)}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=ALL_DATASETS, default="digits")
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--pipcdr-passes", type=int, default=3,
                        help="passes of PIPCDR's partial_fit over each task (as MiniBatchKMeans)")
    parser.add_argument("--learners", nargs="+",
                        default=["FBCC", "FBCC n_students=1", "FBCC use_prototypes=False",
                                 "MiniBatchKMeans", "PIPCDR", "FBCC offline fit"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    X, y = load(args.dataset, max_rows=args.max_rows)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    tasks = split_tasks(y, args.tasks)
    n_classes = len(np.unique(y))
    out = args.out or RESULTS_DIR / f"continual-{args.dataset}.json"
    report = json.loads(out.read_text()) if out.exists() else {"records": []}
    report["args"] = {k: str(v) for k, v in vars(args).items()}
    done = {(r["learner"], r["seed"]) for r in report["records"]}
    fbcc = {"FBCC": {}, "FBCC n_students=1": {"n_students": 1},
            "FBCC use_prototypes=False": {"use_prototypes": False}}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for learner in args.learners:
            if (learner, seed) in done:
                continue
            if learner in fbcc:
                preds, final, secs = run_fbcc(X, y, tasks, seed, fbcc[learner])
                rec = summarise(y, tasks, preds, final, secs)
            elif learner == "MiniBatchKMeans":
                rec = summarise(y, tasks, *run_stream(
                    lambda s: MiniBatchKMeans(n_classes, batch_size=CHUNK, random_state=s),
                    X, y, tasks, seed, 3))
            elif learner == "PIPCDR":
                rec = summarise(y, tasks, *run_stream(
                    lambda s: PIPCDR(n_classes, random_state=s), X, y, tasks, seed,
                    args.pipcdr_passes))
            elif learner == "FBCC offline fit":
                t0 = time.perf_counter()
                labels = FBCC(n_clusters=n_classes, random_state=seed).fit(X).labels_
                rec = {"seconds": time.perf_counter() - t0,
                       "rules": {"fit": {"final_acc": clustering_accuracy(y, labels)}}}
            else:
                raise SystemExit(f"unknown learner {learner!r}")
            rec.update(learner=learner, seed=seed)
            report["records"].append(rec)
            out.write_text(json.dumps(report, indent=1))
            brief = {r: {k: round(v, 3) for k, v in m.items()
                         if k != "acc_matrix" and v is not None}
                     for r, m in rec["rules"].items()}
            print(f"seed {seed} {learner} ({rec['seconds']:.0f} s): {brief}", flush=True)
    print(table(report))
    print(f"written to {out}")


def table(report):
    """Mean (std) over seeds of each learner and rule: avg ACC, avg forgetting, final ACC."""
    rows = {}
    for r in report["records"]:
        for rule, m in r["rules"].items():
            rows.setdefault((r["learner"], rule), []).append(m)
    lines = ["| learner | rule | seeds | avg ACC | avg forgetting | final ACC (all rows) |",
             "|---|---|---|---|---|---|"]

    def cell(ms, key):
        vals = [m[key] for m in ms if m.get(key) is not None]
        return f"{np.mean(vals):.3f} ({np.std(vals):.3f})" if vals else "-"

    for (learner, rule), ms in rows.items():
        lines.append(f"| {learner} | {rule} | {len(ms)} | {cell(ms, 'avg_acc')} | "
                     f"{cell(ms, 'avg_forgetting')} | {cell(ms, 'final_acc')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
