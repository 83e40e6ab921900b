"""Contrastive Clustering losses (C3, FBCC): values by hand, loop references, conventions."""

import math

import pytest
import torch

from skdeepclust.losses import cluster_contrastive_loss, instance_contrastive_loss

# ------------------------------------------------------------------ references (plain loops)


def _cos(u, v):
    return float(u @ v) / (max(float(u.norm()), 1e-12) * max(float(v.norm()), 1e-12))


def _nt_xent_loop(z_a, z_b, temperature, negatives=()):
    """Anchor by anchor: positive = other view of the same row, in its own denominator."""
    n = z_a.shape[0]
    entries = [z_a[i] for i in range(n)] + [z_b[i] for i in range(n)]
    total = 0.0
    for i, anchor in enumerate(entries):
        partner = (i + n) % (2 * n)
        pos = math.exp(_cos(anchor, entries[partner]) / temperature)
        den = sum(math.exp(_cos(anchor, other) / temperature)
                  for j, other in enumerate(entries) if j != i)
        den += sum(math.exp(_cos(anchor, p) / temperature) for p in negatives)
        total += -math.log(pos / den)
    return total / (2 * n)


def _cluster_loop(c_a, c_b, temperature, entropy_weight):
    k = c_a.shape[1]
    contrast = _nt_xent_loop(c_a.T, c_b.T, temperature)
    gaps = 0.0
    for c in (c_a, c_b):
        total = float(c.sum())
        entropy = 0.0
        for m in range(k):
            p = float(c[:, m].sum()) / total
            if p > 0:
                entropy -= p * math.log(p)
        gaps += math.log(k) - entropy
    return contrast + entropy_weight * gaps


def _random(shape, seed, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------ instance loss


def test_instance_loss_by_hand():
    # a0 = (1, 0), a1 = (0, 1); b0 = (3, 4)/5 = (.6, .8), b1 = (-3, 4)/5 = (-.6, .8) (normalised
    # inside). Cosines: a0.a1 = 0, a0.b0 = .6, a0.b1 = -.6, a1.b0 = .8, a1.b1 = .8, b0.b1 = .28.
    # tau = 0.5 doubles every cosine.
    z_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_b = torch.tensor([[3.0, 4.0], [-3.0, 4.0]])
    e = math.exp
    l_a0 = -1.2 + math.log(e(1.2) + e(0.0) + e(-1.2))   # positive b0; negatives a1, b1
    l_a1 = -1.6 + math.log(e(1.6) + e(0.0) + e(1.6))    # positive b1; negatives a0, b0
    l_b0 = -1.2 + math.log(e(1.2) + e(1.6) + e(0.56))   # positive a0; negatives a1, b1
    l_b1 = -1.6 + math.log(e(1.6) + e(-1.2) + e(0.56))  # positive a1; negatives a0, b0
    expected = (l_a0 + l_a1 + l_b0 + l_b1) / 4
    loss = instance_contrastive_loss(z_a, z_b, 0.5)
    assert loss.dim() == 0
    assert float(loss) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n, e, temperature", [(1, 3, 0.5), (5, 4, 0.5), (8, 3, 1.0),
                                               (6, 16, 0.1)])
def test_instance_loss_matches_loop(n, e, temperature):
    z_a, z_b = _random((n, e), 0) * 3, _random((n, e), 1)
    loss = instance_contrastive_loss(z_a, z_b, temperature)
    assert float(loss) == pytest.approx(_nt_xent_loop(z_a, z_b, temperature), rel=1e-9)


def test_positive_is_in_its_own_denominator():
    # One row: the denominator holds only the positive, so the loss is log 1 = 0 whatever the
    # views (with the positive excluded it would be undefined).
    z_a, z_b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert float(instance_contrastive_loss(z_a, z_b, 0.5)) == pytest.approx(0.0, abs=1e-7)
    # Two orthogonal rows, equal views: -log(e / (e + 1 + 1)) = log(e + 2) - 1 ~ 0.551; with the
    # positive excluded it would be -log(e / 2) = log 2 - 1 < 0.
    z = torch.eye(2)
    loss = float(instance_contrastive_loss(z, z, 1.0))
    assert loss == pytest.approx(math.log(math.e + 2) - 1, rel=1e-6)
    assert loss != pytest.approx(math.log(2) - 1, abs=0.1)
    # Every term is -log(a share of the denominator) >= 0.
    for seed in range(5):
        assert float(instance_contrastive_loss(_random((4, 3), seed), _random((4, 3), seed + 10),
                                               0.2)) > 0


def test_anchor_itself_is_not_in_the_denominator():
    # Equal views, one row: with self in the denominator the loss would be log 2, not 0.
    z = torch.tensor([[2.0, 1.0]])
    assert float(instance_contrastive_loss(z, z, 1.0)) == pytest.approx(0.0, abs=1e-7)


def test_extra_negatives_by_hand_and_loop():
    z = torch.eye(2)
    p = torch.tensor([[2.0, 2.0]])  # normalised inside: s = 1/sqrt(2) with every anchor
    expected = math.log(math.e + 2 + math.exp(1 / math.sqrt(2))) - 1
    assert float(instance_contrastive_loss(z, z, 1.0, negatives=p)) == pytest.approx(expected,
                                                                                     rel=1e-6)
    z_a, z_b, protos = _random((6, 5), 2), _random((6, 5), 3), _random((4, 5), 4) * 0.3
    with_neg = float(instance_contrastive_loss(z_a, z_b, 0.5, negatives=protos))
    without = float(instance_contrastive_loss(z_a, z_b, 0.5))
    assert with_neg > without
    assert with_neg == pytest.approx(_nt_xent_loop(z_a, z_b, 0.5, list(protos)), rel=1e-9)
    # An empty set of negatives is the plain loss.
    empty = instance_contrastive_loss(z_a, z_b, 0.5, negatives=z_a.new_zeros((0, 5)))
    assert float(empty) == pytest.approx(without, rel=1e-12)


def test_extra_negatives_are_constants():
    z_a = _random((4, 3), 5).requires_grad_(True)
    z_b = _random((4, 3), 6)
    protos = _random((2, 3), 7).requires_grad_(True)
    instance_contrastive_loss(z_a, z_b, 0.5, negatives=protos).backward()
    assert protos.grad is None
    assert torch.isfinite(z_a.grad).all() and z_a.grad.abs().sum() > 0


def test_negatives_follow_the_embeddings_dtype():
    z_a, z_b = _random((3, 4), 8, torch.float32), _random((3, 4), 9, torch.float32)
    protos = _random((2, 4), 10, torch.float64)
    loss = instance_contrastive_loss(z_a, z_b, 0.5, negatives=protos)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(_nt_xent_loop(z_a.double(), z_b.double(), 0.5,
                                                      list(protos)), rel=1e-5)


def test_instance_loss_symmetric_and_permutation_invariant():
    z_a, z_b, protos = _random((7, 4), 11), _random((7, 4), 12), _random((3, 4), 13)
    loss = instance_contrastive_loss(z_a, z_b, 0.5, negatives=protos)
    swapped = instance_contrastive_loss(z_b, z_a, 0.5, negatives=protos)
    assert float(swapped) == pytest.approx(float(loss), rel=1e-12)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    permuted = instance_contrastive_loss(z_a[perm], z_b[perm], 0.5, negatives=protos)
    assert float(permuted) == pytest.approx(float(loss), rel=1e-12)
    # Pairing matters: shifting one view breaks the positives.
    shifted = instance_contrastive_loss(z_a, z_b.roll(1, dims=0), 0.5, negatives=protos)
    assert float(shifted) != pytest.approx(float(loss), rel=1e-3)


def test_instance_loss_scale_invariant_and_gradients_flow():
    z_a = _random((5, 3), 14).requires_grad_(True)
    z_b = _random((5, 3), 15).requires_grad_(True)
    loss = instance_contrastive_loss(z_a, z_b, 0.5)
    scaled = instance_contrastive_loss(10 * z_a, 0.1 * z_b, 0.5)
    assert float(scaled.detach()) == pytest.approx(float(loss.detach()), rel=1e-9)
    loss.backward()
    for g in (z_a.grad, z_b.grad):
        assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_instance_loss_rejects_mismatched_views():
    with pytest.raises(ValueError, match="one shape"):
        instance_contrastive_loss(torch.ones(3, 2), torch.ones(2, 2), 0.5)


# ------------------------------------------------------------------ cluster loss


def test_cluster_contrastive_part_by_hand():
    # Columns: a0 = (.8, .2), a1 = (.2, .8), b0 = (1, 0), b1 = (0, 1); |a_m| = sqrt(.68).
    # cos(a0, b0) = .8/sqrt(.68), cos(a0, b1) = .2/sqrt(.68), cos(a0, a1) = .32/.68,
    # cos(b0, b1) = 0.
    # Both marginals are uniform, so the entropy part is 0 for any weight. tau = 1.
    c_a = torch.tensor([[0.8, 0.2], [0.2, 0.8]])
    c_b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    r = math.sqrt(0.68)
    pos, cross, within = 0.8 / r, 0.2 / r, 0.32 / 0.68
    l_a = -pos + math.log(math.exp(pos) + math.exp(cross) + math.exp(within))  # a0 and a1 alike
    l_b = -pos + math.log(math.exp(pos) + math.exp(cross) + math.exp(0.0))     # b0 and b1 alike
    expected = (2 * l_a + 2 * l_b) / 4
    for weight in (0.0, 1.0, 5.0):
        loss = cluster_contrastive_loss(c_a, c_b, 1.0, entropy_weight=weight)
        assert loss.dim() == 0
        assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_cluster_entropy_part():
    # Uniform marginals: log K - H = 0 (the contrastive part alone is left).
    c = torch.full((4, 3), 1 / 3)
    assert float(cluster_contrastive_loss(c, c, 1.0, entropy_weight=7.0)) == pytest.approx(
        float(cluster_contrastive_loss(c, c, 1.0, entropy_weight=0.0)), rel=1e-6)
    # Collapsed (every row on cluster 0): log K per view, 2 log K in all.
    collapsed = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    gap = (float(cluster_contrastive_loss(collapsed, collapsed, 1.0, entropy_weight=1.0))
           - float(cluster_contrastive_loss(collapsed, collapsed, 1.0, entropy_weight=0.0)))
    assert gap == pytest.approx(2 * math.log(3), rel=1e-6)
    # Soft, unnormalised: column sums (1.5, .5) / 2 -> P = (.75, .25); view b uniform (gap 0).
    c_a = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    c_b = torch.eye(2)
    gap = (float(cluster_contrastive_loss(c_a, c_b, 1.0, entropy_weight=2.0))
           - float(cluster_contrastive_loss(c_a, c_b, 1.0, entropy_weight=0.0)))
    expected = 2.0 * (math.log(2) + 0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert gap == pytest.approx(expected, rel=1e-6)


def test_cluster_loss_collapsed_by_hand():
    # K = 2, both rows on cluster 0 in both views: column 0 = (1, 1) (unit after normalising),
    # column 1 = 0 (cosine 0 with everything). Anchors 0a, 0b: -log(e / (e + 1 + 1));
    # anchors 1a, 1b: positive at cosine 0, -log(1 / 3). Entropy: log 2 per view.
    c = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    contrast = (2 * (math.log(math.e + 2) - 1) + 2 * math.log(3)) / 4
    expected = contrast + 0.5 * 2 * math.log(2)
    loss = cluster_contrastive_loss(c, c, 1.0, entropy_weight=0.5)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n, k, temperature, weight", [(6, 3, 1.0, 1.0), (10, 4, 0.5, 0.3),
                                                       (3, 5, 1.0, 2.0)])
def test_cluster_loss_matches_loop(n, k, temperature, weight):
    c_a = torch.softmax(_random((n, k), 20) * 2, dim=1)
    c_b = torch.softmax(_random((n, k), 21) * 2, dim=1)
    loss = cluster_contrastive_loss(c_a, c_b, temperature, entropy_weight=weight)
    assert float(loss) == pytest.approx(_cluster_loop(c_a, c_b, temperature, weight), rel=1e-9)
    swapped = cluster_contrastive_loss(c_b, c_a, temperature, entropy_weight=weight)
    assert float(swapped) == pytest.approx(float(loss), rel=1e-12)


def test_cluster_loss_gradients_flow():
    logits_a = _random((8, 3), 30, torch.float32).requires_grad_(True)
    logits_b = _random((8, 3), 31, torch.float32).requires_grad_(True)
    loss = cluster_contrastive_loss(torch.softmax(logits_a, 1), torch.softmax(logits_b, 1), 1.0)
    loss.backward()
    for g in (logits_a.grad, logits_b.grad):
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    # A hard assignment with an empty cluster still gives finite gradients.
    c = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], requires_grad=True)
    cluster_contrastive_loss(c, c.detach().clone(), 1.0).backward()
    assert torch.isfinite(c.grad).all()


def test_entropy_term_pushes_towards_balance():
    # Only the entropy term (tau huge flattens the contrastive part): a gradient step on the
    # logits makes the marginal of an unbalanced assignment more uniform.
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.5, 0.0]], requires_grad=True)
    c = torch.softmax(logits, 1)
    cluster_contrastive_loss(c, c.detach(), 1e6, entropy_weight=1.0).backward()
    with torch.no_grad():
        before = torch.softmax(logits, 1).mean(0)[0]
        after = torch.softmax(logits - 0.5 * logits.grad, 1).mean(0)[0]
    assert before > 0.5 and after < before


def test_cluster_loss_rejects_mismatched_views():
    with pytest.raises(ValueError, match="one shape"):
        cluster_contrastive_loss(torch.ones(3, 2), torch.ones(3, 3), 1.0)
