"""Augmentations for feature vectors (the views of contrastive and self-supervised methods).

An augmentation is a callable ``augmentation(x_batch, generator) -> view``
where ``generator`` is a :class:`torch.Generator` on the batch's device; the
same generator state gives the same view. Augmentations that need statistics
of the whole data set (its marginals, its per-feature scale) learn them in
``fit(X)``, called once by the estimator on the training tensor; a user's
plain function needs no ``fit``.
"""

from __future__ import annotations

import torch

__all__ = [
    "MarginalCorruption",
    "GaussianNoise",
    "RandomMask",
    "Compose",
    "fit_augmentation",
    "make_augmentation",
]


class MarginalCorruption:
    """Replace a random subset of each row's features by draws from their marginals.

    SCARF-style corruption (Bahri et al., ICLR 2022): each entry is chosen
    with probability ``rate`` and replaced by the same feature's value in a
    uniformly drawn row of the training data, so corrupted values stay within
    each column's observed values.

    Parameters
    ----------
    rate : float, default=0.6
        Probability that an entry is replaced.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import MarginalCorruption
    >>> X = torch.arange(12.0).reshape(4, 3)
    >>> aug = MarginalCorruption(rate=0.5).fit(X)
    >>> view = aug(X, torch.Generator().manual_seed(0))
    >>> bool(all(torch.isin(view[:, j], X[:, j]).all() for j in range(3)))
    True
    """

    def __init__(self, rate: float = 0.6):
        self.rate = rate

    def fit(self, X: torch.Tensor) -> MarginalCorruption:
        self.reference_ = X
        return self

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        ref = self.reference_
        n_ref, n_features = ref.shape
        mask = torch.rand(x.shape, generator=generator, device=x.device) < self.rate
        rows = torch.randint(n_ref, x.shape, generator=generator, device=x.device)
        drawn = ref[rows, torch.arange(n_features, device=x.device)]
        return torch.where(mask, drawn, x)


class GaussianNoise:
    """Add Gaussian noise scaled per feature: ``x + scale * std_j * eps``.

    Parameters
    ----------
    scale : float, default=0.1
        Noise standard deviation as a fraction of each feature's standard
        deviation on the training data (learned in ``fit``; 1 for a plain
        callable use without ``fit``).

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import GaussianNoise
    >>> X = torch.zeros(1000, 2)
    >>> X[:, 1] = torch.linspace(-10, 10, 1000)
    >>> view = GaussianNoise(scale=0.1).fit(X)(X, torch.Generator().manual_seed(0))
    >>> float((view - X)[:, 0].abs().max())  # a constant column gets no noise
    0.0
    """

    def __init__(self, scale: float = 0.1):
        self.scale = scale

    def fit(self, X: torch.Tensor) -> GaussianNoise:
        self.std_ = X.std(dim=0) if X.shape[0] > 1 else torch.zeros_like(X[0])
        return self

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        std = getattr(self, "std_", None)
        std = torch.ones(x.shape[1], device=x.device, dtype=x.dtype) if std is None else std
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + self.scale * std * noise


class RandomMask:
    """Set each entry to ``fill`` (0: the mean of standardised data) with probability ``rate``.

    Parameters
    ----------
    rate : float, default=0.2
        Probability that an entry is masked.
    fill : float, default=0.0
        Value written into masked entries.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import RandomMask
    >>> view = RandomMask(rate=1.0)(torch.ones(2, 3), torch.Generator().manual_seed(0))
    >>> float(view.sum())
    0.0
    """

    def __init__(self, rate: float = 0.2, fill: float = 0.0):
        self.rate = rate
        self.fill = fill

    def fit(self, X: torch.Tensor) -> RandomMask:
        return self

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mask = torch.rand(x.shape, generator=generator, device=x.device) < self.rate
        return x.masked_fill(mask, self.fill)


class Compose:
    """Apply augmentations one after the other.

    Parameters
    ----------
    augmentations : sequence of callables
        Each ``(x, generator) -> view``.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import Compose, GaussianNoise, RandomMask
    >>> aug = Compose([RandomMask(0.5), GaussianNoise(0.1)]).fit(torch.randn(10, 3))
    >>> aug(torch.randn(4, 3), torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3])
    """

    def __init__(self, augmentations):
        self.augmentations = list(augmentations)

    def fit(self, X: torch.Tensor) -> Compose:
        self.augmentations = [fit_augmentation(a, X) for a in self.augmentations]
        return self

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for aug in self.augmentations:
            x = aug(x, generator)
        return x


_NAMED = {"corruption": MarginalCorruption, "noise": GaussianNoise, "mask": RandomMask}


def fit_augmentation(augmentation, X: torch.Tensor):
    """A copy of ``augmentation`` fitted on ``X`` (a plain callable is returned as is).

    Copying keeps the estimator's parameter untouched, as scikit-learn requires.

    Parameters
    ----------
    augmentation : callable
        An augmentation ``(x, generator) -> view``, with or without ``fit``.
    X : torch.Tensor
        Training data.

    Returns
    -------
    augmentation : callable
        The fitted copy, or ``augmentation`` itself when it has no ``fit``.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import MarginalCorruption, fit_augmentation
    >>> aug = MarginalCorruption(rate=0.5)
    >>> fitted = fit_augmentation(aug, torch.zeros(4, 2))
    >>> fitted is not aug, hasattr(fitted, "reference_"), hasattr(aug, "reference_")
    (True, True, False)
    """
    import copy

    if hasattr(augmentation, "fit"):
        return copy.copy(augmentation).fit(X)
    return augmentation


def make_augmentation(spec, X: torch.Tensor, **kwargs):
    """Resolve an estimator's ``augmentation`` parameter and fit it on ``X``.

    Parameters
    ----------
    spec : {"corruption", "noise", "mask"} or callable
        A named augmentation (built with ``kwargs``, e.g. ``rate`` or
        ``scale``) or a callable ``(x, generator) -> view``.
    X : torch.Tensor
        Training data.
    **kwargs
        Parameters of the named augmentation.

    Returns
    -------
    augmentation : callable

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import make_augmentation
    >>> aug = make_augmentation("mask", torch.zeros(3, 2), rate=0.0)
    >>> aug(torch.ones(3, 2), torch.Generator()).sum().item()
    6.0
    """
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise ValueError(f"augmentation={spec!r} is not one of {sorted(_NAMED)} or a callable.")
        return _NAMED[spec](**kwargs).fit(X)
    if not callable(spec):
        raise TypeError(f"augmentation must be a name or a callable, got {type(spec).__name__}.")
    return fit_augmentation(spec, X)
