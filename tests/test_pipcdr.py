"""PIPCDR: losses by hand, and every mechanism of the class docstring seen at work in a fit.

A traced fit (:class:`_Trace`) records, step by step, what the estimator hands its
parts: the learning rate of each parameter group, the EMA momentum and the target's
move, the PIP/CDR arguments (sigma, weight, pseudo-labels, queue), the views, and each
k-means refresh. Each test compares those records with the schedule the docstring
states, computed here independently, so switching a mechanism off makes a test fail.
"""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from torch import nn

from skdeepclust import PIPCDR, _pipcdr
from skdeepclust._kmeans import spherical_kmeans
from skdeepclust._pipcdr import _PIPCDRLoss, _PIPCDRModule, _PIPCDRNet, _TrainState
from skdeepclust._streaming import changed_fraction, recluster_stable_ids
from skdeepclust._training import KMeansRefresh
from skdeepclust.losses import cdr_loss, pip_loss
from skdeepclust.nn import cosine_momentum, ema_update

SMALL = dict(hidden_layer_sizes=(32,), projector_hidden_dim=32, predictor_hidden_dim=32,
             embedding_dim=8, batch_size=64, max_epochs=12, warmup_epochs=2, momentum=0.9,
             n_init=3, min_steps=0)
TINY = dict(hidden_layer_sizes=(16,), projector_hidden_dim=16, predictor_hidden_dim=16,
            embedding_dim=8, n_init=2, min_steps=0, momentum=0.9)


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=300, centers=3, n_features=6, cluster_std=1.0, random_state=0)


# ------------------------------------------------------------------ the trace

class _Trace:
    """Wraps the estimator's parts (behaviour unchanged) and records each optimiser step.

    ``steps[s]`` holds, for step ``s`` of the run: ``step`` (the state's global step),
    ``lr`` and ``pred_lr`` (the learning rates of the non-predictor and predictor
    groups), ``momentum`` and ``ema_err`` (max deviation of the target from
    ``m * target + (1 - m) * online`` after the update), the criterion's ``sigma``,
    ``cdr_weight``, ``labels``, ``queue``/``queue_labels`` (copies, None when not
    passed), ``t``, ``pip``, ``cdr``, ``loss``, ``z_norm``, the batch ``idx``, the
    views ``x``, ``xa``, ``xb`` and the module's input ``x2``, and ``queue_after``
    (features, labels, index after the step's push). ``refreshes`` holds each
    k-means refresh: the epoch, the number of steps run, the labels, the state's
    labels and the queue's labels and index afterwards; ``reclusters`` each
    re-clustering of partial_fit's reservoir. The schedule and the EMA/queue updates
    are the net's batch hooks, so a step is recorded from ``on_batch_begin`` to the
    end of ``on_batch_end``.
    """

    def __init__(self, mp):
        self.steps, self.refreshes, self.reclusters = [], [], []
        self.cur, self.views = None, {}
        trace = self

        on_batch_begin = _PIPCDRNet.on_batch_begin

        def traced_on_batch_begin(net, *args, training=False, **kw):
            if training:
                # The views of the batch were drawn by the iterator, just before this step.
                trace.cur = {**trace.views, "step": net.state.step}
            return on_batch_begin(net, *args, training=training, **kw)

        on_batch_end = _PIPCDRNet.on_batch_end

        def traced_on_batch_end(net, *args, training=False, **kw):
            out = on_batch_end(net, *args, training=training, **kw)
            if not training:
                return out
            pred = {id(p) for p in net.module_.predictor.parameters()}
            for g in net.optimizer_.param_groups:
                is_pred = all(id(p) in pred for p in g["params"])
                assert is_pred or not any(id(p) in pred for p in g["params"])
                trace.cur["pred_lr" if is_pred else "lr"] = g["lr"]
            q = net.module_.queue
            trace.cur["queue_after"] = (q.features.clone(), q.labels.clone(), q.index.clone())
            trace.steps.append(trace.cur)
            return out

        get_loss = _PIPCDRNet.get_loss

        def traced_get_loss(net, y_pred, y_true, X=None, training=False):
            trace.cur["idx"] = y_true.clone()
            return get_loss(net, y_pred, y_true, X=X, training=training)

        forward = _PIPCDRLoss.forward

        def traced_forward(crit, z, t, predictor, labels, *, sigma, cdr_weight, generator,
                           queue=None, queue_labels=None):
            loss, pip, cdr = forward(crit, z, t, predictor, labels, sigma=sigma,
                                     cdr_weight=cdr_weight, generator=generator, queue=queue,
                                     queue_labels=queue_labels)
            trace.cur.update(
                sigma=sigma, cdr_weight=cdr_weight, labels=labels.clone(), t=t.clone(),
                queue=None if queue is None else queue.clone(),
                queue_labels=None if queue is None else queue_labels.clone(),
                loss=float(loss.detach()), pip=float(pip), cdr=float(cdr),
                z_norm=float(z.detach().norm(dim=1).mean()))
            return loss, pip, cdr

        update_target = _PIPCDRModule.update_target

        def traced_update_target(module, momentum):
            before = [p.detach().clone() for p in module.target.parameters()]
            update_target(module, momentum)
            err = max(float((t - (momentum * b + (1 - momentum) * o)).detach().abs().max())
                      for t, b, o in zip(module.target.parameters(), before,
                                         module.online.parameters()))
            trace.cur.update(momentum=momentum, ema_err=err)

        make_views = _TrainState.make_views

        def traced_make_views(state, x, idx):
            xa, xb = make_views(state, x, idx)
            trace.views = dict(x=x.clone(), xa=xa.clone(), xb=xb.clone())
            return xa, xb

        module_forward = _PIPCDRModule.forward

        def traced_module_forward(module, x2):
            if trace.cur is not None and "x2" not in trace.cur:
                trace.cur["x2"] = x2.clone()
            return module_forward(module, x2)

        refresh = KMeansRefresh.refresh

        def traced_refresh(cb, net, epoch, Z):
            refresh(cb, net, epoch, Z)
            q = net.module_.queue
            trace.refreshes.append(dict(
                epoch=net.epochs_completed_, n_steps=len(trace.steps), labels=cb.labels_.clone(),
                state_labels=net.state.labels.clone(), queue_labels=q.labels.clone(),
                queue_index=q.index.clone()))

        recluster = _pipcdr.recluster_stable_ids

        def traced_recluster(Z, centers, kmeans, n_init):
            out = recluster(Z, centers, kmeans, n_init)
            trace.reclusters.append(dict(n_rows=Z.shape[0], centers_in=centers.clone(),
                                         Z=Z.clone(), labels=out[1].clone()))
            return out

        mp.setattr(_PIPCDRNet, "on_batch_begin", traced_on_batch_begin)
        mp.setattr(_PIPCDRNet, "on_batch_end", traced_on_batch_end)
        mp.setattr(_PIPCDRNet, "get_loss", traced_get_loss)
        mp.setattr(_PIPCDRLoss, "forward", traced_forward)
        mp.setattr(_PIPCDRModule, "update_target", traced_update_target)
        mp.setattr(_PIPCDRModule, "forward", traced_module_forward)
        mp.setattr(_TrainState, "make_views", traced_make_views)
        mp.setattr(KMeansRefresh, "refresh", traced_refresh)
        mp.setattr(_pipcdr, "recluster_stable_ids", traced_recluster)

    def end_call(self):
        """Mark the end of a fit or partial_fit call (module forwards outside steps)."""
        self.cur = None


def _traced(fn):
    with pytest.MonkeyPatch.context() as mp:
        trace = _Trace(mp)
        result = fn(trace)
    return trace, result


# The traced fit: 160 rows, batch 32 -> 5 steps per epoch, 6 epochs (2 of warm-up), k-means
# after epochs 2 and 4 (6 is the last: no refresh), a queue of 96 slots that wraps around.
FIT = dict(TINY, batch_size=32, max_epochs=6, warmup_epochs=2, kmeans_every=2, queue_size=96,
           sigma=0.05, cdr_weight=0.3, predictor_lr_scale=4.0, weight_decay=1e-3, lr=0.1)
S, E, W = 5, 6, 2


@pytest.fixture(scope="module")
def traced_fit():
    X, y = make_blobs(n_samples=160, centers=3, n_features=5, random_state=3)

    def run(trace):
        est = PIPCDR(n_clusters=3, random_state=0, **FIT).fit(X)
        trace.end_call()
        return est

    trace, est = _traced(run)
    return X, est, trace


def test_traced_fit_runs_every_step(traced_fit):
    _, est, trace = traced_fit
    assert [s["step"] for s in trace.steps] == list(range(E * S))
    assert est._stream.step == E * S and est.n_iter_ == E


# ------------------------------------------------------------------ losses by hand

def test_pip_loss_by_hand():
    z = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # cosines 0.6 and 0: (2 - 1.2 + 2 - 0) / 2
    assert float(pip_loss(z, t, nn.Identity())) == pytest.approx(1.4)


def test_pip_loss_with_sigma_zero_is_the_byol_loss():
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(5, 3, generator=g), F.normalize(torch.randn(5, 3, generator=g), dim=1)
    predictor = nn.Linear(3, 3)
    byol = (F.normalize(predictor(z), dim=1) - t).pow(2).sum(dim=1).mean()
    got = pip_loss(z, t, predictor, sigma=0.0).detach()
    assert float(got) == pytest.approx(float(byol.detach()), abs=1e-6)


def test_pip_loss_samples_a_gaussian_neighbour_of_the_online_embedding():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    expected = (F.normalize(z + 0.5 * eps, dim=1) - t).pow(2).sum(dim=1).mean()
    got = pip_loss(z, t, nn.Identity(), sigma=0.5, generator=torch.Generator().manual_seed(3))
    assert float(got) == pytest.approx(float(expected), abs=1e-6)
    assert float(got) != pytest.approx(float(pip_loss(z, t, nn.Identity())), abs=1e-3)


def _cdr_two_clusters():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # mu_0 = (1, 0), mu'_0 = n(1.6, 0.8) = (2, 1)/sqrt(5), mu_1 = mu'_1 = (0, 1), mu_0.mu_1 = 0.
    tau = 0.5
    pos0, pos1 = (2 / math.sqrt(5)) / tau, 1.0 / tau
    expected = 0.5 * ((-pos0 + math.log(math.exp(pos0) + 1.0))
                      + (-pos1 + math.log(math.exp(pos1) + 1.0)))
    return z, t, labels, tau, expected


def test_cdr_loss_by_hand():
    z, t, labels, tau, expected = _cdr_two_clusters()
    assert float(cdr_loss(z, t, labels, 2, tau)) == pytest.approx(expected, abs=1e-6)


def test_cdr_loss_ignores_clusters_absent_from_the_batch():
    z, t, labels, tau, expected = _cdr_two_clusters()
    # Clusters 2..4 have no member: neither a term of their own nor a negative.
    assert float(cdr_loss(z, t, labels, 5, tau)) == pytest.approx(expected, abs=1e-6)
    # A third present cluster does change the value (the check above can fail).
    z3 = torch.cat([z, torch.tensor([[-1.0, 0.0]])])
    t3 = torch.cat([t, torch.tensor([[-1.0, 0.0]])])
    other = cdr_loss(z3, t3, torch.cat([labels, torch.tensor([2])]), 5, tau)
    assert float(other) != pytest.approx(expected, abs=1e-3)


def test_cdr_loss_adds_the_queue_to_both_prototypes_and_skips_empty_slots():
    z = t = torch.tensor([[1.0, 0.0]])
    labels = torch.tensor([0])
    queue = torch.tensor([[0.0, 1.0], [0.6, 0.8]])
    # Slot 0 holds cluster 1, slot 1 is empty (-1): mu_0 = mu'_0 = (1, 0), mu_1 = mu'_1 = (0, 1).
    got = cdr_loss(z, t, labels, 2, 0.5, queue=queue, queue_labels=torch.tensor([1, -1]))
    assert float(got) == pytest.approx(-2.0 + math.log(math.exp(2.0) + 1.0), abs=1e-6)
    # Without the queue only cluster 0 is present: no negative, loss 0.
    assert float(cdr_loss(z, t, labels, 2, 0.5)) == pytest.approx(0.0, abs=1e-6)


def test_criterion_is_pip_plus_weighted_cdr_symmetrised_over_the_views():
    g = torch.Generator().manual_seed(0)
    b, e, k = 6, 4, 3
    z = torch.randn(2 * b, e, generator=g, requires_grad=True)
    t = F.normalize(torch.randn(2 * b, e, generator=g), dim=1)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    queue = F.normalize(torch.randn(5, e, generator=g), dim=1)
    queue_labels = torch.tensor([2, -1, 0, 1, 1])
    predictor = nn.Linear(e, e)
    crit = _PIPCDRLoss(k, 0.5)
    loss, pip, cdr = crit(z, t, predictor, labels, sigma=0.3, cdr_weight=0.7,
                          generator=torch.Generator().manual_seed(5), queue=queue,
                          queue_labels=queue_labels)
    # By hand: PIP over all 2b rows (both directions) with the same noise draw; CDR of
    # each view's half against its own targets, averaged; the total weighs CDR by 0.7.
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(5))
    p = F.normalize(predictor(z + 0.3 * eps), dim=1)
    pip_hand = (p - t).pow(2).sum(dim=1).mean()
    zn = F.normalize(z, dim=1)
    cdr_hand = 0.5 * (cdr_loss(zn[:b], t[:b], labels, k, 0.5, queue, queue_labels)
                      + cdr_loss(zn[b:], t[b:], labels, k, 0.5, queue, queue_labels))
    hand = pip_hand + 0.7 * cdr_hand
    assert float(pip) == pytest.approx(float(pip_hand.detach()), abs=1e-6)
    assert float(cdr) == pytest.approx(float(cdr_hand.detach()), abs=1e-6)
    assert float(loss.detach()) == pytest.approx(float(hand.detach()), abs=1e-6)
    # The CDR term's gradient reaches the online embeddings (not a detached diagnostic).
    (grad,) = torch.autograd.grad(loss, z)
    (grad_hand,) = torch.autograd.grad(hand, z)
    assert torch.allclose(grad, grad_hand, atol=1e-6)
    # The halves differ (the symmetrisation is not a no-op on this input), and the queue
    # changes the CDR value.
    with torch.no_grad():
        assert abs(float(cdr_loss(zn[:b], t[:b], labels, k, 0.5, queue, queue_labels))
                   - float(cdr_hand)) > 1e-3
        assert abs(float(cdr_loss(zn[:b], t[:b], labels, k, 0.5)) - float(
            cdr_loss(zn[:b], t[:b], labels, k, 0.5, queue, queue_labels))) > 1e-3
        # Weight 0 (warm-up): the PIP loss alone, CDR reported as 0.
        loss0, _, cdr0 = crit(z, t, predictor, labels, sigma=0.0, cdr_weight=0.0,
                              generator=None)
        assert float(loss0) == pytest.approx(float((F.normalize(predictor(z), dim=1) - t)
                                                   .pow(2).sum(dim=1).mean()), abs=1e-6)
        assert float(cdr0) == 0.0


def test_module_pairs_each_online_row_with_the_target_of_the_other_view():
    torch.manual_seed(0)
    module = _PIPCDRModule(3, [8], 8, 4, 8, queue_size=0)
    with torch.no_grad():  # a target different from the online network
        for p in module.target.parameters():
            p.add_(torch.randn(p.shape))
    module.eval()
    xa, xb = torch.randn(5, 3), torch.randn(5, 3)
    z, t = module(torch.cat([xa, xb]))
    assert torch.allclose(z, module.online(torch.cat([xa, xb])))
    assert torch.allclose(t[:5], F.normalize(module.target(xb), dim=1), atol=1e-6)
    assert torch.allclose(t[5:], F.normalize(module.target(xa), dim=1), atol=1e-6)
    assert not torch.allclose(t[:5], F.normalize(module.target(xa), dim=1), atol=1e-3)
    assert not t.requires_grad


# ------------------------------------------------------------- EMA and schedule

def test_ema_update_moves_parameters_not_buffers():
    online = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    target = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    for p in online.parameters():
        nn.init.constant_(p, 1.0)
    for p in target.parameters():
        nn.init.constant_(p, 3.0)
    online[1].running_mean.fill_(5.0)
    ema_update(target, online, 0.9)
    for p in target.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.9 * 3.0 + 0.1 * 1.0))
    assert torch.equal(target[1].running_mean, torch.zeros(2))
    for p in online.parameters():
        assert torch.equal(p, torch.ones_like(p))


def test_cosine_momentum_schedule():
    base, total = 0.996, 400
    assert cosine_momentum(base, 0, total) == pytest.approx(base)
    assert cosine_momentum(base, 100, total) == pytest.approx(
        1 - 0.004 * (1 + math.cos(math.pi / 4)) / 2)
    assert cosine_momentum(base, 200, total) == pytest.approx(0.998)
    assert cosine_momentum(base, 400, total) == pytest.approx(1.0)
    assert cosine_momentum(base, 900, total) == pytest.approx(1.0)
    values = [cosine_momentum(base, s, total) for s in range(0, total + 1, 10)]
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_ema_target_moves_every_step_on_the_cosine_momentum_schedule(traced_fit):
    _, _, trace = traced_fit
    T = E * S
    expected = [1 - (1 - 0.9) * (1 + math.cos(math.pi * s / T)) / 2 for s in range(T)]
    assert [st["momentum"] for st in trace.steps] == pytest.approx(expected, abs=1e-12)
    assert max(st["ema_err"] for st in trace.steps) < 1e-6


def test_constant_momentum_schedule_and_momentum_zero_copies_the_online_network():
    X, _ = make_blobs(n_samples=64, centers=2, n_features=4, random_state=0)

    def run(trace):
        return PIPCDR(n_clusters=2, random_state=0, momentum_schedule="constant",
                      **{**TINY, "momentum": 0.0, "batch_size": 32, "max_epochs": 2,
                         "warmup_epochs": 1}).fit(X)

    trace, est = _traced(run)
    assert [st["momentum"] for st in trace.steps] == [0.0] * 4
    module = est.net_.module_
    for t, o in zip(module.target.parameters(), module.online.parameters()):
        assert torch.equal(t, o)


def test_lr_warmup_then_cosine_decay_and_predictor_lr_scale(traced_fit):
    _, _, trace = traced_fit
    expected = []
    for s in range(E * S):
        epoch = s / S
        expected.append(0.1 * (s + 1) / (W * S) if epoch < W
                        else 0.1 * 0.5 * (1 + math.cos(math.pi * (epoch - W) / (E - W))))
    assert [st["lr"] for st in trace.steps] == pytest.approx(expected, rel=1e-12)
    assert [st["pred_lr"] for st in trace.steps] == pytest.approx(
        [4.0 * v for v in expected], rel=1e-12)


def test_sgd_with_weight_decay_trains_online_and_predictor_only(traced_fit):
    _, est, _ = traced_fit
    module, opt = est.net_.module_, est.net_.optimizer_
    assert isinstance(opt, torch.optim.SGD)
    assert len(opt.param_groups) == 2
    for g in opt.param_groups:
        assert g["weight_decay"] == 1e-3 and g["momentum"] == 0.9
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    expected = {id(p) for p in [*module.online.parameters(), *module.predictor.parameters()]}
    assert trained == expected
    (pred_group,) = [g for g in opt.param_groups if g.get("lr_scale") == 4.0]
    assert {id(p) for p in pred_group["params"]} == {id(p) for p in module.predictor.parameters()}


def test_sigma_and_cdr_are_off_during_warmup(traced_fit):
    _, est, trace = traced_fit
    for st in trace.steps:
        warm = st["step"] < W * S
        assert st["sigma"] == (0.0 if warm else 0.05)
        assert st["cdr_weight"] == (0.0 if warm else 0.3)
        assert (st["cdr"] == 0.0) == warm
    assert est.history_["cdr"][:W] == [0.0, 0.0]
    assert min(est.history_["cdr"][W:]) > 0.0


def test_history_holds_the_epoch_means_of_the_loss_terms(traced_fit):
    _, est, trace = traced_fit
    h = est.history_
    for key in ("train", "pip", "cdr", "z_norm"):
        assert len(h[key]) == E
    for e in range(E):
        steps = trace.steps[e * S:(e + 1) * S]
        for key, rec in (("train", "loss"), ("pip", "pip"), ("cdr", "cdr"),
                         ("z_norm", "z_norm")):
            assert h[key][e] == pytest.approx(np.mean([st[rec] for st in steps]), rel=1e-5)
        # The total is PIP + cdr_weight * CDR (0 during warm-up).
        weight = 0.0 if e < W else 0.3
        assert h["train"][e] == pytest.approx(h["pip"][e] + weight * h["cdr"][e], rel=1e-5)


def test_views_are_two_draws_forwarded_as_one_batch(traced_fit):
    _, _, trace = traced_fit
    for st in trace.steps:
        b = st["x"].shape[0]
        assert b == 32
        assert torch.equal(st["x2"], torch.cat([st["xa"], st["xb"]]))
        assert not torch.allclose(st["xa"], st["xb"])
        assert st["t"].shape == (2 * b, 8)


# ------------------------------------------------------------- k-means refreshes

def test_kmeans_refreshes_after_warmup_then_every_kmeans_every_not_after_the_last(traced_fit):
    _, est, trace = traced_fit
    # Epochs 2 (end of warm-up) and 4; epoch 6 is the last.
    assert [r["epoch"] for r in trace.refreshes] == [2, 4]
    assert [r["n_steps"] for r in trace.refreshes] == [2 * S, 4 * S]
    first, second = trace.refreshes
    assert len(torch.unique(first["labels"])) == 3
    assert est.history_["label_change"] == pytest.approx(
        [changed_fraction(first["labels"], second["labels"], 3)])
    assert not est.converged_


def test_kmeans_refresh_with_no_warmup_runs_before_training():
    X, _ = make_blobs(n_samples=64, centers=2, n_features=4, random_state=0)

    def run(trace):
        return PIPCDR(n_clusters=2, random_state=0, **{**TINY, "batch_size": 32,
                                                       "max_epochs": 3, "warmup_epochs": 0,
                                                       "momentum": 0.5}).fit(X)

    trace, _ = _traced(run)
    assert [(r["epoch"], r["n_steps"]) for r in trace.refreshes] == [(0, 0)]
    assert all(st["cdr_weight"] > 0 for st in trace.steps)


def test_pseudo_labels_of_the_latest_refresh_feed_the_cdr_loss(traced_fit):
    _, _, trace = traced_fit
    for st in trace.steps:
        s = st["step"]
        done = [r for r in trace.refreshes if r["n_steps"] <= s]
        labels = done[-1]["labels"][st["idx"]] if done else torch.zeros_like(st["idx"])
        assert torch.equal(st["labels"], labels)
    for r in trace.refreshes:
        assert torch.equal(r["state_labels"], r["labels"])


def test_tol_stops_when_pseudo_labels_settle(blobs):
    X, _ = blobs
    est = PIPCDR(n_clusters=3, random_state=0, tol=0.5, **{**SMALL, "kmeans_every": 1}).fit(X)
    # k-means after epochs 2 (end of warm-up), 3 and 4; two small changes stop at epoch 4.
    assert est.converged_ and est.n_iter_ == 4
    assert len(est.history_["label_change"]) == 2
    assert max(est.history_["label_change"]) < 0.5


# ------------------------------------------------------------------ the queue

def test_queue_fills_with_the_latest_targets_and_feeds_the_cdr_loss(traced_fit):
    _, est, trace = traced_fit
    size, pushed_f, pushed_i = 96, [], []
    for st in trace.steps:
        # What the CDR loss saw: the queue as it stood before this step's push.
        n = len(pushed_f)
        expected_f = torch.zeros(size, 8)
        expected_i = torch.full((size,), -1)
        for j in range(max(0, n - size), n):
            expected_f[j % size], expected_i[j % size] = pushed_f[j], pushed_i[j]
        assert st["queue"] is not None
        assert torch.equal(st["queue"], expected_f)
        filled = expected_i >= 0
        # Empty slots are labelled -1; filled ones carry the current pseudo-label of their row.
        assert torch.equal(st["queue_labels"][~filled], torch.full((int((~filled).sum()),), -1))
        s = st["step"]
        done = [r for r in trace.refreshes if r["n_steps"] <= s]
        if done:
            assert torch.equal(st["queue_labels"][filled], done[-1]["labels"][expected_i[filled]])
        else:
            assert (st["queue_labels"][filled] == 0).all()
        # This step pushes both halves of its targets with their batch indices.
        pushed_f.extend(st["t"])
        pushed_i.extend(torch.cat([st["idx"], st["idx"]]))
    assert len(pushed_f) == E * S * 64 > size  # the queue wrapped around
    q = est.net_.module_.queue
    assert (q.labels >= 0).all() and (q.index >= 0).all()
    assert torch.allclose(q.features.norm(dim=1), torch.ones(size), atol=1e-5)


def test_queue_is_relabelled_at_each_refresh(traced_fit):
    _, _, trace = traced_fit
    for r in trace.refreshes:
        filled = r["queue_index"] >= 0
        assert filled.all()
        assert torch.equal(r["queue_labels"], r["labels"][r["queue_index"]])


def test_queue_ids_match_the_final_centres_after_fit(traced_fit):
    # partial_fit after fit pushes rows labelled by cluster_centers_ next to this queue and
    # mixes both in the CDR prototypes until its first re-clustering relabels the queue.
    _, est, _ = traced_fit
    q = est.net_.module_.queue
    by_centre = (q.features @ torch.as_tensor(est.cluster_centers_).T).argmax(dim=1)
    assert (q.labels >= 0).all() and torch.equal(q.labels, by_centre)


# ------------------------------------------------------------------ views

class _Recorder:
    """Identity augmentation that keeps every batch it is given."""

    def __init__(self):
        self.seen = []

    def __call__(self, x, generator):
        self.seen.append(x.clone())
        return x.clone()


def test_views_start_between_a_row_and_one_of_its_neighbours():
    # Pairs of rows 0.5 apart, pairs 10 apart: each row's nearest neighbour is its partner.
    base = np.repeat(np.arange(20.0) * 10.0, 2)
    X = np.stack([base + np.tile([0.0, 0.5], 20), np.zeros(40)], axis=1)
    params = {**SMALL, "batch_size": 16, "max_epochs": 2, "warmup_epochs": 1}
    for k in (1, 0):
        rec = _Recorder()
        with pytest.warns(UserWarning, match="optimiser steps"):
            PIPCDR(n_clusters=2, random_state=0, standardize=False, n_neighbors=k,
                   augmentation=rec, **params).fit(X)
        seen = torch.stack(rec.seen[1:]).numpy()  # [0] is the 2-row contract check
        assert seen.shape == (8, 16, 2)  # 2 epochs x 2 steps x 2 views
        offset = seen[..., 0] - 10.0 * np.floor(seen[..., 0] / 10.0)
        assert np.all(seen[..., 1] == 0.0)
        assert np.all((offset >= 0.0) & (offset <= 0.5 + 1e-6))  # on the pair's segment
        between = (offset > 1e-6) & (offset < 0.5 - 1e-6)
        if k:
            # Every anchor of both views moved off its row, each view drawing its own.
            assert between.all()
            assert not np.allclose(seen[0::2], seen[1::2])
        else:
            assert not between.any()
            assert np.array_equal(seen[0::2], seen[1::2])


def _views_of(X, **params):
    def run(trace):
        return PIPCDR(n_clusters=2, random_state=0, n_neighbors=0,
                      **{**TINY, "batch_size": 32, "max_epochs": 2, "warmup_epochs": 1,
                         "momentum": 0.5, **params}).fit(X)

    trace, est = _traced(run)
    x = torch.cat([torch.cat([st["x"], st["x"]]) for st in trace.steps])
    v = torch.cat([torch.cat([st["xa"], st["xb"]]) for st in trace.steps])
    return x, v, est


def test_named_augmentations_use_corruption_rate_and_noise_scale():
    X, _ = make_blobs(n_samples=256, centers=2, n_features=8, random_state=0)
    # "mask": entries set to 0 with probability corruption_rate, no noise.
    x, v, _ = _views_of(X, augmentation="mask", corruption_rate=0.4, noise_scale=0.0)
    changed = v != x
    assert torch.all(v[changed] == 0.0)
    assert float(changed.float().mean()) == pytest.approx(0.4, abs=0.03)
    # "noise": Gaussian noise of noise_scale standard deviations (1 after standardising).
    x, v, _ = _views_of(X, augmentation="noise", noise_scale=0.3)
    assert float((v - x).std()) == pytest.approx(0.3, rel=0.05)
    # "corruption": entries replaced by the same feature of a random training row.
    x, v, est = _views_of(X, augmentation="corruption", corruption_rate=0.6, noise_scale=0.0)
    Xs = est.net_.module_.standardize(torch.as_tensor(X, dtype=torch.float32))
    changed = v != x
    assert float(changed.float().mean()) == pytest.approx(0.6, abs=0.03)
    for j in range(X.shape[1]):
        assert torch.isin(v[:, j], Xs[:, j]).all()
    # "corruption" then noise.
    x, v, _ = _views_of(X, augmentation="corruption", corruption_rate=0.6, noise_scale=0.2)
    assert float((v != x).float().mean()) == 1.0


def _one(x, generator):
    return torch.ones_like(x)


def _minus_one(x, generator):
    return -torch.ones_like(x)


def _bad_shape(x, generator):
    return x[:, :1]


def _not_a_tensor(x, generator):
    return x.numpy()


def test_augmentation_callables_and_their_contract(blobs):
    X, _ = blobs
    # A pair draws view a with the first callable and view b with the second.
    x, v, _ = _views_of(X[:64], augmentation=(_one, _minus_one))
    halves = v.reshape(-1, 2, 32, X.shape[1])
    assert (halves[:, 0] == 1.0).all() and (halves[:, 1] == -1.0).all()
    with pytest.raises(ValueError, match="shape"):
        PIPCDR(n_clusters=3, augmentation=_bad_shape, **SMALL).fit(X)
    with pytest.raises(TypeError, match="torch.Tensor"):
        PIPCDR(n_clusters=3, augmentation=_not_a_tensor, **SMALL).fit(X)
    with pytest.raises(ValueError, match="pair of callables"):
        PIPCDR(n_clusters=3, augmentation=(_one,), **SMALL).fit(X)


def test_internal_standardisation(blobs):
    X, _ = blobs
    X = X * np.array([1.0, 50.0, 0.1, 1.0, 7.0, 1.0]) + 1000.0
    X32 = X.astype(np.float32)
    params = {**TINY, "batch_size": 64, "max_epochs": 2, "warmup_epochs": 1, "momentum": 0.5,
              "n_neighbors": 0}
    for standardize in (True, False):
        rec = _Recorder()
        est = PIPCDR(n_clusters=3, random_state=0, standardize=standardize, augmentation=rec,
                     **params).fit(X)
        mean = X32.astype(np.float64).mean(0) if standardize else np.zeros(6)
        scale = X32.astype(np.float64).std(0) if standardize else np.ones(6)
        assert np.allclose(est.mean_, mean, rtol=1e-6) and np.allclose(est.scale_, scale,
                                                                          rtol=1e-5)
        # The networks (through the augmentation) see standardised rows.
        Xs = torch.as_tensor((X32 - est.mean_) / est.scale_)
        seen = torch.cat(rec.seen[1:])
        dist = torch.cdist(seen.double(), Xs.double()).min(dim=1).values
        assert float(dist.max()) < 1e-4 * (1.0 if standardize else 1000.0)
        # transform is the unit-norm target embedding of the standardised rows.
        module = est.net_.module_
        with torch.no_grad():
            expected = F.normalize(module.target(Xs.float()), dim=1).numpy()
        assert np.allclose(est.transform(X), expected, atol=1e-5)


# ------------------------------------------------------------------ estimator

def test_fit_recovers_blobs(blobs):
    X, y = blobs
    est = PIPCDR(n_clusters=3, random_state=0, **SMALL).fit(X)
    assert adjusted_rand_score(y, est.labels_) >= 0.95
    assert np.array_equal(est.predict(X), est.labels_)
    Z = est.transform(X)
    assert Z.shape == (300, 8)
    assert np.allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    # The clusters are a spherical k-means of the target embeddings: each centre is the
    # normalised mean of its members, each row goes to the largest cosine.
    cos = Z @ est.cluster_centers_.T
    assert np.array_equal(est.labels_, cos.argmax(axis=1))
    for k in range(3):
        mean = Z[est.labels_ == k].sum(0)
        assert np.allclose(est.cluster_centers_[k], mean / np.linalg.norm(mean), atol=1e-4)
    # score = -sum(1 - max cos), the training inertia_ on the same data.
    assert est.score(X) == pytest.approx(-(1 - cos.max(axis=1)).sum(), rel=1e-4)
    assert est.score(X) < 0
    assert est.inertia_ == pytest.approx(-est.score(X), rel=1e-4)
    assert len(est.history_["train"]) == est.n_iter_ == 12


def test_min_steps_repeats_passes_within_each_epoch(blobs):
    X, _ = blobs
    # 300 rows, batch 64: 4 steps per pass; 3 epochs of one pass make 12 < 30 steps, so
    # each epoch makes ceil(30 / 12) = 3 passes (12 steps): 36 steps in 3 epochs, the
    # warm-up and the refresh schedule still counted in epochs.
    params = {**TINY, "batch_size": 64, "max_epochs": 3, "warmup_epochs": 1,
              "kmeans_every": 1}

    def run(trace):
        return PIPCDR(n_clusters=3, random_state=0, **{**params, "min_steps": 30}).fit(X)

    trace, est = _traced(run)
    assert est.n_iter_ == 3 and est._stream.step == 36 and len(trace.steps) == 36
    assert [st["cdr_weight"] > 0 for st in trace.steps] == [False] * 12 + [True] * 24
    assert [(r["epoch"], r["n_steps"]) for r in trace.refreshes] == [(1, 12), (2, 24)]
    assert est._stream.ramp_steps == 12  # partial_fit's ramp counts the warm-up's steps
    short = PIPCDR(n_clusters=3, random_state=0, **{**params, "min_steps": 12}).fit(X)
    assert short.n_iter_ == 3 and short._stream.step == 12


def test_same_seed_same_labels_and_pickle(blobs):
    X, _ = blobs
    params = {**SMALL, "max_epochs": 4}
    a = PIPCDR(n_clusters=3, random_state=1, queue_size=128, **params).fit(X)
    b = PIPCDR(n_clusters=3, random_state=1, queue_size=128, **params).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.transform(X), b.transform(X))
    c = pickle.loads(pickle.dumps(a))
    assert np.array_equal(c.predict(X), a.labels_)
    assert np.array_equal(c.transform(X), a.transform(X))
    assert torch.equal(c.net_.module_.queue.features, a.net_.module_.queue.features)


def test_warmup_must_be_shorter_than_training(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="warmup_epochs"):
        PIPCDR(n_clusters=3, **{**SMALL, "warmup_epochs": 12}).fit(X)


# ------------------------------------------------------------------ partial_fit

STREAM = dict(TINY, batch_size=32, warmup_epochs=2, kmeans_every=2, queue_size=256,
              sigma=0.05, cdr_weight=0.3, lr=0.1)


@pytest.fixture(scope="module")
def traced_stream(blobs):
    X, _ = blobs
    chunks = np.array_split(X, 5)  # 60 rows: 2 steps of 30 rows per call

    def run(trace):
        est = PIPCDR(n_clusters=3, random_state=0, **STREAM)
        snaps = []
        for i, chunk in enumerate(chunks):
            if i == 4:
                est.set_params(lr=0.05)
            prev = (est.cluster_centers_.copy(), est._stream.counts.clone()) if i else None
            target = copy.deepcopy(est.net_.module_.target).eval() if i else None
            est.partial_fit(chunk)
            trace.end_call()
            snaps.append(dict(prev=prev, centers=est.cluster_centers_.copy(),
                              counts=est._stream.counts.clone(), E=est.transform(chunk),
                              n_steps=len(trace.steps), n_reclusters=len(trace.reclusters),
                              queue=[b.clone() for b in est.net_.module_.queue.buffers()],
                              labels=est.labels_.copy(), target_before=target,
                              mean=est.mean_.copy(), scale=est.scale_.copy()))
        return est, snaps

    trace, (est, snaps) = _traced(run)
    return chunks, est, snaps, trace


def test_partial_fit_steps_lr_ramp_and_constant_momentum(traced_stream):
    _, est, _, trace = traced_stream
    assert [st["step"] for st in trace.steps] == list(range(10)) and est._stream.step == 10
    assert est.n_steps_ == 5 and est._stream.ramp_steps == 4  # warmup_epochs * 2 steps
    # Linear ramp over the first 4 steps, then lr; lr re-read at each call (0.05 at the 5th).
    expected = [0.1 * min(1.0, (s + 1) / 4) for s in range(8)] + [0.05, 0.05]
    assert [st["lr"] for st in trace.steps] == pytest.approx(expected, rel=1e-12)
    assert [st["pred_lr"] for st in trace.steps] == pytest.approx(
        [10.0 * v for v in expected], rel=1e-12)
    # The EMA moves every step at the constant momentum (no cosine schedule in streaming).
    assert [st["momentum"] for st in trace.steps] == [0.9] * 10
    assert max(st["ema_err"] for st in trace.steps) < 1e-6
    # PIP noise and CDR are off during the ramp.
    assert [st["sigma"] for st in trace.steps] == [0.0] * 4 + [0.05] * 6
    assert [st["cdr_weight"] for st in trace.steps] == [0.0] * 4 + [0.3] * 6


def test_partial_fit_running_moments_and_reservoir(traced_stream, blobs):
    X, _ = blobs
    _, est, _, _ = traced_stream
    X64 = X.astype(np.float32).astype(np.float64)
    assert np.allclose(est.mean_, X64.mean(0), rtol=1e-6)
    assert np.allclose(est.scale_, X64.std(0), rtol=1e-6)
    res = est._stream.reservoir
    assert res.seen == 300
    assert torch.equal(res.rows, torch.as_tensor(X, dtype=torch.float32))


def test_partial_fit_labels_chunks_by_the_current_centres(traced_stream):
    chunks, est, snaps, trace = traced_stream
    for i in range(1, 5):
        snap = snaps[i]
        # The chunk's pseudo-labels: nearest centre of the previous call, in the embedding
        # of the target as it stood before the call (standardised with the updated moments).
        target = snap["target_before"]
        x = torch.as_tensor(chunks[i], dtype=torch.float32)
        xs = (x - torch.as_tensor(snap["mean"])) / torch.as_tensor(snap["scale"])
        with torch.no_grad():
            E0 = F.normalize(target(xs), dim=1)
        labels = (E0 @ torch.as_tensor(snap["prev"][0]).T).argmax(dim=1)
        assert len(torch.unique(labels)) >= 2
        for st in trace.steps[snaps[i - 1]["n_steps"]:snap["n_steps"]]:
            assert torch.equal(st["labels"], labels[st["idx"]])


def test_partial_fit_updates_centres_online_between_reclusterings(traced_stream):
    _, _, snaps, trace = traced_stream
    assert [s["n_reclusters"] for s in snaps] == [0, 1, 1, 2, 2]  # every kmeans_every=2 calls
    for i in (2, 4):  # calls without re-clustering (the 3rd and 5th)
        snap = snaps[i]
        prev_c, prev_n = torch.as_tensor(snap["prev"][0]), snap["prev"][1]
        E = torch.as_tensor(snap["E"])
        labels = (E @ prev_c.T).argmax(dim=1)
        sums = torch.zeros_like(prev_c).index_add_(0, labels, E)
        expected = F.normalize(prev_c * prev_n[:, None] + sums, dim=1)
        assert np.allclose(snap["centers"], expected.numpy(), atol=1e-5)
        assert torch.allclose(snap["counts"], prev_n + torch.bincount(labels, minlength=3))
        assert not np.allclose(snap["centers"], snap["prev"][0], atol=1e-6)


def test_partial_fit_reclusters_the_reservoir_every_kmeans_every_calls(traced_stream):
    _, _, snaps, trace = traced_stream
    assert [r["n_rows"] for r in trace.reclusters] == [120, 240]  # the reservoir so far
    for r, i in zip(trace.reclusters, (1, 3)):
        snap = snaps[i]
        centers = torch.as_tensor(snap["centers"])
        # Ids stay those of the incoming centres, counts are scaled to the rows seen.
        current = (r["Z"] @ r["centers_in"].T).argmax(dim=1)
        assert float((r["labels"] == current).float().mean()) >= 0.9
        assert np.allclose(snap["centers"], spherical_kmeans(
            r["Z"], 3, generator=torch.Generator(), init=centers)[0].numpy(), atol=1e-5)
        assert float(snap["counts"].sum()) == pytest.approx(60 * (i + 1))
        # The queue's filled slots are relabelled by the new centres.
        features, labels, index = snap["queue"]
        filled = labels >= 0
        assert torch.equal(labels[filled], (features[filled] @ centers.T).argmax(dim=1))


def test_partial_fit_pushes_targets_with_their_chunk_labels_and_no_row_index(traced_stream):
    _, _, snaps, trace = traced_stream
    size, written = 256, 0
    for st in trace.steps:
        features, labels, index = st["queue_after"]
        pos = (written + torch.arange(60)) % size
        assert torch.equal(features[pos], st["t"])
        assert torch.equal(labels[pos], torch.cat([st["labels"], st["labels"]]))
        assert (index[pos] == -1).all()
        written += 60
        assert st["queue"] is not None  # the CDR loss is handed the queue
    _, labels, index = snaps[-1]["queue"]
    assert (labels >= 0).all() and (index == -1).all()  # 600 rows pushed into 256 slots


def test_partial_fit_labels_and_inertia_are_the_last_chunks(traced_stream):
    chunks, est, snaps, _ = traced_stream
    assert np.array_equal(est.labels_, est.predict(chunks[-1]))
    assert est.labels_.shape == (60,)
    assert est.inertia_ == pytest.approx(-est.score(chunks[-1]), rel=1e-4)


def test_partial_fit_over_chunks_recovers_blobs(blobs):
    X, y = blobs
    est = PIPCDR(n_clusters=3, random_state=0, **SMALL)
    for chunk in np.array_split(X, 5):
        est.partial_fit(chunk)
    assert est.n_steps_ == 5
    assert adjusted_rand_score(y, est.predict(X)) >= 0.95
    assert np.array_equal(est.labels_, est.predict(X[-60:]))


def test_partial_fit_reservoir_is_a_uniform_sample_capped_at_10000():
    rng = np.random.RandomState(0)
    X = np.hstack([np.arange(12_000.0)[:, None], rng.randn(12_000, 2)])
    est = PIPCDR(n_clusters=2, random_state=0, n_neighbors=0, kmeans_every=2,
                 **{**TINY, "n_init": 1, "batch_size": 4000, "warmup_epochs": 0})
    est.partial_fit(X[:6000])
    res = est._stream.reservoir
    assert res.seen == 6000 and torch.equal(res.rows, torch.as_tensor(X[:6000],
                                                                       dtype=torch.float32))
    est.partial_fit(X[6000:])
    res = est._stream.reservoir
    assert res.seen == 12_000 and res.rows.shape == (10_000, 3)
    ids = res.rows[:, 0].numpy().astype(int)
    assert len(np.unique(ids)) == 10_000
    # A uniform sample of 10,000 of 12,000 rows: each part keeps 5/6 of its rows
    # (hypergeometric, standard deviation about 20 rows).
    for lo, hi in ((0, 6000), (6000, 10_000), (10_000, 12_000)):
        kept = int(((ids >= lo) & (ids < hi)).sum())
        assert kept == pytest.approx((hi - lo) * 5 / 6, abs=100)
    # The re-clustering of the 2nd call counts the reservoir's clusters for all rows seen.
    assert float(est._stream.counts.sum()) == pytest.approx(12_000)


def _views_of_stream(chunks, **params):
    def run(trace):
        est = PIPCDR(n_clusters=2, random_state=0, n_neighbors=0, **params)
        calls = []
        for chunk in chunks:
            start = len(trace.steps)
            est.partial_fit(chunk)
            trace.end_call()
            calls.append(trace.steps[start:])
        return est, calls

    return _traced(run)[1]


def test_partial_fit_views_draw_from_the_reservoir():
    rng = np.random.RandomState(0)
    chunks = [rng.randn(64, 4), rng.randn(64, 4) + 3.0]
    est, calls = _views_of_stream(chunks, augmentation="corruption", corruption_rate=0.8,
                                  noise_scale=0.0, **{**TINY, "batch_size": 64})
    R = torch.as_tensor(np.vstack(chunks), dtype=torch.float32)
    Rs = (R - torch.as_tensor(est.mean_)) / torch.as_tensor(est.scale_)
    (st,) = calls[1]
    drawn = torch.cat([st["xa"], st["xb"]])[torch.cat([st["xa"] != st["x"],
                                                       st["xb"] != st["x"]])]
    first = Rs[:64].flatten()
    from_first = torch.isin(drawn, first)
    assert torch.isin(drawn, Rs.flatten()).all()
    # About half the replaced entries come from the first chunk's rows.
    assert float(from_first.float().mean()) == pytest.approx(0.5, abs=0.1)


def test_recluster_keeps_the_ids_of_the_current_centres():
    # A fake k-means: the warm start fits worse than a fresh run whose ids are permuted.
    Z = torch.eye(3).repeat_interleave(4, dim=0)
    current = torch.eye(3)
    perm = torch.tensor([2, 0, 1])

    def kmeans(Z, init=None, n_init=None):
        if init is not None:
            return init, (Z @ init.T).argmax(dim=1), 5.0
        return current[perm], torch.argsort(perm)[(Z @ current.T).argmax(dim=1)], 0.0

    centers, labels = recluster_stable_ids(Z, current, kmeans, 3)
    assert torch.equal(centers, current)
    assert torch.equal(labels, torch.arange(3).repeat_interleave(4))


def test_partial_fit_continues_after_fit_and_fit_starts_over(blobs):
    X, y = blobs
    params = {**SMALL, "max_epochs": 6}
    est = PIPCDR(n_clusters=3, random_state=0, kmeans_every=1, queue_size=64,
                 **params).fit(X)
    net, steps, fit_labels = est.net_, est._stream.step, est.labels_.copy()
    assert est._stream.reservoir.seen == 300 and est._stream.ramp_steps == 2 * 4

    def run(trace):
        est.partial_fit(X[:100])
        trace.end_call()

    trace, _ = _traced(run)
    assert est.net_ is net and est.n_steps_ == 1
    assert est._stream.step == steps + 2  # ceil(100 / 64) optimiser steps
    assert [st["step"] for st in trace.steps] == [steps, steps + 1]
    # Past the ramp: full lr, constant momentum, PIP noise and CDR on.
    assert [st["lr"] for st in trace.steps] == [0.2, 0.2]
    assert [st["momentum"] for st in trace.steps] == [0.9, 0.9]
    assert all(st["cdr_weight"] == 0.03 for st in trace.steps)
    # kmeans_every=1: the reservoir (the fit's 300 rows plus 100) is re-clustered with
    # the fitted ids kept.
    assert [r["n_rows"] for r in trace.reclusters] == [400]
    assert float((est.predict(X) == fit_labels).mean()) >= 0.95
    assert adjusted_rand_score(y, est.predict(X)) >= 0.95
    est.fit(X)
    assert est.net_ is not net and est.n_steps_ == 0


def test_partial_fit_contract(blobs):
    X, _ = blobs
    est = PIPCDR(n_clusters=3, random_state=0, **SMALL).partial_fit(X[:60])
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:60, :4])
    with pytest.raises(ValueError, match="n_clusters"):
        PIPCDR(n_clusters=3, **SMALL).partial_fit(X[:2])
    runs = []
    for _ in range(2):
        est = PIPCDR(n_clusters=3, random_state=5, **SMALL)
        for chunk in np.array_split(X, 3):
            est.partial_fit(chunk)
        runs.append(est.predict(X))
    assert np.array_equal(runs[0], runs[1])


def test_auto_batch_is_64_rows_at_any_size_and_fitted_moments_are_copies(blobs):
    X, _ = blobs
    est = PIPCDR(n_clusters=3, random_state=0, **{**SMALL, "batch_size": "auto"}).fit(X)
    assert est.net_.batch_size == 64  # 300 rows: no shrinking, more passes instead
    mean, scale = est.mean_, est.scale_
    before = mean.copy(), scale.copy()
    est.partial_fit(X[:50] + 10.0)  # moves the running moments held by the module
    np.testing.assert_array_equal(mean, before[0])
    np.testing.assert_array_equal(scale, before[1])
    assert not np.array_equal(est.mean_, before[0])
