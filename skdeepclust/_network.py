"""The ``module`` parameter: a user's network in place of the MLP an estimator builds.

Every estimator takes ``module``: ``None`` (its MLP from
``hidden_layer_sizes``), a :class:`torch.nn.Module`, or a callable
``module(n_features, embedding_dim)`` returning one (a class such as
:class:`skdeepclust.nn.ConvAutoencoder`, a function, a
:func:`functools.partial`). Autoencoder-based methods need an autoencoder
(``encoder`` and ``decoder`` submodules); the others need an encoder and take
the ``encoder`` of an autoencoder. A module instance is deep-copied at each
fit, so the caller's weights never train and two fits never share a network.
The first rows of ``X`` go through the network before any training, so a
wrong shape fails at once with the module's name and the shapes.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from skdeepclust.nn import Autoencoder

__all__ = ["build_user_module", "user_autoencoder", "user_encoder", "MODULE_CONSTRAINT"]

#: ``_parameter_constraints`` entry of ``module`` (a module instance is callable too).
MODULE_CONSTRAINT = [None, callable]

_PROBE_ROWS = 2


def _name(obj) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def build_user_module(module, n_features: int, embedding_dim: int, *, owner: str) -> nn.Module:
    """The network of one fit: a deep copy of ``module``, or what the callable builds.

    Parameters
    ----------
    module : torch.nn.Module or callable
        The estimator's ``module`` parameter (not None).
    n_features, embedding_dim : int
        Passed to a builder callable.
    owner : str
        The estimator's name, for errors.

    Returns
    -------
    network : torch.nn.Module
        Owned by the fit; built under the fit's seeded torch generator.
    """
    if isinstance(module, nn.Module):
        return copy.deepcopy(module)
    network = module(n_features, embedding_dim)
    if not isinstance(network, nn.Module):
        raise TypeError(
            f"{owner}: module={_name(module)} should build a torch.nn.Module from "
            f"(n_features={n_features}, embedding_dim={embedding_dim}); it returned "
            f"{type(network).__name__}."
        )
    return network


def _run(fn, x, what: str, owner: str):
    # The probe must not train BatchNorm statistics or need gradients.
    modes = [(m, m.training) for m in fn.modules()]
    fn.eval()
    try:
        with torch.inference_mode():
            return fn(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ValueError(
            f"{owner}: the {what} {type(fn).__name__} fails on rows of shape "
            f"{tuple(x.shape)}: {err}"
        ) from err
    finally:
        for m, mode in modes:
            m.training = mode


def _probe(X: torch.Tensor) -> torch.Tensor:
    return X[:_PROBE_ROWS]


def user_autoencoder(module, X: torch.Tensor, embedding_dim: int, *, owner: str) -> Autoencoder:
    """The user's autoencoder for one fit, its shapes checked on the first rows of ``X``.

    Parameters
    ----------
    module : torch.nn.Module or callable
        The estimator's ``module``: an autoencoder (a module with ``encoder``
        and ``decoder`` submodules) or a builder of one.
    X : torch.Tensor of shape (n_samples, n_features)
        The training rows, on the fit's device.
    embedding_dim : int
        The code width the encoder must give.
    owner : str
        The estimator's name, for errors.

    Returns
    -------
    autoencoder : skdeepclust.nn.Autoencoder
        On ``X``'s device: the module itself when it is an ``Autoencoder``,
        else its encoder and decoder joined (its own ``forward`` unused).

    Raises
    ------
    TypeError
        The module has no ``encoder`` and ``decoder`` submodules.
    ValueError
        The encoder does not map rows to ``(n, embedding_dim)`` codes, or the
        decoder does not map them back to rows of ``X``'s width.
    """
    network = build_user_module(module, X.shape[1], embedding_dim, owner=owner)
    encoder, decoder = getattr(network, "encoder", None), getattr(network, "decoder", None)
    if not (isinstance(encoder, nn.Module) and isinstance(decoder, nn.Module)):
        raise TypeError(
            f"{owner} trains an autoencoder: module should have 'encoder' and 'decoder' "
            f"submodules (skdeepclust.nn.Autoencoder(encoder, decoder) joins two); got "
            f"{type(network).__name__} without them."
        )
    autoencoder = network if isinstance(network, Autoencoder) else Autoencoder(encoder, decoder)
    autoencoder.to(X.device)
    x = _probe(X)
    z = _run(autoencoder.encoder, x, "encoder", owner)
    if tuple(z.shape) != (x.shape[0], embedding_dim):
        raise ValueError(
            f"{owner}: the encoder {type(encoder).__name__} maps rows of shape {tuple(x.shape)} "
            f"to {tuple(z.shape)}; expected ({x.shape[0]}, embedding_dim={embedding_dim})."
        )
    x_hat = _run(autoencoder.decoder, z, "decoder", owner)
    if tuple(x_hat.shape) != tuple(x.shape):
        raise ValueError(
            f"{owner}: the decoder {type(decoder).__name__} maps codes of shape {tuple(z.shape)} "
            f"to {tuple(x_hat.shape)}; expected the rows' shape {tuple(x.shape)}."
        )
    return autoencoder


def user_encoder(module, X: torch.Tensor, embedding_dim: int, *,
                 owner: str) -> tuple[nn.Module, int]:
    """The user's encoder for one fit, and the width of its output.

    Parameters
    ----------
    module : torch.nn.Module or callable
        The estimator's ``module``: an encoder, an autoencoder (its
        ``encoder`` is used), or a builder of either.
    X : torch.Tensor of shape (n_samples, n_features)
        The training rows, on the fit's device.
    embedding_dim : int
        Passed to a builder callable.
    owner : str
        The estimator's name, for errors.

    Returns
    -------
    encoder : torch.nn.Module
        On ``X``'s device.
    width : int
        Columns of its output, which the method's heads are built on.

    Raises
    ------
    ValueError
        The encoder does not map rows to a 2-D ``(n, width)`` output.
    """
    network = build_user_module(module, X.shape[1], embedding_dim, owner=owner)
    encoder = network.encoder if isinstance(getattr(network, "encoder", None), nn.Module) \
        else network
    encoder.to(X.device)
    x = _probe(X)
    h = _run(encoder, x, "encoder", owner)
    if not isinstance(h, torch.Tensor) or h.ndim != 2 or h.shape[0] != x.shape[0]:
        shape = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(
            f"{owner}: the encoder {type(encoder).__name__} maps rows of shape {tuple(x.shape)} "
            f"to {shape}; expected ({x.shape[0]}, width)."
        )
    return encoder, int(h.shape[1])
