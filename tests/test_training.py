"""The skorch layer: slicing iterator, unsupervised net, phases, callbacks."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from skdeepclust._training import (
    EveryNEpochs,
    IndexedTensorDataset,
    SliceIterator,
    batched_apply,
    loss_history,
    small_data_batch_size,
    stop_phase,
    train_phase,
)
from skdeepclust.exceptions import TrainingDivergedError


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
    assert [i.tolist() for _, i in it] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # a single short batch is never dropped
    assert len(SliceIterator(IndexedTensorDataset(X), 32, drop_last=True)) == 1


def test_train_phase_history_is_the_size_weighted_mean_of_batch_losses():
    X = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    criterion = MeanSquare()
    module = _linear()
    net = train_phase(module, criterion, X, epochs=2, batch_size=4, lr=0.0,
                      generator=torch.Generator().manual_seed(0), phase="test")
    assert len(net.history) == 2
    assert [len(i) for i in criterion.seen[:3]] == [4, 4, 2]
    # lr=0: the weights never change, so the epoch loss is computable directly
    with torch.no_grad():
        per_row = module(X).pow(2).mean(dim=1)
    expected = float(
        sum(per_row[i].mean() * len(i) for i in criterion.seen[:3]) / 10
    )
    assert loss_history(net)[0] == pytest.approx(expected, rel=1e-6)
    assert net.history[0, "train_batch_count"] == 3


def test_train_phase_zero_epochs_builds_an_initialised_net():
    net = train_phase(_linear(), MeanSquare(), torch.zeros(4, 3), epochs=0, batch_size=2, lr=0.1,
                      generator=torch.Generator(), phase="none")
    assert net.initialized_ and len(net.history) == 0


def test_every_n_epochs_runs_at_the_right_epochs():
    calls = []
    cb = EveryNEpochs(lambda net, epoch: calls.append(epoch), every=3)
    train_phase(_linear(), MeanSquare(), torch.zeros(4, 3), epochs=7, batch_size=4, lr=0.1,
                generator=torch.Generator(), phase="p", callbacks=[cb])
    assert calls == [1, 4, 7]
    calls.clear()
    cb = EveryNEpochs(lambda net, epoch: calls.append(epoch), every=3, at_start=False)
    train_phase(_linear(), MeanSquare(), torch.zeros(4, 3), epochs=7, batch_size=4, lr=0.1,
                generator=torch.Generator(), phase="p", callbacks=[cb])
    assert calls == [3, 6]


def test_stop_phase_ends_training_early_without_an_error():
    def stop_after_two(net, epoch):
        if epoch == 2:
            stop_phase(net)

    net = train_phase(_linear(), MeanSquare(), torch.zeros(4, 3), epochs=10, batch_size=4,
                      lr=0.1, generator=torch.Generator(), phase="p",
                      callbacks=[EveryNEpochs(stop_after_two, 1, at_start=False)])
    assert net.stopped_early_ and len(net.history) == 2


def test_non_finite_loss_names_phase_epoch_and_remedy():
    class Explodes(nn.Module):
        def forward(self, y_pred, index, X):
            return y_pred.sum() * float("nan")

    with pytest.raises(TrainingDivergedError, match=r"The cluster loss became nan at epoch 1.*"
                                                      r"do this"):
        train_phase(_linear(), Explodes(), torch.ones(4, 3), epochs=3, batch_size=2, lr=0.1,
                    generator=torch.Generator(), phase="cluster", remedy="do this")


def test_keyboard_interrupt_is_re_raised():
    class Interrupts(nn.Module):
        def forward(self, y_pred, index, X):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_phase(_linear(), Interrupts(), torch.ones(4, 3), epochs=3, batch_size=2, lr=0.1,
                    generator=torch.Generator(), phase="p")


def test_batched_apply_matches_one_call_and_runs_without_grad():
    module = _linear(3, 2)
    X = torch.randn(10, 3)
    out = batched_apply(module, X, batch_size=3)
    assert not out.requires_grad
    np.testing.assert_allclose(out.numpy(), module(X).detach().numpy(), rtol=1e-6, atol=1e-7)
    assert batched_apply(module, X[:0]).shape == (0, 2)


def test_trained_net_pickles_although_its_phase_used_closures():
    import pickle

    cb = EveryNEpochs(lambda net, epoch: None, every=1)  # a lambda cannot be pickled
    net = train_phase(_linear(), MeanSquare(), torch.zeros(4, 3), epochs=2, batch_size=4,
                      lr=0.1, generator=torch.Generator(), phase="p", callbacks=[cb], verbose=1)
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
