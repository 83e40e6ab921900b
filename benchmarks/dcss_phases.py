"""Where DCSS gains or loses accuracy: after pretraining, after phase 1, after each phase-2 epoch.

For each seed the script fits DCSS once and records, from inside that fit:

* ``pretrain``: ACC of the k-means partition of the pretrained codes (DCSS's initial centres;
  the same as AutoencoderKMeans with DCSS's pretraining);
* ``phase1``: ACC of the nearest phase-1 centre at the start of phase 2 (DCSS_u);
* ``phase2``: ACC of ``argmax q`` after each phase-2 epoch (the warm-up epochs first), with
  the cluster sizes (largest first, ``phase2_sizes``) and the median largest ``q``
  (``phase2_median_max_q``) of each epoch;
* ``fit``: ACC of ``labels_``.

It reads DCSS's private phase classes (``skdeepclust._dcss``) through scoped patches.

Examples::

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python benchmarks/dcss_phases.py --dataset digits
    OMP_WAIT_POLICY=PASSIVE python benchmarks/dcss_phases.py --dataset mnist --seeds 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load  # noqa: E402
from quality import RESULTS_DIR, clustering_accuracy, environment, parse_overrides  # noqa: E402

import skdeepclust._autoencoder as autoencoder  # noqa: E402
import skdeepclust._dcss as dcss  # noqa: E402
from skdeepclust import DCSS  # noqa: E402
from skdeepclust._training import batched_apply  # noqa: E402


def fit_with_trace(X, y, **params):
    """Fit DCSS and return ``(estimator, trace)`` with the ACC of each stage."""
    trace = {"phase2": [], "phase2_sizes": [], "phase2_median_max_q": []}
    kmeans_class = autoencoder.KMeans

    class TracingKMeans(kmeans_class):
        def fit(self, U, *args, **kwargs):
            fitted = super().fit(U, *args, **kwargs)
            trace["pretrain"] = clustering_accuracy(y, fitted.labels_)
            return fitted

    begin, end = dcss._Phase2Net.on_epoch_begin, dcss._Phase2Net.on_epoch_end

    def on_epoch_begin(net, *args, dataset_train=None, **kwargs):
        if net.epochs_completed_ == 0:  # before the first phase-2 update
            U = batched_apply(net.module_.encoder, dataset_train.X)
            nearest = torch.cdist(U, net.criterion_.centers).argmin(dim=1)
            trace["phase1"] = clustering_accuracy(y, nearest.cpu().numpy())
        return begin(net, *args, dataset_train=dataset_train, **kwargs)

    def on_epoch_end(net, *args, dataset_train=None, **kwargs):
        module = net.module_
        training = module.training
        module.eval()
        q = batched_apply(lambda xb: module.mnet(module.encoder(xb)), dataset_train.X)
        module.train(training)
        labels = q.argmax(dim=1)
        trace["phase2"].append(clustering_accuracy(y, labels.cpu().numpy()))
        sizes = torch.bincount(labels, minlength=q.shape[1]).sort(descending=True).values
        trace["phase2_sizes"].append(sizes.tolist())
        trace["phase2_median_max_q"].append(float(q.max(dim=1).values.median()))
        return end(net, *args, dataset_train=dataset_train, **kwargs)

    with mock.patch.object(autoencoder, "KMeans", TracingKMeans), \
            mock.patch.object(dcss._Phase2Net, "on_epoch_begin", on_epoch_begin), \
            mock.patch.object(dcss._Phase2Net, "on_epoch_end", on_epoch_end):
        est = DCSS(**params).fit(X)
    trace["fit"] = clustering_accuracy(y, est.labels_)
    return est, trace


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=None,
                        help="subsample (as benchmarks/quality.py does) to this many rows")
    parser.add_argument("--params", nargs="*", help="key=value overrides of DCSS parameters")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    X, y = load(args.dataset, max_rows=args.max_rows)
    params = {"n_clusters": len(np.unique(y)), **parse_overrides(args.params)}
    out = args.out or RESULTS_DIR / f"dcss-phases-{args.dataset}.json"
    result = {"command": " ".join(sys.argv), "dataset": args.dataset,
              "max_rows": args.max_rows, "params": repr(params),
              "environment": environment(), "load_average": os.getloadavg(), "records": []}
    for seed in range(args.seeds):
        start = time.perf_counter()
        _, trace = fit_with_trace(X, y, random_state=seed, **params)
        trace.update(seed=seed, seconds=time.perf_counter() - start)
        result["records"].append(trace)
        print(json.dumps(trace, default=str), flush=True)
        out.write_text(json.dumps(result, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
