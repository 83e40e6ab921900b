"""Callbacks of the training phases: guards, progress, and refreshes of per-sample targets."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from skorch.callbacks import Callback
from torch import nn

from skdeepclust._streaming import changed_fraction
from skdeepclust._training._tools import batched_apply, evaluating, stop_phase
from skdeepclust.exceptions import TrainingDivergedError

__all__ = [
    "NonFiniteLossGuard",
    "ProgressBar",
    "EveryNEpochs",
    "EmbeddingRefresh",
    "NeighborRefresh",
    "KMeansRefresh",
]


class NonFiniteLossGuard(Callback):
    """Stop a phase with :class:`TrainingDivergedError` on a non-finite loss.

    Parameters
    ----------
    phase : str
        Name of the phase, quoted in the error.
    remedy : str
        What the user should change, quoted in the error.
    """

    def __init__(self, phase: str, remedy: str):
        self.phase = phase
        self.remedy = remedy

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"The {self.phase} loss became {loss} at epoch {net.epochs_completed_}; "
                f"training was stopped. {self.remedy}"
            )


class ProgressBar(Callback):
    """A tqdm bar per phase, with the current loss (only built when verbose)."""

    def __init__(self, phase: str, total: int):
        self.phase = phase
        self.total = total

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=self.total, desc=self.phase, unit="epoch", leave=True)

    def on_epoch_end(self, net, **kwargs):
        self.bar_.update(1)
        self.bar_.set_postfix(loss=f"{net.history[-1, 'train_loss']:.4g}")

    def on_train_end(self, net, **kwargs):
        self.bar_.close()


class EveryNEpochs(Callback):
    """Call ``fn(net, epoch)`` on a schedule of epochs.

    Epochs are counted from 1 within the phase. With ``at_start`` ``fn`` runs
    before epochs ``first, first + every, ...``; otherwise after them (and,
    for ``first=0``, once before training). Epochs past ``last`` are skipped.
    ``fn`` may call :func:`~skdeepclust._training.stop_phase` to end the
    phase early.

    Parameters
    ----------
    fn : callable
        ``fn(net, epoch)``.
    every : int
        Epochs between two calls.
    at_start : bool, default=True
        Call before the scheduled epochs rather than after them.
    first : int, default=None
        First scheduled epoch: 1 before epochs, ``every`` after them.
    last : int, default=None
        Last epoch that may be scheduled (no limit when None).
    """

    def __init__(self, fn: Callable, every: int, at_start: bool = True,
                 first: int | None = None, last: int | None = None):
        self.fn = fn
        self.every = every
        self.at_start = at_start
        self.first = first
        self.last = last

    def initialize(self):
        self.start_ = None
        return self

    def _due(self, epoch: int) -> bool:
        first = self.first if self.first is not None else (1 if self.at_start else self.every)
        if epoch < first or (self.last is not None and epoch > self.last):
            return False
        return (epoch - first) % self.every == 0

    def on_train_begin(self, net, **kwargs):
        # Epochs of this phase are counted from the net's count when it begins (a
        # continued net has epochs behind it).
        self.start_ = net.epochs_completed_
        if not self.at_start and self._due(0):
            self.fn(net, 0)

    def on_epoch_begin(self, net, **kwargs):
        epoch = net.epochs_completed_ - self.start_ + 1
        if self.at_start and self._due(epoch):
            self.fn(net, epoch)

    def on_epoch_end(self, net, **kwargs):
        epoch = net.epochs_completed_ - self.start_
        if not self.at_start and self._due(epoch):
            self.fn(net, epoch)


class EmbeddingRefresh(EveryNEpochs):
    """Embed the rows ``X`` on a schedule and hand the embedding to :meth:`refresh`.

    The embedding runs in eval mode (the ``modules`` go back to their mode
    afterwards), batched and without gradients, and is returned as a normal
    tensor, so targets built from it may enter autograd. ``fn(net, epoch, Z)``
    receives it; subclasses override :meth:`refresh` instead.

    Parameters
    ----------
    X : torch.Tensor of shape (n_rows, n_features)
        Rows to embed (on the training device).
    embed : callable
        Maps a batch of rows to their embedding.
    fn : callable, default=None
        ``fn(net, epoch, Z)``; required unless a subclass overrides
        :meth:`refresh`.
    every, at_start, first, last
        The schedule, as :class:`EveryNEpochs`.
    modules : iterable of torch.nn.Module, default=()
        Modules switched to eval mode during the embedding.
    """

    def __init__(self, X: torch.Tensor, embed: Callable, fn: Callable | None = None, *,
                 every: int = 1, at_start: bool = True, first: int | None = None,
                 last: int | None = None, modules: Iterable[nn.Module] = ()):
        if fn is None and type(self).refresh is EmbeddingRefresh.refresh:
            raise TypeError("EmbeddingRefresh needs fn(net, epoch, Z), or a subclass that "
                            "overrides refresh.")
        super().__init__(self._embed_and_refresh, every, at_start=at_start, first=first,
                         last=last)
        self.X = X
        self.embed = embed
        self.refresh_fn = fn
        self.modules = list(modules)

    def _embed_and_refresh(self, net, epoch):
        with evaluating(*self.modules):
            Z = batched_apply(self.embed, self.X).clone()
        self.refresh(net, epoch, Z)

    def refresh(self, net, epoch, Z):
        """Hand the embedding to ``fn``."""
        self.refresh_fn(net, epoch, Z)


class NeighborRefresh(EmbeddingRefresh):
    """Recompute the k-nearest-neighbour graph of the current embedding every few epochs.

    At each refresh the rows ``X`` are embedded (:class:`EmbeddingRefresh`),
    their ``n_neighbors`` nearest other rows are found with
    :func:`skdeepclust.neighbors.kneighbors` (exact on the device for small
    data, approximate above its threshold; never an n x n matrix), and
    ``fn(net, epoch, Z, distances, indices)`` turns them into whatever
    targets the method needs. ``fn`` may call :func:`stop_phase`.

    Parameters
    ----------
    fn : callable
        ``fn(net, epoch, Z, distances, indices)``; distances and indices are
        ``(n_rows, n_neighbors)`` tensors sorted by increasing distance.
    X : torch.Tensor of shape (n_rows, n_features)
        Rows whose graph is built (on the training device).
    embed : callable
        Maps a batch of rows to their embedding (e.g. ``module.encoder``).
    n_neighbors : int
        Neighbours per row (the row itself excluded).
    every : int, default=1
        Refresh before epochs 1, 1 + every, ....
    random_state : int, default=0
        Seed of the first refresh (later refreshes use the following seeds),
        for the approximate search.
    method : str, default="auto"
        Passed to :func:`~skdeepclust.neighbors.kneighbors`.
    modules : sequence of torch.nn.Module, default=()
        Modules switched to eval mode during the embedding.
    """

    def __init__(self, fn: Callable, X: torch.Tensor, embed: Callable, n_neighbors: int,
                 every: int = 1, random_state: int = 0, method: str = "auto",
                 modules: Iterable[nn.Module] = ()):
        super().__init__(X, embed, every=every, at_start=True, modules=modules)
        self.refresh_fn = fn
        self.n_neighbors = n_neighbors
        self.random_state = random_state
        self.method = method
        self.n_refreshes_ = 0

    def refresh(self, net, epoch, Z):
        from skdeepclust.neighbors import kneighbors

        seed = (self.random_state + self.n_refreshes_) % (2**31)
        self.n_refreshes_ += 1
        distances, indices = kneighbors(Z, self.n_neighbors, seed, method=self.method)
        self.refresh_fn(net, epoch, Z, distances, indices)


class KMeansRefresh(EmbeddingRefresh):
    """Refresh k-means pseudo-labels of the current embedding on a schedule.

    At each refresh the rows are embedded (:class:`EmbeddingRefresh`) and
    clustered by ``kmeans(Z) -> labels``; ``on_labels(net, labels)`` hands
    the labels to the method. From the second refresh on, the fraction of
    labels that changed (after the best one-to-one matching of the old and
    new clusters) is recorded in ``label_change_``; with ``tol > 0`` the
    phase stops once it stayed below ``tol`` for ``n_iter_no_change``
    refreshes in a row (``converged_``).

    Parameters
    ----------
    X : torch.Tensor of shape (n_rows, n_features)
        Rows to cluster.
    embed : callable
        Maps a batch of rows to their embedding.
    kmeans : callable
        ``kmeans(Z) -> labels`` (a ``(n_rows,)`` int64 tensor).
    on_labels : callable
        ``on_labels(net, labels)``.
    n_clusters : int
        Number of clusters (for the label-change matching).
    every, at_start, first, last
        The schedule, as :class:`EveryNEpochs`.
    tol : float, default=0.0
        Stop when the label change stays below it (0 never stops).
    n_iter_no_change : int, default=2
        Refreshes in a row below ``tol`` that stop the phase.
    modules : iterable of torch.nn.Module, default=()
        Modules switched to eval mode during the embedding.
    """

    def __init__(self, X, embed, kmeans: Callable, on_labels: Callable, n_clusters: int, *,
                 every: int = 1, at_start: bool = False, first: int | None = None,
                 last: int | None = None, tol: float = 0.0, n_iter_no_change: int = 2,
                 modules: Iterable[nn.Module] = ()):
        super().__init__(X, embed, every=every, at_start=at_start, first=first, last=last,
                         modules=modules)
        self.kmeans = kmeans
        self.on_labels = on_labels
        self.n_clusters = n_clusters
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.labels_ = None
        self.label_change_: list[float] = []
        self.converged_ = False

    def refresh(self, net, epoch, Z):
        labels = self.kmeans(Z)
        if self.labels_ is not None:
            self.label_change_.append(changed_fraction(self.labels_, labels, self.n_clusters))
        self.labels_ = labels
        self.on_labels(net, labels)
        recent = self.label_change_[-self.n_iter_no_change:]
        if self.tol > 0 and len(recent) == self.n_iter_no_change and max(recent) < self.tol:
            self.converged_ = True
            stop_phase(net)
