"""One process of a data-parallel fit, launched by tests/test_accelerate.py through torchrun.

Each process fits the same estimators on the same data with an ``Accelerator``
on the CPU and saves, under ``sys.argv[1]``, what the test compares across
processes and with fits in a single process.
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import make_blobs

from skdeepclust import DCSS, RDC, AutoencoderKMeans

_SMALL = {"hidden_layer_sizes": (16,), "embedding_dim": 2, "batch_size": 32}

#: name -> estimator given an accelerator (None: a plain fit).
ESTIMATORS = {
    # Data-parallel throughout.
    "aekm": lambda acc: AutoencoderKMeans(n_clusters=3, pretrain_epochs=3, random_state=0,
                                          accelerator=acc, **_SMALL),
    # Both phases data-parallel; the proximity targets are looked up by row index.
    "rdc": lambda acc: RDC(n_clusters=3, pretrain_epochs=2, max_epochs=2, adversarial_weight=0.0,
                           random_state=0, accelerator=acc, **_SMALL),
    # Pretraining data-parallel; the cluster-specific and pair phases on every process.
    "dcss": lambda acc: DCSS(n_clusters=3, pretrain_epochs=2, max_epochs=1, mnet_epochs=2,
                             u_space_epochs=1, random_state=0, accelerator=acc, **_SMALL),
    # No seed: the processes must still agree (the main process's seed is shared).
    "unseeded": lambda acc: AutoencoderKMeans(n_clusters=3, pretrain_epochs=2,
                                              accelerator=acc, **_SMALL),
}


def blobs():
    X, _ = make_blobs(n_samples=256, centers=3, n_features=4, cluster_std=0.5, random_state=0)
    return X.astype(np.float32)


def fitted_record(est, X):
    """What a test compares: labels, embedding, rows of the first epoch's batches."""
    first_epoch = est.net_.history[0]["batches"]
    return {"labels": est.labels_, "embedding": est.transform(X),
            "batch_sizes": np.array([batch["train_batch_size"] for batch in first_epoch])}


def main(out: Path):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    X = blobs()
    saved = {}
    for name, make in ESTIMATORS.items():
        for key, value in fitted_record(make(accelerator).fit(X), X).items():
            saved[f"{name}_{key}"] = value
    np.savez(out / f"rank{accelerator.process_index}.npz", **saved)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
