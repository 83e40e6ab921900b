"""An interrupted or failed call never leaves a half-fitted estimator behind.

Every training phase of every estimator is interrupted (``KeyboardInterrupt``
from a batch, as Ctrl-C would) in its first, a middle and its last epoch, the
last one from the final backward pass; ``fit`` must re-raise and leave the
estimator as it was. A failed ``partial_fit`` must put back everything it
trained in place: weights, optimiser state, buffers, streaming state.
"""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import Callback

import skdeepclust._training._net as net_module
from skdeepclust import DCSS, PIPCDR, RDC, AutoencoderKMeans
from skdeepclust.utils._test_settings import tiny_instance

# Each estimator's phases (the names its phases report), with settings under which
# every phase runs all its epochs (no early stop).
PHASES = {
    AutoencoderKMeans: ({}, ["pretrain"]),
    DCSS: ({}, ["pretrain", "phase 1", "phase 2"]),
    RDC: ({"n_iter_no_change": 100, "max_epochs": 3}, ["pretrain", "proximity"]),
    PIPCDR: ({"max_epochs": 3}, ["PIPCDR"]),
}
CASES = [(cls, phase, where) for cls, (_, phases) in PHASES.items() for phase in phases
         for where in ("first", "middle", "last")]


class Interrupt(Callback):
    """Raise KeyboardInterrupt after a batch of one epoch of one phase.

    In the first epoch: after its first batch; later: after its last batch
    (counted in the first epoch), i.e. from the last backward pass of that epoch.
    """

    def __init__(self, epochs, where):
        self.target = {"first": 1, "middle": (epochs + 1) // 2, "last": epochs}[where]
        self.batches_per_epoch = None
        self.fired = False

    def on_epoch_begin(self, net, **kwargs):
        self.epoch = net.epochs_completed_ + 1 - self.start
        self.batch = 0

    def on_train_begin(self, net, **kwargs):
        self.start = net.epochs_completed_

    def on_batch_end(self, net, **kwargs):
        self.batch += 1
        if self.epoch != self.target:
            return
        last = 1 if self.target == 1 else self.batches_per_epoch
        if self.batch == last:
            self.fired = True
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if self.batches_per_epoch is None:
            self.batches_per_epoch = self.batch


@pytest.fixture
def interrupt(monkeypatch):
    """``interrupt(phase, where)``: arm an Interrupt in the phase of that name."""
    armed = {}
    original = net_module._phase_callbacks

    def with_interrupt(phase, epochs, verbose, remedy, callbacks):
        named = original(phase, epochs, verbose, remedy, callbacks)
        if phase == armed.get("phase"):
            armed["callback"] = Interrupt(epochs, armed["where"])
            named.append(("interrupt", armed["callback"]))
        return named

    monkeypatch.setattr(net_module, "_phase_callbacks", with_interrupt)

    def arm(phase, where):
        armed.update(phase=phase, where=where)
        return armed

    return arm


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=120, centers=3, n_features=4, cluster_std=0.5, random_state=0)
    return X.astype(np.float32)


def _canonical(value):
    """A comparable, bit-exact image of a fitted attribute (tensors and arrays by bytes)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", str(value.dtype), tuple(value.shape),
                value.detach().cpu().contiguous().numpy().tobytes())
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, NeuralNet):
        return ("net", _canonical(value.module_.state_dict()),
                _canonical(value.optimizer_.state_dict()), _canonical(value.history.to_list()),
                value.epochs_completed_, value.batch_size)
    if isinstance(value, np.random.RandomState):
        return ("rng", _canonical(list(value.get_state())))
    if isinstance(value, dict):
        return ("dict", tuple((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_canonical(v) for v in value))
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return (type(value).__name__, _canonical(vars(value)))
    return pickle.dumps(value)


def _snapshot(est):
    """Every attribute of the estimator, weights, optimiser and stream states included."""
    return {k: _canonical(v) for k, v in vars(est).items()}


@pytest.mark.parametrize("cls, phase, where", CASES,
                         ids=[f"{c.__name__}-{p}-{w}" for c, p, w in CASES])
def test_interrupted_fit_re_raises_and_leaves_no_fitted_estimator(cls, phase, where, blobs,
                                                                  interrupt):
    params = PHASES[cls][0]
    armed = interrupt(phase, where)
    est = tiny_instance(cls, n_clusters=3, **params)
    with pytest.raises(KeyboardInterrupt):
        est.fit(blobs)
    assert armed["callback"].fired
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert not any(k.endswith("_") for k in vars(est))


@pytest.mark.parametrize("cls", list(PHASES), ids=lambda c: c.__name__)
def test_interrupted_refit_keeps_the_previous_model(cls, blobs, interrupt):
    params, phases = PHASES[cls]
    est = tiny_instance(cls, n_clusters=3, **params).fit(blobs)
    before, Z, labels = _snapshot(est), est.transform(blobs), est.predict(blobs)
    interrupt(phases[-1], "last")
    with pytest.raises(KeyboardInterrupt):
        est.set_params(random_state=1).fit(blobs)
    est.set_params(random_state=0)
    assert _snapshot(est).keys() == before.keys()
    np.testing.assert_array_equal(est.transform(blobs), Z)
    np.testing.assert_array_equal(est.predict(blobs), labels)


@pytest.mark.parametrize("start", ["fit", "partial_fit"])
@pytest.mark.parametrize("where", ["first", "last"])
def test_failed_partial_fit_restores_weights_optimiser_and_stream_bit_for_bit(start, where,
                                                                             blobs, interrupt):
    est = tiny_instance(PIPCDR, n_clusters=3, max_epochs=3, queue_size=16)
    if start == "fit":
        est.fit(blobs)
    else:
        est.partial_fit(blobs[:60]).partial_fit(blobs[60:])
    before = _snapshot(est)
    Z, labels = est.transform(blobs), est.predict(blobs)
    armed = interrupt("PIPCDR partial_fit", where)
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(blobs[::2])
    assert armed["callback"].fired
    assert _snapshot(est) == before
    np.testing.assert_array_equal(est.transform(blobs), Z)
    np.testing.assert_array_equal(est.predict(blobs), labels)
    # ... and the estimator goes on as if the failed call had never happened.
    interrupt(None, "first")
    ref = tiny_instance(PIPCDR, n_clusters=3, max_epochs=3, queue_size=16)
    ref = ref.fit(blobs) if start == "fit" else ref.partial_fit(blobs[:60]).partial_fit(blobs[60:])
    np.testing.assert_array_equal(est.partial_fit(blobs[::2]).transform(blobs),
                                  ref.partial_fit(blobs[::2]).transform(blobs))


def test_interrupted_first_partial_fit_leaves_nothing(blobs, interrupt):
    interrupt("PIPCDR partial_fit", "first")
    est = tiny_instance(PIPCDR, n_clusters=3)
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(blobs)
    assert vars(est).keys() == tiny_instance(PIPCDR, n_clusters=3).__dict__.keys()


def test_failed_partial_fit_keeps_the_callers_parameter_objects(blobs, interrupt):
    sizes = [8]  # a list: a deep copy would be another object
    est = tiny_instance(PIPCDR, n_clusters=3, hidden_layer_sizes=sizes).partial_fit(blobs)
    interrupt("PIPCDR partial_fit", "first")
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(blobs)
    assert est.hidden_layer_sizes is sizes
