"""The skorch layer: slicing iterator, unsupervised net, phases, callbacks, custom-step nets.

Every mechanism is checked on tiny modules with values worked out by hand, so that a test
fails when the mechanism is switched off.
"""

import math

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, GradientNormClipping
from torch import nn

from skdeepclust._training import (
    AdversarialNet,
    AlternatingNet,
    ClusterSpecificCriterion,
    ClusterSpecificNet,
    EmbeddingRefresh,
    EveryNEpochs,
    IndexedTensorDataset,
    KMeansRefresh,
    NeighborRefresh,
    SliceIterator,
    StopTraining,
    TeacherStudentNet,
    TwoViewNet,
    UnsupervisedNet,
    batched_apply,
    continue_phase,
    evaluating,
    loss_history,
    passes_for,
    small_data_batch_size,
    stop_phase,
    train_phase,
)
from skdeepclust.exceptions import TrainingDivergedError
from skdeepclust.losses import cluster_specific_loss, fuzzy_centers, fuzzy_memberships
from skdeepclust.nn import MLPAutoencoder


class MeanSquare(nn.Module):
    """Criterion that records the indices it saw."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, y_pred, index, X):
        self.seen.append(index.clone())
        return y_pred.pow(2).mean()


def _linear(n_in=3, n_out=2):
    torch.manual_seed(0)
    return nn.Linear(n_in, n_out)


def _scalar(value):
    """``x -> value * x`` on one feature, without bias."""
    lin = nn.Linear(1, 1, bias=False)
    nn.init.constant_(lin.weight, value)
    return lin


def _train(module=None, criterion=None, X=None, **kwargs):
    params = dict(epochs=1, batch_size=4, lr=0.1, generator=torch.Generator().manual_seed(0),
                  phase="p")
    params.update(kwargs)
    return train_phase(_linear() if module is None else module,
                       MeanSquare() if criterion is None else criterion,
                       torch.zeros(4, 3) if X is None else X, **params)


# ------------------------------------------------------------------ SliceIterator


def test_slice_iterator_covers_every_row_once_per_epoch():
    X = torch.arange(20.0).reshape(10, 2)
    it = SliceIterator(IndexedTensorDataset(X, torch.Generator().manual_seed(0)), 4, shuffle=True)
    assert len(it) == 3
    batches = list(it)
    assert [len(idx) for _, idx in batches] == [4, 4, 2]
    idx = torch.cat([i for _, i in batches])
    assert sorted(idx.tolist()) == list(range(10))
    assert not torch.equal(idx, torch.arange(10))  # shuffled
    for xb, ib in batches:
        assert torch.equal(xb, X[ib])


def test_slice_iterator_shuffles_repeat_with_the_seed_and_differ_between_epochs():
    X = torch.arange(40.0).reshape(20, 2)

    def orders(seed):
        it = SliceIterator(IndexedTensorDataset(X, torch.Generator().manual_seed(seed)), 8,
                           shuffle=True)
        return [torch.cat([i for _, i in it]) for _ in range(2)]

    a, b = orders(3), orders(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])


def test_slice_iterator_without_shuffle_is_in_order_and_drop_last():
    X = torch.zeros(10, 1)
    it = SliceIterator(IndexedTensorDataset(X), 4, shuffle=False, drop_last=True)
    assert len(it) == 2
    assert [i.tolist() for _, i in it] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # a single short batch is never dropped
    only = SliceIterator(IndexedTensorDataset(X), 32, drop_last=True)
    assert len(only) == 1 and [len(i) for _, i in only] == [10]


def test_slice_iterator_merges_a_last_singleton_into_the_batch_before():
    X = torch.zeros(9, 1)
    it = SliceIterator(IndexedTensorDataset(X), 4, merge_singleton=True)
    assert len(it) == 2
    assert [i.tolist() for _, i in it] == [[0, 1, 2, 3], [4, 5, 6, 7, 8]]
    # only a singleton is merged: a last batch of two rows stays on its own
    it = SliceIterator(IndexedTensorDataset(torch.zeros(10, 1)), 4, merge_singleton=True)
    assert [len(i) for _, i in it] == [4, 4, 2]
    # one row in all is one batch
    assert [len(i) for _, i in SliceIterator(IndexedTensorDataset(X[:1]), 4,
                                             merge_singleton=True)] == [1]


def test_slice_iterator_passes_repeat_shuffled_passes_and_a_callable_is_asked_each_epoch():
    X = torch.arange(6.0)[:, None]
    it = SliceIterator(IndexedTensorDataset(X, torch.Generator().manual_seed(0)), 4,
                       shuffle=True, passes=3)
    assert len(it) == 6
    batches = [i for _, i in it]
    assert len(batches) == 6
    passes = [torch.cat(batches[2 * p:2 * p + 2]) for p in range(3)]
    for p in passes:  # each pass covers every row once
        assert sorted(p.tolist()) == list(range(6))
    assert not (torch.equal(passes[0], passes[1]) and torch.equal(passes[1], passes[2]))
    passes = [1]
    it = SliceIterator(IndexedTensorDataset(X), 4, passes=lambda: passes[0])
    assert len(list(it)) == 2
    passes[0] = 2  # e.g. a net whose passes depend on the phase
    assert len(it) == 4 and len(list(it)) == 4


def test_net_passes_per_epoch_multiply_the_updates():
    class TwoPasses(UnsupervisedNet):
        def passes_per_epoch(self):
            return 2

    criterion = MeanSquare()
    net = _train(criterion=criterion, X=torch.zeros(10, 3), epochs=1, net_class=TwoPasses)
    assert net.history[0, "train_batch_count"] == 6
    assert sorted(torch.cat(criterion.seen).tolist()) == sorted(list(range(10)) * 2)


# --------------------------------------------------------------- UnsupervisedNet, phases


def test_train_phase_history_is_the_size_weighted_mean_of_batch_losses():
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    criterion = MeanSquare()
    module = _linear()
    net = train_phase(module, criterion, X, epochs=2, batch_size=4, lr=0.0,
                      generator=torch.Generator().manual_seed(0), phase="test")
    assert len(net.history) == 2 and net.epochs_completed_ == 2
    assert [len(i) for i in criterion.seen[:3]] == [4, 4, 2]
    # lr=0: the weights never change, so the epoch loss is computable directly
    with torch.no_grad():
        per_row = module(X).pow(2).mean(dim=1)
    batch_losses = [float(per_row[i].mean()) for i in criterion.seen[:3]]
    expected = sum(v * len(i) for v, i in zip(batch_losses, criterion.seen[:3])) / 10
    assert loss_history(net)[0] == pytest.approx(expected, rel=1e-6)
    assert net.history[0, "train_batch_count"] == 3
    rows = net.history[0, "batches"]
    assert [r["train_batch_size"] for r in rows] == [4, 4, 2]
    np.testing.assert_allclose([r["train_loss"] for r in rows], batch_losses, rtol=1e-6)


def test_train_phase_zero_epochs_builds_an_initialised_net():
    net = _train(epochs=0)
    assert net.initialized_ and len(net.history) == 0 and net.epochs_completed_ == 0


def test_stop_phase_ends_training_early_without_an_error():
    def stop_after_two(net, epoch):
        if epoch == 2:
            stop_phase(net)

    net = _train(epochs=10, callbacks=[EveryNEpochs(stop_after_two, 1, at_start=False)])
    assert net.stopped_early_ and not net.interrupted_
    assert len(net.history) == 2 and net.epochs_completed_ == 2


def test_non_finite_loss_names_phase_epoch_and_remedy():
    class Explodes(nn.Module):
        def forward(self, y_pred, index, X):
            return y_pred.sum() * float("nan")

    with pytest.raises(TrainingDivergedError, match=r"The cluster loss became nan at epoch 1.*"
                                                      r"do this"):
        _train(criterion=Explodes(), X=torch.ones(4, 3), epochs=3, batch_size=2,
               phase="cluster", remedy="do this")


def test_keyboard_interrupt_in_a_batch_is_re_raised():
    class Interrupts(nn.Module):
        def forward(self, y_pred, index, X):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(criterion=Interrupts(), X=torch.ones(4, 3), epochs=3, batch_size=2)


def test_keyboard_interrupt_in_a_callback_between_epochs_is_re_raised():
    class InterruptBeforeEpoch2(Callback):
        def on_epoch_begin(self, net, **kwargs):
            if net.epochs_completed_ == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="during the p phase"):
        _train(epochs=3, callbacks=[InterruptBeforeEpoch2()])


def test_net_records_interrupts_and_counts_only_completed_epochs():
    class InterruptAt(nn.Module):
        def __init__(self, exc, at):
            super().__init__()
            self.exc, self.at, self.calls = exc, at, 0

        def forward(self, y_pred, index, X):
            self.calls += 1
            if self.calls == self.at:
                raise self.exc
            return y_pred.pow(2).mean()

    X = torch.zeros(4, 3)
    for exc, interrupted in [(KeyboardInterrupt, True), (StopTraining, False)]:
        net = _train(criterion=InterruptAt(exc, at=4), X=X, epochs=0, batch_size=2)
        net.partial_fit(IndexedTensorDataset(X, torch.Generator()), None, epochs=3)  # swallows
        assert net.interrupted_ is interrupted
        assert len(net.history) == 2 and net.epochs_completed_ == 1


def test_progress_bar_only_when_verbose(capfd):
    _train(epochs=2, verbose=0, phase="quietphase")
    assert "quietphase" not in capfd.readouterr().err
    _train(epochs=2, verbose=1, phase="loudphase")
    err = capfd.readouterr().err
    assert "loudphase" in err and "2/2" in err and "loss=" in err


def test_batched_apply_matches_one_call_and_runs_without_grad():
    module = _linear(3, 2)
    X = torch.randn(10, 3)
    calls = []
    out = batched_apply(lambda x: calls.append(len(x)) or module(x), X, batch_size=3)
    assert calls == [3, 3, 3, 1]
    assert not out.requires_grad
    np.testing.assert_allclose(out.numpy(), module(X).detach().numpy(), rtol=1e-6, atol=1e-7)
    assert batched_apply(module, X[:0]).shape == (0, 2)


def test_evaluating_switches_to_eval_and_restores_each_mode():
    a, b = nn.Dropout(), nn.Dropout()
    b.eval()
    with evaluating(a, b):
        assert not a.training and not b.training
    assert a.training and not b.training
    with pytest.raises(RuntimeError), evaluating(a):
        raise RuntimeError
    assert a.training


def test_trained_net_pickles_although_its_phase_used_closures():
    import pickle

    cb = EveryNEpochs(lambda net, epoch: None, every=1)  # a lambda cannot be pickled
    net = _train(epochs=2, callbacks=[cb], verbose=1)
    restored = pickle.loads(pickle.dumps(net))
    assert len(restored.history) == 2


@pytest.mark.parametrize("n, batch_size, expected", [
    (10_000, 256, 256), (7680, 256, 256), (7679, 256, 256), (7000, 256, 234),
    (1797, 256, 60), (5000, 100, 100), (150, 256, 32), (20, 256, 20), (150, 16, 16),
])
def test_small_data_batch_size_gives_30_updates_per_epoch_down_to_32_rows(n, batch_size,
                                                                          expected):
    chosen = small_data_batch_size(n, batch_size)
    assert chosen == expected
    if chosen < batch_size and chosen > 32:
        assert math.ceil(n / chosen) >= 30


@pytest.mark.parametrize("batches, min_updates, expected",
                         [(3, 30, 10), (7, 30, 5), (30, 30, 1), (40, 30, 1), (0, 30, 30),
                          (4, 0, 1)])
def test_passes_for_makes_at_least_min_updates(batches, min_updates, expected):
    assert passes_for(batches, min_updates) == expected


# ------------------------------------------------------------------- continue_phase


def _adam_net(epochs, X, gen):
    torch.manual_seed(0)
    return train_phase(nn.Linear(3, 2), MeanSquare(), X, epochs=epochs, batch_size=4, lr=0.05,
                       generator=gen, phase="p")


def test_continue_phase_keeps_weights_optimiser_state_and_history():
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    whole = _adam_net(5, X, torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(1)
    net = _adam_net(2, X, gen)
    optimizer = net.optimizer_
    continue_phase(net, X, 3, generator=gen, phase="more")
    # Resetting Adam's moments (or the weights) would change every later step.
    assert net.optimizer_ is optimizer
    for p, q in zip(net.module_.parameters(), whole.module_.parameters()):
        torch.testing.assert_close(p, q)
    assert net.epochs_completed_ == 5 and len(net.history) == 5
    np.testing.assert_allclose(loss_history(net), loss_history(whole), rtol=1e-6)
    # Zero epochs change nothing.
    assert continue_phase(net, X, 0, generator=gen, phase="none").epochs_completed_ == 5


def test_continue_phase_takes_a_new_batch_size_and_its_own_callbacks():
    net = _train(X=torch.zeros(8, 3), epochs=1, batch_size=4)
    calls = []
    continue_phase(net, torch.zeros(8, 3), 2, generator=torch.Generator(), phase="more",
                   batch_size=2, callbacks=[EveryNEpochs(lambda n, e: calls.append(e), 1)])
    assert [net.history[i, "train_batch_count"] for i in range(3)] == [2, 4, 4]
    assert calls == [1, 2]  # counted within the continued phase


def test_continue_phase_keeps_the_remedy_of_its_phase():
    class NaNAfterFirstEpoch(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, y_pred, index, X):
            self.calls += 1
            return y_pred.pow(2).mean() * (1.0 if self.calls <= 1 else float("nan"))

    net = _train(criterion=NaNAfterFirstEpoch(), epochs=1, remedy="try this")
    with pytest.raises(TrainingDivergedError, match=r"more loss became nan at epoch 2.*try this"):
        continue_phase(net, torch.zeros(4, 3), 2, generator=torch.Generator(), phase="more")


# ------------------------------------------------------------------- EveryNEpochs


def _schedule(epochs, **kwargs):
    calls = []
    _train(epochs=epochs, callbacks=[EveryNEpochs(lambda net, e: calls.append(e), **kwargs)])
    return calls


@pytest.mark.parametrize("kwargs, epochs, expected", [
    (dict(every=3), 7, [1, 4, 7]),
    (dict(every=3, at_start=False), 7, [3, 6]),
    (dict(every=2, first=3), 9, [3, 5, 7, 9]),
    (dict(every=2, first=3, last=7), 9, [3, 5, 7]),
    (dict(every=3, at_start=False, first=0), 7, [0, 3, 6]),
    (dict(every=2, at_start=False, first=1, last=4), 7, [1, 3]),
    (dict(every=1, first=10), 5, []),
])
def test_every_n_epochs_runs_at_the_right_epochs(kwargs, epochs, expected):
    assert _schedule(epochs, **kwargs) == expected


def test_every_n_epochs_counts_from_the_start_of_a_continued_phase():
    net = _train(epochs=2)
    before, after = [], []
    continue_phase(net, torch.zeros(4, 3), 4, generator=torch.Generator(), phase="more",
                   callbacks=[EveryNEpochs(lambda n, e: before.append(e), every=2),
                              EveryNEpochs(lambda n, e: after.append(e), every=2,
                                           at_start=False)])
    assert before == [1, 3] and after == [2, 4]


# ------------------------------------------------------------ refresh callbacks


class _Refresh(EmbeddingRefresh):
    def __init__(self, *args, weight, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight = weight
        self.grads = []

    def refresh(self, net, epoch, Z):
        # A target built from Z enters autograd: Z must not be an inference tensor.
        (Z * self.weight).sum().backward()
        self.grads.append(float(self.weight.grad))
        self.weight.grad = None


def test_embedding_refresh_embeds_in_eval_mode_and_returns_a_normal_tensor():
    module = nn.Dropout(p=0.5)
    modes = []

    def embed(x):
        modes.append(module.training)
        return module(x)

    X = torch.ones(5, 2)
    cb = _Refresh(X, embed, every=2, modules=[module], weight=torch.tensor(1.0,
                                                                          requires_grad=True))
    _train(epochs=3, callbacks=[cb])
    # refreshes before epochs 1 and 3; eval mode: no dropout, so the gradient is sum(X) = 10
    assert modes == [False, False] and cb.grads == [10.0, 10.0]
    assert module.training


def test_neighbor_refresh_hands_the_current_neighbours_and_a_new_seed_each_time(monkeypatch):
    import skdeepclust.neighbors as neighbors

    seeds = []
    real = neighbors.kneighbors

    def spy(Z, n_neighbors, random_state=None, **kwargs):
        seeds.append(random_state)
        return real(Z, n_neighbors, random_state, **kwargs)

    monkeypatch.setattr(neighbors, "kneighbors", spy)
    module = _scalar(1.0)
    X = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    got = []

    def fn(net, epoch, Z, distances, indices):
        got.append((epoch, Z.clone(), distances.clone(), indices.clone()))
        with torch.no_grad():
            module.weight.mul_(2.0)  # the next refresh must see the new embedding

    cb = NeighborRefresh(fn, X, module, n_neighbors=2, every=2, random_state=5)
    _train(module=nn.Linear(3, 2), epochs=4, callbacks=[cb])
    assert [g[0] for g in got] == [1, 3] and seeds == [5, 6]
    (_, Z1, d1, i1), (_, Z3, d3, _) = got
    torch.testing.assert_close(Z1, X)
    assert i1.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    torch.testing.assert_close(d1, torch.tensor([[1.0, 3.0], [1.0, 2.0], [2.0, 3.0],
                                                 [4.0, 6.0]]))
    torch.testing.assert_close(Z3, 2 * X)
    torch.testing.assert_close(d3, 2 * d1)


def _scripted_kmeans(labelings):
    labelings = iter(labelings)
    return lambda Z: torch.tensor(next(labelings))


def test_kmeans_refresh_matches_clusters_and_stops_after_n_iter_no_change_below_tol():
    # Changes after matching: 1 of 4 labels, then a renamed but identical clustering (0),
    # then the same (0): two refreshes in a row below tol stop the phase after epoch 4.
    labelings = [[0, 0, 1, 1], [0, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0],
                 [1, 1, 0, 0]]
    received = []
    cb = KMeansRefresh(torch.zeros(4, 3), nn.Identity(), _scripted_kmeans(labelings),
                       lambda net, labels: received.append(labels.tolist()), 2, tol=0.1,
                       n_iter_no_change=2)
    net = _train(epochs=10, callbacks=[cb])
    assert cb.label_change_ == [0.25, 0.0, 0.0]
    assert cb.converged_ and net.stopped_early_ and len(net.history) == 4
    assert received == labelings[:4] and cb.labels_.tolist() == labelings[3]


def test_kmeans_refresh_without_tol_never_stops():
    cb = KMeansRefresh(torch.zeros(4, 3), nn.Identity(), _scripted_kmeans([[0, 0, 1, 1]] * 5),
                       lambda net, labels: None, 2)
    net = _train(epochs=5, callbacks=[cb])
    assert cb.label_change_ == [0.0] * 4 and not cb.converged_ and len(net.history) == 5


# ---------------------------------------------------- alternating players (one step each)


class _Players(nn.Module):
    """Main loss ``partner(a x)``, partner loss ``partner(a x)^2 / 2`` with ``a x`` detached.

    Records whether the partner could be trained while each loss was built.
    """

    def __init__(self, role):
        super().__init__()
        self.partner_trainable = {"main": [], role: []}
        setattr(self, f"{role}_loss", self._partner_loss)
        self.role = role

    def forward(self, y_pred, index, X, partner):
        self.partner_trainable["main"].append(partner.weight.requires_grad)
        return partner(y_pred).mean()

    def _partner_loss(self, y_pred, index, X, partner):
        self.partner_trainable[self.role].append(partner.weight.requires_grad)
        return 0.5 * partner(y_pred.detach()).pow(2).mean()


def _alternate(net_class, role, X, lr=0.1, callbacks=(), **kwargs):
    module, partner, crit = _scalar(2.0), _scalar(3.0), _Players(role)
    net = train_phase(module, crit, X, epochs=1, batch_size=1, lr=lr,
                      generator=torch.Generator(), phase="p", optimizer=torch.optim.SGD,
                      net_class=net_class, partner=partner, callbacks=callbacks, **kwargs)
    return net, float(module.weight.detach()), float(partner.weight.detach()), crit


@pytest.mark.parametrize("net_class, role", [(AlternatingNet, "partner"),
                                             (AdversarialNet, "critic"),
                                             (TeacherStudentNet, "student")])
def test_alternating_net_one_step_of_each_player_by_hand(net_class, role):
    # a = 2, b = 3, x = 1. Module step (partner frozen, gradient through it):
    # d(b a x)/da = b = 3 -> a = 2 - 0.1 * 3 = 1.7.
    # Partner step on (b y)^2 / 2 with y = a_old x = 2 detached: d/db = b y^2 = 12
    # -> b = 3 - 0.1 * 12 = 1.8. (Partner first would give a = 2 - 0.1 * 1.8 = 1.82.)
    net, a, b, crit = _alternate(net_class, role, torch.ones(1, 1))
    assert a == pytest.approx(1.7) and b == pytest.approx(1.8)
    assert crit.partner_trainable == {"main": [False], role: [True]}
    assert net.history[0, "train_loss"] == pytest.approx(6.0)
    assert net.history[0, f"train_{role}_loss"] == pytest.approx(18.0)
    assert net.partner_.weight.requires_grad  # unfrozen after the step


def test_alternating_net_partner_lr_and_per_epoch_mean_partner_loss():
    # lr 0 for the module; partner at 0.01: b = 3 - 0.01 * 12 = 2.88 after one row
    _, a, b, _ = _alternate(AlternatingNet, "partner", torch.ones(1, 1), lr=0.0,
                            partner_lr=0.01)
    assert a == 2.0 and b == pytest.approx(2.88)
    # lr 0: partner losses (3 * 2 * x)^2 / 2 = 18 and 72 for x = 1, 2: their mean is 45
    net, _, _, _ = _alternate(TeacherStudentNet, "student", torch.tensor([[1.0], [2.0]]),
                              lr=0.0)
    assert net.history[0, "train_student_loss"] == pytest.approx(45.0)
    assert net.history[0, "train_loss"] == pytest.approx(9.0)


class _Alone(nn.Module):
    """Main loss ``a x``; it must be called without a partner."""

    def forward(self, y_pred, index, X, partner):
        assert partner is None
        return y_pred.mean()


def test_alternating_net_without_partner_makes_the_module_step_only():
    # Loss b a x with a = 2, b = 5 frozen, x = 1: d/da = 5 -> a = 2 - 0.1 * 5; b stays out of
    # the optimiser and no student step is made.
    module = nn.Sequential(_scalar(2.0), _scalar(5.0))
    module[1].weight.requires_grad_(False)
    net = train_phase(module, _Alone(), torch.ones(1, 1), epochs=1, batch_size=1, lr=0.1,
                      generator=torch.Generator(), phase="p", optimizer=torch.optim.SGD,
                      net_class=TeacherStudentNet, partner=None)
    assert float(module[0].weight) == pytest.approx(1.5)
    assert float(module[1].weight) == 5.0
    assert [p for g in net.optimizer_.param_groups for p in g["params"]] == [module[0].weight]
    assert "train_student_loss" not in net.history[0]


def test_gradient_clipping_sees_the_gradients_of_both_players():
    # Gradients 3 (module) and 12 (partner) are clipped to norm 0.5 each:
    # a = 2 - 0.1 * 0.5, b = 3 - 0.1 * 0.5
    seen = []

    class Record(Callback):
        def on_grad_computed(self, net, named_parameters, **kwargs):
            seen.append([(n, float(p.grad)) for n, p in named_parameters])

    _, a, b, _ = _alternate(TeacherStudentNet, "student", torch.ones(1, 1),
                            callbacks=[GradientNormClipping(0.5), Record()])
    assert a == pytest.approx(1.95) and b == pytest.approx(2.95)
    assert [[n for n, _ in s] for s in seen] == [["weight"], ["weight"]]
    assert [g for s in seen for _, g in s] == pytest.approx([0.5, 0.5])


# ----------------------------------------------------------- cluster-specific updates


def _autoencoder_1d(scale):
    """Encoder ``z = scale * x``, decoder ``x_hat = z / scale``."""
    ae = MLPAutoencoder(1, (), 1)
    for lin, w in ((ae.encoder[0], scale), (ae.decoder[0], 1.0 / scale)):
        nn.init.constant_(lin.weight, w)
        nn.init.zeros_(lin.bias)
    return ae


class _RecordUpdates(Callback):
    """After each update's backward: the cluster k and which networks got a gradient."""

    def __init__(self):
        self.updates = []
        self.weights = []
        self.centers = []

    def on_grad_computed(self, net, named_parameters, **kwargs):
        list(named_parameters)
        got = [any(p.grad is not None and bool(p.grad.abs().sum() > 0)
                   for p in ae.parameters()) for ae in net.networks()]
        self.updates.append((net.criterion_.k, got))

    def on_batch_end(self, net, **kwargs):
        self.weights.append(net.criterion_.weights.clone())

    def on_epoch_end(self, net, **kwargs):
        self.centers.append(net.criterion_.centers.clone())


def _cluster_specific(module, centers, X, *, epochs=1, lr=0.1, batch_size=None, **kwargs):
    rec = _RecordUpdates()
    crit = ClusterSpecificCriterion(torch.tensor(centers), fuzziness=1.5, centering_weight=0.5)
    net = train_phase(module, crit, X, epochs=epochs, lr=lr,
                      batch_size=X.shape[0] if batch_size is None else batch_size,
                      generator=torch.Generator().manual_seed(0), phase="p",
                      optimizer=torch.optim.SGD, net_class=ClusterSpecificNet, callbacks=[rec],
                      **kwargs)
    return net, rec


def test_cluster_specific_net_each_update_moves_only_its_clusters_network():
    module = nn.ModuleList([_autoencoder_1d(1.0), _autoencoder_1d(2.0)])
    X = torch.tensor([[0.5], [1.0], [2.0], [3.0]])
    _, rec = _cluster_specific(module, [[0.0], [1.0], [4.0]], X, batch_size=2,
                               cluster_to_network=[1, 0, 1])
    # K = 3 updates per batch, in cluster order, each with a gradient in map[k] only
    expected = [(0, [False, True]), (1, [True, False]), (2, [False, True])]
    assert rec.updates == expected * 2


def test_cluster_specific_net_memberships_use_each_clusters_own_space():
    # Network 0 embeds x = 1 at 1, network 1 at 10. Centres 0 and 10 with map [0, 1]:
    # D = (1, 0) -> p = (0, 1). Read in network 0's space D would be (1, 81): p ~ (1, 0).
    module = nn.ModuleList([_autoencoder_1d(1.0), _autoencoder_1d(10.0)])
    net, rec = _cluster_specific(module, [[0.0], [10.0]], torch.ones(1, 1), lr=0.0,
                                 cluster_to_network=[0, 1])
    U = net.cluster_space(torch.ones(1, 1))
    assert U.shape == (1, 2, 1) and U.flatten().tolist() == [1.0, 10.0]
    assert rec.weights[0][0, 1] > 0.999 and rec.weights[0][0, 0] < 1e-3
    # Another map: cluster 0 in network 1's space (D = 100), cluster 1 in network 0's (81):
    # p proportional to D^-2: p_0 = 81^2 / (81^2 + 100^2)
    net, rec = _cluster_specific(module, [[0.0], [10.0]], torch.ones(1, 1), lr=0.0,
                                 cluster_to_network=[1, 0])
    assert net.cluster_space(torch.ones(1, 1)).flatten().tolist() == [10.0, 1.0]
    p0 = 81.0**2 / (81.0**2 + 100.0**2)
    torch.testing.assert_close(rec.weights[0], torch.tensor([[p0, 1 - p0]]) ** 1.5)


def test_cluster_specific_net_refreshes_centres_after_epochs_1_T_plus_1_in_own_spaces():
    module = nn.ModuleList([_autoencoder_1d(1.0), _autoencoder_1d(10.0)])
    X = torch.tensor([[0.0], [1.0], [9.0], [10.0]])
    c0 = torch.tensor([[2.0], [70.0]])
    net, rec = _cluster_specific(module, c0.tolist(), X, epochs=5, lr=0.0,
                                 cluster_to_network=[0, 1], center_update_interval=2)
    U = torch.stack([X, 10 * X], dim=1)  # cluster 0 in network 0's space, 1 in network 1's
    c1 = fuzzy_centers(U, c0, 1.5)
    c3 = fuzzy_centers(U, c1, 1.5)
    c5 = fuzzy_centers(U, c3, 1.5)
    assert float(c1[1, 0]) > 80  # cluster 1's centre lives in the scaled space
    expected = [c1, c1, c3, c3, c5]
    for got, want in zip(rec.centers, expected):
        torch.testing.assert_close(got, want)
    assert not torch.equal(c1, c3)


def test_cluster_specific_net_loss_is_the_mean_of_the_k_updates_and_history_their_terms():
    module = _autoencoder_1d(1.0)
    nn.init.constant_(module.decoder[0].weight, 0.5)  # x_hat = x / 2
    X = torch.tensor([[1.0], [2.0], [4.0]])
    centers = torch.tensor([[0.0], [3.0]])
    net, rec = _cluster_specific(module, centers.tolist(), X, lr=0.0,
                                 center_update_interval=100)
    assert [k for k, _ in rec.updates] == [0, 1]  # one network: every update moves it
    assert all(got == [True] for _, got in rec.updates)
    w = fuzzy_memberships(X, centers, 1.5) ** 1.5
    terms = [cluster_specific_loss(X, X / 2, X, centers[k], w[:, k], 0.5) for k in range(2)]
    assert net.history[0, "train_loss"] == pytest.approx(float(sum(t[0] for t in terms)) / 2)
    assert net.history[0, "reconstruction"] == pytest.approx(float(sum(t[1] for t in terms)) / 2)
    assert net.history[0, "centering"] == pytest.approx(float(sum(t[2] for t in terms)) / 2)


# ------------------------------------------------------------------------ two views


class _RecordInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 1)
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.lin(x)


class _RecordBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, y_pred, index, X):
        self.batches.append((index.clone(), X.clone(), y_pred.shape[0]))
        return y_pred.pow(2).mean()


def test_two_view_net_forwards_both_views_as_one_batch_and_drops_a_short_last_batch():
    X = torch.arange(9.0)[:, None]
    module, crit = _RecordInput(), _RecordBatch()
    net = train_phase(module, crit, X, epochs=0, batch_size=4, lr=0.0,
                      generator=torch.Generator().manual_seed(0), phase="p",
                      net_class=TwoViewNet)
    net.make_views = lambda x, idx: (x + 100, x - 100)
    continue_phase(net, X, 1, generator=torch.Generator().manual_seed(0), phase="views")
    assert len(crit.batches) == 2  # 9 rows at 4: the last row is dropped
    for (idx, X2, n_out), seen in zip(crit.batches, module.inputs):
        assert len(idx) == 4 and n_out == 8
        torch.testing.assert_close(X2, torch.cat([X[idx] + 100, X[idx] - 100]))
        torch.testing.assert_close(seen, X2)  # one forward pass over both views
    # A continuation attaches its own views.
    net.make_views = lambda x, idx: (torch.zeros_like(x), torch.ones_like(x))
    continue_phase(net, X, 1, generator=torch.Generator(), phase="views")
    assert module.inputs[-1].flatten().tolist() == [0.0] * 4 + [1.0] * 4
    # Inference sees the rows themselves, once.
    net.make_views = None
    module.inputs.clear()
    out = net.forward(IndexedTensorDataset(X))
    assert out.shape == (9, 1) and torch.equal(torch.cat(module.inputs), X)


@pytest.mark.parametrize("stop_before, expected", [(1, 0), (3, 2)])
def test_a_phase_stopped_before_an_epoch_reports_only_the_epochs_it_ran(stop_before, expected):
    # skorch opens the history row of an epoch before its on_epoch_begin callbacks; a stop
    # there leaves a row without a loss, which the epoch count and the losses leave out.
    def stop(net, epoch):
        if epoch == stop_before:
            stop_phase(net)

    net = train_phase(_linear(), MeanSquare(), torch.ones(4, 3), epochs=5, batch_size=2,
                      lr=0.1, generator=torch.Generator(), phase="p",
                      callbacks=[EveryNEpochs(stop, 1)])
    assert net.stopped_early_ and net.epochs_completed_ == expected
    assert len(loss_history(net)) == expected


def test_embedding_refresh_hands_the_embedding_to_its_function():
    seen = []
    X = torch.arange(6.0).reshape(3, 2)
    cb = EmbeddingRefresh(X, lambda x: 2 * x, lambda net, epoch, Z: seen.append((epoch, Z)),
                          every=2)
    _train(epochs=3, callbacks=[cb])
    assert [epoch for epoch, _ in seen] == [1, 3]
    assert all(torch.equal(Z, 2 * X) for _, Z in seen)
    with pytest.raises(TypeError, match="needs fn"):
        EmbeddingRefresh(X, lambda x: x)


# ------------------------------------------------------------------ threads of small steps

class _ThreadsSeen(Callback):
    def __init__(self):
        self.threads = []

    def on_batch_begin(self, net, **kwargs):
        self.threads.append(torch.get_num_threads())


@pytest.mark.parametrize("work_limit, inside", [(None, 1), (0, 2)])
def test_small_steps_train_on_one_thread_and_the_count_is_restored(work_limit, inside,
                                                                  monkeypatch):
    import skdeepclust._training._net as net_module

    if work_limit is not None:  # every step counts as large: the caller's threads stay
        monkeypatch.setattr(net_module, "ONE_THREAD_WORK", work_limit)
    before = torch.get_num_threads()
    seen = _ThreadsSeen()
    try:
        torch.set_num_threads(2)
        _train(X=torch.zeros(8, 3), epochs=2, callbacks=[seen])
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen.threads and set(seen.threads) == {inside}
    assert after == 2


def test_thread_count_is_restored_when_training_fails():
    before = torch.get_num_threads()

    class Boom(Callback):
        def on_batch_begin(self, net, **kwargs):
            raise RuntimeError("boom")

    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError, match="boom"):
            _train(callbacks=[Boom()])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_cluster_specific_net_sets_training_mode_once_per_batch():
    # Setting the mode walks every submodule of all the networks; the K updates of a batch
    # share it, so it is set once per batch, not K times.
    module = nn.ModuleList([_autoencoder_1d(1.0), _autoencoder_1d(2.0)])
    calls = []
    train = module.train

    def counting_train(mode=True):
        calls.append(mode)
        return train(mode)

    module.train = counting_train
    X = torch.tensor([[0.5], [1.0], [2.0], [3.0]])
    _cluster_specific(module, [[0.0], [1.0], [4.0]], X, batch_size=2, epochs=2,
                      cluster_to_network=[1, 0, 1])
    # 2 batches x 2 epochs, each with K = 3 updates
    assert calls.count(True) == 4
