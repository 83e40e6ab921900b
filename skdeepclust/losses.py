"""Losses shared by several methods.

Every loss takes batch tensors and returns a scalar tensor; the criteria
(``nn.Module`` subclasses) have the signature the skorch layer calls,
``criterion(y_pred, index, X)``, where ``index`` holds the batch's sample indices.

* reconstruction: :func:`reconstruction_loss` (every autoencoder);
* fuzzy cluster-specific losses (DCSS phase 1, DML): :func:`fuzzy_memberships`,
  :func:`cluster_specific_loss`, :func:`fuzzy_centers`;
* BYOL-style proximity and prototype dispersion (PIPCDR): :func:`pip_loss`,
  :func:`cdr_loss`;
* contrastive clustering (C3, FBCC): :func:`instance_contrastive_loss`,
  :func:`cluster_contrastive_loss`;
* cross-instance guided contrast (C3's second phase): :func:`cross_instance_loss`;
* knowledge distillation between two networks (FBCC):
  :func:`distillation_contrastive_loss`, :func:`forward_distillation_loss`,
  :func:`backward_distillation_loss`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "reconstruction_loss",
    "ReconstructionCriterion",
    "fuzzy_memberships",
    "cluster_specific_loss",
    "fuzzy_centers",
    "pip_loss",
    "cdr_loss",
    "instance_contrastive_loss",
    "cluster_contrastive_loss",
    "cross_instance_weights",
    "cross_instance_loss",
    "distillation_contrastive_loss",
    "forward_distillation_loss",
    "backward_distillation_loss",
]

_EPS = 1e-12


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error summed over features, averaged over the batch.

    .. math:: L_r = \\frac{1}{|B|} \\sum_{i \\in B} w_i \\lVert x_i - \\hat x_i \\rVert_2^2

    Parameters
    ----------
    x, x_hat : torch.Tensor of shape (batch, n_features)
        Input and reconstruction.
    weight : torch.Tensor of shape (batch,), default=None
        Per-sample weights ``w_i`` (all ones when None).

    Returns
    -------
    loss : torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import reconstruction_loss
    >>> float(reconstruction_loss(torch.zeros(2, 3), torch.ones(2, 3)))
    3.0
    """
    per_sample = (x - x_hat).pow(2).sum(dim=1)
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()


class ReconstructionCriterion(nn.Module):
    """Criterion for autoencoder pretraining: ``y_pred = (code, reconstruction)``.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import ReconstructionCriterion
    >>> x = torch.zeros(2, 3)
    >>> float(ReconstructionCriterion()((None, x + 1), torch.arange(2), x))
    3.0
    """

    def forward(self, y_pred, index, X):
        _, x_hat = y_pred
        return reconstruction_loss(X, x_hat)


# ------------------------------------------------------------ fuzzy cluster-specific losses


def _squared_distances(U: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    # U is (n, d), one space for every cluster, or (n, K, d), cluster k's own space in U[:, k].
    if U.dim() == 2:
        U = U[:, None, :]
    return (U - centers[None, :, :]).pow(2).sum(dim=2)


def fuzzy_memberships(U: torch.Tensor, centers: torch.Tensor, fuzziness: float) -> torch.Tensor:
    """Fuzzy memberships ``p_ik`` of the embeddings ``U`` to ``centers`` (DCSS eq. 2).

    .. math:: p_{ik} = \\frac{D_{ik}^{-1/(m-1)}}{\\sum_j D_{ij}^{-1/(m-1)}},
              \\qquad D_{ik} = \\lVert u_i^{(k)} - \\mu_k \\rVert_2^2

    computed as a softmax of ``-log(D + 1e-12) / (m - 1)`` (no overflow when a
    point sits on a centre). ``u_i^{(k)}`` is the embedding of row ``i`` in
    the space of cluster ``k``: one shared space (DCSS) or one per cluster
    (DML's cluster-specific autoencoders).

    Parameters
    ----------
    U : torch.Tensor of shape (n, d) or (n, K, d)
        Embeddings: shared by all clusters, or ``U[:, k]`` in cluster ``k``'s space.
    centers : torch.Tensor of shape (K, d)
        ``mu_k``.
    fuzziness : float
        ``m > 1``; 1.5 in the paper (``p_ik`` proportional to ``D_ik^-2``).

    Returns
    -------
    p : torch.Tensor of shape (n, K)

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import fuzzy_memberships
    >>> p = fuzzy_memberships(torch.tensor([[1.0]]), torch.tensor([[0.0], [3.0]]), 1.5)
    >>> [round(v, 2) for v in p[0].tolist()]  # D = (1, 4): p ~ (1, 1/16)
    [0.94, 0.06]
    """
    sq_dist = _squared_distances(U, centers)
    return torch.softmax(-torch.log(sq_dist + _EPS) / (fuzziness - 1.0), dim=1)


def cluster_specific_loss(x, x_hat, u, center, weight, centering_weight):
    """Loss of cluster ``k``'s update (DCSS eq. 1, DML eq. 3.2), averaged over the batch.

    .. math:: L^{(k)} = \\frac{1}{|B|} \\sum_{i \\in B} p_{ik}^m
              \\left(\\lVert x_i - \\hat x_i \\rVert_2^2
              + \\alpha \\lVert u_i - \\mu_k \\rVert_2^2\\right)

    Parameters
    ----------
    x, x_hat : torch.Tensor of shape (batch, n_features)
        Inputs and their reconstructions by cluster ``k``'s autoencoder.
    u : torch.Tensor of shape (batch, d)
        Embeddings in cluster ``k``'s space.
    center : torch.Tensor of shape (d,)
        ``mu_k`` (a constant).
    weight : torch.Tensor of shape (batch,)
        ``p_ik^m`` (constants).
    centering_weight : float
        ``alpha``.

    Returns
    -------
    loss, reconstruction, centering : torch.Tensor (scalars)
        ``L_r + alpha L_c``, ``L_r`` and ``L_c``.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import cluster_specific_loss
    >>> x, u = torch.zeros(2, 3), torch.ones(2, 2)
    >>> w = torch.tensor([1.0, 0.0])
    >>> loss, rec, cen = cluster_specific_loss(x, x + 1, u, torch.zeros(2), w, 0.1)
    >>> round(float(loss), 4), float(rec), float(cen)
    (1.6, 1.5, 1.0)
    """
    reconstruction = reconstruction_loss(x, x_hat, weight)
    centering = (weight * (u - center).pow(2).sum(dim=1)).mean()
    return reconstruction + centering_weight * centering, reconstruction, centering


def fuzzy_centers(U, centers, fuzziness, batch_size=4096):
    """Fuzzy-weighted centres (DCSS eq. 3): ``mu_k = sum_i p_ik^m u_i / sum_i p_ik^m``.

    Parameters
    ----------
    U : torch.Tensor of shape (n, d) or (n, K, d)
        Embeddings of the whole data set, in one shared space or in each
        cluster's own space (as :func:`fuzzy_memberships`).
    centers : torch.Tensor of shape (K, d)
        Current centres (they define ``p``).
    fuzziness : float
        ``m``.
    batch_size : int, default=4096
        Rows per membership chunk (bounds the ``n x K x d`` temporary).

    Returns
    -------
    new_centers : torch.Tensor of shape (K, d)

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import fuzzy_centers
    >>> U = torch.tensor([[0.0], [1.0], [9.0], [10.0]])
    >>> fuzzy_centers(U, torch.tensor([[0.0], [10.0]]), 1.5).round(decimals=2).flatten().tolist()
    [0.5, 9.5]
    """
    with torch.inference_mode():
        weights = torch.cat([fuzzy_memberships(U[i:i + batch_size], centers, fuzziness)
                             ** fuzziness for i in range(0, U.shape[0], batch_size)])
        mass = weights.sum(dim=0).clamp_min(torch.finfo(weights.dtype).tiny)
        if U.dim() == 2:
            return (weights.T @ U) / mass[:, None]
        return torch.einsum("nk,nkd->kd", weights, U) / mass[:, None]


# --------------------------------------------------- positive proximity, prototype dispersion


def pip_loss(z, t, predictor, sigma=0.0, generator=None):
    """Positive instance proximity loss (ProPos' positive sampling alignment).

    ``mean_i || n(g(z_i + sigma * eps_i)) - t_i ||^2 = mean_i (2 - 2 cos(g(v_i), t_i))``
    with ``eps_i ~ N(0, I)``; ``sigma = 0`` is BYOL's loss.

    Parameters
    ----------
    z : torch.Tensor of shape (n, e)
        Online embeddings (not normalised).
    t : torch.Tensor of shape (n, e)
        Unit-norm target embeddings of the other view (no gradient).
    predictor : callable
        The predictor ``g``.
    sigma : float, default=0.0
        Standard deviation of the Gaussian positive sampling.
    generator : torch.Generator, default=None
        Generator of the noise, on ``z``'s device.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import pip_loss
    >>> z, t = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0]])
    >>> round(float(pip_loss(z, t, torch.nn.Identity())), 4)  # 2 - 2 * 0.6
    0.8
    """
    if sigma > 0:
        z = z + sigma * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
    p = F.normalize(predictor(z), dim=1)
    return (2.0 - 2.0 * (p * t).sum(dim=1)).mean()


def _members(labels, n_clusters, dtype):
    # One-hot membership; label -1 (an unfilled queue slot) belongs to no cluster.
    return (labels[:, None] == torch.arange(n_clusters, device=labels.device)).to(dtype)


def cdr_loss(z, t, labels, n_clusters, temperature, queue=None, queue_labels=None):
    """Cluster dispersion regularizer (ProPos' prototype scattering loss), one direction.

    With ``mu_k = n(sum_{i in B_k} z_i)`` (online prototypes, gradients flow)
    and ``mu'_k = n(sum_{i in B_k} t_i)`` (target prototypes) over the clusters
    ``P`` present in the batch (and queue),
    ``L = 1/|P| sum_{k in P} [-mu_k.mu'_k / tau + log(exp(mu_k.mu'_k / tau)
    + sum_{j in P, j != k} exp(mu_k.mu_j / tau))]``.

    Parameters
    ----------
    z : torch.Tensor of shape (n, e)
        Unit-norm online embeddings of one view.
    t : torch.Tensor of shape (n, e)
        Unit-norm target embeddings of the other view.
    labels : torch.Tensor of shape (n,)
        Pseudo-labels in ``0 .. n_clusters - 1``.
    n_clusters : int
        Number of clusters.
    temperature : float
        ``tau``.
    queue : torch.Tensor of shape (q, e), default=None
        Queued unit-norm target embeddings, added to both prototypes.
    queue_labels : torch.Tensor of shape (q,), default=None
        Their labels; -1 marks an empty slot.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import cdr_loss
    >>> z = t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> round(float(cdr_loss(z, t, torch.tensor([0, 1]), 2, 1.0)), 4)  # log(e + 1) - 1
    0.3133
    """
    members = _members(labels, n_clusters, z.dtype)
    sum_z, sum_t, counts = members.T @ z, members.T @ t, members.sum(dim=0)
    if queue is not None:
        q_members = _members(queue_labels, n_clusters, z.dtype)
        q_sum = q_members.T @ queue
        sum_z, sum_t, counts = sum_z + q_sum, sum_t + q_sum, counts + q_members.sum(dim=0)
    mu, mu_t = F.normalize(sum_z, dim=1), F.normalize(sum_t, dim=1)
    present = counts > 0
    pos = (mu * mu_t).sum(dim=1) / temperature
    neg = (mu @ mu.T / temperature).masked_fill(
        torch.eye(n_clusters, dtype=torch.bool, device=z.device) | ~present[None, :],
        float("-inf"))
    per_cluster = torch.logsumexp(torch.cat([pos[:, None], neg], dim=1), dim=1) - pos
    weight = present.to(z.dtype)
    return (per_cluster * weight).sum() / weight.sum()


# ------------------------------------------------------------ contrastive clustering (CC)


def instance_contrastive_loss(z_a, z_b, temperature, negatives=None):
    """NT-Xent over the two views of a batch (CC's instance loss), with optional extra negatives.

    With ``u_1 .. u_2N`` the L2-normalised rows of ``z_a`` then ``z_b``, ``i'``
    the other view of entry ``i`` (``i +- N``), ``p_1 .. p_M`` the normalised
    ``negatives`` and ``s(u, v) = u.v``,

    .. math:: \\ell_i = -\\log \\frac{\\exp(s(u_i, u_{i'})/\\tau)}
              {\\sum_{j \\ne i} \\exp(s(u_i, u_j)/\\tau)
              + \\sum_{m=1}^{M} \\exp(s(u_i, p_m)/\\tau)},
              \\qquad L = \\frac{1}{2N} \\sum_{i=1}^{2N} \\ell_i

    The positive ``u_{i'}`` is in its own denominator, the anchor itself
    never is (standard NT-Xent, as the Contrastive Clustering code). One
    ``2N x (2N + M)`` similarity matrix and a logsumexp per row.

    Parameters
    ----------
    z_a, z_b : torch.Tensor of shape (N, e)
        Embeddings of the two views; row ``i`` of both is the positive pair
        (normalised here).
    temperature : float
        ``tau``.
    negatives : torch.Tensor of shape (M, e), default=None
        Extra negatives of every anchor, e.g. prototypes of earlier tasks
        (FBCC); normalised here and treated as constants (detached).

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import instance_contrastive_loss
    >>> z = torch.eye(2)  # both views equal: each anchor has s = 1 with its positive, 0 otherwise
    >>> round(float(instance_contrastive_loss(z, z, 1.0)), 4)  # log(e + 2) - 1
    0.5514
    >>> p = torch.tensor([[1.0, 1.0]])  # one extra negative at s = 1/sqrt(2) from every anchor
    >>> round(float(instance_contrastive_loss(z, z, 1.0, negatives=p)), 4)  # log(e+2+e^0.7071) - 1
    0.909
    """
    if z_a.shape != z_b.shape or z_a.dim() != 2:
        raise ValueError(f"z_a and z_b must be 2-d of one shape, got {tuple(z_a.shape)} "
                         f"and {tuple(z_b.shape)}")
    n = z_a.shape[0]
    u = F.normalize(torch.cat([z_a, z_b]), dim=1)
    keys = u
    if negatives is not None:
        p = F.normalize(negatives.detach().to(dtype=u.dtype, device=u.device), dim=1)
        keys = torch.cat([u, p])
    rows = torch.arange(2 * n, device=u.device)
    logits = (u @ keys.T) / temperature
    pos = logits[rows, (rows + n) % (2 * n)]
    logits = logits.masked_fill(
        (rows[:, None] == torch.arange(keys.shape[0], device=u.device)[None, :]), float("-inf"))
    return (torch.logsumexp(logits, dim=1) - pos).mean()


def _entropy_gap(c):
    # log K - H(P) with P = c.sum(0) / c.sum(), CC's "ne" term (>= 0; 0 for uniform P).
    p = c.sum(dim=0)
    p = p / p.sum()
    return math.log(c.shape[1]) + (p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum()


def cluster_contrastive_loss(c_a, c_b, temperature, entropy_weight=1.0):
    """Cluster-level contrastive loss of Contrastive Clustering, with the entropy term.

    The columns ``y_1^a .. y_K^a`` of ``c_a`` and ``y_1^b .. y_K^b`` of
    ``c_b`` are the "instances": column ``m`` of both views is the positive
    pair, the contrastive part is :func:`instance_contrastive_loss` of the
    transposed assignments (cosine similarity of columns, mean over the 2K
    anchors). With ``P^k(m) = sum_i c^k_im / sum_{i,l} c^k_il`` the cluster
    marginal of view ``k`` and ``H`` the Shannon entropy,

    .. math:: L = \\frac{1}{2K} \\sum_{m=1}^{K} (\\hat\\ell_m^a + \\hat\\ell_m^b)
              + \\lambda \\sum_{k \\in \\{a, b\\}} \\left(\\log K - H(P^k)\\right)

    (``lambda`` = ``entropy_weight``). ``log K - H`` is how the CC code writes
    the ``- H`` of the paper: same gradient, non-negative, 0 for uniform
    marginals and ``log K`` per view when every row picks one cluster.

    Parameters
    ----------
    c_a, c_b : torch.Tensor of shape (N, K)
        Soft assignments of the two views (rows on the simplex).
    temperature : float
        Cluster temperature ``tau_C`` (1.0 in CC).
    entropy_weight : float, default=1.0
        ``lambda``.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import cluster_contrastive_loss
    >>> c = torch.eye(2)  # two one-hot rows: uniform marginals, orthogonal columns
    >>> round(float(cluster_contrastive_loss(c, c, 1.0)), 4)  # log(e + 2) - 1 + 0
    0.5514
    >>> c = torch.tensor([[0.5, 0.5], [0.5, 0.5]])  # identical columns, still uniform
    >>> round(float(cluster_contrastive_loss(c, c, 1.0)), 4)  # log(3 e) - 1 = log 3
    1.0986
    """
    if c_a.shape != c_b.shape or c_a.dim() != 2:
        raise ValueError(f"c_a and c_b must be 2-d of one shape, got {tuple(c_a.shape)} "
                         f"and {tuple(c_b.shape)}")
    contrast = instance_contrastive_loss(c_a.T, c_b.T, temperature)
    return contrast + entropy_weight * (_entropy_gap(c_a) + _entropy_gap(c_b))


def cross_instance_weights(s, gamma):
    """C3's denominator weights: ``w_ij = softmax_j(gamma (1 - |s_ij|))`` per row (eq. 5.7).

    The closed-form solution of ``min_w -sum_j w_j (1 - |s_ij|) - H(w) / gamma``
    under ``sum_j w_j = 1``. Since ``1 - |s| in [0, 1]`` for cosines, two
    weights of a row differ by at most a factor ``exp(gamma)``; ``gamma = 0``
    gives uniform weights.

    Parameters
    ----------
    s : torch.Tensor of shape (m, m)
        Cosine similarities (treated as constants: pass them detached).
    gamma : float
        Sharpness ``Gamma >= 0``.

    Returns
    -------
    w : torch.Tensor of shape (m, m)
        Rows sum to one.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import cross_instance_weights
    >>> w = cross_instance_weights(torch.tensor([[1.0, 0.0]]), gamma=1.0)
    >>> [round(v, 4) for v in w[0].tolist()]  # (1, e) / (1 + e)
    [0.2689, 0.7311]
    """
    return torch.softmax(gamma * (1.0 - s.abs()), dim=1)


def cross_instance_loss(z_a, z_b, zeta, gamma=0.0, temperature=1.0):
    """C3's loss: every batch entry at cosine ``>= zeta`` is a positive; weighted denominator.

    With ``u_1 .. u_2N`` the L2-normalised rows of ``z_a`` then ``z_b``,
    ``s_ij = u_i . u_j``, ``i'`` the other view of entry ``i``, the positives
    of anchor ``i`` are ``P_i = {j : s_ij >= zeta} | {i, i'}`` (the anchor
    and its augmentation partner always count) and the weights of its row
    ``w_ij = softmax_j(gamma (1 - |s_ij|))`` (Sadeghi et al., eqs. 5.2 and
    5.7): pairs neither close nor opposite, the cluster boundaries, weigh
    most in the denominator. Mask and weights are computed on detached
    similarities, so gradients flow through the exponentials only:

    .. math:: \\ell_i = -\\log \\frac{\\sum_{j \\in P_i} \\exp(s_{ij}/\\tau)}
              {\\sum_{j=1}^{2N} 2N w_{ij} \\exp(s_{ij}/\\tau)},
              \\qquad L = \\frac{1}{2N} \\sum_{i=1}^{2N} \\ell_i

    The weights are scaled to mean one (``2N w``): the thesis' weights sum to
    one, which adds the constant ``log 2N`` to every term and changes no
    gradient; with ``gamma = 0`` the loss is then exactly that of the
    public C3 code (no weights). Any two weights of a row differ by at most
    a factor ``exp(gamma)``. Computed in log space (logsumexp), so it is
    finite for any input: the numerator holds at least the anchor itself.

    Parameters
    ----------
    z_a, z_b : torch.Tensor of shape (N, e)
        Embeddings of the two views; row ``i`` of both is an augmentation
        pair (normalised here).
    zeta : float
        Cosine threshold of the positives (on the raw cosine, whatever
        ``temperature``).
    gamma : float, default=0.0
        Sharpness of the weights; 0 gives uniform weights.
    temperature : float, default=1.0
        ``tau`` (none in the thesis: 1).

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    mean_positives : torch.Tensor
        Mean size of ``P_i`` over the ``2N`` anchors (detached scalar).

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import cross_instance_loss
    >>> z = torch.eye(2)  # both views equal, the two rows orthogonal
    >>> loss, positives = cross_instance_loss(z, z, zeta=0.5)
    >>> round(float(loss), 4), float(positives)  # log((2 e + 2) / (2 e)): 2 of 4 in P_i
    (0.3133, 2.0)
    """
    if z_a.shape != z_b.shape or z_a.dim() != 2:
        raise ValueError(f"z_a and z_b must be 2-d of one shape, got {tuple(z_a.shape)} "
                         f"and {tuple(z_b.shape)}")
    n = z_a.shape[0]
    u = F.normalize(torch.cat([z_a, z_b]), dim=1)
    s = u @ u.T
    rows = torch.arange(2 * n, device=u.device)
    with torch.no_grad():
        # The thesis solves the weights with the networks frozen; the mask is a step function.
        sd = s.detach()
        positive = sd >= zeta
        positive[rows, rows] = True
        positive[rows, (rows + n) % (2 * n)] = True
        log_w = torch.log(cross_instance_weights(sd, gamma)) + math.log(2 * n)
    logits = s / temperature
    log_num = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    log_den = torch.logsumexp(logits + log_w, dim=1)
    return (log_den - log_num).mean(), positive.sum(dim=1).to(s.dtype).mean()


# ------------------------------------------------------------ distillation between networks (FBCC)


def distillation_contrastive_loss(queries, keys, temperature):
    """InfoNCE of one network's outputs against another's, row by row (FBCC eqs. 6.4, 6.9).

    ``queries`` and ``keys`` hold the two views of a batch, ``[view a; view
    b]`` (``2N`` rows each). With ``q_1 .. q_2N`` and ``u_1 .. u_2N`` their
    L2-normalised rows, ``i'`` the other view of entry ``i`` and ``s(q, u) =
    q.u``, the positive of ``q_i`` is the key of the same entry; the
    negatives are the keys of the other rows in both views (the same row's
    other view ``u_{i'}`` is neither):

    .. math:: \\ell_i = -\\log \\frac{\\exp(s(q_i, u_i)/\\tau)}
              {\\sum_{j \\ne i'} \\exp(s(q_i, u_j)/\\tau)},
              \\qquad L = \\frac{1}{2N} \\sum_{i=1}^{2N} \\ell_i

    The positive is in its own denominator (standard NT-Xent; the thesis sums
    over the negatives only). Gradients flow into whichever argument is not
    detached: FBCC detaches the keys (a frozen student's outputs, or the
    teacher's targets).

    Parameters
    ----------
    queries, keys : torch.Tensor of shape (2N, e)
        Rows of view a, then the same rows in view b (normalised here).
    temperature : float
        ``tau``.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import distillation_contrastive_loss
    >>> q = torch.eye(2).repeat(2, 1)  # rows (1, 0), (0, 1) in both views; keys equal
    >>> round(float(distillation_contrastive_loss(q, q, 1.0)), 4)  # log(e + 2) - 1
    0.5514
    """
    if queries.shape != keys.shape or queries.dim() != 2 or queries.shape[0] % 2:
        raise ValueError("queries and keys must be 2-d of one shape with an even number of "
                         f"rows, got {tuple(queries.shape)} and {tuple(keys.shape)}")
    m = queries.shape[0]
    q, u = F.normalize(queries, dim=1), F.normalize(keys, dim=1)
    rows = torch.arange(m, device=q.device)
    logits = (q @ u.T) / temperature
    pos = logits[rows, rows]
    partner = (rows + m // 2) % m
    logits = logits.masked_fill(partner[:, None] == rows[None, :], float("-inf"))
    return (torch.logsumexp(logits, dim=1) - pos).mean()


def forward_distillation_loss(queries, keys, temperature):
    """FBCC's forward distillation ``L_dis`` (eqs. 6.3-6.4): the mean over the kept students.

    For each kept student ``r``, the teacher's predictor output ``q^r =
    g_r(z^T)`` must identify the student's own embedding ``u^r`` of the same
    row among those of the other rows
    (:func:`distillation_contrastive_loss`):

    .. math:: L_{dis} = \\frac{1}{|\\mathcal{M}|} \\sum_{r \\in \\mathcal{M}}
              \\frac{1}{2N} \\sum_{i=1}^{2N} -\\log
              \\frac{\\exp(s(q_i^r, u_i^r)/\\tau)}{\\sum_{j \\ne i'} \\exp(s(q_i^r, u_j^r)/\\tau)}

    and 0 when no student is kept.

    Parameters
    ----------
    queries : sequence of torch.Tensor of shape (2N, e)
        ``q^r``, one per kept student.
    keys : sequence of torch.Tensor of shape (2N, e)
        ``u^r``, the students' embeddings (constants: pass them detached).
    temperature : float
        ``tau``.

    Returns
    -------
    loss : torch.Tensor
        Scalar (a 0-d zero tensor when ``queries`` is empty).

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import forward_distillation_loss
    >>> float(forward_distillation_loss([], [], 0.5))
    0.0
    >>> q = torch.eye(2).repeat(2, 1)
    >>> round(float(forward_distillation_loss([q, q], [q, -q], 1.0)), 4)  # mean of 0.5514, 1.862
    1.2067
    """
    if len(queries) != len(keys):
        raise ValueError(f"one key tensor per query tensor, got {len(queries)} and {len(keys)}")
    if not len(queries):
        return torch.zeros(())
    return torch.stack([distillation_contrastive_loss(q, u, temperature)
                        for q, u in zip(queries, keys)]).mean()


def backward_distillation_loss(h_student, h_teacher, z_student, z_teacher, temperature):
    """FBCC's backward distillation ``L_stu`` (eqs. 6.8-6.9): the student imitates the teacher.

    With ``R`` the width of ``h`` and the teacher's outputs as constants,

    .. math:: L_{stu} = \\frac{1}{2N} \\sum_{i=1}^{2N} \\Big[ \\frac{1}{R}
              \\lVert h_i^S - h_i^T \\rVert_2^2 - \\log
              \\frac{\\exp(s(z_i^S, z_i^T)/\\tau)}{\\sum_{j \\ne i'} \\exp(s(z_i^S, z_j^T)/\\tau)}
              \\Big]

    a mean squared error on the backbone outputs plus
    :func:`distillation_contrastive_loss` on the projected ones.

    Parameters
    ----------
    h_student, h_teacher : torch.Tensor of shape (2N, R)
        Backbone outputs of the student and the teacher (the teacher's are detached here).
    z_student, z_teacher : torch.Tensor of shape (2N, e)
        Their projections (the teacher's detached here).
    temperature : float
        ``tau``.

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import backward_distillation_loss
    >>> h, z = torch.zeros(4, 3), torch.eye(2).repeat(2, 1)
    >>> round(float(backward_distillation_loss(h + 1, h, z, z, 1.0)), 4)  # 1 + 0.5514
    1.5514
    """
    mse = (h_student - h_teacher.detach()).pow(2).mean()
    return mse + distillation_contrastive_loss(z_student, z_teacher.detach(), temperature)
