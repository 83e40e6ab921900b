"""Nets with a train step of their own: alternating players, cluster-specific updates, two views.

Each custom step still goes through skorch's public hooks: the loss through
``get_loss``/``criterion_``, gradients announced by ``on_grad_computed`` (so
skorch callbacks such as gradient clipping work), optimisers stepped
explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from skorch.utils import TeeGenerator
from torch import nn

from skdeepclust._training._net import UnsupervisedNet
from skdeepclust._training._tools import batched_apply
from skdeepclust.losses import cluster_specific_loss, fuzzy_centers, fuzzy_memberships

__all__ = [
    "AlternatingNet",
    "AdversarialNet",
    "TeacherStudentNet",
    "ClusterSpecificCriterion",
    "ClusterSpecificNet",
    "TwoViewNet",
]


class AlternatingNet(UnsupervisedNet):
    """A module and a partner network trained in alternation: one step of each per batch.

    Each batch makes two updates, the module first:

    1. with the partner frozen (``requires_grad=False``; gradients still flow
       through it into the module), ``loss = criterion_(y_pred, index, X,
       partner_)`` updates the module through ``optimizer_``;
    2. ``criterion_.<role>_loss(y_pred, index, X, partner_)`` updates the
       partner only, through ``partner_optimizer_``; the criterion detaches
       whatever of ``y_pred`` it feeds to the partner.

    The per-epoch mean partner loss is recorded in the history as
    ``train_<role>_loss`` (one host read per epoch). Subclasses name the
    role: :class:`AdversarialNet` (a critic), :class:`TeacherStudentNet` (a
    student).

    Parameters
    ----------
    module : torch.nn.Module
        The network trained by the criterion's main loss.
    criterion : torch.nn.Module
        Called as ``criterion(y_pred, index, X, partner)``; has a method
        ``<role>_loss(y_pred, index, X, partner)``.
    partner : torch.nn.Module or None
        The partner network, already initialised; moved to the net's device.
        None: no partner, each batch makes the module's update only.
    partner_lr : float, default=None
        Learning rate of the partner's optimiser (same class as the module's);
        the net's ``lr`` when None.
    **kwargs
        Further parameters of :class:`UnsupervisedNet`.
    """

    role = "partner"
    # Two players, two optimiser steps per batch: the mixin wraps and steps one module.
    data_parallel = False

    def __init__(self, module, criterion, *, partner, partner_lr=None, **kwargs):
        # Set before skorch's __init__: afterwards skorch only accepts torch
        # components created inside the initialize_* methods.
        self.partner = partner
        self.partner_lr = partner_lr
        super().__init__(module, criterion, **kwargs)

    def initialize_module(self):
        super().initialize_module()
        self.partner_ = None if self.partner is None else self.partner.to(self.device)
        return self

    def initialize_optimizer(self, *args, **kwargs):
        # One optimiser per player (skorch's default would put both in one); frozen
        # parameters of the module (requires_grad=False) stay out of it.
        params = [(n, p) for n, p in self.module_.named_parameters() if p.requires_grad]
        args, kw = self.get_params_for_optimizer("optimizer", params)
        self.optimizer_ = self.optimizer(*args, **kw)
        if self.partner_ is not None:
            lr = self.lr if self.partner_lr is None else self.partner_lr
            self.partner_optimizer_ = self.optimizer(self.partner_.parameters(), lr=lr)
        return self

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(y_pred, y_true, X, self.partner_)

    def _announce_gradients(self, parameters, batch):
        self.notify("on_grad_computed", named_parameters=TeeGenerator(parameters),
                    batch=batch, training=True)

    def train_step(self, batch, **fit_params):
        if self.partner_ is None:
            return super().train_step(batch, **fit_params)
        Xi, index = batch
        self.partner_.requires_grad_(False)
        try:
            self.optimizer_.zero_grad()
            step = self.train_step_single(batch, **fit_params)
            self._announce_gradients(self.module_.named_parameters(), batch)
            self.optimizer_.step()
        finally:
            self.partner_.requires_grad_(True)
        self.partner_.train()
        self.partner_optimizer_.zero_grad()
        partner_loss = getattr(self.criterion_, f"{self.role}_loss")(
            step["y_pred"], index, Xi, self.partner_)
        partner_loss.backward()
        self._announce_gradients(self.partner_.named_parameters(), batch)
        self.partner_optimizer_.step()
        self._partner_losses.append(partner_loss.detach())
        return step

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        self._partner_losses = []
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training and self._partner_losses:
            mean = torch.stack(self._partner_losses).float().mean().cpu().item()
            self.history.record(f"{prefix}_{self.role}_loss", mean)


class AdversarialNet(AlternatingNet):
    """An :class:`AlternatingNet` whose partner is a critic (ACAI, GAN-style regularisers).

    The criterion has a method ``critic_loss(y_pred, index, X, critic)``; the
    history records ``train_critic_loss``.
    """

    role = "critic"


class TeacherStudentNet(AlternatingNet):
    """An :class:`AlternatingNet` whose module is a teacher and partner a student.

    Per batch the teacher steps on the criterion's loss (the student
    frozen: a distillation term may read it), then the student steps on
    ``criterion_.student_loss(y_pred, index, X, student)`` (forward-backward
    distillation, FBCC). The history records ``train_student_loss``.
    """

    role = "student"


class ClusterSpecificCriterion(nn.Module):
    """Fuzzy cluster-specific loss of the current update (DCSS phase 1, DML).

    Holds the centres ``mu`` (a buffer), the index ``k`` of the cluster being
    updated, the batch's weights ``p^m`` and the per-epoch sums of the
    reconstruction and centring terms (kept on the device).

    Parameters
    ----------
    centers : torch.Tensor of shape (K, d)
        Initial centres.
    fuzziness : float
        ``m``.
    centering_weight : float
        ``alpha``.
    """

    def __init__(self, centers, fuzziness, centering_weight):
        super().__init__()
        self.register_buffer("centers", centers.clone())
        self.fuzziness = fuzziness
        self.centering_weight = centering_weight
        self.k = 0
        self.weights = None
        self.sums = None

    def forward(self, y_pred, index, X):
        u, x_hat = y_pred
        loss, rec, cen = cluster_specific_loss(X, x_hat, u, self.centers[self.k],
                                               self.weights[:, self.k], self.centering_weight)
        self.sums = self.sums + torch.stack([rec.detach(), cen.detach()])
        return loss


class ClusterSpecificNet(UnsupervisedNet):
    """``K`` successive updates per batch, the ``k``-th with the loss of cluster ``k``.

    The module is one autoencoder (every cluster updates it: DCSS) or an
    ``nn.ModuleList`` of autoencoders with ``cluster_to_network[k]`` the one
    cluster ``k`` updates (DML: one per difficult cluster, a shared one for
    the easy clusters). Per batch the memberships ``p`` are computed once,
    each cluster in its own network's space; then each update is one
    ordinary skorch step (forward, loss, backward, ``on_grad_computed``,
    optimiser step). The batch's loss is their mean. The centres are
    recomputed (:func:`~skdeepclust.losses.fuzzy_centers`) after epochs 1,
    ``T + 1``, ``2 T + 1``, ... (``center_update_interval = T``); the history
    records the epoch's mean ``reconstruction`` and ``centering`` terms.

    Parameters
    ----------
    module, criterion
        An autoencoder (or list of them) and a :class:`ClusterSpecificCriterion`.
    cluster_to_network : sequence of int, default=None
        Network of each cluster (all 0 when None).
    center_update_interval : int, default=2
        ``T``.
    refresh_before_training : bool, default=False
        Also recompute the centres before the first epoch (DML: its
        networks start from copies of a trained one, with its centres).
    **kwargs
        Further parameters of :class:`UnsupervisedNet`.
    """

    # K steps per batch, each through one of several networks: not skorch's single step.
    data_parallel = False

    def __init__(self, *args, cluster_to_network: Sequence[int] | None = None,
                 center_update_interval: int = 2, refresh_before_training: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster_to_network = cluster_to_network
        self.center_update_interval = center_update_interval
        self.refresh_before_training = refresh_before_training

    def networks(self) -> list[nn.Module]:
        """The autoencoders, in the order ``cluster_to_network`` indexes them."""
        module = self.module_
        return list(module) if isinstance(module, nn.ModuleList) else [module]

    def _network_of(self, k: int) -> int:
        return 0 if self.cluster_to_network is None else int(self.cluster_to_network[k])

    def cluster_space(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of ``x``: ``(n, d)`` with one network, else ``(n, K, d)`` per cluster."""
        networks = self.networks()
        if len(networks) == 1:
            return networks[0].encoder(x)
        U = torch.stack([net.encoder(x) for net in networks])
        return U[self._cluster_index(U.device)].transpose(0, 1)

    def _cluster_index(self, device):
        # Built once (per device), not per batch: no host-to-device copy in the step.
        cached = getattr(self, "cluster_index_", None)
        if cached is None or cached.device != device:
            n_clusters = self.criterion_.centers.shape[0]
            cached = torch.as_tensor([self._network_of(k) for k in range(n_clusters)],
                                     device=device)
            self.cluster_index_ = cached
        return cached

    def infer(self, x, **fit_params):
        return self.networks()[self._network_of(self.criterion_.k)](x, **fit_params)

    def train_step(self, batch, **fit_params):
        crit = self.criterion_
        with torch.no_grad():
            crit.weights = fuzzy_memberships(self.cluster_space(batch[0]), crit.centers,
                                             crit.fuzziness) ** crit.fuzziness
        losses = []
        self._set_training(True)
        self._in_batch = True
        try:
            for k in range(crit.centers.shape[0]):
                crit.k = k
                losses.append(super().train_step(batch, **fit_params)["loss"].detach())
        finally:
            self._in_batch = False
        self.n_updates_ += len(losses)
        return {"loss": torch.stack(losses).mean(), "y_pred": None}

    def _set_training(self, training=True):
        # The K updates of a batch share the training mode, set once per batch: each
        # setting walks every submodule of all the networks.
        if training and getattr(self, "_in_batch", False):
            return
        super()._set_training(training)

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, **kwargs)
        self.criterion_.sums = torch.zeros(2, device=self.criterion_.centers.device)
        self.n_updates_ = 0
        if self.refresh_before_training and self.epochs_completed_ == 0:
            self.refresh_centers(dataset_train.X)

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        super().on_epoch_end(net, dataset_train=dataset_train, **kwargs)
        crit = self.criterion_
        rec, cen = (crit.sums / max(self.n_updates_, 1)).tolist()
        self.history.record("reconstruction", rec)
        self.history.record("centering", cen)
        if (self.epochs_completed_ - 1) % self.center_update_interval == 0:
            self.refresh_centers(dataset_train.X)

    def refresh_centers(self, X: torch.Tensor) -> None:
        """Recompute the centres from the embeddings of ``X`` (eq. 3)."""
        crit = self.criterion_
        U = batched_apply(self.cluster_space, X)
        crit.centers.copy_(fuzzy_centers(U, crit.centers, crit.fuzziness))


class _TwoViewIterator:
    """Batches ``(cat([x_a, x_b]), idx)`` of two views drawn from each slice."""

    def __init__(self, iterator, make_views: Callable):
        self.iterator = iterator
        self.make_views = make_views

    def __len__(self):
        return len(self.iterator)

    def __iter__(self):
        for x, idx in self.iterator:
            xa, xb = self.make_views(x, idx)
            yield torch.cat([xa, xb]), idx


class TwoViewNet(UnsupervisedNet):
    """Trains on two views of each batch, forwarded together as one ``2N`` batch.

    ``make_views(x, idx) -> (x_a, x_b)`` draws the views of a batch (its
    augmentations, its generator); it is attached for a phase only
    (``net.make_views``, then None again), so the fitted net keeps neither
    data nor generators. The module sees ``cat([x_a, x_b])`` (one forward
    pass, BatchNorm statistics over both views) and the criterion receives
    ``(y_pred, index, X2)`` with ``X2`` that ``2N``-row batch. Batches of
    one row are never formed (BatchNorm): a last short batch is dropped.

    Parameters
    ----------
    *args, **kwargs
        As :class:`UnsupervisedNet`.
    make_views : callable, default=None
        The view function of the first phase.
    passes : int, default=1
        Shuffled passes per epoch (see :func:`passes_for`): contrastive
        losses keep their batches large, so small data makes more passes.
    """

    drop_last = True
    # The losses compare each row with the rest of the batch (negatives, cluster
    # prototypes, a queue): a share of the batch is a different loss.
    data_parallel = False

    def __init__(self, *args, make_views=None, passes=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.make_views = make_views
        self.passes = passes

    def passes_per_epoch(self):
        return self.passes

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training=training)
        if not training:
            return iterator
        # Read at each batch: a continued phase attaches its own view function.
        return _TwoViewIterator(iterator, lambda x, idx: self.make_views(x, idx))
