"""Bundled benchmark loaders: shapes, dtypes and preprocessing."""

import numpy as np
import pytest

from skdeepclust.datasets import BENCHMARK_DATASETS, load_benchmark

SHAPES = {"digits": (1797, 64, 10), "iris": (150, 4, 3), "wine": (178, 13, 3),
          "breast_cancer": (569, 30, 2)}


@pytest.mark.parametrize("name", BENCHMARK_DATASETS)
def test_shapes_dtypes_and_classes(name):
    X, y = load_benchmark(name)
    n, d, k = SHAPES[name]
    assert X.shape == (n, d) and X.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.unique(y), np.arange(k))


def test_digits_pixels_are_scaled_to_unit_interval():
    X, _ = load_benchmark("digits")
    assert X.min() == 0.0 and X.max() == 1.0
    # 16 grey levels: every pixel is a multiple of 1/16.
    np.testing.assert_allclose(X * 16, np.round(X * 16), atol=1e-5)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_tabular_sets_are_standardised(name):
    X, _ = load_benchmark(name)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-4)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="choose one of .*'digits'"):
        load_benchmark("mnist")
