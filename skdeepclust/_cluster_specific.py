"""The fuzzy cluster-specific path: DSL, i.e. DCSS's phase 1 and DML's base.

Pretraining, k-means on the codes, then epochs of ``K`` successive updates
per batch, each weighted by the fuzzy memberships ``p^m`` of its cluster
(:class:`~skdeepclust._training.ClusterSpecificNet`). DCSS stops here and
adds MNet; DML starts from the result and gives difficult clusters
autoencoders of their own. Both read the same parameters of the estimator
(``hidden_layer_sizes``, ``embedding_dim``, ``pretrain_epochs``,
``pretrain_lr``, ``n_init``, ``fuzziness``, ``centering_weight``,
``center_update_interval``), so the same seed gives both the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from skdeepclust._autoencoder import (
    embed,
    estimator_autoencoder,
    kmeans_on_codes,
    pretrain_autoencoder,
)
from skdeepclust._training import (
    ClusterSpecificCriterion,
    ClusterSpecificNet,
    UnsupervisedNet,
    loss_history,
)

__all__ = ["DSLResult", "train_dsl", "train_cluster_specific", "cluster_specific_history"]


@dataclass
class DSLResult:
    """What :func:`train_dsl` leaves: the autoencoder, its nets, centres and history.

    Attributes
    ----------
    autoencoder : skdeepclust.nn.MLPAutoencoder
        Trained in place by both phases.
    pretrain_net, net : skdeepclust._training.UnsupervisedNet
        The pretraining net and the cluster-specific net.
    centers : torch.Tensor of shape (n_clusters, embedding_dim)
        The last centres (k-means' when no cluster-specific epoch ran).
    history : dict of list of float
        ``"pretrain"``, ``<key>``, ``<key>_reconstruction``, ``<key>_centering``.
    """

    autoencoder: nn.Module
    pretrain_net: UnsupervisedNet
    net: ClusterSpecificNet
    centers: torch.Tensor
    history: dict


def train_cluster_specific(X, ctx, module, centers, *, epochs, batch_size, phase, **kwargs):
    """Cluster-specific updates of ``module`` from ``centers`` for ``epochs`` epochs.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Training data on ``ctx.device``.
    ctx : skdeepclust.base.FitContext
        The running fit; the estimator gives ``fuzziness``, ``centering_weight``
        and ``center_update_interval``, and ``lr`` is the learning rate.
    module : torch.nn.Module
        One autoencoder, or an ``nn.ModuleList`` of them (with
        ``cluster_to_network`` in ``kwargs``).
    centers : torch.Tensor of shape (n_clusters, embedding_dim)
        Starting centres (copied).
    epochs, batch_size : int
        Epochs and rows per batch.
    phase : str
        Phase name (progress bar, errors).
    **kwargs
        Further parameters of :class:`~skdeepclust._training.ClusterSpecificNet`.

    Returns
    -------
    net : skdeepclust._training.ClusterSpecificNet
        ``net.criterion_.centers`` are the last centres.
    """
    est = ctx.estimator
    kwargs.setdefault("center_update_interval", est.center_update_interval)
    return ctx.train_phase(
        module, ClusterSpecificCriterion(centers, est.fuzziness, est.centering_weight), X,
        epochs=epochs, phase=phase, net_class=ClusterSpecificNet, batch_size=batch_size,
        **kwargs)


def cluster_specific_history(net, key):
    """``history_`` entries of a cluster-specific phase: its loss and both terms per epoch.

    Parameters
    ----------
    net : skdeepclust._training.ClusterSpecificNet
        A trained net.
    key : str
        Name of the phase in ``history_``.

    Returns
    -------
    history : dict of list of float
        ``key``, ``key + "_reconstruction"``, ``key + "_centering"``.
    """
    history = {key: loss_history(net)}
    for term in ("reconstruction", "centering"):
        history[f"{key}_{term}"] = ([float(v) for v in net.history[:, term]]
                                    if len(net.history) else [])
    return history


def train_dsl(X, ctx, *, epochs, batch_size, key, phase):
    """DSL: build and pretrain the autoencoder, k-means on its codes, ``epochs`` fuzzy epochs.

    DCSS's phase 1 and DML's base; every draw comes from the fit's seed in
    the same order, so both give the same weights and centres.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Training data on ``ctx.device``.
    ctx : skdeepclust.base.FitContext
        The running fit (see the module docstring for the parameters it reads).
    epochs : int
        Cluster-specific epochs (0: the pretrained autoencoder and k-means' centres).
    batch_size : int
        Rows per batch of both phases.
    key, phase : str
        Name of the cluster-specific phase in ``history_`` and in progress bars.

    Returns
    -------
    result : DSLResult
    """
    est = ctx.estimator
    autoencoder = estimator_autoencoder(est, X)
    pretrain = pretrain_autoencoder(X, ctx, autoencoder, epochs=est.pretrain_epochs,
                                    lr=est.pretrain_lr, batch_size=batch_size)
    centers = kmeans_on_codes(embed(autoencoder.encoder, X, autoencoder), est.n_clusters,
                              n_init=est.n_init, random_state=ctx.sub_seed())
    centers = torch.as_tensor(centers, device=X.device)
    net = train_cluster_specific(X, ctx, autoencoder, centers, epochs=epochs,
                                 batch_size=batch_size, phase=phase)
    history = {"pretrain": loss_history(pretrain), **cluster_specific_history(net, key)}
    return DSLResult(autoencoder, pretrain, net, net.criterion_.centers, history)
