"""The one autoencoder path: build, pretrain, embed, k-means on the codes.

AutoencoderKMeans, DCSS, RDC (and DML) start the same way; each of these
steps exists here once.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn

from skdeepclust._network import user_autoencoder
from skdeepclust._training import batched_apply, evaluating
from skdeepclust.losses import ReconstructionCriterion
from skdeepclust.nn import MLPAutoencoder, xavier_init

__all__ = ["auto_hidden_layer_sizes", "resolve_hidden_layer_sizes", "build_autoencoder",
           "estimator_autoencoder",
           "fan_in_init", "pretrain_autoencoder", "embed", "kmeans_on_codes"]

#: Widest first layer of ``hidden_layer_sizes="auto"``.
MAX_AUTO_WIDTH = 256


def auto_hidden_layer_sizes(n_features: int, min_width: int = 64) -> tuple[int, int, int]:
    """Encoder widths of ``hidden_layer_sizes="auto"``: the papers' shape, scaled to the input.

    The DEC / DCSS / R-DC papers' ``(500, 500, 2000)`` is ``(w, w, 4 w)``;
    here ``w`` is the power of two at or above ``2 * n_features``, clipped
    to ``[min_width, 256]``; with ``min_width=64``: ``(64, 64, 256)`` up to
    32 features, ``(128, 128, 512)`` up to 64, ``(256, 256, 1024)`` from 65
    on. A table of a few dozen columns needs no 2,000-wide layer, and the
    cost of an update grows with the square of the width: on 1,000 x 20 rows
    the papers' widths take about 8 times as long per update, and on
    189 x 500 rows 3 times as long as ``(256, 256, 1024)``.

    Parameters
    ----------
    n_features : int
        Input width.
    min_width : int, default=64
        Narrowest ``w`` (RDC takes 128: its neighbourhoods in the code space
        need the width, see its docstring).

    Returns
    -------
    hidden_layer_sizes : tuple of int

    Examples
    --------
    >>> from skdeepclust._autoencoder import auto_hidden_layer_sizes
    >>> auto_hidden_layer_sizes(8), auto_hidden_layer_sizes(50), auto_hidden_layer_sizes(784)
    ((64, 64, 256), (128, 128, 512), (256, 256, 1024))
    """
    width = 1 << max(0, math.ceil(math.log2(2 * n_features)))
    width = int(min(MAX_AUTO_WIDTH, max(min_width, width)))
    return (width, width, 4 * width)


def resolve_hidden_layer_sizes(hidden_layer_sizes, n_features: int, *,
                               min_width: int = 64) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of widths: ``"auto"`` resolved, a sequence checked.

    Parameters
    ----------
    hidden_layer_sizes : "auto" or sequence of int
        The estimator's parameter.
    n_features : int
        Input width.
    min_width : int, default=64
        Narrowest ``"auto"`` width (see :func:`auto_hidden_layer_sizes`).

    Returns
    -------
    hidden_layer_sizes : tuple of int

    Raises
    ------
    ValueError
        If a width is not a positive integer.

    Examples
    --------
    >>> from skdeepclust._autoencoder import resolve_hidden_layer_sizes
    >>> resolve_hidden_layer_sizes("auto", 4), resolve_hidden_layer_sizes([32, 8], 4)
    ((64, 64, 256), (32, 8))
    """
    if isinstance(hidden_layer_sizes, str) and hidden_layer_sizes == "auto":
        return auto_hidden_layer_sizes(n_features, min_width)
    sizes = tuple(hidden_layer_sizes)
    if not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1
               for w in sizes):
        raise ValueError("hidden_layer_sizes must be 'auto' or a sequence of positive integers, "
                         f"got {hidden_layer_sizes!r}.")
    return tuple(int(w) for w in sizes)


def fan_in_init(module: nn.Module) -> nn.Module:
    """Zero the biases; the weights keep torch's ``U(+-1/sqrt(fan_in))``.

    That is Keras' ``VarianceScaling(1/3, fan_in, uniform)``, the R-DC code's init.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
    return module


def build_autoencoder(n_features, hidden_layer_sizes, embedding_dim, *, init="xavier",
                      min_width=64):
    """An :class:`~skdeepclust.nn.MLPAutoencoder` with the weights a method starts from.

    Parameters
    ----------
    n_features : int
        Input width.
    hidden_layer_sizes : "auto" or sequence of int
        Encoder widths (the decoder mirrors them); "auto": see
        :func:`auto_hidden_layer_sizes`.
    embedding_dim : int
        Code width.
    init : {"xavier", "fan_in"}, default="xavier"
        "xavier": Xavier-uniform weights (DEC, DCSS); "fan_in": torch's
        ``U(+-1/sqrt(fan_in))`` weights, Keras' ``VarianceScaling(1/3,
        fan_in, uniform)`` that the R-DC code uses. Biases start at zero.
    min_width : int, default=64
        Narrowest ``"auto"`` width (see :func:`auto_hidden_layer_sizes`).

    Returns
    -------
    autoencoder : MLPAutoencoder
        On the CPU; weights drawn from torch's global generator (forked and
        seeded by the estimators around a fit).

    Examples
    --------
    >>> from skdeepclust._autoencoder import build_autoencoder
    >>> ae = build_autoencoder(6, [16], 2)
    >>> ae.encoder[0].in_features, ae.encoder[-1].out_features
    (6, 2)
    """
    hidden = resolve_hidden_layer_sizes(hidden_layer_sizes, n_features, min_width=min_width)
    module = MLPAutoencoder(n_features, hidden, embedding_dim)
    return xavier_init(module) if init == "xavier" else fan_in_init(module)


def estimator_autoencoder(est, X, *, init="xavier", min_width=64):
    """The autoencoder a fit of ``est`` starts from: the user's ``module`` or the MLP.

    Parameters
    ----------
    est : estimator
        Its ``module``, ``hidden_layer_sizes`` and ``embedding_dim`` are read.
    X : torch.Tensor of shape (n_samples, n_features)
        The training rows (a user module's shapes are checked on them).
    init, min_width
        Of the MLP: see :func:`build_autoencoder`. A user module keeps the
        weights it was built with.

    Returns
    -------
    autoencoder : skdeepclust.nn.Autoencoder
        ``x -> (code, reconstruction)`` with ``encoder`` and ``decoder``.
    """
    if est.module is None:
        return build_autoencoder(X.shape[1], est.hidden_layer_sizes, est.embedding_dim,
                                 init=init, min_width=min_width)
    return user_autoencoder(est.module, X, est.embedding_dim, owner=type(est).__name__)


def pretrain_autoencoder(X, ctx, module, *, epochs, lr=None, batch_size=None,
                         phase="pretrain", criterion=None, **kwargs):
    """Train ``module`` to reconstruct ``X`` (the pretraining phase of every autoencoder).

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Training data on ``ctx.device``.
    ctx : skdeepclust.base.FitContext
        The running fit.
    module : torch.nn.Module
        The autoencoder (``x -> (code, reconstruction)``), or a wrapper of it
        whose output the ``criterion`` reads.
    epochs : int
        Pretraining epochs (0 keeps the initialisation).
    lr : float, default=None
        Learning rate; the estimator's ``lr`` when None.
    batch_size : int, default=None
        Rows per update; the estimator's resolved ``batch_size`` when None.
    phase : str, default="pretrain"
        Phase name (progress bar, errors, ``history_`` key).
    criterion : torch.nn.Module, default=None
        The loss; :class:`~skdeepclust.losses.ReconstructionCriterion` when None.
    **kwargs
        Further parameters of :meth:`skdeepclust.base.FitContext.train_phase`
        (``net_class``, ``callbacks``...).

    Returns
    -------
    net : skdeepclust._training.UnsupervisedNet
        The trained skorch net; ``net.module_`` is ``module``.
    """
    criterion = ReconstructionCriterion() if criterion is None else criterion
    return ctx.train_phase(module, criterion, X, epochs=epochs, lr=lr, phase=phase,
                           batch_size=batch_size, **kwargs)


def embed(fn, X, *modules):
    """``fn`` over the rows ``X``, batched, without gradients, ``modules`` in eval mode.

    Parameters
    ----------
    fn : callable
        Maps a batch of rows to their embedding (e.g. ``autoencoder.encoder``).
    X : torch.Tensor of shape (n_samples, n_features)
        Rows on ``fn``'s device.
    *modules : torch.nn.Module
        Modules put in eval mode meanwhile (their mode is restored afterwards);
        ``fn`` itself when none is given and it is a module.

    Returns
    -------
    Z : torch.Tensor
        On ``X``'s device.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._autoencoder import build_autoencoder, embed
    >>> ae = build_autoencoder(3, [4], 2)
    >>> embed(ae.encoder, torch.zeros(5, 3), ae).shape
    torch.Size([5, 2])
    """
    if not modules and isinstance(fn, nn.Module):
        modules = (fn,)
    with evaluating(*modules):
        return batched_apply(fn, X)


def kmeans_on_codes(Z: torch.Tensor, n_clusters: int, *, n_init: int, random_state: int):
    """k-means (scikit-learn's ``KMeans``) on the codes ``Z``: the centres in code space.

    The codes (``n_samples x embedding_dim``, small) are read to the host
    once; the networks stay on their device.

    Parameters
    ----------
    Z : torch.Tensor of shape (n_samples, embedding_dim)
        Codes.
    n_clusters : int
        Number of centres.
    n_init : int
        k-means restarts; the best inertia is kept.
    random_state : int
        Seed of the restarts.

    Returns
    -------
    centers : ndarray of shape (n_clusters, embedding_dim), dtype=float32

    Examples
    --------
    >>> import torch
    >>> from skdeepclust._autoencoder import kmeans_on_codes
    >>> Z = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    >>> sorted(round(float(c), 2) for c in kmeans_on_codes(Z, 2, n_init=1, random_state=0)[:, 0])
    [0.05, 5.05]
    """
    codes = Z.float().cpu().numpy()
    kmeans = KMeans(n_clusters, n_init=n_init, random_state=random_state).fit(codes)
    return np.asarray(kmeans.cluster_centers_, dtype=np.float32)
