"""Find the package's estimators, so tests, the demo and the CLI pick up new ones."""

from __future__ import annotations

import inspect

__all__ = ["all_estimators"]


def all_estimators():
    """Every public estimator of skdeepclust, sorted by name.

    Returns
    -------
    estimators : list of (str, type)
        ``(name, class)`` pairs for each public subclass of
        :class:`~skdeepclust.base.BaseDeepClusterer`.

    Examples
    --------
    >>> from skdeepclust.utils import all_estimators
    >>> "AutoencoderKMeans" in dict(all_estimators())
    True
    """
    import skdeepclust
    from skdeepclust.base import BaseDeepClusterer

    found = []
    for name in skdeepclust.__all__:
        obj = getattr(skdeepclust, name)
        if (inspect.isclass(obj) and issubclass(obj, BaseDeepClusterer)
                and not inspect.isabstract(obj)):
            found.append((name, obj))
    return sorted(found)
