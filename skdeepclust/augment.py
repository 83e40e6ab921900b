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
    "check_augmentation",
    "make_augmentation",
    "make_views",
    "NeighborViews",
    "neighbor_views",
    "AUGMENTATION_NAMES",
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
#: The values an estimator's ``augmentation`` parameter takes by name.
AUGMENTATION_NAMES = ("corruption", "noise", "mask")


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


def check_augmentation(fn, X: torch.Tensor) -> None:
    """Check a user's augmentation on two rows of ``X``: the contract every method relies on.

    It must return a :class:`torch.Tensor` of its input's shape, dtype and
    device, and leave its input unchanged. The check draws from a generator
    of its own, so the training's random stream is not touched.

    Raises
    ------
    TypeError
        When the result is not a tensor.
    ValueError
        When its shape, dtype or device differ from the input's, or the input was modified.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import check_augmentation
    >>> check_augmentation(lambda x, g: x + 1, torch.zeros(4, 2))
    >>> check_augmentation(lambda x, g: x[:, :1], torch.zeros(4, 2))
    Traceback (most recent call last):
    ...
    ValueError: augmentation must return a tensor of its input's shape, dtype and device; ...
    """
    x = X[:2].clone()
    before = x.clone()
    out = fn(x, torch.Generator(device=x.device).manual_seed(0))
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"augmentation must return a torch.Tensor, got {type(out).__name__}.")
    if out.shape != x.shape or out.dtype != x.dtype or out.device != x.device:
        raise ValueError("augmentation must return a tensor of its input's shape, dtype and "
                         f"device; got {tuple(out.shape)}, {out.dtype}, {out.device} for "
                         f"{tuple(x.shape)}, {x.dtype}, {x.device}.")
    if not torch.equal(x, before):
        raise ValueError("augmentation must not modify its input in place.")


def make_augmentation(spec, X: torch.Tensor, *, corruption_rate: float = 0.15,
                      noise_scale: float = 0.1):
    """Resolve an estimator's ``augmentation`` parameter, fit it on ``X`` and check it.

    The names mean the same in every estimator:

    * ``"corruption"``: each entry replaced with probability
      ``corruption_rate`` by the same feature of a random training row
      (:class:`MarginalCorruption`), then Gaussian noise of ``noise_scale``
      standard deviations of each feature (:class:`GaussianNoise`);
    * ``"mask"``: each entry set to 0 with probability ``corruption_rate``
      (:class:`RandomMask`), then the same noise;
    * ``"noise"``: the noise only.

    A callable ``(x, generator) -> view`` is fitted when it has ``fit`` and
    checked (:func:`check_augmentation`).

    Parameters
    ----------
    spec : {"corruption", "noise", "mask"} or callable
        The estimator's parameter.
    X : torch.Tensor
        Training data (the statistics the augmentation learns).
    corruption_rate : float, default=0.15
        Probability that an entry is corrupted or masked.
    noise_scale : float, default=0.1
        Noise, in standard deviations of each feature; 0 adds none.

    Returns
    -------
    augmentation : callable

    Raises
    ------
    ValueError
        For an unknown name, a named augmentation that would leave rows
        unchanged (rate and scale 0), or a callable breaking the contract.
    TypeError
        For neither a name nor a callable.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import make_augmentation
    >>> aug = make_augmentation("mask", torch.zeros(3, 2), corruption_rate=1.0, noise_scale=0.0)
    >>> aug(torch.ones(3, 2), torch.Generator()).sum().item()
    0.0
    """
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise ValueError(f"augmentation={spec!r} is not one of {sorted(_NAMED)} or a callable.")
        rate = 0.0 if spec == "noise" else corruption_rate
        if rate == 0 and noise_scale == 0:
            raise ValueError(f"augmentation={spec!r} with corruption_rate={corruption_rate} and "
                             f"noise_scale={noise_scale} leaves every row unchanged; raise one "
                             "of them.")
        steps = [] if spec == "noise" else [_NAMED[spec](corruption_rate)]
        if noise_scale > 0:
            steps.append(GaussianNoise(noise_scale))
        return fit_augmentation(steps[0] if len(steps) == 1 else Compose(steps), X)
    if not callable(spec):
        raise TypeError(f"augmentation must be a name or a callable, got {type(spec).__name__}.")
    fitted = fit_augmentation(spec, X)
    check_augmentation(fitted, X)
    return fitted


def make_views(spec, X: torch.Tensor, **kwargs):
    """The two view functions of an ``augmentation`` parameter that may be a pair.

    ``spec`` is what :func:`make_augmentation` takes (both views drawn the
    same way) or a pair ``(fn_a, fn_b)`` of callables (asymmetric views).

    Parameters
    ----------
    spec : str, callable or pair of callables
        The estimator's parameter.
    X : torch.Tensor
        Training data.
    **kwargs
        ``corruption_rate`` and ``noise_scale``, as :func:`make_augmentation`.

    Returns
    -------
    view_a, view_b : callable

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import make_views
    >>> a, b = make_views("noise", torch.randn(10, 2))
    >>> a is b
    True
    """
    if isinstance(spec, tuple):
        if len(spec) != 2 or not all(callable(a) for a in spec):
            raise ValueError("augmentation as a tuple must be a pair of callables "
                             f"(fn_a, fn_b), got {spec!r}.")
        return tuple(make_augmentation(a, X, **kwargs) for a in spec)
    fn = make_augmentation(spec, X, **kwargs)
    return fn, fn


class NeighborViews:
    """Two views of a batch, each drawn around a point between a row and one of its neighbours.

    For row ``x_i`` of the batch, each view first picks one of the row's
    nearest rows ``x_j`` and a point ``x_i + u (x_j - x_i)``, ``u ~ U(0, 1)``
    (a fresh pick per view), then applies its augmentation. Nearby rows thus
    act as positives of each other; without neighbours the views start from
    the row itself. Draws come from ``generator``, in the order anchor a,
    view a, anchor b, view b.

    Parameters
    ----------
    view_a, view_b : callable
        Fitted augmentations ``(x, generator) -> view``.
    generator : torch.Generator
        Generator on the batch's device.
    data : torch.Tensor of shape (n_samples, n_features), default=None
        The rows the batch indices point into.
    neighbors : torch.Tensor of shape (n_samples, k), default=None
        Indices of each row's nearest other rows; None: no interpolation.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import NeighborViews
    >>> data = torch.tensor([[0.0], [1.0]])
    >>> views = NeighborViews(lambda x, g: x, lambda x, g: x, torch.Generator().manual_seed(0),
    ...                       data=data, neighbors=torch.tensor([[1], [0]]))
    >>> xa, xb = views(data, torch.arange(2))
    >>> bool(((xa >= 0) & (xa <= 1)).all()), bool(torch.equal(xa, xb))
    (True, False)
    """

    def __init__(self, view_a, view_b, generator, data=None, neighbors=None):
        self.view_a = view_a
        self.view_b = view_b
        self.generator = generator
        self.data = data
        self.neighbors = neighbors

    def anchor(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """A random point between each row and one of its neighbours."""
        if self.neighbors is None:
            return x
        b, k = idx.shape[0], self.neighbors.shape[1]
        pick = torch.randint(k, (b, 1), generator=self.generator, device=x.device)
        other = self.data[self.neighbors[idx].gather(1, pick).squeeze(1)]
        u = torch.rand((b, 1), generator=self.generator, device=x.device, dtype=x.dtype)
        return x + u * (other - x)

    def __call__(self, x: torch.Tensor, idx: torch.Tensor):
        xa = self.view_a(self.anchor(x, idx), self.generator)
        xb = self.view_b(self.anchor(x, idx), self.generator)
        return xa, xb


def neighbor_views(augmentation, X: torch.Tensor, *, n_neighbors: int, generator,
                   random_state: int, views_from: torch.Tensor | None = None, **kwargs):
    """The :class:`NeighborViews` of an estimator's ``augmentation`` and ``n_neighbors``.

    Parameters
    ----------
    augmentation : str, callable or pair of callables
        As :func:`make_views`.
    X : torch.Tensor of shape (n_samples, n_features)
        The training rows (the batches index into them); their neighbours are
        searched with :func:`skdeepclust.neighbors.kneighbors`.
    n_neighbors : int
        Neighbours per row; 0 gives views of the row itself.
    generator : torch.Generator
        Generator of the views, on ``X``'s device.
    random_state : int or callable
        Seed of an approximate neighbour search, or a function returning it,
        called only when a search runs (so no seed is drawn without one).
    views_from : torch.Tensor, default=None
        Rows whose statistics the augmentations learn (``X`` when None).
    **kwargs
        ``corruption_rate`` and ``noise_scale``, as :func:`make_augmentation`.

    Returns
    -------
    views : NeighborViews

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.augment import neighbor_views
    >>> X = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    >>> views = neighbor_views("noise", X, n_neighbors=3, generator=torch.Generator(),
    ...                        random_state=0)
    >>> tuple(views.neighbors.shape)
    (20, 3)
    """
    from skdeepclust.neighbors import kneighbors

    view_a, view_b = make_views(augmentation, X if views_from is None else views_from, **kwargs)
    views = NeighborViews(view_a, view_b, generator)
    n = X.shape[0]
    if n_neighbors > 0 and n >= 2:
        seed = random_state() if callable(random_state) else random_state
        _, views.neighbors = kneighbors(X, min(n_neighbors, n - 1), random_state=seed)
        views.data = X
    return views
