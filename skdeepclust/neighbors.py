"""k nearest neighbours of every row: exact chunked search for small data, NN-descent above."""

from __future__ import annotations

import secrets
from numbers import Integral

import numpy as np
import torch

__all__ = ["kneighbors", "EXACT_THRESHOLD", "CUDA_EXACT_THRESHOLD"]

# Measured by benchmarks/neighbors.py (results in benchmarks/results/neighbors.json); the
# kneighbors docstring gives the numbers behind both values.
EXACT_THRESHOLD = 40_000
CUDA_EXACT_THRESHOLD = 500_000

# Bytes of the one (chunk x n) score block that the exact search holds at a time, and the
# most rows per chunk (so that even small inputs are never scored as one n x n block).
_BLOCK_BYTES = 256 * 2**20
_MAX_CHUNK = 1024
# Degree of the graph NN-descent builds (pynndescent's default); the k + 1 nearest entries are
# kept. With a degree of only k + 1 = 11, recall@10 fell to 0.79 at 50,000 x 50.
_GRAPH_DEGREE = 30
_METHODS = ("auto", "exact", "approx")


def kneighbors(Z, n_neighbors, random_state=None, *, method="auto",
               exact_threshold=EXACT_THRESHOLD, cuda_exact_threshold=CUDA_EXACT_THRESHOLD):
    """The ``n_neighbors`` nearest other rows of every row of ``Z`` (Euclidean).

    A row is never its own neighbour: it is left out by index, not by
    distance, so an exact duplicate of row ``i`` is a valid neighbour of ``i``
    at distance 0.

    Parameters
    ----------
    Z : torch.Tensor or ndarray of shape (n_samples, n_features)
        The points (for instance the embedding of a training set). A tensor
        may live on any device; the exact search runs there.
    n_neighbors : int
        Neighbours per row, ``1 <= n_neighbors < n_samples``.
    random_state : int, RandomState instance or None, default=None
        Seeds the approximate search (the exact one is deterministic). With
        an int, the approximate result repeats for the same data and the same
        number of numba threads. None draws a fresh seed without touching
        NumPy's global random state.
    method : {"auto", "exact", "approx"}, default="auto"
        ``"exact"``: chunked brute force on ``Z``'s device. Row chunks of
        ``Z`` are scored against all of ``Z`` through the squared-norm
        expansion ``|b|^2 - 2 a.b`` and reduced by ``topk``; a chunk holds at
        most about 256 MB of scores, so no ``n x n`` matrix is ever built.
        The distances of the chosen neighbours are then recomputed as
        ``|a - b|`` (no cancellation: duplicates come out at exactly 0) and
        re-sorted. ``"approx"``: :class:`pynndescent.NNDescent` on the CPU
        builds a graph of degree ``max(n_neighbors + 1, 30)``; of each row's
        ``n_neighbors + 1`` nearest entries, the row's own index (or, where
        duplicates pushed it out, the farthest entry) is dropped. ``"auto"``:
        exact when ``n_samples <= exact_threshold``, or when ``Z`` is a CUDA
        tensor and ``n_samples <= cuda_exact_threshold``; approximate above.
    exact_threshold : int, default=40_000
        Largest ``n_samples`` searched exactly on the CPU by ``"auto"``.
    cuda_exact_threshold : int, default=500_000
        Largest ``n_samples`` searched exactly on CUDA by ``"auto"``.

    Returns
    -------
    distances : torch.Tensor of shape (n_samples, n_neighbors)
        Euclidean distances, ascending along each row, on ``Z``'s device in
        ``Z``'s floating dtype (float32 for other dtypes).
    indices : torch.Tensor of shape (n_samples, n_neighbors), dtype=int64
        Row indices of the neighbours, on ``Z``'s device.

    Raises
    ------
    ValueError
        If ``Z`` is not 2-D or not finite, ``n_neighbors`` is not an integer
        in ``[1, n_samples - 1]``, or ``method`` is unknown.

    See Also
    --------
    sklearn.neighbors.NearestNeighbors : Exact search on the CPU (trees, brute force).
    pynndescent.NNDescent : The approximate search used above the threshold.

    Notes
    -----
    How the thresholds were chosen (``python benchmarks/neighbors.py`` on the
    project's shared 2-core CPU machine, k=10, Gaussian blobs,
    OMP_WAIT_POLICY=PASSIVE; full table in
    ``benchmarks/results/neighbors.json``). The machine was busy (load
    average 12-28), so the comparison uses the CPU seconds each call spent
    (all threads; on an idle machine both searches take about half of that
    in wall time):

    ======  ===========  ===========  ===========  ===========
    n       exact, d=10  NN-descent   exact, d=50  NN-descent
    ======  ===========  ===========  ===========  ===========
    10k     0.5 s        0.6 s (1.0)  0.5 s        0.7 s (1.0)
    50k     12 s         3.4 s (1.0)  15 s         4.1 s (.99)
    100k    54 s         7.5 s (1.0)  64 s         9.6 s (.98)
    200k    225 s        17 s (1.0)   274 s        22 s (.96)
    ======  ===========  ===========  ===========  ===========

    (NN-descent warm, recall@10 against exact in brackets.) Exact search
    grows as ``n^2`` and holds about 256 MB of scores at a time; NN-descent
    grows about as ``n log n``, but its first call in a process compiles its
    numba functions: 34 CPU seconds (single-threaded), paid once per process.
    Amortised over 1, 10 or 100 searches in a process, NN-descent beats exact
    search from about 80-120k, 33-44k or 16-20k rows. Methods that use
    neighbours refresh them every few epochs, and a fit often stops early,
    so 10 searches per process is the realistic case:
    ``exact_threshold=40_000``. Below it, exact search also needs no
    compilation and has recall 1.

    CUDA was not measured (no GPU on the machine). The design notes give
    0.09 s for the exact search over 70,000 x 10 on an H200, and 2.4 s for
    warm pynndescent over 1,000,000 x 10 on that host plus 39 s of
    compilation; with the same amortisation over 10 searches, exact search
    (scaled as ``n^2``) stays ahead up to about 500,000 rows:
    ``cuda_exact_threshold=500_000``, to be confirmed on a GPU.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.neighbors import kneighbors
    >>> Z = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    >>> distances, indices = kneighbors(Z, 2)
    >>> indices
    tensor([[1, 2],
            [0, 2],
            [1, 0],
            [2, 1]])
    >>> distances
    tensor([[1., 3.],
            [1., 2.],
            [2., 3.],
            [4., 6.]])

    A duplicate row is a neighbour at distance 0; the row itself never is:

    >>> distances, indices = kneighbors([[0.0], [5.0], [5.0], [1.0]], 1)
    >>> indices.ravel().tolist(), distances.ravel().tolist()
    ([3, 2, 1, 0], [1.0, 0.0, 0.0, 1.0])
    """
    Z = _as_tensor(Z)
    n_samples = Z.shape[0]
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, Integral):
        raise ValueError(f"n_neighbors must be an int, got {n_neighbors!r}.")
    n_neighbors = int(n_neighbors)
    if not 1 <= n_neighbors < n_samples:
        raise ValueError(
            f"n_neighbors={n_neighbors} must be in [1, n_samples - 1] = [1, {n_samples - 1}] "
            f"for {n_samples} samples (a row is never its own neighbour)."
        )
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if method == "auto":
        limit = cuda_exact_threshold if Z.device.type == "cuda" else exact_threshold
        method = "exact" if n_samples <= limit else "approx"
    with torch.no_grad():
        if method == "exact":
            return _exact(Z, n_neighbors)
        return _approx(Z, n_neighbors, random_state)


def _as_tensor(Z) -> torch.Tensor:
    if not isinstance(Z, torch.Tensor):
        Z = torch.as_tensor(np.asarray(Z))
    Z = Z.detach()
    if Z.dtype not in (torch.float32, torch.float64):
        Z = Z.to(torch.float32)
    if Z.ndim != 2:
        raise ValueError(f"Z must be 2-D (n_samples, n_features), got shape {tuple(Z.shape)}.")
    if not bool(torch.isfinite(Z).all()):
        raise ValueError("Z contains NaN or infinity.")
    return Z


def _exact(Z: torch.Tensor, k: int, rows: torch.Tensor | None = None):
    """Exact neighbours of ``Z[rows]`` (all rows when None) among all rows of ``Z``."""
    n = Z.shape[0]
    # Distances do not change under translation; centring keeps the norms, and so the
    # cancellation in |b|^2 - 2 a.b, small.
    Zc = Z - Z.mean(dim=0)
    sq_norms = (Zc * Zc).sum(dim=1)
    if rows is None:
        rows = torch.arange(n, device=Z.device)
    rows = rows.to(Z.device)
    chunk = max(1, min(_MAX_CHUNK, _BLOCK_BYTES // (Zc.element_size() * n)))
    distances, indices = [], []
    for start in range(0, rows.shape[0], chunk):
        query = rows[start:start + chunk]
        # |a|^2 is the same along a row, so it does not change the ranking.
        scores = torch.addmm(sq_norms.unsqueeze(0), Zc[query], Zc.T, beta=1.0, alpha=-2.0)
        scores[torch.arange(query.shape[0], device=Z.device), query] = torch.inf
        idx = scores.topk(k, dim=1, largest=False, sorted=False).indices
        del scores
        dist = (Zc[idx] - Zc[query].unsqueeze(1)).norm(dim=2)
        dist, order = dist.sort(dim=1)
        distances.append(dist)
        indices.append(idx.gather(1, order))
    return torch.cat(distances), torch.cat(indices)


def _approx(Z: torch.Tensor, k: int, random_state):
    from pynndescent import NNDescent

    if random_state is None:
        # pynndescent would draw from NumPy's global generator.
        random_state = secrets.randbits(31)
    X = np.ascontiguousarray(Z.cpu().numpy(), dtype=np.float32)
    n = X.shape[0]
    degree = max(k + 1, min(_GRAPH_DEGREE, n - 1))
    index = NNDescent(X, n_neighbors=degree, metric="euclidean", random_state=random_state)
    idx, dist = index.neighbor_graph
    idx, dist = idx[:, :k + 1].astype(np.int64), dist[:, :k + 1]
    # Drop each row's own index; a row whose list was filled by duplicates (self left out)
    # drops its farthest entry instead.
    is_self = idx == np.arange(n)[:, None]
    is_self &= np.cumsum(is_self, axis=1) == 1
    is_self[~is_self.any(axis=1), -1] = True
    keep = ~is_self
    idx = idx[keep].reshape(n, k)
    dist = dist[keep].reshape(n, k)
    indices = torch.from_numpy(idx).to(Z.device)
    distances = torch.from_numpy(np.ascontiguousarray(dist)).to(device=Z.device, dtype=Z.dtype)
    incomplete = (indices < 0).any(dim=1).nonzero().squeeze(1)
    if incomplete.numel():
        # NN-descent pads rows it could not fill with -1; search those rows exactly.
        d_fix, i_fix = _exact(Z, k, incomplete)
        distances[incomplete] = d_fix
        indices[incomplete] = i_fix
    return distances, indices
