"""Spherical k-means: seeding, empty clusters, warm starts."""

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
