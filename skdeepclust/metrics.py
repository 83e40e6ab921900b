"""Clustering accuracy and scorers for model selection of clusterers.

:func:`clustering_accuracy` is the ACC of the deep clustering literature: the
share of samples whose cluster maps to their class under the best one-to-one
matching of clusters to classes (Hungarian method). The scorers plug into
``GridSearchCV(..., scoring=...)``: :data:`accuracy_scorer` needs labels,
:func:`silhouette_scorer` and :func:`calinski_harabasz_scorer` do not.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import calinski_harabasz_score, make_scorer, silhouette_score
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils import check_array, check_consistent_length, column_or_1d
from sklearn.utils._param_validation import validate_params
from sklearn.utils.multiclass import type_of_target

__all__ = [
    "clustering_accuracy",
    "accuracy_scorer",
    "silhouette_scorer",
    "calinski_harabasz_scorer",
    "SCORERS",
    "get_scorer",
]

#: Above this many rows, :func:`silhouette_scorer` scores a seeded subsample
#: of this size (the silhouette costs O(n^2)).
SILHOUETTE_SAMPLE_SIZE = 3000


def _check_labels(labels_true, labels_pred):
    labels_true = column_or_1d(check_array(labels_true, ensure_2d=False, dtype=None))
    labels_pred = column_or_1d(check_array(labels_pred, ensure_2d=False, dtype=None))
    check_consistent_length(labels_true, labels_pred)
    kinds = (type_of_target(labels_true), type_of_target(labels_pred))
    if "continuous" in kinds:
        # As scikit-learn's clustering metrics: floats like 0.5 are most likely a mistake.
        warnings.warn(
            f"Clustering metrics expect discrete values but received {kinds[0]} values for "
            f"labels_true and {kinds[1]} values for labels_pred.",
            UserWarning,
            stacklevel=4,  # _check_labels <- metric <- validate_params <- caller
        )
    return labels_true, labels_pred


@validate_params(
    {"labels_true": ["array-like"], "labels_pred": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def clustering_accuracy(labels_true, labels_pred):
    """Clustering accuracy (ACC) under the best one-to-one cluster-to-class matching.

    .. math::

        \\mathrm{ACC} = \\max_{m} \\frac{1}{n} \\sum_{i=1}^{n} \\mathbb{1}[y_i = m(c_i)]

    where ``m`` ranges over the one-to-one maps from clusters to classes. The
    best ``m`` is found by the Hungarian method
    (:func:`scipy.optimize.linear_sum_assignment`) on the contingency matrix.
    When there are more clusters than classes (or the reverse), the clusters
    (classes) left without a partner count as errors, so ACC is below 1.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground-truth classes (any hashable labels).
    labels_pred : array-like of shape (n_samples,)
        Cluster labels to evaluate (any hashable labels).

    Returns
    -------
    acc : float
        Between 0 and 1; 1 means the clustering equals the classes up to a
        renaming of the clusters. Symmetric in its two arguments.

    See Also
    --------
    sklearn.metrics.adjusted_rand_score : pair-counting agreement, chance-adjusted.
    sklearn.metrics.normalized_mutual_info_score : information-theoretic agreement.

    References
    ----------
    .. [1] Xie, Girshick and Farhadi, "Unsupervised Deep Embedding for
       Clustering Analysis", ICML 2016 (eq. 10).

    Examples
    --------
    >>> from skdeepclust.metrics import clustering_accuracy
    >>> clustering_accuracy([0, 0, 1, 1, 2, 2], [1, 1, 2, 2, 0, 0])
    1.0
    >>> clustering_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1])
    0.8333333333333334
    """
    labels_true, labels_pred = _check_labels(labels_true, labels_pred)
    counts = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / labels_true.shape[0])


#: Scorer for ``GridSearchCV(..., scoring=accuracy_scorer)``: ACC of
#: ``estimator.predict(X)`` against ``y`` (needs labels).
accuracy_scorer = make_scorer(clustering_accuracy)


def _predicted_labels(estimator, X):
    labels = np.asarray(estimator.predict(X))
    X = check_array(X, dtype=np.float64)
    return X, labels


def _n_distinct(labels):
    return np.unique(labels).shape[0]


def silhouette_scorer(estimator, X, y=None):
    """Silhouette of ``estimator.predict(X)`` on ``X``, as a scorer that needs no labels.

    The silhouette is computed in the input space, not in each estimator's
    embedding, so fits with different embeddings (other ``embedding_dim``,
    other networks, plain ``KMeans``) are compared on the same ground. Above
    ``SILHOUETTE_SAMPLE_SIZE`` (3,000) rows, a seeded subsample of that size
    is scored (the exact silhouette costs O(n^2) time), so the score
    repeats from call to call.

    Parameters
    ----------
    estimator : estimator with ``predict``
        A fitted clusterer (or a pipeline ending in one).
    X : array-like of shape (n_samples, n_features)
        Data to cluster and score (the input of ``estimator``).
    y : Ignored
        Not used, present so the scorer fits ``GridSearchCV``.

    Returns
    -------
    score : float
        Mean silhouette coefficient in ``[-1, 1]``, higher is better. A
        degenerate clustering (one cluster, or as many clusters as scored
        rows) scores -1, the worst value, instead of raising.

    See Also
    --------
    sklearn.metrics.silhouette_score : the underlying metric.
    calinski_harabasz_scorer : a faster label-free scorer.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skdeepclust.metrics import silhouette_scorer
    >>> X, _ = make_blobs(n_samples=150, centers=3, random_state=0)
    >>> search = GridSearchCV(KMeans(n_init=3, random_state=0), {"n_clusters": [2, 3, 5]},
    ...                       scoring=silhouette_scorer, cv=3).fit(X)
    >>> search.best_params_
    {'n_clusters': 3}
    """
    X, labels = _predicted_labels(estimator, X)
    n_samples = X.shape[0]
    if n_samples > SILHOUETTE_SAMPLE_SIZE:
        # Our own seeded draw (not silhouette_score's sample_size) so the
        # degenerate case is detected on the rows actually scored.
        idx = np.random.RandomState(0).choice(n_samples, SILHOUETTE_SAMPLE_SIZE, replace=False)
        X, labels = X[idx], labels[idx]
    n_labels = _n_distinct(labels)
    if not 2 <= n_labels <= X.shape[0] - 1:
        return -1.0
    return float(silhouette_score(X, labels))


def calinski_harabasz_scorer(estimator, X, y=None):
    """Calinski-Harabasz index of ``estimator.predict(X)`` on ``X``, needing no labels.

    Like :func:`silhouette_scorer`, it is computed in the input space, so fits
    with different embeddings compare. It costs O(n) and needs no subsample.

    Parameters
    ----------
    estimator : estimator with ``predict``
        A fitted clusterer (or a pipeline ending in one).
    X : array-like of shape (n_samples, n_features)
        Data to cluster and score.
    y : Ignored
        Not used, present so the scorer fits ``GridSearchCV``.

    Returns
    -------
    score : float
        Ratio of between-cluster to within-cluster dispersion, scaled by the
        degrees of freedom; higher is better, never negative. A clustering
        with a single cluster (or one cluster per row) scores 0.

    See Also
    --------
    sklearn.metrics.calinski_harabasz_score : the underlying metric.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepclust.metrics import calinski_harabasz_scorer
    >>> X, _ = make_blobs(n_samples=150, centers=3, random_state=0)
    >>> km = KMeans(n_clusters=3, n_init=3, random_state=0).fit(X)
    >>> calinski_harabasz_scorer(km, X) > 100
    True
    """
    X, labels = _predicted_labels(estimator, X)
    n_labels = _n_distinct(labels)
    if not 2 <= n_labels <= X.shape[0] - 1:
        return 0.0
    return float(calinski_harabasz_score(X, labels))


#: Scorers by name: ``"accuracy"`` (alias ``"clustering_accuracy"``) needs
#: labels; ``"silhouette"`` and ``"calinski_harabasz"`` do not.
SCORERS = {
    "accuracy": accuracy_scorer,
    "clustering_accuracy": accuracy_scorer,
    "silhouette": silhouette_scorer,
    "calinski_harabasz": calinski_harabasz_scorer,
}


def get_scorer(name):
    """The scorer called ``name``: one of :data:`SCORERS`, else scikit-learn's.

    Parameters
    ----------
    name : str or callable
        ``"accuracy"``, ``"clustering_accuracy"``, ``"silhouette"``,
        ``"calinski_harabasz"``, or any name that
        :func:`sklearn.metrics.get_scorer` knows (``"adjusted_rand_score"``,
        ``"normalized_mutual_info_score"``...). A callable is returned as is.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``.

    Raises
    ------
    ValueError
        If the name is unknown here and in scikit-learn.

    Examples
    --------
    >>> from skdeepclust.metrics import get_scorer, silhouette_scorer
    >>> get_scorer("silhouette") is silhouette_scorer
    True
    >>> get_scorer("adjusted_rand_score")
    make_scorer(adjusted_rand_score, response_method='predict')
    """
    if callable(name):
        return name
    if name in SCORERS:
        return SCORERS[name]
    try:
        return _sklearn_get_scorer(name)
    except ValueError as exc:
        raise ValueError(
            f"{name!r} is not a scorer; use one of {sorted(SCORERS)} or a name of "
            "sklearn.metrics.get_scorer_names()."
        ) from exc
