"""State carried across ``partial_fit`` calls, shared by the continual estimators.

* :class:`RunningMoments`: per-feature mean and variance of every row seen
  (Chan et al.'s merge of a chunk's moments), for the internal standardisation;
* :class:`Reservoir`: a uniform sample of every row seen, kept on the device
  (Vitter's algorithm R), for re-clustering and augmentation statistics;
* :func:`online_spherical_update`: the mini-batch update of unit-norm centres;
* :func:`recluster_stable_ids`: re-clustering whose cluster ids stay those of
  the current centres (Hungarian matching of the overlap);
* :func:`changed_fraction` and :func:`match_clusters`: label agreement of two
  clusterings.

Each object is plain data (tensors and NumPy arrays), so the estimator's
rollback of a failed call can copy it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

__all__ = [
    "RunningMoments",
    "Reservoir",
    "online_spherical_update",
    "recluster_stable_ids",
    "changed_fraction",
    "match_clusters",
]


class RunningMoments:
    """Running per-feature mean and variance over chunks of rows (float64).

    Parameters
    ----------
    n_features : int
        Columns of the rows.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._streaming import RunningMoments
    >>> m = RunningMoments(1)
    >>> m.update(torch.tensor([[0.0], [2.0]])).update(torch.tensor([[4.0]]))
    RunningMoments(count=3)
    >>> m.mean.tolist(), m.var.tolist()
    ([2.0], [2.6666666666666665])
    """

    def __init__(self, n_features: int):
        self.count = 0
        self.mean = np.zeros(n_features)
        self.m2 = np.zeros(n_features)

    def __repr__(self):
        return f"RunningMoments(count={self.count})"

    def update(self, X: torch.Tensor, chunk: int = 65536) -> RunningMoments:
        """Merge the moments of the rows ``X``, reduced on their device in float64 chunks.

        No float64 copy of the whole of ``X`` is made.
        """
        m = X.shape[0]
        parts = range(0, m, chunk)
        c_mean = sum(X[i:i + chunk].double().sum(dim=0) for i in parts) / m
        c_m2 = sum((X[i:i + chunk].double() - c_mean).pow(2).sum(dim=0) for i in parts)
        c_mean, c_m2 = c_mean.cpu().numpy(), c_m2.cpu().numpy()
        if self.count == 0:
            self.count, self.mean, self.m2 = m, c_mean, c_m2
            return self
        n0, total = self.count, self.count + m
        delta = c_mean - self.mean
        self.mean = self.mean + delta * m / total
        self.m2 = self.m2 + c_m2 + delta**2 * n0 * m / total
        self.count = total
        return self

    @property
    def var(self) -> np.ndarray:
        """Population variance of each feature."""
        return self.m2 / max(self.count, 1)

    def scale(self) -> np.ndarray:
        """Standard deviation of each feature, 1 where it is 0."""
        scale = np.sqrt(self.var)
        return np.where(scale > 0, scale, 1.0)


class Reservoir:
    """A uniform sample of at most ``capacity`` of the rows seen so far, on their device.

    Parameters
    ----------
    capacity : int
        Rows kept.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skdeepclust._streaming import Reservoir
    >>> r = Reservoir(3)
    >>> rng = np.random.RandomState(0)
    >>> r.add(torch.arange(2.0)[:, None], rng).add(torch.arange(2.0, 10.0)[:, None], rng)
    Reservoir(rows=3, seen=10)
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.rows: torch.Tensor | None = None
        self.seen = 0

    def __repr__(self):
        n = 0 if self.rows is None else self.rows.shape[0]
        return f"Reservoir(rows={n}, seen={self.seen})"

    def sample_from(self, X: torch.Tensor, rng: np.random.RandomState) -> Reservoir:
        """Start over as a uniform sample of the rows ``X`` (all of them seen)."""
        n = X.shape[0]
        sample = np.sort(rng.choice(n, size=min(n, self.capacity), replace=False))
        self.rows = X[torch.as_tensor(sample, device=X.device)]
        self.seen = n
        return self

    def add(self, rows: torch.Tensor, rng: np.random.RandomState) -> Reservoir:
        """Offer ``rows`` to the sample (algorithm R, vectorised; draws from ``rng``)."""
        res = rows[:0] if self.rows is None else self.rows
        fill = max(0, min(self.capacity - res.shape[0], rows.shape[0]))
        res = torch.cat([res, rows[:fill]])
        rest = rows[fill:]
        if rest.shape[0]:
            positions = self.seen + fill + np.arange(rest.shape[0])
            slots = (rng.random_sample(rest.shape[0]) * (positions + 1)).astype(np.int64)
            keep = np.flatnonzero(slots < self.capacity)
            if len(keep):
                keep_t = torch.as_tensor(keep, device=rows.device)
                res[torch.as_tensor(slots[keep], device=rows.device)] = rest[keep_t]
        self.rows, self.seen = res, self.seen + rows.shape[0]
        return self


def online_spherical_update(centers: torch.Tensor, counts: torch.Tensor, Z: torch.Tensor):
    """Mini-batch spherical k-means step: assign ``Z`` to its closest centre and move it.

    ``c_k <- n(n_k c_k + sum_{i in k} z_i)``, ``n_k <- n_k + |k|``.

    Parameters
    ----------
    centers : torch.Tensor of shape (K, e)
        Unit-norm centres.
    counts : torch.Tensor of shape (K,)
        Rows each centre has absorbed so far.
    Z : torch.Tensor of shape (n, e)
        Unit-norm embeddings of the new rows.

    Returns
    -------
    centers, counts : torch.Tensor
        The updated centres and counts.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._streaming import online_spherical_update
    >>> c, n = online_spherical_update(torch.eye(2), torch.ones(2), torch.tensor([[0.0, 1.0]]))
    >>> c.tolist(), n.tolist()
    ([[1.0, 0.0], [0.0, 1.0]], [1.0, 2.0])
    """
    labels = (Z @ centers.T).argmax(dim=1)
    sums = torch.zeros_like(centers).index_add_(0, labels, Z)
    centers = F.normalize(centers * counts[:, None] + sums, dim=1)
    counts = counts + torch.bincount(labels, minlength=centers.shape[0]).to(counts.dtype)
    return centers, counts


def recluster_stable_ids(Z: torch.Tensor, centers: torch.Tensor, kmeans, n_init: int):
    """Re-cluster ``Z`` and keep the cluster ids of ``centers``.

    Two candidates: Lloyd iterations from the current centres, and ``n_init``
    fresh k-means++ restarts whose clusters are renamed after the current
    ones they overlap most (Hungarian matching). The one with the smaller
    inertia wins; either way ids stay stable, and the restarts escape a poor
    optimum as the embedding moves.

    Parameters
    ----------
    Z : torch.Tensor of shape (n, e)
        Embeddings to cluster.
    centers : torch.Tensor of shape (K, e)
        Current centres.
    kmeans : callable
        ``kmeans(Z, init=None, n_init=...) -> (centers, labels, inertia)``,
        e.g. a partial of :func:`skdeepclust._kmeans.spherical_kmeans`.
    n_init : int
        Restarts of the fresh candidate.

    Returns
    -------
    centers : torch.Tensor of shape (K, e)
    labels : torch.Tensor of shape (n,)
    """
    n_clusters = centers.shape[0]
    current = (Z @ centers.T).argmax(dim=1)
    warm = kmeans(Z, init=centers)
    fresh = kmeans(Z, n_init=n_init)
    if fresh[2] < warm[2]:
        order = torch.as_tensor(match_clusters(current, fresh[1], n_clusters), device=Z.device)
        return fresh[0][order], torch.argsort(order)[fresh[1]]
    return warm[0], warm[1]


def _contingency(old, new, n_clusters):
    cont = torch.zeros(n_clusters, n_clusters, dtype=torch.long, device=old.device)
    cont.index_put_((old, new), torch.ones_like(old), accumulate=True)
    return cont.cpu().numpy()


def changed_fraction(old: torch.Tensor, new: torch.Tensor, n_clusters: int) -> float:
    """Fraction of labels that changed, after the best matching of the two labelings.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._streaming import changed_fraction
    >>> changed_fraction(torch.tensor([0, 0, 1, 1]), torch.tensor([1, 1, 0, 1]), 2)
    0.25
    """
    cont = _contingency(old, new, n_clusters)
    rows, cols = linear_sum_assignment(-cont)
    return float(1.0 - cont[rows, cols].sum() / max(1, len(old)))


def match_clusters(old: torch.Tensor, new: torch.Tensor, n_clusters: int) -> np.ndarray:
    """``order`` with ``order[i]`` the new cluster that best matches old cluster ``i``.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._streaming import match_clusters
    >>> match_clusters(torch.tensor([0, 0, 1]), torch.tensor([1, 1, 0]), 2).tolist()
    [1, 0]
    """
    _, cols = linear_sum_assignment(-_contingency(old, new, n_clusters))
    return cols
