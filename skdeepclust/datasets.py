"""Small labelled data sets for examples, tests and the demo.

Only the data sets bundled with scikit-learn are used, so nothing is
downloaded: ``digits`` (1,797 x 64, 10 classes), ``iris`` (150 x 4, 3),
``wine`` (178 x 13, 3) and ``breast_cancer`` (569 x 30, 2).
"""

from __future__ import annotations

import numpy as np
from sklearn import datasets as _sk_datasets
from sklearn.preprocessing import StandardScaler

__all__ = ["BENCHMARK_DATASETS", "load_benchmark"]

#: Names accepted by :func:`load_benchmark`.
BENCHMARK_DATASETS = ("digits", "iris", "wine", "breast_cancer")

_LOADERS = {
    "digits": _sk_datasets.load_digits,
    "iris": _sk_datasets.load_iris,
    "wine": _sk_datasets.load_wine,
    "breast_cancer": _sk_datasets.load_breast_cancer,
}


def load_benchmark(name):
    """Load a bundled labelled data set, preprocessed for clustering.

    ``digits`` pixels (0..16) are divided by 16 so they lie in ``[0, 1]``, as
    image benchmarks are usually fed to autoencoders; the other data sets
    have features on unrelated scales and are standardised (zero mean, unit
    variance per column).

    Parameters
    ----------
    name : {"digits", "iris", "wine", "breast_cancer"}
        Which data set (see :data:`BENCHMARK_DATASETS`).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype=float32
        The preprocessed features.
    y : ndarray of shape (n_samples,), dtype=int64
        The classes, ``0 .. n_classes - 1``; ``len(np.unique(y))`` is the
        natural ``n_clusters``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`BENCHMARK_DATASETS`.

    Examples
    --------
    >>> from skdeepclust.datasets import load_benchmark
    >>> X, y = load_benchmark("digits")
    >>> X.shape, X.dtype, float(X.min()), float(X.max()), len(set(y))
    ((1797, 64), dtype('float32'), 0.0, 1.0, 10)
    >>> X, y = load_benchmark("iris")
    >>> X.shape, abs(float(X.mean())) < 1e-6, round(float(X.std()), 6)
    ((150, 4), True, 1.0)
    """
    if name not in _LOADERS:
        raise ValueError(
            f"Unknown benchmark data set {name!r}; choose one of {list(BENCHMARK_DATASETS)}."
        )
    X, y = _LOADERS[name](return_X_y=True)
    X = np.asarray(X, dtype=np.float64)
    X = X / 16.0 if name == "digits" else StandardScaler().fit_transform(X)
    return X.astype(np.float32), np.asarray(y, dtype=np.int64)
