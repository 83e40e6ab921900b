import numpy as np
import pytest
import torch

import skdeepclust.neighbors as nb
from skdeepclust.neighbors import kneighbors


def brute_force(X, k):
    """Reference: full distance matrix in float64, self masked out, stable sort."""
    X = np.asarray(X, dtype=np.float64)
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(D, np.inf)
    idx = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, idx, axis=1), idx


def blobs(n, d, seed):
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=4.0, size=(8, d))
    return (centres[rng.randint(8, size=n)] + rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_matches_brute_force(dtype, monkeypatch):
    # Several chunks, the last one partial, so the chunk bookkeeping is exercised.
    monkeypatch.setattr(nb, "_MAX_CHUNK", 64)
    X = np.random.RandomState(0).normal(size=(300, 4)).astype(dtype)
    ref_dist, ref_idx = brute_force(X, 7)
    dist, idx = kneighbors(X, 7, method="exact")
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-5, atol=1e-6)


def test_exact_far_from_origin():
    # Large norms make |b|^2 - 2 a.b cancel badly in float32 unless the data are centred.
    X = (np.random.RandomState(1).normal(size=(200, 3)) + 1e4).astype(np.float32)
    ref_dist, ref_idx = brute_force(X, 5)
    dist, idx = kneighbors(torch.from_numpy(X), 5, method="exact")
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-3)


def test_self_excluded_and_every_other_row_once():
    X = np.random.RandomState(2).normal(size=(12, 3))
    dist, idx = kneighbors(X, 11, method="exact")
    idx = idx.numpy()
    assert not (idx == np.arange(12)[:, None]).any()
    for i, row in enumerate(idx):
        assert sorted(row) == [j for j in range(12) if j != i]
    assert (np.diff(dist.numpy(), axis=1) >= 0).all()


def test_duplicates_are_each_others_first_neighbour():
    X = np.random.RandomState(3).normal(size=(50, 5))
    X[17] = X[4]
    dist, idx = kneighbors(torch.tensor(X, dtype=torch.float32), 3, method="exact")
    assert idx[4, 0] == 17 and idx[17, 0] == 4
    assert dist[4, 0] == 0 and dist[17, 0] == 0
    assert (dist[:, 0] > 0).sum() == 48


class FakeNNDescent:
    """Stands in for pynndescent: an exact graph in the shapes NN-descent can return."""

    calls = []

    def __init__(self, data, n_neighbors, metric, random_state):
        FakeNNDescent.calls.append(random_state)
        D = np.sqrt(((data[:, None, :].astype(np.float64) - data[None]) ** 2).sum(axis=2))
        np.fill_diagonal(D, -1.0)  # self first, as NN-descent lists it
        idx = np.argsort(D, axis=1, kind="stable")[:, :n_neighbors]
        dist = np.take_along_axis(np.maximum(D, 0), idx, axis=1).astype(np.float32)
        # Row 0 has a duplicate (row 1) listed before itself; row 1's list was filled by
        # the duplicate and other rows, leaving self out; row 5 could not be completed.
        idx[0, :2] = [1, 0]
        idx[1] = np.argsort(np.where(np.eye(len(data), dtype=bool), np.inf, D), axis=1)[
            1, :n_neighbors]
        dist[1] = np.sort(np.where(np.arange(len(data)) == 1, np.inf, D[1]))[:n_neighbors]
        idx[5, 3:] = -1
        dist[5, 3:] = np.inf
        self.neighbor_graph = (idx.astype(np.int32), dist)


def test_approx_post_processing(monkeypatch):
    """Self dropped by index, or the farthest entry where self is missing; -1 rows redone."""
    import pynndescent

    monkeypatch.setattr(pynndescent, "NNDescent", FakeNNDescent)
    X = np.random.RandomState(4).normal(size=(40, 3)).astype(np.float32)
    # Far from the rest, so that no other row has a tie between the two duplicates.
    X[0] = X[1] = 100.0
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state is the point)
    FakeNNDescent.calls.clear()
    dist, idx = kneighbors(X, 4, random_state=None, method="approx")
    ref_dist, ref_idx = brute_force(X, 4)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-5, atol=1e-6)
    # random_state=None becomes a fresh int seed, not a draw from NumPy's global generator.
    assert isinstance(FakeNNDescent.calls[0], int)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002


def test_approx_recall_and_repeatable():
    # The only test that runs pynndescent itself (its numba compilation takes a while).
    X = blobs(5000, 10, seed=5)
    X[100] = X[200]
    exact_dist, exact_idx = kneighbors(X, 10, method="exact")
    dist, idx = kneighbors(X, 10, random_state=0, method="approx")
    dist2, idx2 = kneighbors(X, 10, random_state=0, method="approx")
    assert torch.equal(idx, idx2) and torch.equal(dist, dist2)

    assert idx.shape == dist.shape == (5000, 10)
    assert idx.dtype == torch.int64 and dist.dtype == torch.float32
    a, e = idx.numpy(), exact_idx.numpy()
    recall = (a[:, :, None] == e[:, None, :]).any(axis=2).mean()
    assert recall >= 0.95, recall
    assert not (a == np.arange(5000)[:, None]).any()
    assert a[100, 0] == 200 and a[200, 0] == 100
    assert (np.diff(dist.numpy(), axis=1) >= 0).all()
    # Reported distances are those of the reported neighbours.
    true = np.linalg.norm(X[a] - X[:, None, :], axis=2)
    np.testing.assert_allclose(dist.numpy(), true, rtol=1e-4, atol=1e-4)


def test_auto_dispatch(monkeypatch):
    seen = []
    monkeypatch.setattr(nb, "_approx", lambda Z, k, rs: seen.append((Z.shape[0], k, rs)))
    X = torch.randn(30, 2)
    kneighbors(X, 3, 7, exact_threshold=29)
    assert seen == [(30, 3, 7)]
    dist, idx = kneighbors(X, 3, 7, exact_threshold=30)
    ref_dist, ref_idx = kneighbors(X, 3, method="exact")
    assert seen == [(30, 3, 7)] and torch.equal(idx, ref_idx)


@pytest.mark.parametrize(
    "n_neighbors, match",
    [(0, r"\[1, 9\]"), (-1, r"\[1, 9\]"), (10, r"\[1, 9\]"), (11, r"\[1, 9\]"),
     (2.0, "must be an int"), (True, "must be an int"), ("3", "must be an int")],
)
def test_bad_n_neighbors(n_neighbors, match):
    with pytest.raises(ValueError, match=match):
        kneighbors(np.zeros((10, 2)), n_neighbors)


def test_bad_inputs():
    with pytest.raises(ValueError, match="method"):
        kneighbors(np.zeros((10, 2)), 2, method="ball_tree")
    with pytest.raises(ValueError, match="2-D"):
        kneighbors(np.zeros(10), 2)
    with pytest.raises(ValueError, match="NaN"):
        kneighbors(np.array([[0.0], [np.nan], [1.0]]), 1)


@pytest.mark.parametrize(
    "Z, dist_dtype",
    [(np.arange(12.0).reshape(6, 2), torch.float64),
     (torch.arange(12).reshape(6, 2), torch.float32),
     (torch.arange(12.0, requires_grad=True).reshape(6, 2), torch.float32)],
)
def test_output_types(Z, dist_dtype):
    dist, idx = kneighbors(Z, 2)
    assert isinstance(dist, torch.Tensor) and isinstance(idx, torch.Tensor)
    assert dist.shape == idx.shape == (6, 2)
    assert dist.dtype == dist_dtype and idx.dtype == torch.int64
    assert dist.device == idx.device == torch.device("cpu")
    assert not dist.requires_grad
    # Points on a line, spaced sqrt(8) apart: the first neighbour is always at sqrt(8).
    np.testing.assert_allclose(dist[:, 0].numpy(), np.sqrt(8.0), rtol=1e-6)
