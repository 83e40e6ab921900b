"""The estimator machinery every method shares.

:class:`BaseDeepClusterer` does, once, everything scikit-learn asks of a
clustering estimator: parameter and data validation, device resolution,
seeded training that leaves the caller's random state alone, the fitted
attributes, batched inference, ``score``, feature names and tags. A method
implements three hooks:

* ``_fit(X, ctx)``: train on the float32 tensor ``X`` (already on
  ``ctx.device``) and return a dict of fitted attributes (at least the
  skorch net(s), ``history_`` and, for centre-based methods,
  ``cluster_centers_``);
* ``_embed(X)``: the embedding of a batch of rows (a tensor);
* ``_cluster_scores(Z)``: an ``(n, n_clusters)`` tensor, higher meaning
  "more likely in this cluster"; the default is the negative squared
  distance to ``cluster_centers_``. ``Z`` is ``_assignment_input(X)``, the
  embedding unless a method reads its clusters from another layer (C3).

``labels_`` and ``predict`` both go through ``_scores_of`` (by default
``_cluster_scores`` of ``_assignment_input``; DML, whose clusters live in
several spaces, overrides it), so ``fit(X).predict(X)`` equals ``labels_``. Torch
modules are reached through the fitted skorch nets only
(``self.net_.module_``): skorch pickles them so a CUDA-trained estimator
loads on a CPU-only machine.
"""

from __future__ import annotations

import copy
import secrets
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from skdeepclust._autoencoder import resolve_hidden_layer_sizes
from skdeepclust._network import MODULE_CONSTRAINT
from skdeepclust._training import batched_apply, small_data_batch_size, train_phase

__all__ = ["BaseDeepClusterer", "ContinualClustererMixin", "FitContext"]

_INFERENCE_BATCH = 4096

# Training draws from torch's global generator (weight initialisation, dropout), which every
# thread of a process shares: two fits in two threads (joblib's threading backend, dask
# workers with processes=False) would re-seed it under each other and neither would repeat.
# Seeded sections take this lock, so such fits run one after the other; fits in separate
# processes (loky, dask's default workers) run in parallel.
_SEEDED_LOCK = threading.RLock()


def _seed_from(random_state) -> int:
    """A 31-bit seed from ``random_state`` that never draws from NumPy's global RNG."""
    if random_state is None:
        return secrets.randbits(31)
    if isinstance(random_state, Integral):
        return int(random_state) % (2**31)
    return int(random_state.randint(2**31 - 1))


#: Device types the estimators train on, when this machine has them.
_SUPPORTED_DEVICE_TYPES = ("cpu", "cuda", "mps")
_DEVICE_NAMES = {"cuda": "CUDA", "mps": "MPS", "xpu": "XPU"}


def _device_count(kind: str) -> int:
    """How many devices of type ``kind`` torch can use on this machine (0 when none)."""
    if kind == "cpu":
        return 1
    if kind == "mps":
        return int(torch.backends.mps.is_available())
    # torch.cuda, torch.xpu, torch.mtia... share this interface; types without a
    # module (meta, hpu...) have no device here.
    backend = getattr(torch, kind, None)
    is_available = getattr(backend, "is_available", None)
    if is_available is None or not is_available():
        return 0
    count = getattr(backend, "device_count", None)
    return count() if count is not None else 1


def _resolve_device(device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:index]'."
        ) from exc
    count = _device_count(resolved.type)
    name = _DEVICE_NAMES.get(resolved.type, resolved.type.upper())
    if count == 0:
        raise ValueError(f"device={device!r} was asked for but {name} is not available on "
                         "this machine; use device='auto' or 'cpu'.")
    if resolved.type != "cpu" and resolved.index is not None and resolved.index >= count:
        raise ValueError(
            f"device={device!r} was asked for but this machine has {count} {name} "
            f"device{'s' if count > 1 else ''} (index 0 to {count - 1}); use device='auto', "
            f"'cpu' or '{resolved.type}'.")
    if resolved.type not in _SUPPORTED_DEVICE_TYPES:
        raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu' or 'cuda'.")
    return resolved


def _device_type(device) -> str:
    """The type of ``device`` ("cpu", "cuda"...); an invalid one raises as in ``fit``."""
    try:
        return torch.device(device).type
    except (RuntimeError, TypeError):
        return _resolve_device(device).type


def _is_lazy(X) -> bool:
    """Whether ``X`` is a lazily evaluated collection (dask array or data frame...).

    Found without importing dask: through dask's collection protocol (an
    xarray object backed by dask arrays also has a graph; one backed by NumPy
    returns None) or, failing that, the type's module.
    """
    graph = getattr(X, "__dask_graph__", None)
    if callable(graph):
        try:
            return graph() is not None
        except Exception:  # a foreign object's protocol failed: it is one, so treat it as lazy
            return True
    return type(X).__module__.partition(".")[0] in ("dask", "dask_expr")


def _as_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """``X`` as a tensor on ``device``, sharing memory with it where it can.

    A read-only array (a block of ``np.load(..., mmap_mode="r")``) is shared
    too, without torch's warning about non-writable arrays: the package never
    writes into the data it is given.
    """
    if X.flags.writeable:
        return torch.as_tensor(X, device=device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(X, device=device)


def _reject_lazy(X, estimator, method="fit") -> None:
    """Refuse to train on a lazy collection, which validation would load whole into memory."""
    if not _is_lazy(X):
        return
    name = type(estimator).__name__
    kind = f"{type(X).__module__}.{type(X).__qualname__}"
    if hasattr(estimator, "partial_fit"):
        how = (f"pass its blocks one at a time to {name}.partial_fit (e.g. `for block in "
               "X.to_delayed().ravel(): est.partial_fit(block.compute())`), or wrap the "
               f"estimator in dask_ml.wrappers.Incremental({name}(...)), which does that")
    else:
        how = (f"{name} has no partial_fit and learns from in-memory data only; the "
               "package's continual estimators (those with partial_fit) learn block by block, "
               "through partial_fit or dask_ml.wrappers.Incremental")
    if method == "fit":
        what = f"{name}.fit cannot learn block by block from a lazily evaluated {kind}"
    else:
        what = (f"{name}.{method} takes one in-memory block per call, not a lazily evaluated "
                f"{kind}")
    raise TypeError(
        f"{what}: it would be loaded whole into memory. If it fits in memory, pass "
        f"X.compute(); otherwise {how}. To predict or transform block by block, use "
        "dask_ml.wrappers.ParallelPostFit.")


@dataclass
class FitContext:
    """What a method's ``_fit`` needs besides the data: device, seeds, phase runner.

    Attributes
    ----------
    seed : int
        Seed of this fit (torch's global generator is forked and seeded with it).
    device : torch.device
        Training device.
    generator : torch.Generator
        CPU generator for shuffles and any other CPU draw.
    device_generator : torch.Generator
        Generator on ``device`` for augmentations and draws made there.
    rng : numpy.random.RandomState
        NumPy generator for scikit-learn helpers (k-means seeds...).
    estimator : BaseDeepClusterer
        The estimator being fitted (read its parameters, not its fitted state).
    """

    seed: int
    device: torch.device
    estimator: BaseDeepClusterer
    generator: torch.Generator = field(init=False)
    device_generator: torch.Generator = field(init=False)
    rng: np.random.RandomState = field(init=False)

    def __post_init__(self):
        self.generator = torch.Generator().manual_seed(self.seed)
        self.device_generator = torch.Generator(device=self.device).manual_seed(self.seed + 1)
        self.rng = np.random.RandomState(self.seed)

    def sub_seed(self) -> int:
        """A fresh seed drawn from this fit's NumPy generator (for k-means, pynndescent...)."""
        return int(self.rng.randint(2**31 - 1))

    def batch_size(self, n_samples: int) -> int:
        """The estimator's ``batch_size`` for ``n_samples`` rows.

        An int is used as given (capped at ``n_samples``). ``"auto"`` is the
        estimator's ``_auto_batch_size`` rows, reduced on small data by
        :func:`skdeepclust._training.small_data_batch_size` when the
        estimator's ``_auto_batch_shrinks`` (phases whose loss is a sum over
        rows); the others keep the batch and make more passes instead.
        """
        est = self.estimator
        if est.batch_size != "auto":
            return min(est.batch_size, n_samples)
        if est._auto_batch_shrinks:
            return small_data_batch_size(n_samples, est._auto_batch_size)
        return min(est._auto_batch_size, n_samples)

    def train_phase(self, module, criterion, X, *, epochs, phase, lr=None, batch_size=None,
                    **kwargs):
        """:func:`skdeepclust._training.train_phase` with this fit's seed, verbosity,
        ``batch_size`` (resolved by :meth:`batch_size`, capped at the number of rows) and
        ``lr`` filled in."""
        est = self.estimator
        batch_size = self.batch_size(X.shape[0]) if batch_size is None else batch_size
        return train_phase(
            module, criterion, X,
            epochs=epochs,
            batch_size=min(batch_size, X.shape[0]),
            lr=est.lr if lr is None else lr,
            generator=self.generator,
            phase=phase,
            verbose=est.verbose,
            accelerator=est.accelerator,
            **kwargs,
        )


class BaseDeepClusterer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin,
                        BaseEstimator):
    """Base class of the deep clustering estimators (not for direct use).

    Subclasses list their parameters in ``__init__`` (stored as given),
    extend ``_parameter_constraints`` with ``{**BaseDeepClusterer._parameter_constraints,
    ...}`` and implement ``_fit``, ``_embed`` and, when not centre-based,
    ``_cluster_scores``. ``_proba`` enables :meth:`predict_proba`.

    Dtype policy: inputs are validated to float32 (the networks' precision);
    :meth:`transform` returns float32 whatever the input dtype.

    ``batch_size`` is ``"auto"`` or an int in every estimator: ``"auto"`` is
    ``_auto_batch_size`` rows, fewer on small data when ``_auto_batch_shrinks``
    (see :meth:`FitContext.batch_size`); an int is used as given.
    """

    _auto_batch_size = 256
    _auto_batch_shrinks = True
    # Methods whose networks need a hidden layer (an empty hidden_layer_sizes is an error).
    _hidden_layers_required = False

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", StrOptions({"auto"})],
        "module": MODULE_CONSTRAINT,
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "device": [str, torch.device],
        "accelerator": [None, HasMethods(["prepare", "backward"])],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the networks on ``X`` and cluster it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data: finite real numbers, dense.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with self._restore_on_failure():
            X = self._validate_training_data(X, reset=True)
            self._fit_from_scratch(X)
        return self

    def _validate_training_data(self, X, reset, method="fit"):
        _reject_lazy(X, self, method)
        X = validate_data(self, X, dtype=np.float32, ensure_min_samples=2, reset=reset)
        return X

    def _fit_from_scratch(self, X):
        self._check_params_vs_input(X)
        device = self._training_device()
        seed = self._shared_seed(_seed_from(self.random_state))
        with self._seeded(seed, device):
            ctx = FitContext(seed=seed, device=device, estimator=self)
            X_t = _as_tensor(X, device)
            fitted = self._fit(X_t, ctx)
            self._commit(fitted, device)
            self._eval_mode()
            self.labels_ = self._labels_of(X_t, training=True)

    @contextmanager
    def _restore_on_failure(self, deep=False):
        """On any exception (``KeyboardInterrupt`` included), put back the previous state.

        ``deep``: also snapshot what the call trains in place (the nets'
        modules, optimisers and histories, buffers such as queues, streaming
        state), by deep copy; ``fit`` builds new objects and needs only the
        shallow snapshot.
        """
        saved = dict(vars(self))
        if deep:
            # Parameters stay the caller's objects; only fitted state is copied.
            params = set(self.get_params(deep=False))
            saved = {k: v if k in params else copy.deepcopy(v) for k, v in saved.items()}
        try:
            yield
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            raise

    def _training_device(self) -> torch.device:
        """``device`` resolved; the accelerator's device when there is an ``accelerator``."""
        if self.accelerator is None:
            return _resolve_device(self.device)
        wanted = torch.device(self.accelerator.device)
        if self.device != "auto" and _device_type(self.device) != wanted.type:
            raise ValueError(f"device={self.device!r} conflicts with the accelerator's device "
                             f"{str(wanted)!r}; leave device='auto' when an accelerator is "
                             "given.")
        return wanted

    def _shared_seed(self, seed: int) -> int:
        """``seed``, the main process's one under a multi-process ``accelerator``."""
        if self.accelerator is None:
            return seed
        from skdeepclust._training._accelerate import shared_seed

        return shared_seed(seed, self.accelerator)

    @staticmethod
    @contextmanager
    def _seeded(seed, device):
        """Fork torch's RNG (CPU, and the CUDA device in use) and seed it, one thread at a time."""
        devices = [device] if device.type == "cuda" else []
        with _SEEDED_LOCK, torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def _check_params_vs_input(self, X):
        """Checks that need the data or go beyond one parameter's constraint."""
        self._check_n_samples(X.shape[0])
        hidden = resolve_hidden_layer_sizes(self.hidden_layer_sizes, X.shape[1])
        if self._hidden_layers_required and not hidden and self.module is None:
            raise ValueError(
                f"hidden_layer_sizes must not be empty for {type(self).__name__}."
            )
        self._training_device()

    def _check_n_samples(self, n_samples):
        """At least ``n_clusters`` rows (a method whose clusters come per task checks there)."""
        if n_samples < self.n_clusters:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_clusters={self.n_clusters}."
            )

    def _commit(self, fitted: dict, device: torch.device):
        for name, value in fitted.items():
            setattr(self, name, value)
        if "cluster_centers_" in fitted:
            self.cluster_centers_ = np.asarray(fitted["cluster_centers_"], dtype=np.float32)
            self._centers_all = self.cluster_centers_
        self.device_ = str(device)
        history = fitted.get("history_", {})
        self.n_iter_ = fitted.get("n_iter_", sum(len(v) for v in history.values()))
        # transform's width: the embedding, unless a method embeds in another layer (FBCC).
        self._n_features_out = fitted.get("_n_features_out", self.embedding_dim)

    def _labels_of(self, X_t, training=False):
        """Hard labels through the same path as :meth:`predict`; sets the active clusters."""
        scores = batched_apply(self._scores_of, X_t.to(self._inference_device()),
                               _INFERENCE_BATCH)
        if training:
            used = torch.unique(scores.argmax(dim=1)).cpu().numpy()
            if len(used) < scores.shape[1]:
                warnings.warn(
                    f"{type(self).__name__} found {len(used)} non-empty clusters out of "
                    f"n_clusters={self.n_clusters}; the empty ones were dropped, so labels "
                    f"are 0..{len(used) - 1}. Try fewer clusters or more epochs.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
            self._active_clusters = used
            self.n_clusters_ = len(used)
            if getattr(self, "_centers_all", None) is not None:
                self.cluster_centers_ = self._centers_all[used]
        active = torch.as_tensor(self._active_clusters, device=scores.device)
        return scores[:, active].argmax(dim=1).cpu().numpy().astype(np.int64)

    # ------------------------------------------------------------ inference

    def _inference_device(self) -> torch.device:
        net = getattr(self, "net_", None)
        if net is not None:
            return torch.device(net.device)
        return torch.device(self.device_)

    def _check_test_data(self, X):
        check_is_fitted(self, "labels_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return _as_tensor(X, self._inference_device())

    def _eval_mode(self):
        for net in self._nets():
            net.module_.eval()

    def _nets(self):
        return [v for k, v in vars(self).items() if k.endswith("net_") and hasattr(v, "module_")]

    def predict(self, X):
        """Predict the closest cluster of each sample in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype=int64
            Index of the cluster each sample belongs to.
        """
        X_t = self._check_test_data(X)
        self._eval_mode()
        return self._labels_of(X_t)

    def transform(self, X):
        """Embed ``X`` in the learned space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        X_new : ndarray of shape (n_samples, embedding_dim), dtype=float32
            The embedding; columns are named by :meth:`get_feature_names_out`.
        """
        X_t = self._check_test_data(X)
        self._eval_mode()
        return self._embed_batched(X_t).float().cpu().numpy()

    def _assignment_input(self, X):
        """What ``_cluster_scores`` and ``_proba`` read for a batch of rows: the embedding.

        A method whose clusters are read from another layer than the one
        :meth:`transform` returns (C3: the backbone, under its cluster head)
        overrides it.
        """
        return self._embed(X)

    def _embed_batched(self, X_t):
        """The embedding of every row, in batches, without gradients."""
        return batched_apply(self._embed, X_t, _INFERENCE_BATCH)

    def _has_proba(self):
        return callable(getattr(self, "_proba", None))

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Soft cluster assignments of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters_found), dtype=float32
            Probability of each (non-empty) cluster; rows sum to 1 and the
            argmax equals :meth:`predict`.
        """
        X_t = self._check_test_data(X)
        self._eval_mode()
        q = batched_apply(self._proba_of, X_t, _INFERENCE_BATCH)
        q = q[:, torch.as_tensor(self._active_clusters, device=q.device)]
        q = q / q.sum(dim=1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
        return q.float().cpu().numpy()

    def score(self, X, y=None):
        """Opposite of the inertia of ``X`` in the embedding space.

        As :meth:`sklearn.cluster.KMeans.score` (minus an inertia): the
        summed squared distance of each embedded row to its closest centre
        (PIPCDR, whose embedding lies on the unit sphere: the summed cosine
        dissimilarity ``1 - cos``; C3: the mean cosine of each row's
        embedding to its cluster's centre, at most 1; DML: each squared
        distance in its cluster's own space). Higher is better; it needs no
        labels. It
        compares fits of the same estimator on the same data (e.g. seeds);
        across ``n_clusters`` it rises with the number of clusters, as
        k-means' inertia falls.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
        """
        X_t = self._check_test_data(X)
        self._eval_mode()
        return -self._inertia(X_t)

    def _inertia(self, X_t):
        """Sum of squared distances of the embedded rows to their closest centre.

        The scoring hook: a method whose embedding has another geometry
        overrides it (and :meth:`score` follows).
        """
        Z = self._embed_batched(X_t)
        centers = torch.as_tensor(np.asarray(self.cluster_centers_, dtype=np.float32),
                                  device=Z.device)
        return float(torch.cdist(Z, centers).pow(2).min(dim=1).values.double().sum())

    def _scores_of(self, X):
        """Cluster scores of a batch of rows: the path of ``labels_`` and :meth:`predict`.

        ``_cluster_scores`` of ``_assignment_input``; a method whose clusters
        live in several spaces (DML) overrides this instead.
        """
        return self._cluster_scores(self._assignment_input(X))

    def _proba_of(self, X):
        """Soft assignments of a batch of rows (all ``n_clusters`` columns)."""
        return self._proba(self._assignment_input(X))

    def _cluster_scores(self, Z):
        # All n_clusters centres, in the order of the scores (empty ones included).
        centers = torch.as_tensor(self._centers_all, device=Z.device, dtype=Z.dtype)
        return -torch.cdist(Z, centers).pow(2)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        return tags


class ContinualClustererMixin:
    """``partial_fit`` after :class:`~sklearn.cluster.MiniBatchKMeans`.

    The first call (or the first after ``fit`` discarded the state) validates
    and initialises; later calls check the feature count and continue. One
    NumPy generator is carried across calls, so the same seed and chunks
    give the same result. ``n_steps_`` counts the calls. All ``n_clusters``
    ids stay in use across calls (a chunk may leave some empty), so
    ``labels_`` of a chunk may skip ids, as with ``MiniBatchKMeans``.

    A call trains the fitted networks in place. It runs on a deep snapshot
    of the estimator: when it fails (bad input, a diverging loss, an
    interrupt) every attribute is put back as it was, the networks'
    weights, optimiser states, buffers (queues) and the streaming state
    included. The streaming state a subclass keeps across calls (running
    moments, a reservoir of rows, centre counts: the pieces of
    :mod:`skdeepclust._streaming`) lives in its fitted attributes, so the
    snapshot covers it.

    Subclasses implement ``_partial_fit(X, ctx, first_call)`` returning a
    dict of fitted attributes, like ``_fit``. A subclass whose ``fit`` also
    prepares continuation returns ``n_steps_`` and ``_partial_rng`` from
    ``_fit``; ``partial_fit`` then goes on from the fitted state instead of
    starting over.
    """

    def partial_fit(self, X, y=None):
        """Update the model with one chunk (or task) of data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The chunk. The first chunk needs at least ``n_clusters`` rows.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._continue(X)

    def _stable_cluster_count(self):
        """How many cluster ids the model holds after a call: all stay in use, even empty ones.

        ``n_clusters``; a method whose number of clusters grows with the
        calls (FBCC: one set per task) overrides it.
        """
        return self.n_clusters

    def _continue(self, X, **params):
        """One ``partial_fit``-like call: ``_partial_fit(X, ctx, first_call, **params)``
        on the snapshot that a failure restores."""
        first_call = not hasattr(self, "n_steps_")
        if first_call:
            self._validate_params()
        # The call trains the fitted networks in place: a failure must undo that too.
        with self._restore_on_failure(deep=True):
            X = self._validate_training_data(X, reset=first_call, method="partial_fit")
            if first_call:
                self._check_params_vs_input(X)
                self._partial_rng = np.random.RandomState(
                    self._shared_seed(_seed_from(self.random_state)))
                self.n_steps_ = 0
            device = self._training_device() if first_call else self._inference_device()
            seed = int(self._partial_rng.randint(2**31 - 1))
            with self._seeded(seed, device):
                ctx = FitContext(seed=seed, device=device, estimator=self)
                X_t = _as_tensor(X, device)
                fitted = self._partial_fit(X_t, ctx, first_call, **params)
                self._commit(fitted, device)
                self._eval_mode()
                # Cluster ids stay stable across calls (as in MiniBatchKMeans): every
                # cluster stays active, even one this chunk leaves empty.
                self.n_clusters_ = self._stable_cluster_count()
                self._active_clusters = np.arange(self.n_clusters_)
                if getattr(self, "_centers_all", None) is not None:
                    self.cluster_centers_ = self._centers_all
                self.labels_ = self._labels_of(X_t)
            self.n_steps_ += 1
        return self

    def _fit_from_scratch(self, X):
        # ``fit`` is one run from scratch: forget any partial_fit state.
        for name in ("n_steps_", "_partial_rng"):
            vars(self).pop(name, None)
        super()._fit_from_scratch(X)
