"""DCSS: deep clustering with self-supervision using pairwise similarities.

Phase 1 (pretraining, k-means, fuzzy cluster-specific updates of the
autoencoder) is the shared :func:`~skdeepclust._cluster_specific.train_dsl`,
which DML also starts from; this module holds the pair loss of phase 2,
MNet's warm-up and the estimator.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from skdeepclust._autoencoder import embed
from skdeepclust._cluster_specific import train_dsl
from skdeepclust._training import UnsupervisedNet, batched_apply, loss_history, passes_for
from skdeepclust.base import BaseDeepClusterer
from skdeepclust.losses import fuzzy_centers, fuzzy_memberships
from skdeepclust.nn import ClusteringHead, xavier_init
from skdeepclust.utils._docstrings import AUTO_BATCH_TEXT, fill_doc

__all__ = ["DCSS"]

_EPS = 1e-12
# Reference code: q entries above/below these become the constants 1/0 in the pair loss.
_SATURATE_HIGH, _SATURATE_LOW = 0.99, 0.01
# ---------------------------------------------------------------------- losses


def pair_loss(q, similarity, zeta, gamma):
    """Pairwise self-supervision loss of phase 2 (eqs. 4-5), averaged over the ``|B|^2`` pairs.

    .. math:: L_M = \\frac{1}{|B|^2} \\sum_{i, j \\in B}
              \\mathbb{1}[s_{ij} \\ge \\zeta] (1 - \\tilde q_i \\cdot \\tilde q_j)
              + \\mathbb{1}[s_{ij} \\le \\gamma]\\, \\tilde q_i \\cdot \\tilde q_j

    The sum includes ``i = j``. ``q~`` is ``q`` with entries above 0.99
    replaced by the constant 1 and entries below 0.01 by the constant 0 (the
    reference code's saturation: no gradient through saturated entries).

    Parameters
    ----------
    q : torch.Tensor of shape (batch, K)
        MNet outputs (rows on the simplex).
    similarity : torch.Tensor of shape (batch, batch)
        ``s_ij`` (``p_i . p_j`` or ``q_i . q_j``), a constant.
    zeta, gamma : float
        Similar / dissimilar thresholds.

    Returns
    -------
    loss : torch.Tensor (scalar)
    active : torch.Tensor (bool scalar)
        Whether any pair is similar or dissimilar (otherwise ``loss`` is 0).

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._dcss import pair_loss
    >>> q = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    >>> loss, active = pair_loss(q, torch.tensor([[0.9, 0.0], [0.0, 1.0]]), 0.8, 0.2)
    >>> round(float(loss), 4), bool(active)  # (1 - 0.5) + 0.5 + 0.5 + (1 - 1), over 4
    (0.375, True)
    """
    q_sat = torch.where(q > _SATURATE_HIGH, torch.ones_like(q),
                        torch.where(q < _SATURATE_LOW, torch.zeros_like(q), q))
    gram = q_sat @ q_sat.T
    similar = similarity >= zeta
    dissimilar = similarity <= gamma
    zero = torch.zeros_like(gram)
    loss = (torch.where(similar, 1.0 - gram, zero) + torch.where(dissimilar, gram, zero)).mean()
    return loss, (similar | dissimilar).any()


def mnet_warmup_loss(q, target):
    """Cross-entropy of MNet's outputs against hard targets (the warm-up of phase 2).

    .. math:: L_W = -\\frac{1}{|B|} \\sum_{i \\in B} \\log q_{i, t_i},
              \\qquad t_i = \\arg\\max_k p_{ik}

    Parameters
    ----------
    q : torch.Tensor of shape (batch, K)
        MNet outputs (rows on the simplex).
    target : torch.Tensor of shape (batch,), dtype=int64
        Index of each row's nearest phase-1 centre.

    Returns
    -------
    loss : torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._dcss import mnet_warmup_loss
    >>> q = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    >>> round(float(mnet_warmup_loss(q, torch.tensor([0, 1]))), 4)  # -(log 0.5 + log 0.75) / 2
    0.4904
    """
    picked = q.gather(1, target[:, None]).squeeze(1)
    return -torch.log(picked.clamp_min(_EPS)).mean()


# ------------------------------------------------------------- phase 2


class _EncoderMNet(nn.Module):
    """Encoder followed by MNet: ``x -> (u, q)``."""

    def __init__(self, encoder, mnet):
        super().__init__()
        self.encoder = encoder
        self.mnet = mnet

    def forward(self, x):
        u = self.encoder(x)
        return u, self.mnet(u)


class _PairCriterion(nn.Module):
    """Phase-2 loss; pairs come from ``p`` (u space) or from ``q`` itself (q space).

    In the warm-up epochs (``warmup``) the loss is instead the cross-entropy
    of ``q`` against the nearest phase-1 centre, ``argmax_k p_ik``.
    """

    def __init__(self, centers, fuzziness, zeta, gamma):
        super().__init__()
        self.register_buffer("centers", centers.clone())
        self.fuzziness = fuzziness
        self.zeta = zeta
        self.gamma = gamma
        self.warmup = False
        self.u_space = True

    def forward(self, y_pred, index, X):
        u, q = y_pred
        if self.warmup:
            with torch.no_grad():
                target = fuzzy_memberships(u, self.centers, self.fuzziness).argmax(dim=1)
            return mnet_warmup_loss(q, target)
        with torch.no_grad():
            if self.u_space:
                p = fuzzy_memberships(u, self.centers, self.fuzziness)
                similarity = p @ p.T
            else:
                similarity = q @ q.T
        return pair_loss(q, similarity, self.zeta, self.gamma)[0]


class _Phase2Net(UnsupervisedNet):
    """Phase 2: encoder + MNet; ``warmup_epochs`` of cross-entropy against the nearest
    phase-1 centre, then pair losses, from u space for ``u_space_epochs``, then from q space.

    The warm-up and u-space epochs, whose pairs need large batches, follow the
    repeated-pass form of the small-data rule
    (:func:`~skdeepclust._training.passes_for`); q-space epochs make one pass.
    A batch without any similar or dissimilar pair has a zero loss and
    gradient; it still makes an optimiser step (see the estimator's Notes).
    """

    merge_singleton = True  # MNet's BatchNorm cannot train on a batch of one row
    # The pair losses are over the pairs within a batch: a share of it loses the others.
    data_parallel = False

    def __init__(self, *args, warmup_epochs=1, u_space_epochs=5, **kwargs):
        super().__init__(*args, **kwargs)
        self.warmup_epochs = warmup_epochs
        self.u_space_epochs = u_space_epochs

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training=training)
        if training:
            self.batches_per_pass_ = iterator.batches_per_pass()
        return iterator

    def passes_per_epoch(self):
        return passes_for(self.batches_per_pass_) if self.criterion_.u_space else 1

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        super().on_epoch_begin(net, dataset_train=dataset_train, **kwargs)
        epoch = self.epochs_completed_ + 1
        self.criterion_.warmup = epoch <= self.warmup_epochs
        self.criterion_.u_space = epoch <= self.warmup_epochs + self.u_space_epochs

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        super().on_epoch_end(net, dataset_train=dataset_train, **kwargs)
        crit = self.criterion_
        if crit.u_space and not crit.warmup:
            U = batched_apply(self.module_.encoder, dataset_train.X)
            crit.centers.copy_(fuzzy_centers(U, crit.centers, crit.fuzziness))


# ------------------------------------------------------------------ estimator


@fill_doc(n_init_default=10, embedding_dim_default=10, hidden_default='"auto"',
          batch_size_auto_default=AUTO_BATCH_TEXT,
          pretrain_lr_default="1e-3", fuzziness_default=1.5,
          pretrain_epochs_default=30, max_epochs_default=3)
class DCSS(BaseDeepClusterer):
    """Deep clustering with self-supervision using pairwise similarities (DCSS).

    DCSS trains an autoencoder ``x -> u = f(x) -> x^ = g(u)`` in two phases
    (Sadeghi & Armanfard [1]_).

    **Phase 1** makes the embedding space cluster-friendly. After
    reconstruction pretraining and k-means on the codes (centres ``mu_k``),
    every mini-batch ``B`` updates the autoencoder ``K`` times in succession;
    run ``k`` minimises the loss of cluster ``k``, each sample weighted by its
    fuzzy membership ``p_ik`` raised to the power ``m``:

    .. math::

        L^{(k)} = \\frac{1}{|B|} \\sum_{i \\in B} p_{ik}^m \\lVert x_i - \\hat x_i \\rVert_2^2
                + \\alpha \\frac{1}{|B|} \\sum_{i \\in B} p_{ik}^m \\lVert u_i - \\mu_k \\rVert_2^2,
        \\qquad
        p_{ik} = \\frac{\\lVert u_i - \\mu_k \\rVert^{-2/(m-1)}}
                      {\\sum_j \\lVert u_i - \\mu_j \\rVert^{-2/(m-1)}}

    (``p`` computed once per batch, a constant). Every ``T1`` epochs the
    centres become ``mu_k = sum_i p_ik^m u_i / sum_i p_ik^m`` over all data.

    **Phase 2** drops the decoder and appends MNet, a softmax network with
    output ``q_i = M(u_i)`` in the ``K``-simplex. Encoder and MNet are trained
    on all ordered pairs of a batch (``i = j`` included):

    .. math::

        L_M = \\frac{1}{|B|^2} \\sum_{i, j \\in B}
              \\mathbb{1}[s_{ij} \\ge \\zeta] (1 - q_i \\cdot q_j)
              + \\mathbb{1}[s_{ij} \\le \\gamma]\\, q_i \\cdot q_j

    with ``s_ij = p_i . p_j`` (u space, centres refreshed after each epoch)
    for the first ``T2`` epochs and ``s_ij = q_i . q_j`` afterwards; pairs with
    ``gamma < s_ij < zeta`` are ignored. For ``zeta > 2/3`` and
    ``gamma < zeta^2`` (the defaults 0.8 and 0.2) similar pairs must share
    their argmax and dissimilar ones must not (the paper's Theorems 1-3).
    The label of a sample is ``argmax_k q_k``; ``predict`` uses the same rule.
    Before the pair epochs MNet is warmed up (``mnet_warmup_epochs``, not in
    the paper) on the cross-entropy against the nearest phase-1 centre,

    .. math::

        L_W = -\\frac{1}{|B|} \\sum_{i \\in B} \\log q_{i, t_i},
        \\qquad t_i = \\arg\\max_k p_{ik},

    so that each output starts as one phase-1 cluster (Notes).

    Parameters
    ----------
    {n_clusters}
    {embedding_dim}
    {hidden_layer_sizes}
    {module_autoencoder}
        It replaces the autoencoder of both phases; MNet is built on its codes.
        The paper's MLP autoencoder is ``D-500-500-2000-d`` with ReLU hidden
        layers; here the code and the output are linear. Not empty.
    mnet_hidden_layer_sizes : tuple of int, default=(128, 128, 128)
        MNet's hidden widths (each ``Linear -> BatchNorm1d -> ReLU``; may be
        empty).
    {batch_size}
        In phase 2 ``"auto"`` is 256 rows at any size: pairs need batches
        much larger than ``n_clusters``, so on small data each warm-up and
        u-space epoch passes over the data ``ceil(30 / batches)`` times
        instead (Notes).
    lr : float, default=1e-5
        Adam learning rate of the autoencoder in phase 1 and of the encoder
        in phase 2 (the paper's value). Larger values speed phase 1 up but
        let the encoder collapse clusters in phase 2 (measured on MNIST:
        1e-4 took a 10,000-row fit from 0.57 to 0.33 ACC in phase 2, 1e-5
        from 0.57 to 0.62).
    mnet_lr : float, default=1e-3
        Adam learning rate of MNet.
    {pretrain_epochs}
    {pretrain_lr}
    {max_epochs}
        Phase 1 (``MaxIter1``); each epoch costs about ``n_clusters + 1/6``
        pretraining epochs.
    mnet_epochs : int, default=20
        Pair epochs of phase 2 (``MaxIter2``); 0 gives "DCSS_u": the phase-1
        model, labels from the nearest centre.
    mnet_warmup_epochs : int, default=1
        Epochs at the start of phase 2 in which MNet (and the encoder, at
        ``lr``) learn the nearest phase-1 centre by cross-entropy, before
        the ``mnet_epochs`` pair epochs. Not in the paper: 0 is the paper's
        phase 2. Each makes at least 30 updates, as a u-space epoch does.
    u_space_epochs : int, default=5
        ``T2``: phase-2 epochs whose pairs come from the phase-1 memberships
        ``p``; later epochs take them from ``q``. ``u_space_epochs >=
        mnet_epochs`` uses u-space pairs throughout.
    center_update_interval : int, default=2
        ``T1``: phase-1 centres are recomputed after epochs 1, T1 + 1, ...
    centering_weight : float, default=0.1
        ``alpha``, weight of the centring term. It was set for pixels in
        ``[0, 1]``; with standardised features the reconstruction term grows
        with the number of features, so wide data may want a larger value.
    {fuzziness}
    zeta : float, default=0.8
        Similarity threshold; ``0 < gamma < zeta < 1`` (warns when
        ``zeta <= 2/3``: similar pairs could then disagree on their label).
    gamma : float, default=0.2
        Dissimilarity threshold (warns when ``gamma >= zeta ** 2``).
    {n_init}
        k-means gives the initial centres, on the pretrained codes.
    {runtime_parameters}

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters_, embedding_dim)
        Centre of each found cluster in the embedding space: the
        ``q``-weighted mean of the training embeddings (DCSS_u: the phase-1
        centres).
    fuzzy_centers_ : ndarray of shape (n_clusters, embedding_dim)
        The phase-1 centres ``mu``, refreshed through the u-space epochs.
        After the warm-up (``mnet_warmup_epochs >= 1``) MNet's output ``k``
        starts as phase-1 cluster ``k``; without it MNet's outputs start in
        random order and are not aligned with these centres.
    net_ : skdeepclust._training.UnsupervisedNet
        The last trained skorch net: phase 2 (``net_.module_.encoder`` and
        ``net_.module_.mnet``), or phase 1 (the autoencoder) when
        ``mnet_epochs=0``.
    {fitted_attributes}

    See Also
    --------
    AutoencoderKMeans : the pretraining and k-means initialisation alone.
    sklearn.cluster.KMeans : k-means on the raw features.

    Notes
    -----
    Paper settings (grey-scale images with a convolutional autoencoder, and
    ResNet features with the MLP autoencoder above): ``embedding_dim=10``
    (20 for features), ``mnet_hidden_layer_sizes=(128, 128, 128)``,
    ``lr=1e-5``, ``mnet_lr=1e-3``, ``max_epochs=200``, ``mnet_epochs=20``,
    ``mnet_warmup_epochs=0``, ``u_space_epochs=5``, ``center_update_interval=2``,
    ``centering_weight=0.1``, ``fuzziness=1.5``, ``zeta=0.8``, ``gamma=0.2``;
    the reference code pretrains 200 epochs with batch 500. That is hours on
    a CPU. The defaults here (``pretrain_epochs=30``,
    ``max_epochs=3``, 256-row batches, ``hidden_layer_sizes="auto"``) fit
    1,000 x 50 standardised rows in about 10 s and 10,000 x 50 in about
    30 s on 2 CPU cores (``benchmarks/cost.py``; the papers' widths are
    ``hidden_layer_sizes=(500, 500, 2000)``). Reported accuracies: MNIST 97.9 %,
    Fashion-MNIST 66.3 %, USPS 87.1 %, CIFAR-10 (ResNet features) 84.2 %.

    Small data: the paper's schedules count epochs of 140 updates (70,000
    rows, batches of 500). Below 30 batches per epoch (7,680 rows at the
    default ``batch_size``) an epoch here still makes at least 30 updates:
    the autoencoder phases take smaller batches (not below 32 rows), and the
    u-space epochs of phase 2, whose pairs need large batches, pass over the
    data several times. Without this MNet barely fitted the phase-1
    memberships in the u-space epochs (on digits, 35 updates) and the
    q-space epochs then locked in merged clusters; with it DCSS went from
    0.75 to 0.83 ACC on digits (method page). The q-space epochs keep one
    pass: there MNet supervises itself, and longer self-supervision drifted
    (breast cancer 0.93 to 0.85 ACC with 30 passes).

    MNet warm-up (``mnet_warmup_epochs``, a departure from the paper):
    started from random weights, MNet saturates within the first pair epoch
    and can put two well-separated clusters in one output and leave another
    unused; a merged pair with confident outputs sends almost no gradient
    through the pair loss, so it stays. One epoch of cross-entropy against
    the nearest phase-1 centre first aligns each output with one phase-1
    cluster; the pair epochs then refine that partition. On 10 standardised
    blobs (``benchmarks/dcss_warmup.py``, two settings, six fits) the
    paper's phase 2 merged two blobs (9 clusters, ARI 0.90) in four fits,
    with the warm-up all six found the 10 blobs (ARI 1.00). On MNIST-70k
    the paper's phase 2 emptied two outputs (ACC 0.660), with the warm-up
    the fit ended at 0.799; on digits the two score alike (method page).

    Departures from the paper: an MLP autoencoder with a linear code and
    output for every input (the paper uses a convolutional one on images);
    the epoch counts above and the small-data rule; ``n_clusters=1`` is accepted
    (scikit-learn's checks fit one cluster). Adam in both phases (the
    paper; its code uses SGD with lr 1e-6 in phase 1); losses are batch
    means instead of sums
    (a constant factor under Adam); the 0.99/0.01 saturation of ``q`` in the
    pair loss comes from the reference code; no checkpoint is selected with
    ground-truth labels, as the code does (the last epoch is the model);
    the MNet warm-up above; output units of MNet that receive no sample are
    dropped (``n_clusters_``, with a warning). A phase-2 batch with no
    similar and no dissimilar pair (loss and gradient 0) still makes an Adam
    step, whose momentum moves the weights, where the paper skips the step:
    skipping would read a flag from the device at every batch, and such
    batches need every row of the batch to be ambiguous (the self-pair
    ``p_i . p_i`` or ``q_i . q_i`` of a confidently assigned row is above
    ``zeta``); on digits, iris, wine and breast cancer (seeds 0-2) the fits
    are bit-identical with and without the skip.

    ``history_`` has the keys ``"pretrain"``, ``"phase1"`` (its two terms
    also under ``"phase1_reconstruction"`` and ``"phase1_centering"``) and
    ``"phase2"`` (the warm-up epochs first, then the pair epochs).

    References
    ----------
    .. [1] M. Sadeghi and N. Armanfard, "Deep clustering with self-supervision
       using pairwise data similarities". Reference code:
       https://github.com/Armanfard-Lab/DCSS
    .. [2] M. Sadeghi, "Unsupervised representation learning for data
       clustering", PhD thesis, McGill University, 2025, chapter 4.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepclust import DCSS
    >>> X, _ = make_blobs(n_samples=200, centers=3, n_features=5, random_state=0)
    >>> est = DCSS(n_clusters=3, hidden_layer_sizes=(32,), embedding_dim=2, batch_size=50,
    ...            pretrain_epochs=5, max_epochs=2, mnet_epochs=4, random_state=0).fit(X)
    >>> est.labels_.shape, est.predict_proba(X).shape, est.transform(X).shape
    ((200,), (200, 3), (200, 2))
    """

    _hidden_layers_required = True  # hidden_layer_sizes=() (a linear encoder) is refused

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "mnet_hidden_layer_sizes": ["array-like"],
        "batch_size": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "mnet_lr": [Interval(Real, 0, None, closed="neither")],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "pretrain_lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "mnet_epochs": [Interval(Integral, 0, None, closed="left")],
        "mnet_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "u_space_epochs": [Interval(Integral, 0, None, closed="left")],
        "center_update_interval": [Interval(Integral, 1, None, closed="left")],
        "centering_weight": [Interval(Real, 0, None, closed="left")],
        "fuzziness": [Interval(Real, 1, None, closed="neither")],
        "zeta": [Interval(Real, 0, 1, closed="neither")],
        "gamma": [Interval(Real, 0, 1, closed="neither")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_clusters=8, *, embedding_dim=10, hidden_layer_sizes="auto", module=None,
                 mnet_hidden_layer_sizes=(128, 128, 128), batch_size="auto", lr=1e-5, mnet_lr=1e-3,
                 pretrain_epochs=30, pretrain_lr=1e-3, max_epochs=3, mnet_epochs=20,
                 mnet_warmup_epochs=1, u_space_epochs=5, center_update_interval=2,
                 centering_weight=0.1, fuzziness=1.5, zeta=0.8, gamma=0.2, n_init=10,
                 device="auto", accelerator=None, random_state=None, verbose=0):
        self.n_clusters = n_clusters
        self.embedding_dim = embedding_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.module = module
        self.mnet_hidden_layer_sizes = mnet_hidden_layer_sizes
        self.batch_size = batch_size
        self.lr = lr
        self.mnet_lr = mnet_lr
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr
        self.max_epochs = max_epochs
        self.mnet_epochs = mnet_epochs
        self.mnet_warmup_epochs = mnet_warmup_epochs
        self.u_space_epochs = u_space_epochs
        self.center_update_interval = center_update_interval
        self.centering_weight = centering_weight
        self.fuzziness = fuzziness
        self.zeta = zeta
        self.gamma = gamma
        self.n_init = n_init
        self.device = device
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    def _check_params_vs_input(self, X):
        super()._check_params_vs_input(X)
        sizes = list(self.mnet_hidden_layer_sizes)
        if not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1
                   for h in sizes):
            raise ValueError("mnet_hidden_layer_sizes must be a sequence of positive integers, "
                             f"got {self.mnet_hidden_layer_sizes!r}.")
        if not self.gamma < self.zeta:
            raise ValueError(f"gamma={self.gamma} must be smaller than zeta={self.zeta}.")
        if self.zeta <= 2 / 3:
            warnings.warn(f"zeta={self.zeta} <= 2/3: pairs counted as similar may have "
                          "different labels (the paper's guarantee needs zeta > 2/3).",
                          UserWarning, stacklevel=4)
        if self.gamma >= self.zeta**2:
            warnings.warn(f"gamma={self.gamma} >= zeta**2={self.zeta**2:.3g}: pairs counted as "
                          "dissimilar may share a label (the paper's guarantee needs "
                          "gamma < zeta**2).", UserWarning, stacklevel=4)

    def _fit(self, X, ctx):
        # "auto": the autoencoder phases shrink their batches on small data; the pair
        # epochs keep theirs (pairs need many rows) and make more passes instead.
        ae_batch = ctx.batch_size(X.shape[0])
        pair_batch = min(self._auto_batch_size if self.batch_size == "auto" else
                         self.batch_size, X.shape[0])
        dsl = train_dsl(X, ctx, epochs=self.max_epochs, batch_size=ae_batch, key="phase1",
                        phase="phase 1")
        autoencoder, phase1, centers, history = dsl.autoencoder, dsl.net, dsl.centers, dsl.history
        fitted = {"fuzzy_centers_": centers.cpu().numpy().copy()}

        if self.mnet_epochs == 0:  # DCSS_u: nearest phase-1 centre
            fitted.update(net_=phase1, cluster_centers_=fitted["fuzzy_centers_"])
        else:
            mnet = xavier_init(ClusteringHead(self.embedding_dim,
                                              list(self.mnet_hidden_layer_sizes),
                                              self.n_clusters))
            phase2 = ctx.train_phase(
                _EncoderMNet(autoencoder.encoder, mnet),
                _PairCriterion(centers, self.fuzziness, self.zeta, self.gamma), X,
                epochs=self.mnet_warmup_epochs + self.mnet_epochs, lr=self.mnet_lr,
                batch_size=pair_batch, phase="phase 2", net_class=_Phase2Net,
                warmup_epochs=self.mnet_warmup_epochs, u_space_epochs=self.u_space_epochs,
                optimizer__param_groups=[("encoder.*", {"lr": self.lr})])
            history["phase2"] = loss_history(phase2)
            fitted["fuzzy_centers_"] = phase2.criterion_.centers.cpu().numpy().copy()
            module = phase2.module_
            U, q = embed(lambda xb: torch.cat(module(xb), dim=1), X, module).split(
                [self.embedding_dim, self.n_clusters], dim=1)
            mass = q.sum(dim=0).clamp_min(torch.finfo(q.dtype).tiny)
            fitted.update(net_=phase2, cluster_centers_=((q.T @ U) / mass[:, None]).cpu().numpy())
            if len(torch.unique(q.argmax(dim=1))) == 1:
                warnings.warn("DCSS put every sample in one cluster: check zeta/gamma, or give "
                              "phase 1 more epochs (max_epochs) so that the embedding separates "
                              "the clusters.", UserWarning, stacklevel=4)
        fitted.update(history_=history,
                      n_iter_=sum(len(history.get(k, [])) for k in ("pretrain", "phase1",
                                                                      "phase2")))
        return fitted

    def _has_mnet(self):
        return isinstance(self.net_.module_, _EncoderMNet)

    def _embed(self, X):
        return self.net_.module_.encoder(X)

    def _cluster_scores(self, Z):
        if self._has_mnet():
            return self.net_.module_.mnet(Z)
        return super()._cluster_scores(Z)

    def _proba(self, Z):
        if self._has_mnet():
            return self.net_.module_.mnet(Z)
        centers = torch.as_tensor(self.fuzzy_centers_, device=Z.device, dtype=Z.dtype)
        return fuzzy_memberships(Z, centers, self.fuzziness)
