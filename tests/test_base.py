"""The estimator contract of BaseDeepClusterer, exercised through every estimator."""

import pickle
import random
import re
import threading

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skdeepclust import DCSS, PIPCDR, RDC, AutoencoderKMeans
from skdeepclust.exceptions import TrainingDivergedError
from skdeepclust.losses import ReconstructionCriterion
from skdeepclust.nn import MLPAutoencoder
from skdeepclust.utils import all_estimators
from skdeepclust.utils._test_settings import tiny_instance

ESTIMATOR_CLASSES = [cls for _, cls in all_estimators()]
# The history_ keys whose entries are epochs of training (others are per-epoch extras).
EPOCH_KEYS = {"AutoencoderKMeans": ["pretrain"], "DCSS": ["pretrain", "phase1", "phase2"],
              "DML": ["pretrain", "base", "dml"], "RDC": ["pretrain", "proximity"],
              "PIPCDR": ["train"], "C3": ["cc", "c3"], "FBCC": ["forward"]}
# transform's width where it is not embedding_dim: FBCC embeds in the layer its heads read.
TRANSFORM_WIDTH = {"FBCC": lambda est: est.net_.module_.cluster_first[0].out_features}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, n_features=4, cluster_std=0.5, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module", params=ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def fitted(request, blobs):
    X, _ = blobs
    return tiny_instance(request.param, n_clusters=3).fit(X)


def _fitted_state(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("__")}


# ------------------------------------------------------------------ reproducibility


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_same_seed_same_labels_and_embedding(cls, blobs):
    X, _ = blobs
    a = tiny_instance(cls, n_clusters=3, random_state=7).fit(X)
    b = tiny_instance(cls, n_clusters=3, random_state=7).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def test_different_seeds_give_different_networks(blobs):
    X, _ = blobs
    a = tiny_instance(AutoencoderKMeans, n_clusters=3, random_state=1).fit(X)
    b = tiny_instance(AutoencoderKMeans, n_clusters=3, random_state=2).fit(X)
    assert not np.array_equal(a.transform(X), b.transform(X))


@pytest.mark.parametrize("random_state", [0, None, np.random.RandomState(3)])
def test_fit_leaves_global_random_states_untouched(blobs, random_state):
    # The legacy global NumPy functions are the state under test.
    X, _ = blobs
    np.random.seed(123)  # noqa: NPY002
    torch.manual_seed(123)
    random.seed(123)
    expected = (np.random.rand(3), torch.rand(3), random.random())  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    torch.manual_seed(123)
    random.seed(123)
    tiny_instance(AutoencoderKMeans, n_clusters=3, random_state=random_state).fit(X)
    got = (np.random.rand(3), torch.rand(3), random.random())  # noqa: NPY002
    np.testing.assert_array_equal(expected[0], got[0])
    assert torch.equal(expected[1], got[1])
    assert expected[2] == got[2]


# ------------------------------------------------------------------ fitted attributes


def test_fitted_attributes(fitted, blobs):
    X, y = blobs
    est = fitted
    assert est.labels_.dtype == np.int64
    assert est.labels_.shape == (X.shape[0],)
    assert set(np.unique(est.labels_)) == set(range(est.n_clusters_))
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    epochs = sum(len(est.history_[k]) for k in EPOCH_KEYS[type(est).__name__]
                 if k in est.history_)
    assert est.n_iter_ == epochs > 0
    assert all(np.isfinite(v).all() for v in est.history_.values())
    assert est.device_ == "cpu"
    assert est.n_features_in_ == X.shape[1]
    Z = est.transform(X)
    width = TRANSFORM_WIDTH.get(type(est).__name__, lambda e: e.embedding_dim)(est)
    assert Z.dtype == np.float32 and Z.shape == (X.shape[0], width)
    assert np.isfinite(est.score(X))
    names = est.get_feature_names_out()
    assert len(names) == width
    assert names[0] == f"{type(est).__name__.lower()}0"


def test_known_structure_is_recovered_by_the_baseline(blobs):
    # Each method's own test file checks known structure with settings that suit it.
    from sklearn.metrics import adjusted_rand_score

    X, y = blobs
    est = tiny_instance(AutoencoderKMeans, n_clusters=3).fit(X)
    assert adjusted_rand_score(y, est.labels_) >= 0.95


def test_autoencoder_kmeans_history_is_decreasing(blobs):
    X, _ = blobs
    est = AutoencoderKMeans(n_clusters=3, hidden_layer_sizes=(32,), embedding_dim=2,
                            pretrain_epochs=15, batch_size=32, random_state=0).fit(X)
    losses = est.history_["pretrain"]
    assert len(losses) == 15 == est.n_iter_
    assert losses[-1] < 0.8 * losses[0]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


@pytest.mark.parametrize(
    "cls", [c for c in ESTIMATOR_CLASSES if callable(getattr(c, "_proba", None))],
    ids=lambda c: c.__name__,
)
def test_predict_proba_rows_sum_to_one_and_match_predict(cls, blobs):
    X, _ = blobs
    fitted = tiny_instance(cls, n_clusters=3).fit(X)
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), fitted.predict(X))


def test_empty_cluster_warning_and_compaction(blobs, monkeypatch):
    X, _ = blobs
    est = tiny_instance(AutoencoderKMeans, n_clusters=3)
    original = AutoencoderKMeans._fit
    kept = {}

    def fit_with_a_far_centre(self, X_t, ctx):
        out = original(self, X_t, ctx)
        centers = out["cluster_centers_"].copy()
        centers[1] = 1e6  # nobody is closest to this centre: cluster 1 ends empty
        out["cluster_centers_"] = kept["centers"] = centers
        return out

    monkeypatch.setattr(AutoencoderKMeans, "_fit", fit_with_a_far_centre)
    with pytest.warns(Warning, match="non-empty clusters out of n_clusters=3"):
        est.fit(X)
    Z = est.transform(X)
    nearest = ((Z[:, None, :] - kept["centers"][None]) ** 2).sum(axis=2).argmin(axis=1)
    assert set(nearest) == {0, 2}  # the raw ids have a gap ...
    assert est.n_clusters_ == 2  # ... which the labels close: 0 -> 0, 2 -> 1
    np.testing.assert_array_equal(est.labels_, np.where(nearest == 2, 1, 0))
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    np.testing.assert_array_equal(est.cluster_centers_, kept["centers"][[0, 2]])


# ------------------------------------------------------------------ persistence


def test_pickle_round_trip_predicts_the_same(fitted, blobs):
    X, _ = blobs
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))


@pytest.mark.parametrize("cls", [RDC, PIPCDR], ids=lambda c: c.__name__)
def test_pickle_after_a_verbose_fit_with_refresh_callbacks(cls, blobs):
    # RDC refreshes neighbours and PIPCDR pseudo-labels through callbacks holding closures
    # over the fit; the fitted nets must not keep them.
    X, _ = blobs
    est = tiny_instance(cls, n_clusters=3, verbose=1).fit(X)
    assert all(not net.callbacks for net in est._nets())
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.labels_)


def test_predict_proba_only_where_there_are_soft_assignments(blobs):
    X, _ = blobs
    est = tiny_instance(AutoencoderKMeans, n_clusters=3).fit(X)
    assert not hasattr(est, "predict_proba")


def test_clone_is_unfitted(fitted):
    with pytest.raises(NotFittedError):
        clone(fitted).predict(np.zeros((2, 4)))


# ------------------------------------------------------------------ bad input


BAD_INPUTS = {
    "nan": (np.array([[np.nan, 1.0]] + [[0.0, 1.0]] * 9), ValueError, "NaN"),
    "inf": (np.array([[np.inf, 1.0]] + [[0.0, 1.0]] * 9), ValueError, "infinity"),
    "complex": (np.ones((10, 2)) + 1j, ValueError, "[Cc]omplex"),
    "strings": (np.array([["a", "b"]] * 10), ValueError, "could not convert|dtype"),
    "sparse": (sp.csr_matrix(np.ones((10, 2))), TypeError, "[Ss]parse"),
    "one sample": (np.ones((1, 2)), ValueError, "1 sample"),
    "1d": (np.ones(10), ValueError, "2D array"),
    "fewer samples than clusters": (np.arange(8.0).reshape(4, 2), ValueError,
                                    "n_samples=4 should be >= n_clusters=5"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_raises_clear_error_and_keeps_previous_fit(case, blobs):
    X_good, _ = blobs
    X_bad, error, match = BAD_INPUTS[case]
    est = tiny_instance(AutoencoderKMeans, n_clusters=5).fit(X_good[:, :2])
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v)
              for k, v in _fitted_state(est).items()}
    with pytest.raises(error, match=match):
        est.fit(X_bad)
    after = _fitted_state(est)
    assert before.keys() == after.keys()
    np.testing.assert_array_equal(before["labels_"], after["labels_"])
    assert after["net_"] is before["net_"]
    np.testing.assert_array_equal(est.predict(X_good[:, :2]), before["labels_"])


def test_bad_input_on_unfitted_estimator_leaves_it_unfitted():
    est = tiny_instance(AutoencoderKMeans, n_clusters=2)
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.array([[np.nan, 1.0], [0.0, 1.0], [1.0, 1.0]]))
    assert not hasattr(est, "n_features_in_")
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((2, 2)))


def test_wrong_feature_count_at_predict(fitted, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 4 features"):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(np.full((2, 4), np.nan))


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"n_clusters": 0}, InvalidParameterError, "'n_clusters' parameter"),
        ({"n_clusters": 2.5}, InvalidParameterError, "'n_clusters' parameter"),
        ({"lr": -1.0}, InvalidParameterError, "'lr' parameter"),
        ({"batch_size": 0}, InvalidParameterError, "'batch_size' parameter"),
        ({"pretrain_epochs": -1}, InvalidParameterError, "'pretrain_epochs' parameter"),
        ({"device": "tpu"}, ValueError, "device='tpu'"),
        ({"device": "cuda:0"} if not torch.cuda.is_available() else {"device": "nonsense"},
         ValueError, "device="),
        ({"hidden_layer_sizes": (16, 0)}, ValueError, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": "wide"}, InvalidParameterError, "'hidden_layer_sizes' parameter"),
    ],
)
def test_bad_parameter_values_raise_in_fit_not_init(params, error, match, blobs):
    X, _ = blobs
    est = tiny_instance(AutoencoderKMeans, **params)  # no error here
    with pytest.raises(error, match=match):
        est.fit(X)
    assert not hasattr(est, "labels_")


@pytest.mark.parametrize("device, name", [
    pytest.param("mps", "MPS", marks=pytest.mark.skipif(
        torch.backends.mps.is_available(), reason="this machine has MPS, so no error to test")),
    pytest.param("xpu", "XPU", marks=pytest.mark.skipif(
        torch.xpu.is_available(), reason="this machine has an XPU, so no error to test")),
    ("hpu", "HPU"),
])
def test_a_device_this_machine_lacks_raises_in_fit_naming_it(device, name, blobs):
    X, _ = blobs
    est = tiny_instance(AutoencoderKMeans, device=device)
    with pytest.raises(ValueError, match=(
            rf"device='{device}' was asked for but {name} is not available on this machine; "
            r"use device='auto' or 'cpu'")):
        est.fit(X)
    assert not hasattr(est, "labels_")


def test_a_cuda_index_beyond_the_devices_names_how_many_there_are(blobs, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    est = tiny_instance(AutoencoderKMeans, device="cuda:5")
    with pytest.raises(ValueError, match=r"device='cuda:5' .* has 2 CUDA devices \(index 0 to 1\)"):
        est.fit(blobs[0])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        est.fit(blobs[0])


def test_an_unknown_device_string_is_not_a_torch_device(blobs):
    est = tiny_instance(AutoencoderKMeans, device="gpu0")
    with pytest.raises(ValueError, match=r"device='gpu0' is not a torch device; use 'auto'"):
        est.fit(blobs[0])


# ------------------------------------------------------------------ training failures


def test_diverging_loss_stops_with_a_remedy_and_keeps_previous_fit(blobs):
    X, _ = blobs
    est = tiny_instance(AutoencoderKMeans, n_clusters=3).fit(X)
    labels = est.labels_.copy()
    with pytest.raises(TrainingDivergedError, match=r"pretrain loss became .* at epoch 1.*lr"):
        est.fit(X * np.float32(1e20))  # squares overflow float32
    np.testing.assert_array_equal(est.labels_, labels)
    assert est.n_features_in_ == X.shape[1]


def test_interrupted_fit_is_not_swallowed_and_leaves_no_fitted_state(blobs, monkeypatch):
    X, _ = blobs
    calls = {"n": 0}
    original = ReconstructionCriterion.forward

    def interrupt_on_third_batch(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(ReconstructionCriterion, "forward", interrupt_on_third_batch)
    est = tiny_instance(AutoencoderKMeans, n_clusters=3)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X)
    assert calls["n"] == 3
    assert not hasattr(est, "labels_") and not hasattr(est, "net_")


# ------------------------------------------------------------------ output


def test_verbose_zero_prints_nothing(capfd, blobs):
    X, _ = blobs
    tiny_instance(AutoencoderKMeans, n_clusters=3, verbose=0).fit(X)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_one_shows_a_progress_bar_per_phase(capfd, blobs):
    X, _ = blobs
    tiny_instance(AutoencoderKMeans, n_clusters=3, verbose=1).fit(X)
    out, err = capfd.readouterr()
    assert out == ""
    assert "pretrain" in err and "loss=" in err


@pytest.mark.parametrize("n_features, widths", [(4, (64, 64, 256)), (50, (128, 128, 512)),
                                                (300, (256, 256, 1024))])
@pytest.mark.parametrize("cls", [AutoencoderKMeans, RDC, PIPCDR])
def test_auto_widths_scale_with_the_input(cls, n_features, widths):
    if cls is RDC:  # RDC's floor is 128
        widths = tuple(max(w, m) for w, m in zip(widths, (128, 128, 512)))
    X = np.random.RandomState(0).randn(40, n_features).astype(np.float32)
    est = tiny_instance(cls, n_clusters=2, hidden_layer_sizes="auto").fit(X)
    linears = [m for m in est.net_.module_.modules() if isinstance(m, torch.nn.Linear)]
    assert tuple(m.out_features for m in linears[:3]) == widths
    assert linears[0].in_features == n_features


@pytest.mark.parametrize("cls", [AutoencoderKMeans, RDC, DCSS])
def test_autoencoders_default_to_auto_widths(cls):
    assert cls().get_params()["hidden_layer_sizes"] == "auto"


def test_adam_runs_the_multi_tensor_update(blobs):
    # Same update as the per-tensor loop (bit for bit), with far less per-step overhead.
    X, _ = blobs
    est = tiny_instance(AutoencoderKMeans, n_clusters=3).fit(X)
    assert est.net_.optimizer_.defaults["foreach"] is True


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_verbose_above_one_shows_the_same_bars_as_one(cls, capfd, blobs):
    # The shared docstring says so; a method printing more at 2 must say what.
    X, _ = blobs
    bars, other = {}, {}
    for verbose in (1, 2):
        tiny_instance(cls, n_clusters=3, verbose=verbose, random_state=0).fit(X)
        out, err = capfd.readouterr()
        assert out == ""
        # tqdm may redraw a finished bar once more on close, depending on timing, so
        # each bar is read from the last redraw on its own line.
        bars[verbose] = [m.group(1) for line in err.split("\n")
                         if (m := re.search(r"(\w+): +100%\|", line.split("\r")[-1]))]
        other[verbose] = [part for part in re.split(r"[\r\n]+", err)
                          if part.strip() and not re.search(r"\d+%\|", part)]
    assert bars[1] and bars[2] == bars[1]
    assert other[2] == other[1]


def test_batch_size_larger_than_data_is_capped(blobs):
    X, _ = blobs
    est = tiny_instance(AutoencoderKMeans, n_clusters=3, batch_size=10_000).fit(X[:30])
    assert est.net_.batch_size == 30


@pytest.mark.parametrize("n_samples, expected", [(100, 32), (1797, 60), (9000, 256)])
def test_autoencoder_kmeans_auto_batch_gives_small_data_30_updates_per_epoch(n_samples,
                                                                             expected):
    X = np.random.RandomState(0).randn(n_samples, 3).astype(np.float32)
    est = AutoencoderKMeans(n_clusters=2, hidden_layer_sizes=(4,), embedding_dim=2,
                            pretrain_epochs=1, n_init=1, random_state=0).fit(X)
    assert est.get_params()["batch_size"] == "auto"
    assert est.net_.batch_size == expected
    with pytest.raises(InvalidParameterError, match="'batch_size' parameter"):
        AutoencoderKMeans(batch_size="large").fit(X)


@pytest.mark.parametrize("cls", [DCSS, PIPCDR], ids=lambda c: c.__name__)
def test_methods_that_need_a_hidden_layer_refuse_empty_widths_in_fit(cls, blobs):
    X, _ = blobs
    est = tiny_instance(cls, n_clusters=3, hidden_layer_sizes=())  # no error here
    match = f"hidden_layer_sizes must not be empty for {cls.__name__}"
    with pytest.raises(ValueError, match=match):
        est.fit(X)
    assert not hasattr(est, "labels_")


# ------------------------------------------------------------------ threads and lazy data


def test_fits_in_threads_do_not_reseed_each_other(blobs):
    # A fixed interleaving: fit A, inside its seeded section, waits until fit B (in another
    # thread) has reached its module builder, i.e. has seeded torch's global generator, and
    # then draws while B waits for that draw. Without the lock between seeded sections B
    # re-seeds the generator under A; with it B waits at the lock, A's wait times out and A
    # draws from its own seed.
    X, _ = blobs
    a_inside, b_inside, a_drew = threading.Event(), threading.Event(), threading.Event()
    draws = {}

    def builder(name, concurrent):
        def build(n_features, embedding_dim):
            if name == "B":
                b_inside.set()
                a_drew.wait(timeout=10)
            elif concurrent:
                a_inside.set()
                b_inside.wait(timeout=2)
            draws.setdefault(name, torch.rand(3).tolist())
            if name == "A":
                a_drew.set()
            return MLPAutoencoder(n_features, (8,), embedding_dim)
        return build

    def fit(name, seed, concurrent):
        return tiny_instance(AutoencoderKMeans, n_clusters=3, random_state=seed,
                             pretrain_epochs=1, n_init=1,
                             module=builder(name, concurrent)).fit(X)

    fit("A", 1, concurrent=False)
    serial = draws.pop("A")

    def fit_b():
        a_inside.wait(timeout=10)
        fit("B", 2, concurrent=True)

    thread = threading.Thread(target=fit_b)
    thread.start()
    fit("A", 1, concurrent=True)
    thread.join()
    assert b_inside.is_set()
    assert draws["A"] == serial


class _LazyArray:
    """A collection in dask's protocol (as dask and dask-backed xarray objects are)."""

    def __init__(self, X, graph):
        self._X, self._graph = X, graph

    def __dask_graph__(self):
        return self._graph

    def __array__(self, dtype=None, copy=None):
        self.loaded = True
        return np.asarray(self._X, dtype=dtype)

    @property
    def shape(self):
        return self._X.shape

    def __len__(self):
        return len(self._X)


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_fit_refuses_lazy_collection_before_loading_it(cls, blobs):
    X, _ = blobs
    lazy = _LazyArray(X, graph={"x": 1})
    est = tiny_instance(cls, n_clusters=3)
    with pytest.raises(TypeError, match=r"cannot learn block by block.*X\.compute\(\)"):
        est.fit(lazy)
    assert not hasattr(lazy, "loaded")
    assert not hasattr(est, "labels_")
    if hasattr(est, "partial_fit"):
        with pytest.raises(TypeError, match=r"partial_fit takes one in-memory block"):
            est.partial_fit(lazy)
        assert not hasattr(est, "n_steps_")


def test_in_memory_object_with_dask_protocol_is_not_lazy():
    from skdeepclust.base import _is_lazy

    X = np.zeros((3, 2))
    # xarray's objects answer the protocol with None when NumPy holds their data.
    assert not _is_lazy(_LazyArray(X, graph=None))
    assert _is_lazy(_LazyArray(X, graph={"x": 1}))
    assert not _is_lazy(X)
