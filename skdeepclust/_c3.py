"""C3: cross-instance guided contrastive clustering, refining a Contrastive Clustering stage.

The losses (:func:`~skdeepclust.losses.instance_contrastive_loss`,
:func:`~skdeepclust.losses.cluster_contrastive_loss`,
:func:`~skdeepclust.losses.cross_instance_loss`), the views and the two-view
net are shared layers; this module holds C3's network and its two phases.
"""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from skdeepclust._autoencoder import resolve_hidden_layer_sizes
from skdeepclust._network import user_encoder
from skdeepclust._training import (
    TwoViewNet,
    batched_sum,
    evaluating,
    loss_history,
    passes_for,
)
from skdeepclust.augment import AUGMENTATION_NAMES, neighbor_views
from skdeepclust.base import BaseDeepClusterer
from skdeepclust.losses import (
    cluster_contrastive_loss,
    cross_instance_loss,
    instance_contrastive_loss,
)
from skdeepclust.nn import MLP, mlp_backbone
from skdeepclust.utils._docstrings import fill_doc

__all__ = ["C3"]


class _C3Module(nn.Module):
    """Backbone ``f`` (Linear-BN-ReLU layers), instance head ``g_I``, cluster head ``g_C``.

    The heads are ``Linear-ReLU-Linear`` without BatchNorm, as CC's. In
    training the input is the two-view batch ``[x_a; x_b]``; the output is
    ``(z, c)``: the instance head's raw output (the losses normalise it) and
    the cluster head's softmax, or ``None`` for ``c`` when ``with_clusters``
    is off (C3's phase, which never reads the cluster head).
    """

    def __init__(self, n_features, hidden, head_hidden, embedding_dim, n_clusters, *,
                 backbone=None):
        super().__init__()
        self.n_features = n_features
        self.backbone = mlp_backbone(n_features, hidden) if backbone is None else backbone
        self.instance_head = MLP(hidden[-1], [head_hidden], embedding_dim)
        self.cluster_head = MLP(hidden[-1], [head_hidden], n_clusters)
        self.with_clusters = True

    def embed(self, x):
        """Unit-norm instance embedding ``z`` of raw rows (the estimator's ``transform``)."""
        return F.normalize(self.instance_head(self.backbone(x)), dim=1)

    def forward(self, x2):
        h = self.backbone(x2)
        c = torch.softmax(self.cluster_head(h), dim=1) if self.with_clusters else None
        return self.instance_head(h), c


class _CCLoss(nn.Module):
    """Phase 1, Contrastive Clustering: ``L_ins(tau_I) + L_clu(tau_C)`` on the two views."""

    def __init__(self, instance_temperature, cluster_temperature):
        super().__init__()
        self.instance_temperature = instance_temperature
        self.cluster_temperature = cluster_temperature

    def forward(self, y_pred, index, X):
        z, c = y_pred
        n = z.shape[0] // 2
        return (instance_contrastive_loss(z[:n], z[n:], self.instance_temperature)
                + cluster_contrastive_loss(c[:n], c[n:], self.cluster_temperature))


class _C3Loss(nn.Module):
    """Phase 2: the cross-instance loss; keeps each batch's mean number of positives."""

    def __init__(self, zeta, gamma, temperature):
        super().__init__()
        self.zeta = zeta
        self.gamma = gamma
        self.temperature = temperature
        self.positives: list[torch.Tensor] = []

    def forward(self, y_pred, index, X):
        z = y_pred[0]
        n = z.shape[0] // 2
        loss, positives = cross_instance_loss(z[:n], z[n:], self.zeta, self.gamma,
                                              self.temperature)
        self.positives.append(positives)
        return loss


class _C3Net(TwoViewNet):
    """Two views per batch; trains the parameters left trainable; ``passes`` per epoch.

    The optimiser holds only parameters with ``requires_grad`` (phase 2: the
    backbone and instance head, the cluster head frozen). When the criterion
    counts positives, their epoch mean is recorded as ``mean_positives``.
    """

    def initialize_optimizer(self, *args, **kwargs):
        params = [(name, p) for name, p in self.module_.named_parameters() if p.requires_grad]
        args, kwargs = self.get_params_for_optimizer("optimizer", params)
        self.optimizer_ = self.optimizer(*args, **kwargs)
        return self

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        positives = getattr(self.criterion_, "positives", None)
        if positives:
            self.history.record("mean_positives", float(torch.stack(positives).mean()))
            positives.clear()


@fill_doc(embedding_dim_default=128, hidden_default="(128, 128)",
          batch_size_auto_default=(
              "128 rows in phase 2 at any size; smaller data makes\n"
              "    more passes per epoch (the small-data rule, repeated-pass form: each\n"
              "    epoch at least 30 updates), as the contrast needs many rows per batch."),
          max_epochs_default=5)
class C3(BaseDeepClusterer):
    r"""Cross-instance guided contrastive clustering (C3) on a Contrastive Clustering stage.

    A backbone ``f`` (an MLP) carries two heads: an instance head whose
    output ``z = n(g_I(f(x)))`` lies on the unit sphere, and a cluster head
    ``c = softmax(g_C(f(x)))`` over ``n_clusters`` outputs. Each row is
    seen through two augmented views ``a`` and ``b`` (``augmentation``).

    **Phase 1, Contrastive Clustering** (CC, Li et al. [2]_), trains all of
    it for ``pretrain_epochs``. On a batch of ``N`` rows, with ``s(u, v) =
    u . v``, ``i'`` the other view of entry ``i`` among the ``2N``, and
    ``y_m^k`` the ``m``-th column of the batch's assignments in view ``k``,

    .. math::

        L_{CC} = \frac{1}{2N} \sum_{i=1}^{2N} -\log
            \frac{e^{s(z_i, z_{i'})/\tau_I}}{\sum_{j \ne i} e^{s(z_i, z_j)/\tau_I}}
          + \frac{1}{2K} \sum_{m=1}^{2K} -\log
            \frac{e^{s(\hat y_m, \hat y_{m'})/\tau_C}}
                 {\sum_{l \ne m} e^{s(\hat y_m, \hat y_l)/\tau_C}}
          - H(Y),

    an instance contrast (each row's other view is its only positive), a
    contrast of the cluster columns (``\hat y`` the normalised columns of
    both views) and the entropy ``H(Y) = -\sum_k \sum_m P^k(m) \log P^k(m)``
    of the batch's cluster marginals ``P^k``, against collapse.

    **Phase 2, C3** (Sadeghi et al. [1]_), trains the backbone and the
    instance head for ``max_epochs`` with a fresh optimiser; the cluster
    head is frozen. Every batch entry whose cosine to the anchor reaches
    ``zeta`` counts as a positive, and the denominator is re-weighted
    towards pairs that are neither close nor opposite:

    .. math::

        L_{C3} = \frac{1}{2N} \sum_{i=1}^{2N} -\log
            \frac{\sum_{j \in P_i} e^{s(z_i, z_j)/\tau_3}}
                 {\sum_{j=1}^{2N} w_{ij}\, e^{s(z_i, z_j)/\tau_3}},
        \qquad P_i = \{j : s(z_i, z_j) \ge \zeta\} \cup \{i, i'\},
        \qquad w_{ij} = \frac{e^{\Gamma (1 - |s(z_i, z_j)|)}}
                             {\sum_{l} e^{\Gamma (1 - |s(z_i, z_l)|)}}

    (mask and weights computed without gradient, :math:`\tau_3` =
    ``c3_temperature``). Neighbourhoods that CC formed are pulled together
    and grow into dense clusters. A row's cluster is the argmax of the
    cluster head, which now sees the refined backbone.

    Parameters
    ----------
    {n_clusters}
    {embedding_dim}
        The instance head's output ``E`` (the columns of :meth:`transform`).
    hidden_layer_sizes : tuple of int or "auto", default=(128, 128)
        Widths of the backbone's layers (each ``Linear-BatchNorm-ReLU``); the
        last is the width ``R`` the heads read. ``"auto"`` as in the other
        estimators, ``(w, w, 4 w)``. Not empty.
    {module_encoder}
        It replaces the backbone ``f``; the heads are built on its width.
    head_hidden_dim : int or None, default=None
        Hidden width of both heads (``Linear-ReLU-Linear``); None: ``R``.
    {batch_size}
    lr : float, default=1e-4
        Adam learning rate of phase 2 (the paper's 1e-5 barely moves a
        small table's backbone; 1e-3 undoes CC's clusters).
    {max_epochs}
        Epochs of phase 2 (C3); 0 gives Contrastive Clustering alone.
    pretrain_epochs : int, default=10
        Epochs of phase 1 (CC). On small data each makes at least 30
        updates, so this sets the fit time up to some 8,000 rows.
    pretrain_batch_size : int, default=256
        Rows per update in phase 1 (capped at the number of samples; small
        data makes more passes per epoch, as in phase 2).
    pretrain_lr : float, default=3e-4
        Adam learning rate of phase 1.
    instance_temperature : float, default=0.5
        ``tau_I`` of CC's instance loss.
    cluster_temperature : float, default=1.0
        ``tau_C`` of CC's cluster loss.
    zeta : float, default=0.6
        Cosine threshold of the positives in phase 2, in ``(-1, 1)``. Watch
        ``history_["mean_positives"]``: with ``K`` balanced clusters about
        ``2N / K`` entries of a ``2N``-entry batch share an anchor's class;
        a count well above it means ``zeta`` admits pairs across clusters
        (raise it), far below means few pairs beyond the augmentation
        partner count (lower it). The paper uses 0.6 up to 20 clusters and
        0.9-0.95 for 200. Below 0.3 a warning is raised.
    gamma : float, default=0.1
        ``Gamma``, sharpness of the weights; 0 gives uniform weights (the
        public C3 code). Two weights of a row differ by at most ``e^Gamma``.
    c3_temperature : float, default=1.0
        ``tau_3`` inside ``L_C3`` (the thesis has none: 1).
    weight_decay : float, default=0.0
        Adam weight decay of both phases.
    augmentation : {"corruption", "noise", "mask"}, callable or pair, default="corruption"
        How the two views are drawn (:func:`skdeepclust.augment.make_views`):
        ``"corruption"`` replaces each entry with probability
        ``corruption_rate`` by the same feature of a random row, then adds
        Gaussian noise of ``noise_scale`` standard deviations per feature;
        ``"mask"`` zeroes entries instead; ``"noise"`` only adds the noise.
        A callable ``(x, generator) -> view`` (same shape, dtype and device,
        picklable) or a pair of them for asymmetric views.
    corruption_rate : float, default=0.3
        Probability that an entry is corrupted or masked.
    noise_scale : float, default=0.1
        Noise, in standard deviations of each feature. ``corruption_rate=0``
        with ``noise_scale=0`` (identical views) is refused.
    n_neighbors : int, default=0
        When positive, each view starts at a random point between the row
        and one of its ``n_neighbors`` nearest rows (searched once per fit),
        as in :class:`PIPCDR`; 0 augments the row itself, as the paper does.
    warm_start : bool, default=False
        When fitted already, a new :meth:`fit` skips phase 1 and runs phase 2
        again from the fitted networks (on the new ``X``, same features; the
        networks' shapes stay those of the first fit).
    {runtime_parameters}

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters_, embedding_dim)
        Per found cluster, the mean of ``z`` over its training rows, scaled
        to unit length (descriptive: :meth:`predict` reads the cluster head).
    net_ : skdeepclust._training.UnsupervisedNet
        The last trained skorch net (phase 2, or phase 1 when
        ``max_epochs=0``); ``net_.module_`` holds ``backbone``,
        ``instance_head`` and ``cluster_head``.
    {fitted_attributes}

    See Also
    --------
    PIPCDR : contrastive embeddings with k-means pseudo-labels.
    sklearn.cluster.KMeans : k-means on the raw features.

    Notes
    -----
    ``history_`` has the keys ``"cc"`` and ``"c3"`` (mean loss per epoch)
    and ``"mean_positives"`` (per phase-2 epoch, the mean size of ``P_i``;
    it should rise as clusters tighten). ``L_C3`` is computed with weights
    scaled to mean one, which shifts it by the constant ``log 2N`` from
    the thesis' form (same gradients), so it compares with the public code.

    Paper settings (images): ResNet-34 backbone, instance head ``512-512-128``,
    cluster head ``512-512-K``; CC 1000 epochs, Adam 3e-4, batch 256,
    ``tau_I=0.5``, ``tau_C=1.0``; C3 20 epochs, Adam 1e-5, batch 128,
    ``zeta=0.6`` (0.95 for 200 clusters), ``Gamma=0.1``, SimCLR image
    augmentations. Departures: an MLP backbone ``(128, 128)`` and vector
    augmentations; 10 CC epochs and 5 C3 epochs (``pretrain_epochs``,
    ``max_epochs``), each epoch making at least 30 updates on small data
    (more passes over the rows, the batches staying whole); ``lr=1e-4`` in
    phase 2. The augmentation partner always counts as a positive (the
    public code; the thesis' equation admits it only above ``zeta``); the
    thesis' ``1/2N`` normalisation (the code sums and divides by ``N``).
    Cluster-head outputs that receive no training row are dropped
    (``n_clusters_``, with a ``ConvergenceWarning``).

    References
    ----------
    .. [1] M. Sadeghi, H. Hojjati and N. Armanfard, "C3: Cross-instance guided
       contrastive clustering", BMVC 2023; M. Sadeghi, "Unsupervised
       representation learning for data clustering", PhD thesis, McGill
       University, 2025, chapter 5. Code: https://github.com/Armanfard-Lab/C3
    .. [2] Y. Li, P. Hu, Z. Liu, D. Peng, J. T. Zhou and X. Peng, "Contrastive
       clustering", AAAI 2021. Code:
       https://github.com/Yunfan-Li/Contrastive-Clustering

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepclust import C3
    >>> X, _ = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    >>> est = C3(n_clusters=3, hidden_layer_sizes=(16,), embedding_dim=8, batch_size=32,
    ...          pretrain_batch_size=32, pretrain_epochs=2, max_epochs=1,
    ...          random_state=0).fit(X)
    >>> est.transform(X).shape, est.predict_proba(X).shape[0]
    ((120, 8), 120)
    >>> bool((est.predict(X) == est.labels_).all())
    True
    >>> len(est.history_["mean_positives"])
    1
    """

    # Phase 2's batch: the paper's 128 rows at any size (small data makes more passes).
    _auto_batch_size = 128
    _auto_batch_shrinks = False
    _hidden_layers_required = True  # the heads read the backbone's last layer

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "head_hidden_dim": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrain_batch_size": [Interval(Integral, 2, None, closed="left")],
        "pretrain_lr": [Interval(Real, 0, None, closed="neither")],
        "instance_temperature": [Interval(Real, 0, None, closed="neither")],
        "cluster_temperature": [Interval(Real, 0, None, closed="neither")],
        "zeta": [Interval(Real, -1, 1, closed="neither")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "c3_temperature": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "augmentation": [StrOptions(set(AUGMENTATION_NAMES)), callable, tuple],
        "corruption_rate": [Interval(Real, 0, 1, closed="left")],
        "noise_scale": [Interval(Real, 0, None, closed="left")],
        "n_neighbors": [Interval(Integral, 0, None, closed="left")],
        "warm_start": ["boolean"],
    }

    def __init__(self, n_clusters=8, *, embedding_dim=128, hidden_layer_sizes=(128, 128),
                 module=None, head_hidden_dim=None, batch_size="auto", lr=1e-4, max_epochs=5,
                 pretrain_epochs=10, pretrain_batch_size=256, pretrain_lr=3e-4,
                 instance_temperature=0.5, cluster_temperature=1.0, zeta=0.6, gamma=0.1,
                 c3_temperature=1.0, weight_decay=0.0, augmentation="corruption",
                 corruption_rate=0.3, noise_scale=0.1, n_neighbors=0, warm_start=False,
                 device="auto", accelerator=None, random_state=None, verbose=0):
        self.n_clusters = n_clusters
        self.embedding_dim = embedding_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.module = module
        self.head_hidden_dim = head_hidden_dim
        self.batch_size = batch_size
        self.lr = lr
        self.max_epochs = max_epochs
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_batch_size = pretrain_batch_size
        self.pretrain_lr = pretrain_lr
        self.instance_temperature = instance_temperature
        self.cluster_temperature = cluster_temperature
        self.zeta = zeta
        self.gamma = gamma
        self.c3_temperature = c3_temperature
        self.weight_decay = weight_decay
        self.augmentation = augmentation
        self.corruption_rate = corruption_rate
        self.noise_scale = noise_scale
        self.n_neighbors = n_neighbors
        self.warm_start = warm_start
        self.device = device
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ checks and parts

    def _check_params_vs_input(self, X):
        super()._check_params_vs_input(X)
        if self.zeta < 0.3:
            warnings.warn(f"zeta={self.zeta} < 0.3: many pairs across clusters count as "
                          "positives (the paper uses 0.6); watch history_['mean_positives'].",
                          UserWarning, stacklevel=4)

    def _warm(self):
        return self.warm_start and hasattr(self, "net_")

    def _build(self, X):
        n_features = X.shape[1]
        if self._warm():
            # A copy: a failed refit leaves the fitted networks as they were.
            module = copy.deepcopy(self.net_.module_)
            width = module.n_features
            if width != n_features:
                raise ValueError(f"X has {n_features} features, but {type(self).__name__} "
                                 f"was fitted with {width} (warm_start=True).")
            shape = (module.instance_head[-1].out_features, module.cluster_head[-1].out_features)
            if shape != (self.embedding_dim, self.n_clusters):
                raise ValueError(f"warm_start=True continues the fitted networks, built with "
                                 f"embedding_dim={shape[0]} and n_clusters={shape[1]}; set "
                                 "warm_start=False to change them.")
            return module
        backbone = None
        if self.module is None:
            hidden = resolve_hidden_layer_sizes(self.hidden_layer_sizes, n_features)
        else:
            backbone, width = user_encoder(self.module, X, self.embedding_dim,
                                           owner=type(self).__name__)
            hidden = (width,)
        head = hidden[-1] if self.head_hidden_dim is None else self.head_hidden_dim
        return _C3Module(n_features, hidden, head, self.embedding_dim, self.n_clusters,
                         backbone=backbone)

    def _phase(self, ctx, module, X, views, criterion, *, epochs, batch_size, lr, phase):
        n = X.shape[0]
        # The small-data rule, repeated-pass form: both losses contrast within a batch,
        # so batches stay large and small data makes more passes per epoch.
        passes = passes_for(n // batch_size if n > batch_size else 1)
        net = ctx.train_phase(module, criterion, X, epochs=epochs, phase=phase, lr=lr,
                              batch_size=batch_size, net_class=_C3Net, passes=passes,
                              make_views=views, optimizer__weight_decay=self.weight_decay,
                              remedy="Lower `lr` or `pretrain_lr`, or standardise the "
                                     "features.")
        net.make_views = None
        return net

    # ------------------------------------------------------------------ fit

    def _fit(self, X, ctx):
        n, d = X.shape
        warm = self._warm()
        module = self._build(X).to(ctx.device)
        views = neighbor_views(self.augmentation, X, n_neighbors=self.n_neighbors,
                               generator=ctx.device_generator, random_state=ctx.sub_seed,
                               corruption_rate=self.corruption_rate,
                               noise_scale=self.noise_scale)
        fitted = {}
        if warm:
            history = {"cc": list(self.history_["cc"])}
        else:
            module.with_clusters = True
            cc = self._phase(ctx, module, X, views,
                             _CCLoss(self.instance_temperature, self.cluster_temperature),
                             epochs=self.pretrain_epochs,
                             batch_size=min(self.pretrain_batch_size, n), lr=self.pretrain_lr,
                             phase="CC")
            history = {"cc": loss_history(cc)}
            fitted["net_"] = cc
        history.update(c3=[], mean_positives=[])
        if self.max_epochs > 0 or warm:
            module.with_clusters = False
            module.cluster_head.requires_grad_(False)
            c3 = self._phase(ctx, module, X, views,
                             _C3Loss(self.zeta, self.gamma, self.c3_temperature),
                             epochs=self.max_epochs, batch_size=ctx.batch_size(n), lr=self.lr,
                             phase="C3")
            history["c3"] = loss_history(c3)
            history["mean_positives"] = [float(v) for v in c3.history[:, "mean_positives"]] \
                if len(c3.history) else []
            fitted["net_"] = c3
        module.with_clusters = True
        fitted.update(cluster_centers_=self._centers(module, X).cpu().numpy(),
                      history_=history, n_iter_=len(history["cc"]) + len(history["c3"]))
        return fitted

    def _centers(self, module, X):
        """Unit-norm mean embedding of each head cluster, summed batch by batch.

        The embeddings of all rows are never held (0.5 GB at a million rows).
        """

        def member_sums(x, rows):
            Z, C = module(x)
            members = F.one_hot(C.argmax(dim=1), self.n_clusters).to(Z.dtype)
            return members.T @ F.normalize(Z, dim=1)

        with evaluating(module):
            return F.normalize(batched_sum(member_sums, X), dim=1)

    # ------------------------------------------------------------ inference

    def _embed(self, X):
        return self.net_.module_.embed(X)

    def _assignment_input(self, X):
        return self.net_.module_.backbone(X)

    def _cluster_scores(self, H):
        return self.net_.module_.cluster_head(H)

    def _proba(self, H):
        return torch.softmax(self.net_.module_.cluster_head(H), dim=1)

    def _inertia(self, X_t):
        # Unit-norm embeddings: the score is the mean cosine to the own cluster's centre.
        labels = torch.as_tensor(self._labels_of(X_t))
        Z = self._embed_batched(X_t).cpu()
        centers = torch.as_tensor(np.asarray(self.cluster_centers_, dtype=np.float32))
        return -float((Z * centers[labels]).sum(dim=1).double().mean())
