"""DCSS: each loss term against hand-worked values, the training schedule, known structure."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

import skdeepclust._dcss as dcss_module
import skdeepclust._training._nets as nets_module
from skdeepclust import DCSS
from skdeepclust._dcss import _PairCriterion, _Phase2Net, mnet_warmup_loss, pair_loss
from skdeepclust._training import IndexedTensorDataset, SliceIterator
from skdeepclust.losses import cluster_specific_loss, fuzzy_centers, fuzzy_memberships

TINY = dict(hidden_layer_sizes=(16,), embedding_dim=2, mnet_hidden_layer_sizes=(8,),
            batch_size=50, pretrain_epochs=5, max_epochs=2, mnet_epochs=3, u_space_epochs=1,
            n_init=2, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, random_state=0)
    return X.astype(np.float32), y


# ------------------------------------------------------------------- losses


def test_memberships_by_hand():
    u = torch.tensor([[0.0, 0.0]])
    centers = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # squared distances 1 and 4
    # m = 1.5: p ~ D^(-1/(m-1)) = D^-2 = (1, 1/16) -> (16/17, 1/17)
    np.testing.assert_allclose(fuzzy_memberships(u, centers, 1.5)[0].numpy(),
                               [16 / 17, 1 / 17], rtol=1e-6)
    # m = 2: p ~ D^-1 = (1, 1/4) -> (4/5, 1/5)
    np.testing.assert_allclose(fuzzy_memberships(u, centers, 2.0)[0].numpy(), [0.8, 0.2],
                               rtol=1e-6)
    # A point on a centre belongs to it entirely (no division by zero).
    on_centre = fuzzy_memberships(torch.tensor([[1.0, 0.0]]), centers, 1.5)[0]
    assert torch.isfinite(on_centre).all() and on_centre[0] == pytest.approx(1.0)


def test_phase1_loss_for_one_cluster_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    x_hat = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # squared errors 4 and 2
    u = torch.tensor([[1.0, 1.0], [3.0, 0.0]])
    center = torch.tensor([1.0, 0.0])  # squared distances 1 and 4
    weight = torch.tensor([0.5, 0.25])  # p_ik^m
    loss, rec, cen = cluster_specific_loss(x, x_hat, u, center, weight, centering_weight=0.1)
    assert float(rec) == pytest.approx((0.5 * 4 + 0.25 * 2) / 2)  # 1.25
    assert float(cen) == pytest.approx((0.5 * 1 + 0.25 * 4) / 2)  # 0.75
    assert float(loss) == pytest.approx(1.25 + 0.1 * 0.75)


def test_centre_update_by_hand():
    U = torch.tensor([[0.0], [2.0], [10.0]])
    centers = torch.tensor([[1.0], [9.0]])
    # squared distances: u=0: (1, 81); u=2: (1, 49); u=10: (81, 1); m=1.5: p ~ D^-2
    p = np.array([[1, 1 / 81**2], [1, 1 / 49**2], [1 / 81**2, 1]])
    p /= p.sum(axis=1, keepdims=True)
    w = p**1.5
    expected = (w.T @ np.array([[0.0], [2.0], [10.0]])) / w.sum(axis=0)[:, None]
    np.testing.assert_allclose(fuzzy_centers(U, centers, 1.5).numpy(), expected, rtol=1e-5)
    assert expected[0, 0] == pytest.approx(1.0, abs=1e-3)  # mean of 0 and 2


def test_pair_loss_with_self_pairs_and_saturation():
    q = torch.tensor([[0.995, 0.005], [0.6, 0.4], [0.3, 0.7]], requires_grad=True)
    s = torch.tensor([[0.9, 0.85, 0.1],
                      [0.85, 0.5, 0.5],
                      [0.1, 0.5, 0.3]])
    loss, active = pair_loss(q, s, zeta=0.8, gamma=0.2)
    # q~ = [[1, 0], [0.6, 0.4], [0.3, 0.7]] (row 0 saturated)
    # similar (s >= 0.8): (0,0) 1 - 1 = 0; (0,1), (1,0) 1 - 0.6 = 0.4 each
    # dissimilar (s <= 0.2): (0,2), (2,0) q~0 . q~2 = 0.3 each; the i = j pair (1,1), (2,2)
    # and the rest lie between gamma and zeta and are ignored.
    assert float(loss.detach()) == pytest.approx((0 + 0.4 + 0.4 + 0.3 + 0.3) / 9)
    assert bool(active)
    loss.backward()
    assert torch.all(q.grad[0] == 0)  # saturated entries carry no gradient
    assert torch.any(q.grad[1] != 0)


def test_pair_loss_uses_self_pair():
    q = torch.tensor([[0.7, 0.3]])
    loss, _ = pair_loss(q, torch.tensor([[0.9]]), zeta=0.8, gamma=0.2)
    assert float(loss) == pytest.approx(1 - (0.49 + 0.09))


def test_pair_loss_without_active_pair_is_zero():
    q = torch.tensor([[0.5, 0.5], [0.4, 0.6]])
    loss, active = pair_loss(q, torch.full((2, 2), 0.5), zeta=0.8, gamma=0.2)
    assert float(loss) == 0.0 and not bool(active)


def test_pair_criterion_switches_from_p_to_q():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    crit = _PairCriterion(centers, fuzziness=1.5, zeta=0.8, gamma=0.2)
    u = torch.tensor([[0.0, 0.1], [10.0, 0.1]])  # far apart in u space: dissimilar
    q = torch.tensor([[0.5, 0.5], [0.5, 0.5]])  # q . q = 0.5 everywhere: nothing active
    crit.u_space = True
    loss_u = crit((u, q), None, None)
    assert float(loss_u) == pytest.approx((0.5 + 0.5 + 0.5 + 0.5) / 4)
    crit.u_space = False
    assert float(crit((u, q), None, None)) == 0.0


def test_u_space_epoch_makes_at_least_30_updates_over_whole_passes():
    def phase2_net(batch_size):
        crit = _PairCriterion(torch.zeros(2, 2), fuzziness=1.5, zeta=0.8, gamma=0.2)
        return _Phase2Net(nn.Linear(2, 2), crit, batch_size=batch_size).initialize()

    dataset = IndexedTensorDataset(torch.zeros(100, 2), torch.Generator().manual_seed(0))
    net = phase2_net(40)
    epoch = net.get_iterator(dataset, training=True)
    batches = [idx for _, idx in epoch]
    assert len(epoch) == len(batches) == 30  # 3 batches (40, 40, 20) x 10 passes
    for start in range(0, 30, 3):  # every pass covers each row once
        assert sorted(torch.cat(batches[start:start + 3]).tolist()) == list(range(100))
    net.criterion_.u_space = False  # q-space epochs: one pass (read when iterated)
    assert len(epoch) == len(list(epoch)) == 3
    assert len(phase2_net(2).get_iterator(dataset, training=True)) == 50  # one pass
    assert len(net.get_iterator(dataset, training=False)) == 3  # inference: one pass


def test_phase_2_iterator_merges_a_last_row():
    gen = torch.Generator().manual_seed(0)
    assert _Phase2Net.merge_singleton

    def merging(n, batch_size):
        return SliceIterator(IndexedTensorDataset(torch.zeros(n, 2), gen), batch_size,
                             shuffle=True, merge_singleton=True)

    assert [len(i) for _, i in merging(11, 5)] == [5, 6]
    it = merging(10, 4)
    assert [len(i) for _, i in it] == [4, 4, 2] and len(it) == 3
    seen = torch.cat([i for _, i in merging(11, 5)])
    assert sorted(seen.tolist()) == list(range(11))


# ----------------------------------------------------------------- training


@pytest.mark.parametrize("batch_size, batches", [(50, 3), ("auto", 5)])
def test_phase1_makes_k_updates_per_batch(blobs, batch_size, batches):
    X, _ = blobs
    est = DCSS(n_clusters=3, **{**TINY, "mnet_epochs": 0, "max_epochs": 2,
                                "batch_size": batch_size}).fit(X)
    opt = est.net_.optimizer_
    steps = {int(opt.state[p]["step"]) for p in est.net_.module_.parameters()}
    # K runs x batches x 2 epochs. An int batch_size is used as given (150 rows: 3
    # batches of 50); "auto" shrinks the autoencoder's batches on small data to
    # max(32, ceil(150 / 30)) = 32 rows (5 batches).
    assert steps == {3 * batches * 2}


def test_centre_refresh_schedule(blobs, monkeypatch):
    calls = []
    original = dcss_module.fuzzy_centers

    def counting(U, centers, fuzziness, batch_size=4096):
        calls.append(1)
        return original(U, centers, fuzziness, batch_size)

    monkeypatch.setattr(dcss_module, "fuzzy_centers", counting)
    monkeypatch.setattr(nets_module, "fuzzy_centers", counting)
    X, _ = blobs
    DCSS(n_clusters=3, **{**TINY, "max_epochs": 5, "center_update_interval": 2,
                          "mnet_epochs": 3, "u_space_epochs": 2}).fit(X)
    # phase 1: after epochs 1, 3, 5; phase 2: after epochs 1 and 2
    assert len(calls) == 3 + 2


def test_phase2_pairs_from_u_space_then_q_space(blobs, monkeypatch):
    flags = []
    original = _PairCriterion.forward

    def recording(self, y_pred, index, X):
        flags.append("warmup" if self.warmup else "u" if self.u_space else "q")
        return original(self, y_pred, index, X)

    monkeypatch.setattr(_PairCriterion, "forward", recording)
    est = DCSS(n_clusters=3, **{**TINY, "mnet_epochs": 3, "u_space_epochs": 1}).fit(blobs[0])
    # batches of 50 rows (phase 2 keeps batch_size); 3 batches per pass, so the warm-up
    # and a u-space epoch make ceil(30 / 3) = 10 passes each, a q-space epoch one
    assert flags == ["warmup"] * 30 + ["u"] * 30 + ["q"] * 6
    assert len(est.history_["phase2"]) == 1 + 3

    flags.clear()
    DCSS(n_clusters=3, **{**TINY, "mnet_epochs": 2, "u_space_epochs": 1,
                          "mnet_warmup_epochs": 0}).fit(blobs[0])
    assert flags == ["u"] * 30 + ["q"] * 3


def test_warmup_loss_is_cross_entropy_against_nearest_centre():
    q = torch.tensor([[0.8, 0.2], [0.1, 0.9], [0.5, 0.5]])
    loss = mnet_warmup_loss(q, torch.tensor([0, 0, 1]))
    assert float(loss) == pytest.approx(-(math.log(0.8) + math.log(0.1) + math.log(0.5)) / 3)
    crit = _PairCriterion(torch.tensor([[0.0, 0.0], [10.0, 0.0]]), fuzziness=1.5, zeta=0.8,
                          gamma=0.2)
    crit.warmup = True
    u = torch.tensor([[0.0, 1.0], [9.0, 0.0], [1.0, 0.0]])  # nearest centres 0, 1, 0
    assert float(crit((u, q), None, None)) == pytest.approx(
        -(math.log(0.8) + math.log(0.9) + math.log(0.5)) / 3)


def test_warmup_keeps_separated_blobs_in_separate_outputs():
    # Ten separated blobs: with mnet_warmup_epochs=0 (the paper) MNet put two blobs in one
    # output in the first pair epoch and left another unused for seeds 0, 1 and 2 (9
    # clusters, ARI 0.898); see the method page.
    X, y = make_blobs(n_samples=2000, centers=10, n_features=20, random_state=0)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    for seed in range(3):
        est = DCSS(n_clusters=10, hidden_layer_sizes=(64,), batch_size=200, pretrain_epochs=20,
                   max_epochs=1, mnet_epochs=6, random_state=seed).fit(X)
        assert est.n_clusters_ == 10
        assert adjusted_rand_score(y, est.labels_) >= 0.95


def test_fitted_attributes_and_inference(blobs):
    X, _ = blobs
    est = DCSS(n_clusters=3, **TINY).fit(X)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), est.labels_)
    U = est.transform(X)
    assert U.shape == (150, 2) and U.dtype == np.float32
    assert est.fuzzy_centers_.shape == (3, 2)
    assert est.cluster_centers_.shape == (est.n_clusters_, 2)
    q = proba  # all clusters are used here, so these are MNet's outputs renormalised
    assert est.n_clusters_ == 3
    np.testing.assert_allclose(est.cluster_centers_, (q.T @ U) / q.sum(axis=0)[:, None],
                               rtol=1e-3, atol=1e-4)
    assert est.n_iter_ == 5 + 2 + 1 + 3  # phase 2: one warm-up epoch, then mnet_epochs
    assert [len(est.history_[k]) for k in ("pretrain", "phase1", "phase2")] == [5, 2, 4]
    assert len(est.history_["phase1_reconstruction"]) == 2


def test_dcss_u_labels_are_nearest_phase1_centre(blobs):
    X, _ = blobs
    est = DCSS(n_clusters=3, **{**TINY, "mnet_epochs": 0}).fit(X)
    U = est.transform(X)
    dist = ((U[:, None, :] - est.fuzzy_centers_[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(est.labels_, dist.argmin(axis=1))
    p = fuzzy_memberships(torch.as_tensor(U), torch.as_tensor(est.fuzzy_centers_), 1.5)
    np.testing.assert_allclose(est.predict_proba(X), p.numpy(), rtol=1e-4, atol=1e-6)
    assert "phase2" not in est.history_


def test_same_seed_same_result(blobs):
    X, _ = blobs
    a = DCSS(n_clusters=3, **TINY).fit(X)
    b = DCSS(n_clusters=3, **TINY).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_batch_of_one_row_left_over_is_merged():
    X, _ = make_blobs(n_samples=51, centers=2, n_features=3, random_state=0)
    est = DCSS(n_clusters=2, **TINY).fit(X)  # batches of 50 + 1 in phase 2
    assert est.labels_.shape == (51,)


def test_well_separated_blobs_are_found():
    X, y = make_blobs(n_samples=600, centers=5, n_features=10, cluster_std=1.0,
                      random_state=3)
    est = DCSS(n_clusters=5, hidden_layer_sizes=(64, 64), embedding_dim=5, batch_size=100,
               pretrain_epochs=15, max_epochs=3, mnet_epochs=10, random_state=0).fit(X)
    assert adjusted_rand_score(y, est.labels_) >= 0.95


# --------------------------------------------------------------- validation


@pytest.mark.parametrize("params, match", [
    (dict(zeta=0.3, gamma=0.4), "gamma=0.4 must be smaller than zeta=0.3"),
    (dict(hidden_layer_sizes=()), "must not be empty"),
    (dict(mnet_hidden_layer_sizes=(8, 0)), "mnet_hidden_layer_sizes"),
])
def test_invalid_relations_raise(blobs, params, match):
    with pytest.raises(ValueError, match=match):
        DCSS(n_clusters=3, **{**TINY, **params}).fit(blobs[0])


@pytest.mark.parametrize("params", [dict(n_clusters=0), dict(zeta=1.0), dict(gamma=0.0),
                                    dict(fuzziness=1.0), dict(batch_size=1)])
def test_out_of_range_parameters_raise(blobs, params):
    with pytest.raises(InvalidParameterError):
        DCSS(**{**TINY, "n_clusters": 3, **params}).fit(blobs[0])


@pytest.mark.parametrize("params, match", [
    (dict(zeta=0.6, gamma=0.1), "zeta=0.6 <= 2/3"),
    (dict(zeta=0.8, gamma=0.7), "gamma=0.7 >= zeta"),
])
def test_threshold_warnings(blobs, params, match):
    with pytest.warns(UserWarning, match=match):
        DCSS(n_clusters=3, **{**TINY, "pretrain_epochs": 1, "max_epochs": 0, "mnet_epochs": 1,
                              **params}).fit(blobs[0])
