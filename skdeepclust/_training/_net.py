"""The unsupervised skorch net, its slicing iterator, and how a phase is run."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch import nn

from skdeepclust._training._callbacks import NonFiniteLossGuard, ProgressBar
from skdeepclust._training._tools import StopTraining

__all__ = [
    "IndexedTensorDataset",
    "SliceIterator",
    "UnsupervisedNet",
    "train_phase",
    "continue_phase",
    "loss_history",
    "small_data_batch_size",
    "passes_for",
    "MIN_UPDATES_PER_EPOCH",
]

# Schedules counted in epochs were tuned on data sets with many batches per epoch (the
# papers': 140 and more). Below this many, an epoch takes smaller batches or more passes.
MIN_UPDATES_PER_EPOCH = 30
_MIN_BATCH_SIZE = 32

#: Below this many multiply-adds per step (rows of a batch x parameters of the
#: module), a phase on the CPU trains on one torch thread. Measured on 2 cores:
#: a second thread made such steps no faster and often slower (the threads
#: synchronise on every small operation): 1,000 x 20 rows, RDC 8.5 s on one
#: thread against 11.6 s on two, PIPCDR 8.1 s against 14.2 s; 10,000 x 50 rows
#: (4.7e7 per step), AutoencoderKMeans 12.9 s against 13.6 s. From about 1e8
#: the second thread pays: 32-row steps of a (500, 500, 2000) autoencoder on 50
#: features (9.6e7) took 39 ms on one thread against 34 ms on two.
ONE_THREAD_WORK = 6e7


@contextmanager
def cpu_threads_for(module: nn.Module, batch_size: int, device):
    """One torch thread while training ``module`` on the CPU if its steps are small.

    The caller's thread count is restored afterwards, also on error. Larger
    steps, and any step on a GPU, keep the caller's setting.

    Parameters
    ----------
    module : torch.nn.Module
        The trained network.
    batch_size : int
        Rows per step.
    device : str or torch.device
        Where it trains.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._training import cpu_threads_for
    >>> before = torch.get_num_threads()
    >>> with cpu_threads_for(torch.nn.Linear(4, 2), 32, "cpu"):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    threads = torch.get_num_threads()
    work = batch_size * sum(p.numel() for p in module.parameters())
    if torch.device(device).type != "cpu" or threads == 1 or work >= ONE_THREAD_WORK:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
_DEFAULT_REMEDY = "Lower `lr`, or standardise the features (e.g. with StandardScaler)."


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
    single index-select on the device, with a seeded permutation per pass.

    Parameters
    ----------
    dataset : IndexedTensorDataset
        The data set to iterate over.
    batch_size : int
        Rows per batch; the last batch may be smaller.
    shuffle : bool, default=False
        Draw a new permutation (from ``dataset.generator``) each pass.
    drop_last : bool, default=False
        Drop a last batch smaller than ``batch_size``. It is never dropped
        when it is the only batch.
    merge_singleton : bool, default=False
        Merge a last batch of a single row into the batch before it
        (BatchNorm cannot train on one row); no row is left out.
    passes : int or callable, default=1
        Shuffled passes over the data per epoch (a callable is asked at the
        start of each epoch): the repeated-pass form of the small-data rule
        (:func:`passes_for`).
    shard : tuple of int, default=None
        ``(rank, n_processes)``: yield only this process's share of each
        batch, rows ``rank, rank + n_processes, ...`` of it (data-parallel
        training: every process draws the same permutation, so the shares
        partition the batch). A batch with fewer rows than processes is
        dropped, since every process must make the step.
    """

    def __init__(self, dataset: IndexedTensorDataset, batch_size: int, shuffle: bool = False,
                 drop_last: bool = False, merge_singleton: bool = False,
                 passes: int | Callable[[], int] = 1, shard: tuple[int, int] | None = None):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.merge_singleton = merge_singleton
        self.passes = passes
        self.shard = shard

    def batches_per_pass(self) -> int:
        """Number of batches in one pass over the data."""
        n = len(self.dataset)
        if self.drop_last and n > self.batch_size:
            return n // self.batch_size
        n_batches = math.ceil(n / self.batch_size)
        if self.merge_singleton and n_batches > 1 and n % self.batch_size == 1:
            n_batches -= 1
        if self.shard is not None and n - (n_batches - 1) * self.batch_size < self.shard[1]:
            n_batches -= 1
        return n_batches

    def _n_passes(self) -> int:
        return self.passes() if callable(self.passes) else self.passes

    def __len__(self) -> int:
        return self._n_passes() * self.batches_per_pass()

    def __iter__(self):
        for _ in range(self._n_passes()):
            yield from self._one_pass()

    def _one_pass(self):
        X = self.dataset.X
        n = X.shape[0]
        if self.shuffle:
            order = torch.randperm(n, generator=self.dataset.generator).to(X.device)
        else:
            order = torch.arange(n, device=X.device)
        n_batches = self.batches_per_pass()
        for b in range(n_batches):
            # The last batch runs to the end when a singleton was merged into it.
            stop = n if self.merge_singleton and b == n_batches - 1 else (b + 1) * self.batch_size
            idx = order[b * self.batch_size:stop]
            if self.shard is not None:
                idx = idx[self.shard[0]::self.shard[1]]
            yield X[idx], idx


class UnsupervisedNet(NeuralNet):
    """skorch ``NeuralNet`` for unsupervised objectives.

    Differences from :class:`skorch.NeuralNet`:

    * ``y`` of a batch is the tensor of sample indices; the criterion is
      called as ``criterion_(y_pred, index, X)`` so it can look up per-sample
      targets computed on the whole data set;
    * batches come from :class:`SliceIterator` (no per-sample collation);
      ``passes_per_epoch()`` gives its number of passes per epoch;
    * the per-batch losses are kept on the device during an epoch and read
      back once at its end (skorch reads each with ``.item()``, a device
      synchronisation per batch on CUDA); the history is the same;
    * ``epochs_completed_`` counts the epochs that ran to their end, and
      ``interrupted_`` records a ``KeyboardInterrupt`` raised in a batch
      (other than :class:`StopTraining`, a deliberate early stop): skorch's
      ``partial_fit`` swallows both, and :func:`train_phase` re-raises;
    * no validation split, nothing printed.

    Intended to be built through :func:`train_phase`. ``data_parallel`` says
    whether its training step may be split across processes (skorch's own
    step, a loss averaged over rows); nets with a step of their own set it
    to False.
    """

    drop_last = False
    merge_singleton = False
    data_parallel = True

    def __init__(self, module, criterion, *, train_split=None, verbose=0, **kwargs):
        super().__init__(module, criterion, train_split=train_split, verbose=verbose, **kwargs)

    def _initialize_history(self):
        # Here rather than in initialize(): AccelerateMixin.initialize does not chain to it.
        super()._initialize_history()
        self.epochs_completed_ = 0
        self.stopped_early_ = False
        self.interrupted_ = False
        return self

    def passes_per_epoch(self) -> int:
        """Shuffled passes over the data in one training epoch (1; see :func:`passes_for`)."""
        return 1

    def get_iterator(self, dataset, training=False):
        if isinstance(dataset, IndexedTensorDataset):
            return SliceIterator(
                dataset, self.batch_size, shuffle=training,
                drop_last=training and self.drop_last,
                merge_singleton=training and self.merge_singleton,
                passes=self.passes_per_epoch if training else 1,
            )
        return super().get_iterator(dataset, training=training)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(y_pred, y_true, X)

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        # The net's own hook runs before every callback's: an epoch that reaches it ran all
        # its batches, whatever a callback does next.
        self.epochs_completed_ += 1

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        losses, sizes = [], []
        try:
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                step = step_fn(batch, **fit_params)
                losses.append(step["loss"].detach())
                sizes.append(len(batch[1]))
                self.notify("on_batch_end", batch=batch, training=training, **step)
        except KeyboardInterrupt as exc:
            # skorch's partial_fit swallows it; train_phase reads this flag and re-raises.
            self.interrupted_ = not isinstance(exc, StopTraining)
            raise
        # One host read per epoch instead of one per batch.
        values = torch.stack(losses).float().cpu().tolist() if losses else []
        # skorch opened one history row per batch (on_batch_begin); fill them in order.
        rows = self.history[-1]["batches"][len(self.history[-1]["batches"]) - len(values):]
        for row, value, size in zip(rows, values, sizes):
            row[prefix + "_loss"] = value
            row[prefix + "_batch_size"] = size
        self.history.record(prefix + "_batch_count", len(losses))


def _phase_callbacks(phase, epochs, verbose, remedy, callbacks):
    named = [("non_finite_guard", NonFiniteLossGuard(phase, remedy))]
    if verbose >= 1 and epochs > 0:
        named.append(("progress", ProgressBar(phase, epochs)))
    return named + [(f"cb{i}_{type(cb).__name__}", cb) for i, cb in enumerate(callbacks)]


def _run(net, X, generator, epochs, phase, callbacks):
    """Train ``net`` for ``epochs`` more epochs with ``callbacks``; re-raise an interrupt."""
    net.callbacks = callbacks
    net.initialize_callbacks()
    net.stopped_early_ = net.interrupted_ = False
    target = net.epochs_completed_ + epochs
    try:
        with cpu_threads_for(net.module_, net.batch_size, X.device):
            net.partial_fit(IndexedTensorDataset(X, generator), None, epochs=epochs)
    finally:
        # The phase's callbacks (closures over the fit, a progress bar) are done;
        # dropping them keeps the fitted net picklable.
        net.callbacks = None
        net.initialize_callbacks()
    if net.interrupted_ or (net.epochs_completed_ < target and not net.stopped_early_):
        raise KeyboardInterrupt(f"training interrupted during the {phase} phase")
    return net


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
    remedy: str = _DEFAULT_REMEDY,
    accelerator=None,
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
        Extra callbacks. A callback may call :func:`stop_phase` in
        ``on_epoch_begin``/``on_epoch_end`` to end the phase early.
    net_class : type, default=UnsupervisedNet
        A subclass overriding skorch hooks (e.g. ``train_step``).
    remedy : str
        Advice quoted when the loss becomes non-finite.
    accelerator : accelerate.Accelerator, default=None
        Train data-parallel through skorch's
        :class:`~skorch.hf.AccelerateMixin` when ``net_class.data_parallel``
        (each process on its share of every batch); other nets train whole
        batches on every process. ``X`` must be on ``accelerator.device``.
        The returned net is a plain ``net_class`` net either way.
    **net_kwargs
        Further parameters of ``net_class``.

    Returns
    -------
    net : UnsupervisedNet
        The trained net; ``net.history`` has one row per epoch run,
        ``net.epochs_completed_`` counts them and ``net.stopped_early_`` says
        whether a callback ended the phase.

    Raises
    ------
    TrainingDivergedError
        When the loss becomes NaN or infinite.
    KeyboardInterrupt
        Re-raised when training was interrupted (skorch swallows it).
    """
    if optimizer is torch.optim.Adam:
        # On the CPU torch defaults to a Python loop over the parameter tensors;
        # the multi-tensor kernels cut that per-step overhead, which dominates on
        # small tables (same update rule).
        net_kwargs.setdefault("optimizer__foreach", True)
    parallel = accelerator is not None and net_class.data_parallel
    if parallel:
        from skdeepclust._training._accelerate import data_parallel_class, detach_accelerator

        # The accelerator places the modules (skorch asks for device=None then); the
        # mixin's default log sink would print the epochs' table whatever the verbosity.
        net_kwargs.update(accelerator=accelerator, callbacks__print_log__sink=print)
    net = (data_parallel_class(net_class) if parallel else net_class)(
        module,
        criterion,
        optimizer=optimizer,
        lr=lr,
        max_epochs=epochs,
        batch_size=batch_size,
        device=None if parallel else X.device,
        **net_kwargs,
    )
    net.initialize()
    net.remedy_ = remedy
    try:
        if epochs > 0:
            _run(net, X, generator, epochs, phase,
                 _phase_callbacks(phase, epochs, verbose, remedy, callbacks))
    finally:
        if parallel:
            detach_accelerator(net, net_class)
    return net


def continue_phase(net: UnsupervisedNet, X: torch.Tensor, epochs: int, *,
                   generator: torch.Generator, phase: str, verbose: int = 0,
                   callbacks: Sequence[Callback] = (), batch_size: int | None = None
                   ) -> UnsupervisedNet:
    """Train an already trained net ``epochs`` more epochs (module and optimiser go on).

    The continued phase gets the same guards as :func:`train_phase` (an
    error on a non-finite loss, a progress bar when verbose, an interrupt
    re-raised); the net's weights, optimiser state and history carry on.

    Parameters
    ----------
    net : UnsupervisedNet
        A net returned by :func:`train_phase`.
    X : torch.Tensor of shape (n_samples, n_features)
        Data of the continued training, on the net's device.
    epochs : int
        Epochs to add.
    generator : torch.Generator
        Seeded CPU generator for the shuffles.
    phase : str
        Name of the phase, for the progress bar and error messages.
    verbose : int, default=0
        Show a progress bar when >= 1.
    callbacks : sequence of skorch callbacks, default=()
        Extra callbacks of this continuation.
    batch_size : int, default=None
        New rows per batch; the net's when None.

    Returns
    -------
    net : UnsupervisedNet
        The same net, trained further.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._training import continue_phase, train_phase
    >>> from skdeepclust.losses import ReconstructionCriterion
    >>> from skdeepclust.nn import MLPAutoencoder
    >>> X, gen = torch.randn(20, 3), torch.Generator().manual_seed(0)
    >>> net = train_phase(MLPAutoencoder(3, [4], 2), ReconstructionCriterion(), X, epochs=2,
    ...                   batch_size=10, lr=1e-3, generator=gen, phase="pretrain")
    >>> continue_phase(net, X, 3, generator=gen, phase="more").epochs_completed_
    5
    """
    if batch_size is not None:
        net.batch_size = batch_size
    if epochs == 0:
        return net
    remedy = getattr(net, "remedy_", _DEFAULT_REMEDY)
    return _run(net, X, generator, epochs, phase,
                _phase_callbacks(phase, epochs, verbose, remedy, callbacks))


def loss_history(net) -> list[float]:
    """Mean training loss of each epoch the net ran to its end, as Python floats.

    An epoch that a callback stopped before its first batch (skorch had
    already opened its history row) has no loss and is left out.
    """
    return [float(row["train_loss"]) for row in net.history if "train_loss" in row]


def small_data_batch_size(n_samples: int, batch_size: int,
                          min_updates: int = MIN_UPDATES_PER_EPOCH,
                          min_batch_size: int = _MIN_BATCH_SIZE) -> int:
    """Rows per update so that an epoch makes ``min_updates`` updates on small data.

    The package's small-data rule has two forms, one per kind of phase:

    * phases whose loss is a sum of per-row terms (autoencoders) take
      smaller batches: ``min(batch_size, n_samples, max(min_batch_size,
      ceil(n_samples / min_updates)))`` (this function);
    * phases whose loss needs many rows in a batch (pairs, prototypes of
      clusters, BatchNorm statistics: DCSS's pair epochs, PIPCDR) keep the
      batch and pass over the data several times per epoch
      (:func:`passes_for`).

    Either way epoch counts mean about the same amount of training on 1,800
    rows as on 10,000.

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


def passes_for(batches_per_pass: int, min_updates: int = MIN_UPDATES_PER_EPOCH) -> int:
    """Passes over the data that make at least ``min_updates`` updates (at least one).

    The repeated-pass form of the small-data rule (see
    :func:`small_data_batch_size`), for phases whose batches must stay large.

    Parameters
    ----------
    batches_per_pass : int
        Updates one pass over the data makes.
    min_updates : int, default=30
        Updates wanted.

    Returns
    -------
    passes : int

    Examples
    --------
    >>> from skdeepclust._training import passes_for
    >>> passes_for(3), passes_for(40), passes_for(4, min_updates=0)
    (10, 1, 1)
    """
    return max(1, math.ceil(min_updates / max(1, batches_per_pass)))
