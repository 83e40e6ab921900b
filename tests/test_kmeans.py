"""Spherical k-means: seeding, empty clusters, warm starts."""

import pytest
import torch
import torch.nn.functional as F

from skdeepclust._kmeans import spherical_kmeans


def test_an_empty_centre_is_reseeded_with_a_worst_fitting_point():
    # Every row is closest to (1, 0): the two other starting centres get no member, and
    # each is moved onto one of the rows that fit their centre worst.
    Z = torch.tensor([[1.0, 0.0], [1.0, 0.05], [1.0, -0.05], [1.0, 0.9], [1.0, -0.9]])
    init = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    centers, labels, _ = spherical_kmeans(Z, 3, generator=torch.Generator(), init=init)
    assert sorted(torch.bincount(labels, minlength=3).tolist()) == [1, 1, 3]
    reseeded = F.normalize(Z[3:], dim=1)
    assert torch.allclose(centers[1:].abs(), reseeded.abs(), atol=1e-6)


def test_seeding_copes_with_rows_that_all_coincide():
    # Every row sits on the first centre: k-means++ has only zero weights and draws any row.
    Z = torch.zeros(6, 3)
    Z[:, 0] = 2.0  # unit rows (1, 0, 0) after normalisation: every weight 1 - cos is exactly 0
    centers, labels, inertia = spherical_kmeans(Z, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(centers, torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert abs(inertia) < 1e-5 and labels.shape == (6,)


def test_spherical_kmeans_warm_start_keeps_ids():
    g = torch.Generator().manual_seed(0)
    Z = torch.cat([torch.tensor([1.0, 0.0]) + 0.05 * torch.randn(20, 2, generator=g),
                   torch.tensor([0.0, 1.0]) + 0.05 * torch.randn(20, 2, generator=g)])
    init = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    centers, labels, inertia = spherical_kmeans(Z, 2, generator=g, init=init)
    assert labels[:20].eq(1).all() and labels[20:].eq(0).all()
    assert torch.allclose(centers.norm(dim=1), torch.ones(2))
    cos = F.normalize(Z, dim=1) @ centers.T
    assert inertia == pytest.approx(float((1 - cos.max(dim=1).values).sum()), abs=1e-5)
