"""DCSS: each loss term against hand-worked values, each schedule and refresh, known structure.

Every mechanism the DCSS docstring names has a test here that fails when the mechanism is
removed or bypassed: the phase-1 weights ``p^m``, the centring term, the ``K`` successive
updates, the centre refreshes (phase 1 and the u-space epochs of phase 2, each applied to the
criterion), the warm-up, the u-space/q-space switch, the saturation, the thresholds, the
repeated passes, the two learning rates of phase 2, DCSS_u, the outputs.
"""

import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from torch import nn

import skdeepclust._cluster_specific as cluster_specific_module
import skdeepclust._dcss as dcss_module
import skdeepclust._training._nets as nets_module
import skdeepclust.base as base_module
from skdeepclust import DCSS
from skdeepclust._dcss import _EncoderMNet, _PairCriterion, _Phase2Net, mnet_warmup_loss, pair_loss
from skdeepclust._training import (
    ClusterSpecificCriterion,
    ClusterSpecificNet,
    IndexedTensorDataset,
    SliceIterator,
    train_phase,
)
from skdeepclust.losses import cluster_specific_loss, fuzzy_centers, fuzzy_memberships
from skdeepclust.nn import ClusteringHead

TINY = dict(hidden_layer_sizes=(16,), embedding_dim=2, mnet_hidden_layer_sizes=(8,),
            batch_size=50, pretrain_epochs=5, max_epochs=2, mnet_epochs=3, u_space_epochs=1,
            n_init=2, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, random_state=0)
    return X.astype(np.float32), y


def _same(a, b):
    return torch.equal(torch.as_tensor(a), torch.as_tensor(b))


def _runs(tags):
    """Run-length encoding: ["a", "a", "b"] -> [("a", 2), ("b", 1)]."""
    out = []
    for tag in tags:
        if out and out[-1][0] == tag:
            out[-1] = (tag, out[-1][1] + 1)
        else:
            out.append((tag, 1))
    return out


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
    # q~ = [[1, 0], [0.6, 0.4], [0.3, 0.7]] (row 0 saturated: 0.995 -> 1 and 0.005 -> 0)
    # similar (s >= 0.8): (0,0) 1 - 1 = 0; (0,1), (1,0) 1 - 0.6 = 0.4 each
    # dissimilar (s <= 0.2): (0,2), (2,0) q~0 . q~2 = 0.3 each; the i = j pairs (1,1), (2,2)
    # and the rest lie between gamma and zeta and are ignored.
    # Without saturation (0,1) would be 1 - 0.599 and (0,2) 0.302.
    assert float(loss.detach()) == pytest.approx((0 + 0.4 + 0.4 + 0.3 + 0.3) / 9, rel=1e-6)
    assert bool(active)
    loss.backward()
    # d/dq1 of -2 q~0.q1 / 9 and d/dq2 of +2 q~0.q2 / 9 with q~0 = (1, 0) a constant: the
    # saturated row 0 gets no gradient
    np.testing.assert_allclose(q.grad.numpy(), [[0, 0], [-2 / 9, 0], [2 / 9, 0]], atol=1e-7)


def test_pair_loss_thresholds_are_inclusive_and_terms_have_their_sign():
    q = torch.tensor([[0.5, 0.5], [0.75, 0.25]])  # q.q: (0,0) 0.5, (0,1) 0.5, (1,1) 0.625
    s = torch.tensor([[0.75, 0.5], [0.5, 0.25]])  # exactly zeta and exactly gamma
    loss, active = pair_loss(q, s, zeta=0.75, gamma=0.25)
    # similar (0,0): 1 - 0.5; dissimilar (1,1): 0.625; the (0,1) pairs are ignored
    assert float(loss) == pytest.approx((0.5 + 0.625) / 4)
    assert bool(active)
    # Just inside the thresholds nothing is active.
    loss, active = pair_loss(q, s, zeta=0.76, gamma=0.24)
    assert float(loss) == 0.0 and not bool(active)


def test_pair_loss_uses_self_pair():
    q = torch.tensor([[0.7, 0.3]])
    loss, _ = pair_loss(q, torch.tensor([[0.9]]), zeta=0.8, gamma=0.2)
    assert float(loss) == pytest.approx(1 - (0.49 + 0.09))


def test_pair_loss_without_active_pair_is_zero():
    q = torch.tensor([[0.5, 0.5], [0.4, 0.6]])
    loss, active = pair_loss(q, torch.full((2, 2), 0.5), zeta=0.8, gamma=0.2)
    assert float(loss) == 0.0 and not bool(active)


def test_pair_criterion_takes_pairs_from_p_then_from_q():
    # 1-d embedding, centres -1 and 1, m = 2: p ~ 1 / D
    crit = _PairCriterion(torch.tensor([[-1.0], [1.0]]), fuzziness=2.0, zeta=0.8, gamma=0.2)
    u = torch.tensor([[2.0], [0.0], [-2.0]])  # p = (0.1, 0.9), (0.5, 0.5), (0.9, 0.1)
    q = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])  # nothing saturated
    # q.q: (0,0) 0.82, (1,1) 0.82, (2,2) 0.5, (0,1) 0.18, (0,2) 0.5, (1,2) 0.5
    # u space, s = p.p (p, not p^m): (0,0) 0.82 and (2,2) 0.82 similar, (0,2) 0.18
    # dissimilar, all others 0.5. L = [(1 - 0.82) + (1 - 0.5) + 2 * 0.5] / 9
    # (with p^m = p^2 instead: (0,0) 0.6562 ignored, (1,1) 0.125 dissimilar -> 1.82 / 9)
    assert not crit.warmup and crit.u_space
    assert float(crit((u, q), None, None)) == pytest.approx(1.68 / 9)
    # q space, s = q.q: (0,0), (1,1) similar, (0,1) and (1,0) dissimilar
    crit.u_space = False
    assert float(crit((u, q), None, None)) == pytest.approx((0.18 + 0.18 + 0.18 + 0.18) / 9)
    # The u-space pairs follow the criterion's centres buffer: with the centres at +-100
    # every membership is near (0.5, 0.5), s ~ 0.5 everywhere, and nothing is active.
    crit.u_space = True
    crit.centers.copy_(torch.tensor([[-100.0], [100.0]]))
    assert float(crit((u, q), None, None)) == 0.0


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


# ------------------------------------------------------- phase 1, by hand


class _LinearAE(nn.Module):
    """u = w_e x, x^ = w_d u (1-d, no bias); records the encoder weight at each forward."""

    def __init__(self, w_enc=1.0, w_dec=0.0):
        super().__init__()
        self.encoder = nn.Linear(1, 1, bias=False)
        self.decoder = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.encoder.weight.fill_(w_enc)
            self.decoder.weight.fill_(w_dec)
        self.seen = []

    def forward(self, x):
        self.seen.append(self.encoder.weight.item())
        u = self.encoder(x)
        return u, self.decoder(u)


class _RecordingCriterion(ClusterSpecificCriterion):
    def forward(self, y_pred, index, X):
        self.calls = getattr(self, "calls", [])
        # the batch's weights in row order 0..n-1 (batches are shuffled)
        weights = torch.empty_like(self.weights)
        weights[index] = self.weights.detach()
        self.calls.append((self.k, weights, self.weights.requires_grad,
                           self.centers[self.k].clone()))
        return super().forward(y_pred, index, X)


class _CentresAtEpochEnd(Callback):
    def __init__(self):
        self.centres = []

    def on_epoch_end(self, net, **kwargs):  # runs after the net's own hook (the refresh)
        self.centres.append(net.criterion_.centers.detach().clone())


def _phase1(X, centres, *, epochs, lr, interval=2, m=2.0, alpha=0.1):
    recorder = _CentresAtEpochEnd()
    net = train_phase(_LinearAE(), _RecordingCriterion(centres, m, alpha), X, epochs=epochs,
                      batch_size=len(X), lr=lr, generator=torch.Generator().manual_seed(0),
                      phase="phase 1", net_class=ClusterSpecificNet,
                      center_update_interval=interval, callbacks=[recorder])
    return net, recorder.centres


def _phase1_epoch_numpy(u, x, x_hat, centres, m, alpha):
    """Independent numpy form of a phase-1 epoch of one batch (mean of the K losses)."""
    d = (u[:, None, :] - centres[None, :, :]) ** 2
    d = d.sum(axis=2)
    p = d ** (-1 / (m - 1))
    w = (p / p.sum(axis=1, keepdims=True)) ** m
    rec = (w * ((x - x_hat) ** 2).sum(axis=1)[:, None]).mean(axis=0)
    cen = (w * d).mean(axis=0)
    return (rec + alpha * cen).mean(), rec.mean(), cen.mean()


X1 = torch.tensor([[0.0], [2.0], [-3.0]])
C1 = torch.tensor([[-1.0], [1.0]])


def test_phase1_epoch_by_hand():
    # u = x, x^ = 0 (squared errors 0, 4, 9), centres -1 and 1, m = 2, alpha = 0.1, lr = 0.
    # Squared distances (1, 1), (9, 1), (4, 16) -> p = (.5, .5), (.1, .9), (.8, .2)
    # -> weights p^2 = (.25, .25), (.01, .81), (.64, .04).
    # cluster 0: rec (0 + .04 + 5.76) / 3, centring (.25 + .09 + 2.56) / 3 -> 6.09 / 3
    # cluster 1: rec (0 + 3.24 + .36) / 3, centring (.25 + .81 + .64) / 3 -> 3.77 / 3
    net, centres = _phase1(X1, C1, epochs=1, lr=0.0)
    calls = net.criterion_.calls
    assert [k for k, *_ in calls] == [0, 1]  # one update per cluster, in order
    expected_w = [[0.25, 0.25], [0.01, 0.81], [0.64, 0.04]]
    for k, w, requires_grad, centre in calls:
        np.testing.assert_allclose(w.numpy(), expected_w, rtol=1e-5)  # p^m, not p nor 1
        assert not requires_grad  # a constant
        assert _same(centre, C1[k])
    assert net.history[-1, "train_loss"] == pytest.approx((6.09 + 3.77) / 6, rel=1e-5)
    assert net.history[-1, "reconstruction"] == pytest.approx((5.8 + 3.6) / 6, rel=1e-5)
    assert net.history[-1, "centering"] == pytest.approx((2.9 + 1.7) / 6, rel=1e-5)
    # Refresh after epoch 1: mu_k = sum_i w_ik u_i / sum_i w_ik
    # = (.02 - 1.92) / .9 and (1.62 - .12) / 1.1
    np.testing.assert_allclose(centres[0].numpy(), [[-1.9 / 0.9], [1.5 / 1.1]], rtol=1e-5)


def test_phase1_centres_refreshed_after_epochs_1_T_plus_1_and_applied():
    # lr = 0: the module never changes, so each epoch's loss depends on the centres only.
    net, centres = _phase1(X1, C1, epochs=5, lr=0.0, interval=2)
    c1 = fuzzy_centers(X1, C1, 2.0)
    c3 = fuzzy_centers(X1, c1, 2.0)
    c5 = fuzzy_centers(X1, c3, 2.0)
    for got, want in zip(centres, [c1, c1, c3, c3, c5]):  # refreshed after epochs 1, 3, 5
        torch.testing.assert_close(got, want)
    assert not torch.allclose(c1, c3)  # each refresh moves the centres here
    x = X1.numpy()
    losses = [float(v) for v in net.history[:, "train_loss"]]
    # the loss of each epoch is that of the centres it started with: C1, c1, c1, c3, c3
    for loss, start in zip(losses, [C1, c1, c1, c3, c3]):
        want = _phase1_epoch_numpy(x, x, 0 * x, start.numpy(), 2.0, 0.1)[0]
        assert loss == pytest.approx(want, rel=1e-5)
    # the refreshed centres reach the weights p^m of the next epoch
    torch.testing.assert_close(net.criterion_.calls[-1][1], fuzzy_memberships(X1, c3, 2.0) ** 2)


def test_phase1_updates_in_succession_with_weights_of_the_batch_start():
    # lr > 0: the K updates are successive optimiser steps (the second forward sees the
    # weights after the first step), all with the p^m computed once at the batch start.
    net, _ = _phase1(X1, C1, epochs=1, lr=0.1)
    seen = net.module_.seen
    assert len(seen) == 2 and seen[0] == 1.0 and seen[1] != seen[0]
    (_, w0, *_), (_, w1, *_) = net.criterion_.calls
    assert _same(w0, w1)
    np.testing.assert_allclose(w0.numpy(), [[0.25, 0.25], [0.01, 0.81], [0.64, 0.04]],
                               rtol=1e-5)


# ----------------------------------------------------------------- phase 2 net


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


def test_warmup_aligns_each_output_with_its_phase1_cluster():
    # A fixed encoder (identity), two blobs at x = +-3 and their centres; MNet a linear
    # softmax that starts with the outputs the wrong way round (output 0 for the blob at
    # +3, whose nearest centre is 1). The pair loss does not care which output is which
    # and would keep that; one warm-up epoch (30 updates) makes output k cluster k.
    gen = torch.Generator().manual_seed(0)
    X = torch.cat([torch.randn(60, 2, generator=gen) * 0.3 + torch.tensor([3.0, 0.0]),
                   torch.randn(60, 2, generator=gen) * 0.3 - torch.tensor([3.0, 0.0])])
    centres = torch.tensor([[-3.0, 0.0], [3.0, 0.0]])
    nearest = torch.tensor([1] * 60 + [0] * 60)
    mnet = ClusteringHead(2, [], 2)
    with torch.no_grad():
        mnet.logits[0].weight.copy_(torch.tensor([[0.1, 0.0], [-0.1, 0.0]]))
        mnet.logits[0].bias.zero_()
        assert torch.equal(mnet(X).argmax(dim=1), 1 - nearest)
    net = train_phase(_EncoderMNet(nn.Identity(), mnet),
                      _PairCriterion(centres, 1.5, 0.8, 0.2), X, epochs=1, batch_size=40,
                      lr=0.05, generator=gen, phase="phase 2", net_class=_Phase2Net,
                      warmup_epochs=1, u_space_epochs=0)
    assert net.history[-1, "train_batch_count"] == 30  # 3 batches x 10 passes
    with torch.no_grad():
        assert torch.equal(mnet(X).argmax(dim=1), nearest)


# ----------------------------------------------------------------- training


@pytest.fixture
def spy(monkeypatch):
    """Records what a DCSS fit does: the events of every phase, each centre refresh (its
    input and output centres), k-means' input and output, and each phase's module before
    and after training."""
    record = dict(events=[], sizes={}, refreshes=[], kmeans=[], phases=[])

    def event(tag, X=None):
        record["events"].append(tag)
        if X is not None:
            record["sizes"].setdefault(tag, set()).add(len(X))

    pair_forward = _PairCriterion.forward

    def pair(self, y_pred, index, X):
        event("warmup" if self.warmup else "u" if self.u_space else "q", X)
        return pair_forward(self, y_pred, index, X)

    cluster_forward = ClusterSpecificCriterion.forward

    def cluster(self, y_pred, index, X):
        event("p1", X)
        return cluster_forward(self, y_pred, index, X)

    def refresh(U, centers, fuzziness, batch_size=4096):
        out = fuzzy_centers(U, centers, fuzziness, batch_size)
        event("R")
        record["refreshes"].append((centers.detach().clone(), out.detach().clone()))
        return out

    kmeans = cluster_specific_module.kmeans_on_codes

    def kmeans_spy(Z, n_clusters, *, n_init, random_state):
        out = kmeans(Z, n_clusters, n_init=n_init, random_state=random_state)
        record["kmeans"].append(dict(Z=Z.detach().clone(), n_init=n_init, out=out.copy()))
        return out

    run = base_module.train_phase

    def train_phase_spy(module, criterion, X, **kwargs):
        def state():
            return {k: v.detach().clone() for k, v in module.state_dict().items()}

        before = state()
        net = run(module, criterion, X, **kwargs)
        record["phases"].append(dict(phase=kwargs["phase"], net=net, before=before,
                                     after=state(), lr=kwargs["lr"]))
        return net

    monkeypatch.setattr(_PairCriterion, "forward", pair)
    monkeypatch.setattr(ClusterSpecificCriterion, "forward", cluster)
    monkeypatch.setattr(dcss_module, "fuzzy_centers", refresh)
    monkeypatch.setattr(nets_module, "fuzzy_centers", refresh)
    monkeypatch.setattr(cluster_specific_module, "kmeans_on_codes", kmeans_spy)
    monkeypatch.setattr(base_module, "train_phase", train_phase_spy)
    return record


def _check_refresh_chain(spy, est):
    """Each refresh starts from the centres the previous one produced (it was applied)."""
    refreshes = spy["refreshes"]
    assert _same(refreshes[0][0], spy["kmeans"][0]["out"])
    for (_, previous_out), (current_in, _) in zip(refreshes, refreshes[1:]):
        assert _same(current_in, previous_out)
    assert _same(est.fuzzy_centers_, refreshes[-1][1])


def test_schedule_of_both_phases_and_centres_carried_through(blobs, spy):
    X, _ = blobs
    est = DCSS(n_clusters=3, **{**TINY, "max_epochs": 3, "center_update_interval": 2,
                                "mnet_epochs": 3, "u_space_epochs": 2}).fit(X)
    # Phase 1: 3 batches of 50 x K = 3 updates per epoch; centres refreshed after epochs
    # 1 and 3 (1, T1 + 1, ...). Phase 2 keeps batches of 50: 3 per pass, so the warm-up
    # and each u-space epoch make ceil(30 / 3) = 10 passes, a q-space epoch one; the
    # centres are refreshed after each u-space epoch (not after the warm-up).
    assert _runs(spy["events"]) == [
        ("p1", 9), ("R", 1), ("p1", 18), ("R", 1),
        ("warmup", 30), ("u", 30), ("R", 1), ("u", 30), ("R", 1), ("q", 3)]
    assert spy["sizes"] == {"p1": {50}, "warmup": {50}, "u": {50}, "q": {50}}
    # The k-means centres start phase 1, each refresh is applied (the next one starts
    # from it), phase 2 starts from phase 1's last centres and fuzzy_centers_ are the last.
    _check_refresh_chain(spy, est)
    assert len(est.history_["phase2"]) == 1 + 3


def test_schedule_without_warmup_and_auto_batches(blobs, spy):
    X, _ = blobs
    est = DCSS(n_clusters=3, **{**TINY, "batch_size": "auto", "max_epochs": 1,
                                "mnet_epochs": 2, "u_space_epochs": 5,
                                "mnet_warmup_epochs": 0}).fit(X)
    # "auto": phase 1 shrinks its batches to max(32, ceil(150 / 30)) = 32 rows (5 per
    # epoch, the last of 22); phase 2 keeps one batch of all 150 rows and makes 30
    # passes per u-space epoch. u_space_epochs >= mnet_epochs: u-space pairs throughout.
    assert _runs(spy["events"]) == [("p1", 15), ("R", 1), ("u", 30), ("R", 1), ("u", 30),
                                    ("R", 1)]
    assert spy["sizes"] == {"p1": {32, 22}, "u": {150}}
    _check_refresh_chain(spy, est)
    # The u-space refresh uses the current encoder (the last epoch was a u-space epoch).
    last_in = spy["refreshes"][-1][0]
    torch.testing.assert_close(
        torch.as_tensor(est.fuzzy_centers_),
        fuzzy_centers(torch.as_tensor(est.transform(X)), last_in, 1.5))


def test_pretraining_then_kmeans_on_the_pretrained_codes(blobs, spy):
    X, _ = blobs
    est = DCSS(n_clusters=3, **{**TINY, "pretrain_epochs": 10, "max_epochs": 0,
                                "mnet_epochs": 0, "n_init": 3}).fit(X)
    pretrain = est.history_["pretrain"]
    # at pretrain_lr = 1e-3 (at lr = 1e-5 the loss would fall by about 0.3 %)
    assert len(pretrain) == 10 and pretrain[-1] < 0.9 * pretrain[0]
    assert spy["phases"][0]["phase"] == "pretrain" and spy["phases"][0]["lr"] == 1e-3
    (kmeans,) = spy["kmeans"]
    # No training after the pretraining: the codes k-means saw are transform(X).
    np.testing.assert_array_equal(kmeans["Z"].numpy(), est.transform(X))
    assert kmeans["n_init"] == 3
    # max_epochs=0: no refresh, the centres are k-means' (three separated blobs).
    assert spy["refreshes"] == []
    np.testing.assert_array_equal(est.fuzzy_centers_, kmeans["out"])
    np.testing.assert_array_equal(est.cluster_centers_, kmeans["out"])
    reference = KMeans(3, n_init=3, random_state=0).fit(est.transform(X)).cluster_centers_
    np.testing.assert_allclose(np.sort(kmeans["out"], axis=0), np.sort(reference, axis=0),
                               rtol=1e-4, atol=1e-4)


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


def test_phase1_history_terms_centering_weight_and_lr(blobs):
    X, _ = blobs
    est = DCSS(n_clusters=3, **{**TINY, "mnet_epochs": 0, "max_epochs": 3,
                                "centering_weight": 0.5, "fuzziness": 2.0, "lr": 1e-4}).fit(X)
    h = est.history_
    assert set(h) == {"pretrain", "phase1", "phase1_reconstruction", "phase1_centering"}
    assert len(h["phase1"]) == len(h["phase1_reconstruction"]) == 3
    # equal batches (3 x 50): the epoch loss is reconstruction + alpha * centring
    np.testing.assert_allclose(
        h["phase1"], np.add(h["phase1_reconstruction"], 0.5 * np.array(h["phase1_centering"])),
        rtol=1e-5)
    assert min(h["phase1_centering"]) > 0
    crit = est.net_.criterion_
    assert crit.centering_weight == 0.5 and crit.fuzziness == 2.0
    assert [g["lr"] for g in est.net_.optimizer_.param_groups] == [1e-4]


def test_phase2_trains_encoder_at_lr_and_mnet_at_mnet_lr(blobs, spy):
    X, _ = blobs
    lr, mnet_lr = 1e-6, 1e-2
    est = DCSS(n_clusters=3, **{**TINY, "lr": lr, "mnet_lr": mnet_lr, "mnet_epochs": 2}).fit(X)
    pretrain, phase1, phase2 = spy["phases"]
    assert [p["phase"] for p in spy["phases"]] == ["pretrain", "phase 1", "phase 2"]
    assert isinstance(est.net_.module_, _EncoderMNet) and est.net_ is phase2["net"]
    # The phases hand on one encoder: each starts where the previous one ended.
    for key, value in phase1["before"].items():
        assert torch.equal(value, pretrain["after"][key])
    for key, value in phase2["before"].items():
        if key.startswith("encoder."):
            assert torch.equal(value, phase1["after"][key])
    groups = est.net_.optimizer_.param_groups
    encoder_params = {id(p) for p in est.net_.module_.encoder.parameters()}
    assert sorted((g["lr"], all(id(p) in encoder_params for p in g["params"]))
                  for g in groups) == [(lr, True), (mnet_lr, False)]
    # Behaviour: Adam moves a weight by about lr per step at most.
    steps = sum(est.net_.history[:, "train_batch_count"])  # 30 + 30 + 3
    assert steps == 63
    change = {name: (phase2["after"][name] - phase2["before"][name]).abs().max().item()
              for name in phase2["before"] if name.endswith("weight")}
    encoder = max(v for k, v in change.items() if k.startswith("encoder."))
    mnet = max(v for k, v in change.items() if k.startswith("mnet."))
    assert 0 < encoder <= 10 * steps * lr  # the encoder is trained, slowly
    assert mnet > 100 * steps * lr


def test_labels_centres_and_outputs_come_from_mnet(blobs):
    X, _ = blobs
    est = DCSS(n_clusters=3, **TINY).fit(X)
    module = est.net_.module_
    assert not module.training
    with torch.no_grad():
        U = module.encoder(torch.as_tensor(X))
        q = module.mnet(U)
    assert est.n_clusters_ == 3  # all outputs used: no renormalisation, no dropped column
    np.testing.assert_array_equal(est.labels_, q.argmax(dim=1).numpy())
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    np.testing.assert_allclose(est.predict_proba(X), q.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.transform(X), U.numpy(), rtol=1e-6)
    # cluster_centers_: the q-weighted means of the embeddings (not the argmax means)
    np.testing.assert_allclose(est.cluster_centers_, ((q.T @ U) / q.sum(dim=0)[:, None]).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert est.n_iter_ == 5 + 2 + 1 + 3  # phase 2: one warm-up epoch, then mnet_epochs
    assert {k: len(v) for k, v in est.history_.items()} == {
        "pretrain": 5, "phase1": 2, "phase1_reconstruction": 2, "phase1_centering": 2,
        "phase2": 4}


def test_dcss_u_labels_are_nearest_phase1_centre(blobs):
    X, _ = blobs
    est = DCSS(n_clusters=3, **{**TINY, "mnet_epochs": 0, "fuzziness": 2.0}).fit(X)
    assert isinstance(est.net_, ClusterSpecificNet)
    np.testing.assert_array_equal(est.cluster_centers_, est.fuzzy_centers_)
    torch.testing.assert_close(torch.as_tensor(est.fuzzy_centers_), est.net_.criterion_.centers)
    U = est.transform(X)
    dist = ((U[:, None, :] - est.fuzzy_centers_[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(est.labels_, dist.argmin(axis=1))
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    p = fuzzy_memberships(torch.as_tensor(U), torch.as_tensor(est.fuzzy_centers_), 2.0)
    np.testing.assert_allclose(est.predict_proba(X), p.numpy(), rtol=1e-4, atol=1e-6)
    assert "phase2" not in est.history_


def test_thresholds_and_fuzziness_reach_phase2(blobs):
    est = DCSS(n_clusters=3, **{**TINY, "pretrain_epochs": 1, "max_epochs": 0,
                                "mnet_epochs": 1, "zeta": 0.9, "gamma": 0.1,
                                "fuzziness": 2.0}).fit(blobs[0])
    crit = est.net_.criterion_
    assert (crit.zeta, crit.gamma, crit.fuzziness) == (0.9, 0.1, 2.0)


class _DeadLastOutput(ClusteringHead):
    """MNet whose last output never wins (a unit that receives no sample)."""

    def forward(self, z):
        q = super().forward(z)
        q = torch.cat([q[:, :-1], 1e-3 * q[:, -1:]], dim=1)
        return q / q.sum(dim=1, keepdim=True)


def test_empty_mnet_output_is_dropped_with_a_warning(blobs, monkeypatch):
    monkeypatch.setattr(dcss_module, "ClusteringHead", _DeadLastOutput)
    X, _ = blobs
    with pytest.warns(ConvergenceWarning, match="found 2 non-empty clusters out of"):
        est = DCSS(n_clusters=3, **{**TINY, "mnet_epochs": 1}).fit(X)
    module = est.net_.module_
    with torch.no_grad():
        U = module.encoder(torch.as_tensor(X))
        q = module.mnet(U)[:, :2]
    assert est.n_clusters_ == 2
    np.testing.assert_array_equal(est.labels_, q.argmax(dim=1).numpy())
    assert set(est.labels_) == {0, 1}
    np.testing.assert_allclose(est.predict_proba(X), (q / q.sum(dim=1, keepdim=True)).numpy(),
                               rtol=1e-5, atol=1e-6)
    assert est.cluster_centers_.shape == (2, 2)
    np.testing.assert_allclose(est.cluster_centers_, ((q.T @ U) / q.sum(dim=0)[:, None]).numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_same_seed_same_result(blobs):
    X, _ = blobs
    a = DCSS(n_clusters=3, **TINY).fit(X)
    b = DCSS(n_clusters=3, **TINY).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    c = DCSS(n_clusters=3, **{**TINY, "random_state": 1}).fit(X)
    assert not np.array_equal(a.transform(X), c.transform(X))


def test_batch_of_one_row_left_over_is_merged(spy):
    X, _ = make_blobs(n_samples=51, centers=2, n_features=3, random_state=0)
    est = DCSS(n_clusters=2, **{**TINY, "mnet_epochs": 1}).fit(X)
    # phase 2: 50 + 1 rows -> one batch of 51 (BatchNorm cannot train on one row)
    assert spy["sizes"]["warmup"] == spy["sizes"]["u"] == {51}
    assert est.labels_.shape == (51,)


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
