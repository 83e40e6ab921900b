"""State of the continual estimators: running moments, reservoir, online centres, stable ids."""

import numpy as np
import pytest
import torch

from skdeepclust._streaming import (
    Reservoir,
    RunningMoments,
    changed_fraction,
    match_clusters,
    online_spherical_update,
    recluster_stable_ids,
)

# ------------------------------------------------------------------------ running moments


def test_running_moments_over_chunks_equal_the_moments_of_all_rows():
    X = torch.randn(11, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([1., 5, 0])
    X = X + torch.tensor([100.0, -3.0, 7.0])
    m = RunningMoments(3)
    for chunk in (X[:3], X[3:10], X[10:]):
        m.update(chunk)
    X64 = X.double().numpy()
    assert m.count == 11
    np.testing.assert_allclose(m.mean, X64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m.var, X64.var(axis=0), rtol=1e-9, atol=1e-12)
    # a constant column gets scale 1, the others their standard deviation
    np.testing.assert_allclose(m.scale(), [X64[:, 0].std(), X64[:, 1].std(), 1.0], rtol=1e-9)


def test_running_moments_by_hand():
    m = RunningMoments(1).update(torch.tensor([[0.0], [2.0]])).update(torch.tensor([[4.0]]))
    assert m.mean.tolist() == [2.0] and m.var.tolist() == pytest.approx([8.0 / 3])
    assert RunningMoments(2).var.tolist() == [0.0, 0.0]


# ------------------------------------------------------------------------------ reservoir


def test_reservoir_keeps_the_first_rows_until_full():
    rng = np.random.RandomState(0)
    r = Reservoir(5).add(torch.arange(3.0)[:, None], rng).add(torch.arange(3.0, 5.0)[:, None],
                                                               rng)
    assert r.rows.flatten().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and r.seen == 5
    r.add(torch.arange(5.0, 50.0)[:, None], rng)
    assert r.rows.shape == (5, 1) and r.seen == 50
    assert len(set(r.rows.flatten().tolist())) == 5
    assert set(r.rows.flatten().tolist()) != {0.0, 1.0, 2.0, 3.0, 4.0}


def test_reservoir_is_a_uniform_sample_of_every_row_seen():
    # 100 rows in chunks of 7 into 10 slots: each row is kept with probability 0.1.
    n, capacity, runs = 100, 10, 400
    stream = torch.arange(float(n))[:, None]
    counts = np.zeros(n)
    for seed in range(runs):
        rng = np.random.RandomState(seed)
        r = Reservoir(capacity)
        for start in range(0, n, 7):
            r.add(stream[start:start + 7], rng)
        counts[r.rows.flatten().long().numpy()] += 1
    expected = runs * capacity / n  # 40 per row; a group of 20 rows: sd about 1.3
    for group in (counts[:20], counts[40:60], counts[80:]):
        assert abs(group.mean() - expected) < 6


def test_reservoir_sample_from_starts_over_with_distinct_sorted_rows():
    X = torch.arange(10.0)[:, None]
    r = Reservoir(4).add(torch.full((4, 1), -1.0), np.random.RandomState(0))
    r.sample_from(X, np.random.RandomState(0))
    values = r.rows.flatten().tolist()
    assert len(values) == 4 and values == sorted(set(values)) and r.seen == 10
    assert all(v in range(10) for v in values)
    r.add(torch.arange(10.0, 20.0)[:, None], np.random.RandomState(1))
    assert r.seen == 20 and r.rows.shape == (4, 1)
    small = Reservoir(20).sample_from(X, np.random.RandomState(0))
    assert small.rows.flatten().tolist() == list(range(10))


# ------------------------------------------------------------- online spherical centres


def test_online_spherical_update_by_hand():
    # z = (0.6, 0.8) and (0, 1) go to centre 1 (dot 0.8 > 0.6), z = (1, 0) to centre 0.
    # c_0 = n(2 e_0 + e_0) = e_0; c_1 = n(3 e_1 + (0.6, 0.8) + (0, 1)) = (0.6, 4.8) / |.|
    centers, counts = torch.eye(2), torch.tensor([2.0, 3.0])
    Z = torch.tensor([[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])
    new, n = online_spherical_update(centers, counts, Z)
    expected = torch.tensor([[1.0, 0.0], [0.6, 4.8]])
    torch.testing.assert_close(new, expected / expected.norm(dim=1, keepdim=True))
    assert n.tolist() == [3.0, 5.0]
    assert counts.tolist() == [2.0, 3.0]  # inputs untouched


# ---------------------------------------------------------------- stable re-clustering


def _fake_kmeans(warm, fresh, calls):
    def kmeans(Z, init=None, n_init=None):
        calls.append("warm" if init is not None else f"fresh x{n_init}")
        return warm if init is not None else fresh
    return kmeans


def test_recluster_keeps_the_ids_of_the_current_centres():
    Z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    centers = torch.eye(2)  # current labels 0, 0, 1, 1
    warm = (torch.full((2, 2), 9.0), torch.tensor([0, 0, 1, 1]), 2.0)
    # The fresh clustering is better and names the clusters the other way round.
    fresh = (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1, 0, 0]), 1.0)
    calls = []
    new, labels = recluster_stable_ids(Z, centers, _fake_kmeans(warm, fresh, calls), n_init=3)
    assert sorted(calls) == ["fresh x3", "warm"]
    torch.testing.assert_close(new, torch.eye(2))
    assert labels.tolist() == [0, 0, 1, 1]
    # A better warm start wins as it is.
    worse = (fresh[0], fresh[1], 5.0)
    new, labels = recluster_stable_ids(Z, centers, _fake_kmeans(warm, worse, []), n_init=3)
    assert torch.equal(new, warm[0]) and labels.tolist() == [0, 0, 1, 1]


def test_changed_fraction_and_match_clusters_by_hand():
    old = torch.tensor([0, 0, 1, 1, 2, 2])
    assert changed_fraction(old, torch.tensor([2, 2, 0, 0, 1, 1]), 3) == 0.0  # renamed
    assert changed_fraction(old, torch.tensor([2, 2, 0, 1, 1, 1]), 3) == pytest.approx(1 / 6)
    assert changed_fraction(old, old, 3) == 0.0
    assert changed_fraction(torch.tensor([0, 0]), torch.tensor([0, 1]), 2) == 0.5
    assert match_clusters(old, torch.tensor([2, 2, 0, 0, 1, 1]), 3).tolist() == [2, 0, 1]
    assert match_clusters(old, torch.tensor([1, 1, 1, 0, 2, 2]), 3).tolist() == [1, 0, 2]
