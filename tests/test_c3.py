"""C3: the CC and C3 losses by hand, and each mechanism of the two phases seen in a fit."""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from skdeepclust import C3
from skdeepclust.losses import (
    cluster_contrastive_loss,
    cross_instance_loss,
    cross_instance_weights,
    instance_contrastive_loss,
)

TINY = dict(hidden_layer_sizes=(16,), embedding_dim=8, batch_size=16, pretrain_batch_size=16,
            pretrain_epochs=2, max_epochs=2, n_neighbors=2)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=60, centers=3, n_features=4, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def pair(blobs):
    """The same seed without and with phase 2."""
    X, _ = blobs
    cc = C3(n_clusters=3, **{**TINY, "max_epochs": 0}, random_state=0).fit(X)
    c3 = C3(n_clusters=3, **TINY, random_state=0).fit(X)
    return cc, c3


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ CC losses by hand

def test_instance_loss_by_hand_with_and_without_an_extra_negative():
    # a1 = (1, 0), a2 = (0, 1), b1 = (.6, .8), b2 = (.8, .6); tau = 0.5 doubles every cosine.
    # Cosines: a1.a2 = 0, a1.b1 = .6, a1.b2 = .8, a2.b1 = .8, a2.b2 = .6, b1.b2 = .96.
    z_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_b = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    e = math.exp
    # Anchors a1, a2: positive 1.2, others {0, 1.2, 1.6}; anchors b1, b2: positive 1.2,
    # others {1.2, 1.6, 1.92}. The anchor never enters its own denominator.
    den_a, den_b = [e(0) + e(1.2) + e(1.6)], [e(1.2) + e(1.6) + e(1.92)]
    expected = (2 * (math.log(den_a[0]) - 1.2) + 2 * (math.log(den_b[0]) - 1.2)) / 4
    assert float(instance_contrastive_loss(z_a, z_b, 0.5)) == pytest.approx(expected, abs=1e-6)
    # An extra negative p = (1, 1) / sqrt(2): cosine .7071 with a1, a2 and .9899 with b1, b2.
    p = torch.tensor([[3.0, 3.0]])  # normalised inside
    ca, cb = 1 / math.sqrt(2), 1.4 / math.sqrt(2)
    expected = (2 * (math.log(den_a[0] + e(2 * ca)) - 1.2)
                + 2 * (math.log(den_b[0] + e(2 * cb)) - 1.2)) / 4
    assert float(instance_contrastive_loss(z_a, z_b, 0.5, negatives=p)) == pytest.approx(
        expected, abs=1e-6)


def test_cluster_loss_by_hand_on_three_rows_two_clusters_with_entropy():
    c_a = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    c_b = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    cols = [c_a[:, 0], c_a[:, 1], c_b[:, 0], c_b[:, 1]]  # y_1^a, y_2^a, y_1^b, y_2^b
    cos = np.array([[u @ v / np.linalg.norm(u) / np.linalg.norm(v) for v in cols] for u in cols])
    partner = [2, 3, 0, 1]
    contrast = np.mean([-cos[m, partner[m]]
                        + np.log(sum(np.exp(cos[m, j]) for j in range(4) if j != m))
                        for m in range(4)])

    def entropy_gap(c):  # log K - H(P), P the column mass of the batch
        p = c.sum(0) / c.sum()
        return np.log(2) + (p * np.log(p)).sum()

    expected = contrast + entropy_gap(c_a) + entropy_gap(c_b)
    got = cluster_contrastive_loss(torch.tensor(c_a), torch.tensor(c_b), 1.0)
    assert float(got) == pytest.approx(expected, abs=1e-9)
    # The entropy term is there: without it the value is the contrast alone.
    no_entropy = cluster_contrastive_loss(torch.tensor(c_a), torch.tensor(c_b), 1.0,
                                          entropy_weight=0.0)
    assert float(no_entropy) == pytest.approx(contrast, abs=1e-9)
    assert entropy_gap(c_a) > 1e-3


# ------------------------------------------------------------------ C3 loss by hand

# N = 2: a1 = (1, 0), a2 = (.6, .8), b1 = (.8, .6), b2 = (0, 1), entries in the order
# a1, a2, b1, b2. Cosines: a1.a2 = .6, a1.b1 = .8, a1.b2 = 0, a2.b1 = .96, a2.b2 = .8,
# b1.b2 = .6.
Z_A = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
Z_B = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
S = np.array([[1.0, 0.6, 0.8, 0.0],
              [0.6, 1.0, 0.96, 0.8],
              [0.8, 0.96, 1.0, 0.6],
              [0.0, 0.8, 0.6, 1.0]])


def _thesis_loss(positives, gamma):
    """Eq. 5.2 with the weights of eq. 5.7 (summing to one), tau_3 = 1."""
    terms = []
    for i in range(4):
        w = np.exp(gamma * (1 - np.abs(S[i])))
        w /= w.sum()
        num = sum(np.exp(S[i, j]) for j in positives[i])
        terms.append(-np.log(num / (w * np.exp(S[i])).sum()))
    return float(np.mean(terms))


def test_c3_positive_set_at_zeta_by_hand():
    # zeta = .9: only a2-b1 (.96) passes beyond self and partner.
    positives = [{0, 2}, {1, 3, 2}, {2, 0, 1}, {3, 1}]
    loss, mean_pos = cross_instance_loss(Z_A, Z_B, zeta=0.9, gamma=0.1)
    assert float(mean_pos) == pytest.approx(2.5)
    # Weights summing to one shift every term by log 2N = log 4 (mean-one weights here).
    assert float(loss) == pytest.approx(_thesis_loss(positives, 0.1) + math.log(4), abs=1e-6)
    # zeta = .7 adds every pair at .8 (partners) and .96; the .6 pairs stay out.
    loss, mean_pos = cross_instance_loss(Z_A, Z_B, zeta=0.7, gamma=0.1)
    assert float(mean_pos) == pytest.approx(2.5)
    # zeta = .5 admits the .6 pairs too: a1 gains a2, a2 gains a1, b1 gains b2, b2 gains b1.
    loss, mean_pos = cross_instance_loss(Z_A, Z_B, zeta=0.5, gamma=0.1)
    positives = [{0, 1, 2}, {0, 1, 2, 3}, {0, 1, 2, 3}, {1, 2, 3}]
    assert float(mean_pos) == pytest.approx(3.5)
    assert float(loss) == pytest.approx(_thesis_loss(positives, 0.1) + math.log(4), abs=1e-6)


def test_c3_self_and_partner_are_positives_even_below_zeta():
    # The partners are at .8 < .99: still in, so each anchor has exactly 2 positives.
    loss, mean_pos = cross_instance_loss(Z_A, Z_B, zeta=0.99, gamma=0.0)
    assert float(mean_pos) == 2.0
    positives = [{0, 2}, {1, 3}, {2, 0}, {3, 1}]
    assert float(loss) == pytest.approx(_thesis_loss(positives, 0.0) + math.log(4), abs=1e-6)
    # Partners pointing away from their anchor (cosine -1) are still counted.
    _, mean_pos = cross_instance_loss(Z_A, -Z_A, zeta=0.5)
    assert float(mean_pos) == 3.0  # the .6 pairs a1-a2 and b1-b2 pass too


def test_gamma_zero_is_the_public_code_loss_with_uniform_weights():
    # The public code: -log(sum over positives of e^s / sum over all 2N of e^s), no weights.
    positives = [{0, 2}, {1, 3, 2}, {2, 0, 1}, {3, 1}]
    code = np.mean([-np.log(sum(np.exp(S[i, j]) for j in positives[i]) / np.exp(S[i]).sum())
                    for i in range(4)])
    loss, _ = cross_instance_loss(Z_A, Z_B, zeta=0.9, gamma=0.0)
    assert float(loss) == pytest.approx(code, abs=1e-6)
    w = cross_instance_weights(torch.tensor(S), 0.0)
    assert torch.allclose(w, torch.full((4, 4), 0.25, dtype=w.dtype))


@pytest.mark.parametrize("gamma", [0.1, 1.0, 3.0])
def test_weights_of_a_row_differ_by_at_most_exp_gamma(gamma):
    s = F.normalize(torch.randn(32, 5, generator=torch.Generator().manual_seed(0)), dim=1)
    w = cross_instance_weights(s @ s.T, gamma)
    assert torch.allclose(w.sum(dim=1), torch.ones(32, dtype=w.dtype))
    ratio = w.max(dim=1).values / w.min(dim=1).values
    assert float(ratio.max()) <= math.exp(gamma) * (1 + 1e-5)
    # Boundary pairs (cosine near 0) weigh most, aligned and opposite pairs least.
    row = cross_instance_weights(torch.tensor([[1.0, 0.0, -1.0]]), gamma)[0]
    assert row[1] > row[0] and torch.isclose(row[0], row[2])
    assert float(row[1] / row[0]) == pytest.approx(math.exp(gamma), rel=1e-5)


def test_no_gradient_flows_through_the_mask_or_the_weights():
    gen = torch.Generator().manual_seed(0)
    z_a = torch.randn(6, 3, generator=gen, requires_grad=True)
    z_b = torch.randn(6, 3, generator=gen, requires_grad=True)
    zeta, gamma = 0.3, 5.0
    loss, _ = cross_instance_loss(z_a, z_b, zeta, gamma)
    got = torch.autograd.grad(loss, (z_a, z_b))

    def reference(detach):
        u = F.normalize(torch.cat([z_a, z_b]), dim=1)
        s = u @ u.T
        t = s.detach() if detach else s
        rows = torch.arange(12)
        pos = t >= zeta
        pos[rows, rows] = pos[rows, (rows + 6) % 12] = True
        w = torch.softmax(gamma * (1 - t.abs()), dim=1) * 12
        num = (torch.exp(s) * pos).sum(dim=1)
        den = (w * torch.exp(s)).sum(dim=1)
        return (torch.log(den) - torch.log(num)).mean()

    want = torch.autograd.grad(reference(True), (z_a, z_b))
    wrong = torch.autograd.grad(reference(False), (z_a, z_b))
    for g, r, x in zip(got, want, wrong):
        assert torch.allclose(g, r, atol=1e-6)
        assert not torch.allclose(g, x, atol=1e-4)  # weights with gradient would differ


def test_c3_loss_is_finite_for_any_input():
    gen = torch.Generator().manual_seed(0)
    cases = [torch.randn(8, 4, generator=gen) * 1e6, torch.zeros(8, 4),
             torch.full((8, 4), 1e-30), torch.randn(8, 4, generator=gen)]
    for z in cases:
        for zeta, gamma, tau in [(0.6, 0.1, 1.0), (0.999, 50.0, 1e-3), (-0.99, 0.0, 1e-3)]:
            za = z.clone().requires_grad_(True)
            loss, mean_pos = cross_instance_loss(za, z.flip(0), zeta, gamma, tau)
            (grad,) = torch.autograd.grad(loss, za)
            assert torch.isfinite(loss) and torch.isfinite(grad).all()
            assert 2 <= float(mean_pos) <= 16


# ------------------------------------------------------------------ the fit

def test_phase2_leaves_the_cluster_head_bit_identical_and_trains_the_rest(pair):
    cc, c3 = pair
    m0, m2 = cc.net_.module_, c3.net_.module_
    assert _same(_state(m0.cluster_head), _state(m2.cluster_head))
    assert not _same(_state(m0.backbone), _state(m2.backbone))
    assert not _same(_state(m0.instance_head), _state(m2.instance_head))
    # Phase 2's optimiser is a fresh Adam at lr over the backbone and instance head only.
    opt = c3.net_.optimizer_
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    expected = {id(p) for p in [*m2.backbone.parameters(), *m2.instance_head.parameters()]}
    assert trained == expected
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == c3.lr


def test_max_epochs_zero_gives_the_cc_labels(pair, blobs):
    X, _ = blobs
    cc, _ = pair
    module = cc.net_.module_
    with torch.no_grad():
        scores = module.cluster_head(module.backbone(torch.as_tensor(X))).numpy()
    used = np.unique(scores.argmax(axis=1))
    np.testing.assert_array_equal(cc.labels_, scores[:, used].argmax(axis=1))
    assert cc.history_["c3"] == [] and cc.history_["mean_positives"] == []
    assert cc.n_iter_ == TINY["pretrain_epochs"] == len(cc.history_["cc"])


def test_fit_recovers_blobs():
    X, y = make_blobs(n_samples=300, centers=3, n_features=6, cluster_std=1.0, random_state=0)
    est = C3(n_clusters=3, hidden_layer_sizes=(32,), embedding_dim=16, pretrain_batch_size=64,
             batch_size=64, pretrain_epochs=6, max_epochs=2, random_state=0).fit(X)
    assert adjusted_rand_score(y, est.labels_) >= 0.95


def test_warm_start_reruns_phase_2_only(blobs):
    X, _ = blobs
    est = C3(n_clusters=3, **TINY, random_state=0).fit(X)
    head, backbone = _state(est.net_.module_.cluster_head), _state(est.net_.module_.backbone)
    cc_history = list(est.history_["cc"])
    # A large pretrain_lr would move the cluster head at once if phase 1 ran again.
    est.set_params(warm_start=True, pretrain_lr=1.0, max_epochs=3).fit(X)
    assert _same(head, _state(est.net_.module_.cluster_head))
    assert not _same(backbone, _state(est.net_.module_.backbone))
    assert est.history_["cc"] == cc_history
    assert len(est.history_["c3"]) == len(est.history_["mean_positives"]) == 3
    assert est.n_iter_ == len(cc_history) + 3
    # Another feature count: a clear error, and the fitted estimator is left as it was.
    state = _state(est.net_.module_)
    with pytest.raises(ValueError, match="features"):
        est.fit(np.hstack([X, X]))
    assert _same(state, _state(est.net_.module_)) and est.n_features_in_ == X.shape[1]
    with pytest.raises(ValueError, match="n_clusters=3"):
        est.set_params(n_clusters=4).fit(X)
    # Without a fitted model warm_start fits from scratch.
    fresh = C3(n_clusters=3, **TINY, warm_start=True, random_state=0).fit(X)
    assert len(fresh.history_["cc"]) == TINY["pretrain_epochs"]


def test_mean_positives_is_recorded_per_epoch(blobs):
    X, _ = blobs
    # zeta near -1: every one of the 2N = 32 entries is a positive; near 1: self and partner.
    loose = C3(n_clusters=3, **{**TINY, "zeta": -0.999}, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loose.fit(X)
    assert loose.history_["mean_positives"] == [32.0, 32.0]
    strict = C3(n_clusters=3, **{**TINY, "zeta": 0.9999999}, random_state=0).fit(X)
    assert strict.history_["mean_positives"] == [2.0, 2.0]


def test_full_batches_only_and_at_least_30_updates_per_epoch(pair):
    _, c3 = pair
    # 60 rows in batches of 16: 3 full batches per pass (12 rows left out), 10 passes.
    for row in c3.net_.history:
        sizes = [b["train_batch_size"] for b in row["batches"]]
        assert sizes == [16] * 30


def test_inference_outputs(pair, blobs):
    X, _ = blobs
    _, est = pair
    module = est.net_.module_
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        h = module.backbone(Xt)
        z = F.normalize(module.instance_head(h), dim=1).numpy()
        logits = module.cluster_head(h)
    used = est._active_clusters
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba, torch.softmax(logits[:, used], dim=1).numpy(), atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), est.predict(X))
    np.testing.assert_allclose(est.transform(X), z, atol=1e-5)
    centers = np.stack([z[est.labels_ == k].mean(0) for k in range(est.n_clusters_)])
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    np.testing.assert_allclose(est.cluster_centers_, centers, atol=1e-5)
    cos = (z * centers[est.labels_]).sum(axis=1).mean()
    assert est.score(X) == pytest.approx(cos, abs=1e-5)


def test_same_seed_same_labels_global_rng_untouched_and_pickle(blobs):
    X, _ = blobs
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state is the point)
    torch_state = torch.get_rng_state()
    a = C3(n_clusters=3, **TINY, random_state=1).fit(X)
    b = C3(n_clusters=3, **TINY, random_state=1).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert (np.random.get_state()[1] == np_state).all()  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.predict(X), a.labels_)


@pytest.mark.parametrize("params, match", [
    (dict(zeta=1.0), "zeta"),
    (dict(gamma=-0.1), "gamma"),
    (dict(pretrain_batch_size=1), "pretrain_batch_size"),
    (dict(c3_temperature=0.0), "c3_temperature"),
    (dict(head_hidden_dim=0), "head_hidden_dim"),
    (dict(corruption_rate=1.0), "corruption_rate"),
    (dict(hidden_layer_sizes=()), "hidden_layer_sizes"),
    (dict(corruption_rate=0.0, noise_scale=0.0), "unchanged"),
    (dict(augmentation="noise", noise_scale=0.0), "unchanged"),
    (dict(augmentation=lambda x, g: x[:, :1]), "shape"),
    (dict(n_clusters=100), "n_samples"),
])
def test_bad_parameters_raise_in_fit_not_in_init(blobs, params, match):
    X, _ = blobs
    est = C3(**{**TINY, "n_clusters": 3, **params})  # __init__ never validates
    with pytest.raises(ValueError, match=match):
        est.fit(X)
    assert not hasattr(est, "labels_")


def test_low_zeta_warns(blobs):
    X, _ = blobs
    with pytest.warns(UserWarning, match="zeta"):
        C3(n_clusters=3, **{**TINY, "zeta": 0.1, "max_epochs": 0}, random_state=0).fit(X)


def test_augmentation_pair_and_callable(blobs):
    X, _ = blobs
    calls = []

    def jitter(x, g):
        calls.append(x.shape[0])
        return x + 0.1 * torch.randn(x.shape, generator=g, device=x.device)

    est = C3(n_clusters=3, **{**TINY, "augmentation": (jitter, copy.copy(jitter))},
             random_state=0).fit(X)
    assert est.labels_.shape == (60,) and 16 in calls
