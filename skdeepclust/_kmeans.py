"""Spherical (cosine) k-means in torch, on the device the embeddings live on.

Methods that learn embeddings on the unit hypersphere cluster them by
cosine similarity: scikit-learn's ``KMeans`` assigns unit vectors to
*unnormalised* means by Euclidean distance, which is not the same rule.
This follows ``torch_clustering.PyTorchKMeans(metric="cosine")`` (the k-means
of ProPos): k-means++ seeding with distance ``1 - cos``, Lloyd steps that
assign by the largest cosine and set each centre to the normalised mean of
its members, restarts kept by the smallest ``sum(1 - max cos)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["spherical_kmeans"]


def _kmeans_pp(Z: torch.Tensor, n_clusters: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding with weights ``1 - max cos`` (half the squared chord distance).

    Draws on ``generator``'s device (``Z``'s, for a generator made there) and
    never reads a value back to the host.
    """
    n = Z.shape[0]
    gdev = generator.device
    index = torch.randint(n, (1,), generator=generator, device=gdev).to(Z.device)
    centers = [Z[index[0]]]
    best = Z @ centers[0]
    for _ in range(1, n_clusters):
        weights = (1.0 - best).clamp_min(0.0)
        # Every point on a centre (all weights 0): any point will do.
        weights = torch.where(weights.sum() > 0, weights, torch.ones_like(weights))
        index = torch.multinomial(weights.to(gdev), 1, generator=generator).to(Z.device)
        centers.append(Z[index[0]])
        best = torch.maximum(best, Z @ centers[-1])
    return torch.stack(centers)


def _lloyd(Z: torch.Tensor, centers: torch.Tensor, max_iter: int, tol: float):
    """Lloyd iterations; one host read per iteration (the stopping test)."""
    n_clusters = centers.shape[0]
    labels = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is returned)
        sims = Z @ centers.T
        best, new_labels = sims.max(dim=1)
        counts = torch.bincount(new_labels, minlength=n_clusters)
        sums = torch.zeros_like(centers).index_add_(0, new_labels, Z)
        # Reseed the j-th empty centre with the j-th worst-fitting point, on the device.
        empty = counts == 0
        rank = torch.cumsum(empty, 0) - 1
        worst = torch.topk(best, min(n_clusters, best.shape[0]), largest=False).indices
        sums = torch.where(empty[:, None], Z[worst[rank.clamp(0, worst.shape[0] - 1)]], sums)
        new_centers = F.normalize(sums, dim=1)
        shift = (new_centers - centers).pow(2).sum().double()
        same = ((new_labels == labels).all() if labels is not None
                else torch.zeros((), dtype=torch.bool, device=Z.device))
        stop = torch.stack([same, empty.any().logical_not(), shift <= tol])
        centers, labels = new_centers, new_labels
        same, no_empty, small_shift = stop.tolist()
        if (same and no_empty) or small_shift:
            break
    sims = Z @ centers.T
    best, labels = sims.max(dim=1)
    inertia = float((1.0 - best).sum())
    return centers, labels, inertia, n_iter


def spherical_kmeans(Z: torch.Tensor, n_clusters: int, *, generator: torch.Generator,
                     n_init: int = 10, max_iter: int = 300, tol: float = 1e-4,
                     init: torch.Tensor | None = None):
    """Cluster unit vectors by cosine similarity.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, n_features)
        Rows to cluster; normalised to unit length here.
    n_clusters : int
        Number of centres (``<= n_samples``).
    generator : torch.Generator
        Seeded generator for the k-means++ draws (any device).
    n_init : int, default=10
        Restarts from k-means++ seeds; the one with the smallest
        ``sum(1 - max cos)`` is kept. Ignored when ``init`` is given.
    max_iter : int, default=300
        Lloyd iterations per restart.
    tol : float, default=1e-4
        Stop when the squared centre shift is at most ``tol`` times the mean
        per-feature variance of ``Z`` (scikit-learn's rule), or when the
        assignments repeat.
    init : torch.Tensor of shape (n_clusters, n_features), default=None
        Starting centres (a warm start keeps cluster ids stable).

    Returns
    -------
    centers : torch.Tensor of shape (n_clusters, n_features)
        Unit-norm centres.
    labels : torch.Tensor of shape (n_samples,)
        Index of the centre with the largest cosine (ties: lowest index).
    inertia : float
        ``sum_i (1 - max_k cos(z_i, c_k))``.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._kmeans import spherical_kmeans
    >>> Z = torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]])
    >>> gen = torch.Generator().manual_seed(0)
    >>> centers, labels, inertia = spherical_kmeans(Z, 2, generator=gen)
    >>> labels.tolist() in ([0, 0, 1, 1], [1, 1, 0, 0])
    True
    """
    Z = F.normalize(Z.float(), dim=1)
    tol = tol * float(Z.var(dim=0).mean()) if Z.shape[0] > 1 else 0.0
    if init is not None:
        centers, labels, inertia, _ = _lloyd(Z, F.normalize(init.to(Z), dim=1), max_iter, tol)
        return centers, labels, inertia
    best = None
    for _ in range(n_init):
        run = _lloyd(Z, _kmeans_pp(Z, n_clusters, generator), max_iter, tol)
        if best is None or run[2] < best[2]:
            best = run
    return best[0], best[1], best[2]
