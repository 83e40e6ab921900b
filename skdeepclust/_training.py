"""The skorch layer: how every network of the package is trained.

Each training phase of a method is one :class:`UnsupervisedNet` built by
:func:`train_phase`. The data set is one float32 tensor already on the
training device; a batch is ``(X[idx], idx)`` where ``idx`` are the sample
indices, so whatever a method computed on the whole data set (target
distributions, pseudo-labels, neighbour lists) is looked up per batch by
index. Shuffles come from a seeded :class:`torch.Generator` that travels with
the data set, never from the global random state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch import nn

from skdeepclust.exceptions import TrainingDivergedError

__all__ = [
    "IndexedTensorDataset",
    "SliceIterator",
    "UnsupervisedNet",
    "NonFiniteLossGuard",
    "ProgressBar",
    "EveryNEpochs",
    "AdversarialNet",
    "NeighborRefresh",
    "StopTraining",
    "stop_phase",
    "train_phase",
    "batched_apply",
    "loss_history",
    "small_data_batch_size",
    "MIN_UPDATES_PER_EPOCH",
]

# Schedules counted in epochs were tuned on data sets with many batches per epoch (the
# papers': 140 and more). Below this many, autoencoder phases take smaller batches.
MIN_UPDATES_PER_EPOCH = 30
_MIN_BATCH_SIZE = 32


class IndexedTensorDataset(torch.utils.data.Dataset):
    """A data set made of one tensor, whose items are ``(row, index)``.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        The data, already on the training device.
    generator : torch.Generator, default=None
        Seeded CPU generator for the shuffles of the training iterator.
    """

    def __init__(self, X: torch.Tensor, generator: torch.Generator | None = None):
        self.X = X
        self.generator = generator

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, i):
        return self.X[i], i


class SliceIterator:
    """Iterate over ``(X[idx], idx)`` batches by slicing a resident tensor.

    The default ``DataLoader`` collates sample by sample; here a batch is a
    single index-select on the device, with a seeded permutation per epoch.

    Parameters
    ----------
    dataset : IndexedTensorDataset
        The data set to iterate over.
    batch_size : int
        Rows per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Draw a new permutation (from ``dataset.generator``) each epoch.
    drop_last : bool, default=False
        Drop a last batch smaller than ``batch_size``. It is never dropped
        when it is the only batch.
    merge_singleton : bool, default=False
        Merge a last batch of a single row into the batch before it
        (BatchNorm cannot train on one row); no row is left out.
    """

    def __init__(self, dataset: IndexedTensorDataset, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, merge_singleton: bool = False):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.merge_singleton = merge_singleton

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last and n > self.batch_size:
            return n // self.batch_size
        n_batches = math.ceil(n / self.batch_size)
        if self.merge_singleton and n_batches > 1 and n % self.batch_size == 1:
            return n_batches - 1
        return n_batches

    def __iter__(self):
        X = self.dataset.X
        n = X.shape[0]
        if self.shuffle:
            order = torch.randperm(n, generator=self.dataset.generator).to(X.device)
        else:
            order = torch.arange(n, device=X.device)
        n_batches = len(self)
        for b in range(n_batches):
            # The last batch runs to the end when a singleton was merged into it.
            stop = n if self.merge_singleton and b == n_batches - 1 else (b + 1) * self.batch_size
            idx = order[b * self.batch_size:stop]
            yield X[idx], idx


class StopTraining(KeyboardInterrupt):
    """Ends the current phase early, on purpose; raise it through :func:`stop_phase`.

    It derives from ``KeyboardInterrupt`` because that is the signal skorch's
    fit loop treats as "stop" (its own ``EarlyStopping`` raises it).
    """


def stop_phase(net) -> None:
    """End the running phase of ``net`` after the current callback (a deliberate early stop)."""
    net.stopped_early_ = True
    raise StopTraining


class UnsupervisedNet(NeuralNet):
    """skorch ``NeuralNet`` for unsupervised objectives.

    Differences from :class:`skorch.NeuralNet`:

    * ``y`` of a batch is the tensor of sample indices; the criterion is
      called as ``criterion_(y_pred, index, X)`` so it can look up per-sample
      targets computed on the whole data set;
    * batches come from :class:`SliceIterator` (no per-sample collation);
    * the per-batch losses are kept on the device during an epoch and read
      back once at its end (skorch reads each with ``.item()``, a device
      synchronisation per batch on CUDA); the history is the same;
    * no validation split, nothing printed.

    Intended to be built through :func:`train_phase`.
    """

    def __init__(self, module, criterion, *, train_split=None, verbose=0, **kwargs):
        super().__init__(module, criterion, train_split=train_split, verbose=verbose, **kwargs)

    def get_iterator(self, dataset, training=False):
        if isinstance(dataset, IndexedTensorDataset):
            return SliceIterator(
                dataset, self.batch_size, shuffle=training,
                drop_last=training and getattr(self, "drop_last", False),
                merge_singleton=training and getattr(self, "merge_singleton", False),
            )
        return super().get_iterator(dataset, training=training)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(y_pred, y_true, X)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        losses, sizes = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            sizes.append(len(batch[1]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        # One host read per epoch instead of one per batch.
        values = torch.stack(losses).float().cpu().tolist() if losses else []
        # skorch opened one history row per batch (on_batch_begin); fill them in order.
        rows = self.history[-1]["batches"][len(self.history[-1]["batches"]) - len(values):]
        for row, value, size in zip(rows, values, sizes):
            row[prefix + "_loss"] = value
            row[prefix + "_batch_size"] = size
        self.history.record(prefix + "_batch_count", len(losses))


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
                f"The {self.phase} loss became {loss} at epoch {len(net.history)}; "
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
    """Call ``fn(net, epoch)`` at the start of every ``every``-th epoch.

    Epochs are counted from 1; ``fn`` runs before epochs 1, 1 + every,
    1 + 2 * every, ... when ``at_start`` is true, otherwise after epochs
    every, 2 * every, .... Used for target refreshes (centres, pseudo-labels,
    neighbour graphs). ``fn`` may raise :class:`StopTraining` to end the
    phase early.
    """

    def __init__(self, fn: Callable, every: int, at_start: bool = True):
        self.fn = fn
        self.every = every
        self.at_start = at_start

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history)  # skorch has already appended this epoch's row
        if self.at_start and (epoch - 1) % self.every == 0:
            self.fn(net, epoch)

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if not self.at_start and epoch % self.every == 0:
            self.fn(net, epoch)


def train_phase(
    module: nn.Module,
    criterion: nn.Module,
    X: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    phase: str,
    verbose: int = 0,
    optimizer=torch.optim.Adam,
    callbacks: Sequence[Callback] = (),
    net_class: type[UnsupervisedNet] = UnsupervisedNet,
    remedy: str = "Lower `lr`, or standardise the features (e.g. with StandardScaler).",
    **net_kwargs,
) -> UnsupervisedNet:
    """Train ``module`` for one phase and return the fitted skorch net.

    Parameters
    ----------
    module : torch.nn.Module
        The network, already initialised (phases share module instances).
    criterion : torch.nn.Module
        Called as ``criterion(y_pred, index, X_batch)``.
    X : torch.Tensor of shape (n_samples, n_features)
        Training data on the training device.
    epochs : int
        Number of epochs; 0 builds and initialises the net without training.
    batch_size, lr : int, float
        Mini-batch size and learning rate.
    generator : torch.Generator
        Seeded CPU generator for the shuffles.
    phase : str
        Name of the phase, for the progress bar and error messages.
    verbose : int, default=0
        Show a progress bar when >= 1.
    optimizer : type, default=torch.optim.Adam
        Optimizer class; ``optimizer__*`` keyword arguments are passed on.
    callbacks : sequence of skorch callbacks, default=()
        Extra callbacks. A callback may raise :class:`StopTraining` in
        ``on_epoch_begin``/``on_epoch_end`` to end the phase early.
    net_class : type, default=UnsupervisedNet
        A subclass overriding skorch hooks (e.g. ``train_step``).
    remedy : str
        Advice quoted when the loss becomes non-finite.
    **net_kwargs
        Further parameters of ``net_class``.

    Returns
    -------
    net : UnsupervisedNet
        The trained net; ``net.history`` has one row per epoch run and
        ``net.stopped_early_`` says whether a callback ended the phase.

    Raises
    ------
    TrainingDivergedError
        When the loss becomes NaN or infinite.
    KeyboardInterrupt
        Re-raised when training was interrupted (skorch swallows it).
    """
    all_callbacks = [("non_finite_guard", NonFiniteLossGuard(phase, remedy))]
    if verbose >= 1 and epochs > 0:
        all_callbacks.append(("progress", ProgressBar(phase, epochs)))
    all_callbacks += [(f"cb{i}_{type(cb).__name__}", cb) for i, cb in enumerate(callbacks)]
    device = X.device
    net = net_class(
        module,
        criterion,
        optimizer=optimizer,
        lr=lr,
        max_epochs=epochs,
        batch_size=batch_size,
        callbacks=all_callbacks,
        device=device,
        **net_kwargs,
    )
    net.initialize()
    net.stopped_early_ = False
    if epochs == 0:
        return net
    dataset = IndexedTensorDataset(X, generator)
    net.partial_fit(dataset, None)
    if len(net.history) < epochs and not net.stopped_early_:
        # skorch's partial_fit swallows KeyboardInterrupt; an interrupted
        # fit must not go on as if it had finished.
        raise KeyboardInterrupt(f"training interrupted during the {phase} phase")
    # The phase's callbacks (closures over the fit, a progress bar) are done;
    # dropping them keeps the fitted net picklable.
    net.callbacks = None
    net.initialize_callbacks()
    return net


class AdversarialNet(UnsupervisedNet):
    """A module and a critic trained in alternation: one step of each per batch.

    For adversarial regularisers (ACAI, GAN-style critics). Each batch makes
    two updates, module first (as ACAI and DynAE do):

    1. with the critic frozen (``requires_grad=False``; gradients still flow
       through it into the module), ``loss = criterion_(y_pred, index, X,
       critic_)`` updates the module through ``optimizer_``;
    2. ``critic_loss = criterion_.critic_loss(y_pred, index, X, critic_)``
       updates the critic only, through ``critic_optimizer_``. The criterion
       detaches whatever of ``y_pred`` it feeds to the critic.

    The per-epoch mean critic loss is recorded in the history as
    ``train_critic_loss`` (one host read per epoch).

    Parameters
    ----------
    module : torch.nn.Module
        The network trained by the criterion's main loss.
    criterion : torch.nn.Module
        Called as ``criterion(y_pred, index, X, critic)``; has a method
        ``critic_loss(y_pred, index, X, critic)``.
    critic : torch.nn.Module
        The critic, already initialised; moved to the net's device.
    critic_lr : float, default=None
        Learning rate of the critic's optimiser (same class as the module's);
        the net's ``lr`` when None.
    **kwargs
        Further parameters of :class:`UnsupervisedNet`.
    """

    def __init__(self, module, criterion, *, critic, critic_lr=None, **kwargs):
        # Set before skorch's __init__: afterwards skorch only accepts torch
        # components created inside the initialize_* methods.
        self.critic = critic
        self.critic_lr = critic_lr
        super().__init__(module, criterion, **kwargs)

    def initialize_module(self):
        super().initialize_module()
        self.critic_ = self.critic
        return self

    def initialize_optimizer(self, *args, **kwargs):
        # One optimiser per player (skorch's default would put both in one).
        args, kw = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        self.optimizer_ = self.optimizer(*args, **kw)
        lr = self.lr if self.critic_lr is None else self.critic_lr
        self.critic_optimizer_ = self.optimizer(self.critic_.parameters(), lr=lr)
        return self

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(y_pred, y_true, X, self.critic_)

    def train_step(self, batch, **fit_params):
        Xi, index = batch
        self.critic_.requires_grad_(False)
        try:
            self.optimizer_.zero_grad()
            step = self.train_step_single(batch, **fit_params)
            self.optimizer_.step()
        finally:
            self.critic_.requires_grad_(True)
        self.critic_.train()
        self.critic_optimizer_.zero_grad()
        critic_loss = self.criterion_.critic_loss(step["y_pred"], index, Xi, self.critic_)
        critic_loss.backward()
        self.critic_optimizer_.step()
        self._critic_losses.append(critic_loss.detach())
        return step

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        self._critic_losses = []
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training and self._critic_losses:
            mean = torch.stack(self._critic_losses).float().mean().cpu().item()
            self.history.record(prefix + "_critic_loss", mean)


class NeighborRefresh(EveryNEpochs):
    """Recompute the k-nearest-neighbour graph of the current embedding every few epochs.

    At each refresh the rows ``X`` are embedded by ``embed`` (in eval mode,
    batched, without gradients; the module's mode is restored afterwards),
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
        super().__init__(self._refresh, every, at_start=True)
        self.refresh_fn = fn
        self.X = X
        self.embed = embed
        self.n_neighbors = n_neighbors
        self.random_state = random_state
        self.method = method
        self.modules = list(modules)
        self.n_refreshes_ = 0

    def _refresh(self, net, epoch):
        from skdeepclust.neighbors import kneighbors

        modes = [m.training for m in self.modules]
        for m in self.modules:
            m.eval()
        try:
            # A normal tensor (not an inference one): targets built from it enter autograd.
            Z = batched_apply(self.embed, self.X).clone()
        finally:
            for m, mode in zip(self.modules, modes):
                m.train(mode)
        seed = (self.random_state + self.n_refreshes_) % (2**31)
        self.n_refreshes_ += 1
        distances, indices = kneighbors(Z, self.n_neighbors, seed, method=self.method)
        self.refresh_fn(net, epoch, Z, distances, indices)


@torch.inference_mode()
def batched_apply(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor,
                  batch_size: int = 4096) -> torch.Tensor:
    """Apply ``fn`` to ``X`` in row batches under ``torch.inference_mode`` and concatenate.

    Parameters
    ----------
    fn : callable
        Maps a batch of rows to a tensor whose first dimension is the batch.
    X : torch.Tensor of shape (n_samples, ...)
        Input rows, on the device ``fn`` expects.
    batch_size : int, default=4096
        Rows per call.

    Returns
    -------
    out : torch.Tensor
        ``fn`` applied to all rows, on the device ``fn`` returned.
    """
    outs = [fn(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)]
    return torch.cat(outs) if outs else fn(X[:0])


def loss_history(net) -> list[float]:
    """Mean training loss of each epoch the net ran, as Python floats."""
    return [float(v) for v in net.history[:, "train_loss"]] if len(net.history) else []


def small_data_batch_size(n_samples: int, batch_size: int,
                          min_updates: int = MIN_UPDATES_PER_EPOCH,
                          min_batch_size: int = _MIN_BATCH_SIZE) -> int:
    """Rows per update so that an epoch makes ``min_updates`` updates on small data.

    ``min(batch_size, n_samples, max(min_batch_size, ceil(n_samples / min_updates)))``:
    ``batch_size`` on data with at least ``min_updates`` batches per epoch, smaller
    batches below that, but not below ``min_batch_size`` rows. The autoencoder phases
    of :class:`~skdeepclust.AutoencoderKMeans`, :class:`~skdeepclust.DCSS` and
    :class:`~skdeepclust.RDC` use it, so that their epoch counts mean about the same
    amount of training on 1,800 rows as on 10,000.

    Parameters
    ----------
    n_samples : int
        Rows of the training data.
    batch_size : int
        Rows per update on large data.
    min_updates : int, default=30
        Updates an epoch should make.
    min_batch_size : int, default=32
        Smallest batch the rule chooses (smaller data gets one batch of all rows).

    Returns
    -------
    batch_size : int

    Examples
    --------
    >>> from skdeepclust._training import small_data_batch_size
    >>> small_data_batch_size(10_000, 256), small_data_batch_size(1797, 256)
    (256, 60)
    >>> small_data_batch_size(150, 256), small_data_batch_size(20, 256)
    (32, 20)
    """
    return min(batch_size, n_samples,
               max(min_batch_size, math.ceil(n_samples / min_updates)))
