"""Clustering accuracy and scorers for model selection of clusterers.

:func:`clustering_accuracy` is the ACC of the deep clustering literature: the
share of samples whose cluster maps to their class under the best one-to-one
matching of clusters to classes (Hungarian method). The scorers plug into
``GridSearchCV(..., scoring=...)``: :data:`accuracy_scorer` needs labels,
:func:`silhouette_scorer` and :func:`calinski_harabasz_scorer` do not. The
label-free scorers measure the clusters where the clusterer saw the data:
after the earlier steps of a pipeline (a ``StandardScaler``...), or, through
:func:`make_silhouette_scorer` and :func:`make_calinski_harabasz_scorer`,
in the clusterer's own embedding. :func:`accuracy_matrix` measures continual
clustering: the accuracy on each task after training each later task;
:func:`average_accuracy` and :func:`average_forgetting` summarise it.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import calinski_harabasz_score, make_scorer, silhouette_score
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics.cluster import contingency_matrix
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array, check_consistent_length, column_or_1d
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.multiclass import type_of_target

__all__ = [
    "clustering_accuracy",
    "accuracy_scorer",
    "silhouette_scorer",
    "calinski_harabasz_scorer",
    "make_silhouette_scorer",
    "make_calinski_harabasz_scorer",
    "SCORERS",
    "get_scorer",
    "accuracy_matrix",
    "average_accuracy",
    "average_forgetting",
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


def _clusterer_and_its_input(estimator, X):
    """The final clusterer of ``estimator`` and the rows it sees when given ``X``."""
    # A pipeline's clusterer was fitted on the output of the earlier steps (scaled,
    # projected...): its clusters are measured there, not on the raw columns.
    while isinstance(estimator, Pipeline):
        if len(estimator) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    return estimator, X


def _labels_and_space(estimator, X, space):
    """``(Z, labels)``: the rows in the scoring space, and the clusterer's labels."""
    clusterer, X = _clusterer_and_its_input(estimator, X)
    labels = np.asarray(clusterer.predict(X))
    if space == "embedding":
        if not hasattr(clusterer, "transform"):
            raise ValueError(
                f"space='embedding' needs a clusterer with transform; "
                f"{type(clusterer).__name__} has none. Use space='input'."
            )
        X = clusterer.transform(X)
    return check_array(X, dtype=np.float64), labels


def _degenerate(labels):
    """One cluster, or one cluster per row: the label-free metrics are undefined there."""
    return not 2 <= np.unique(labels).shape[0] <= labels.shape[0] - 1


def _silhouette(estimator, X, space):
    X, labels = _labels_and_space(estimator, X, space)
    n_samples = X.shape[0]
    if n_samples > SILHOUETTE_SAMPLE_SIZE:
        # Our own seeded draw (not silhouette_score's sample_size) so the
        # degenerate case is detected on the rows actually scored.
        idx = np.random.RandomState(0).choice(n_samples, SILHOUETTE_SAMPLE_SIZE, replace=False)
        X, labels = X[idx], labels[idx]
    if _degenerate(labels):
        return -1.0
    return float(silhouette_score(X, labels))


def _calinski_harabasz(estimator, X, space):
    X, labels = _labels_and_space(estimator, X, space)
    if _degenerate(labels):
        return 0.0
    return float(calinski_harabasz_score(X, labels))


def silhouette_scorer(estimator, X, y=None):
    """Silhouette of the clusters ``estimator`` predicts for ``X``, needing no labels.

    The silhouette is measured in the space the clusterer saw: ``X`` itself
    for a bare clusterer; for a :class:`~sklearn.pipeline.Pipeline`, ``X``
    passed through every step but the last (the scaled rows in
    ``make_pipeline(StandardScaler(), clusterer)``), where the final step's
    clusters were formed. It is not measured in each estimator's embedding,
    so fits with different embeddings (other ``embedding_dim``, other
    networks, plain ``KMeans``) are compared on the same ground; for the
    embedding, see :func:`make_silhouette_scorer`. Above
    ``SILHOUETTE_SAMPLE_SIZE`` (3,000) rows, a seeded subsample of that size
    is scored (the exact silhouette costs O(n^2) time), so the score
    repeats from call to call.

    Parameters
    ----------
    estimator : estimator with ``predict``
        A fitted clusterer, or a pipeline ending in one.
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
    make_silhouette_scorer : the same, measured in the clusterer's embedding.
    calinski_harabasz_scorer : a faster label-free scorer.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skdeepclust.metrics import silhouette_scorer
    >>> X, _ = make_blobs(n_samples=150, centers=3, random_state=0)
    >>> X[:, 0] *= 1000  # a column in other units
    >>> model = make_pipeline(StandardScaler(), KMeans(n_init=3, random_state=0))
    >>> search = GridSearchCV(model, {"kmeans__n_clusters": [2, 3, 5]},
    ...                       scoring=silhouette_scorer, cv=3).fit(X)
    >>> search.best_params_
    {'kmeans__n_clusters': 3}
    """
    return _silhouette(estimator, X, "input")


def calinski_harabasz_scorer(estimator, X, y=None):
    """Calinski-Harabasz index of the clusters ``estimator`` predicts for ``X``, needing no labels.

    Like :func:`silhouette_scorer`, it is measured in the space the
    clusterer saw (after the earlier steps of a pipeline), so fits with
    different embeddings compare. It costs O(n) and needs no subsample.

    Parameters
    ----------
    estimator : estimator with ``predict``
        A fitted clusterer, or a pipeline ending in one.
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
    make_calinski_harabasz_scorer : the same, measured in the clusterer's embedding.

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
    return _calinski_harabasz(estimator, X, "input")


class _LabelFreeScorer:
    """``scorer(estimator, X, y=None)`` of one label-free metric in one space."""

    _metrics = {"silhouette": _silhouette, "calinski_harabasz": _calinski_harabasz}

    def __init__(self, metric, space):
        self.metric = metric
        self.space = space

    def __call__(self, estimator, X, y=None):
        return self._metrics[self.metric](estimator, X, self.space)

    def __repr__(self):
        return f"make_{self.metric}_scorer(space={self.space!r})"


_SPACE_DOC = """space : {"input", "embedding"}, default="input"
        Where the clusters are measured. ``"input"``: the rows the final
        clusterer received (``X`` after the earlier steps of a pipeline), as
        :func:`{plain}`. ``"embedding"``: those rows passed through the
        final clusterer's ``transform``, i.e. the learned embedding of this
        package's estimators (the distances to the centres for
        ``KMeans``). Each fit learns its own embedding, so scores in
        ``"embedding"`` compare fits on different grounds: prefer
        ``"input"`` to choose between settings or methods, and
        ``"embedding"`` to see how well the clusters separate where the
        method formed them."""


@validate_params({"space": [StrOptions({"input", "embedding"})]},
                 prefer_skip_nested_validation=True)
def make_silhouette_scorer(*, space="input"):
    """A silhouette scorer measuring in the clusterer's input or in its embedding.

    Parameters
    ----------
    {space}

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None)`` for ``GridSearchCV(scoring=...)``,
        with the degenerate-case and subsampling rules of
        :func:`silhouette_scorer`.

    See Also
    --------
    silhouette_scorer : the scorer for ``space="input"``.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepclust.metrics import make_silhouette_scorer
    >>> X, _ = make_blobs(n_samples=150, centers=3, random_state=0)
    >>> km = KMeans(n_clusters=3, n_init=3, random_state=0).fit(X)
    >>> scorer = make_silhouette_scorer(space="embedding")
    >>> scorer
    make_silhouette_scorer(space='embedding')
    >>> -1 <= scorer(km, X) <= 1
    True
    """
    return _LabelFreeScorer("silhouette", space)


@validate_params({"space": [StrOptions({"input", "embedding"})]},
                 prefer_skip_nested_validation=True)
def make_calinski_harabasz_scorer(*, space="input"):
    """A Calinski-Harabasz scorer measuring in the clusterer's input or in its embedding.

    Parameters
    ----------
    {space}

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None)`` for ``GridSearchCV(scoring=...)``,
        with the degenerate-case rule of :func:`calinski_harabasz_scorer`.

    See Also
    --------
    calinski_harabasz_scorer : the scorer for ``space="input"``.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepclust.metrics import make_calinski_harabasz_scorer
    >>> X, _ = make_blobs(n_samples=150, centers=3, random_state=0)
    >>> km = KMeans(n_clusters=3, n_init=3, random_state=0).fit(X)
    >>> make_calinski_harabasz_scorer(space="embedding")(km, X) > 0
    True
    """
    return _LabelFreeScorer("calinski_harabasz", space)


def _fill_space_doc(factory, plain):
    factory.__doc__ = factory.__doc__.replace("{space}", _SPACE_DOC.replace("{plain}", plain))


_fill_space_doc(make_silhouette_scorer, "silhouette_scorer")
_fill_space_doc(make_calinski_harabasz_scorer, "calinski_harabasz_scorer")


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


# ------------------------------------------------------------ continual clustering


def _check_accuracy_matrix(accuracy_matrix, min_tasks=1):
    """The matrix as floats, checked: square, at least ``min_tasks``, finite where defined."""
    A = check_array(accuracy_matrix, dtype=np.float64, ensure_all_finite=False)
    n_tasks = A.shape[0]
    if A.shape[1] != n_tasks:
        raise ValueError(f"accuracy_matrix must be square (tasks x tasks), got shape {A.shape}.")
    if n_tasks < min_tasks:
        raise ValueError(f"accuracy_matrix needs at least {min_tasks} tasks, got {n_tasks}.")
    upper = A[np.triu_indices(n_tasks)]
    if not np.isfinite(upper).all():
        raise ValueError("accuracy_matrix[i, j] must be finite for j >= i (task i measured "
                         "after training task j); entries below the diagonal are ignored.")
    return A


def accuracy_matrix(labels_true, labels_pred):
    """The accuracy on each task after training each task from it on (FBCC's ``ACC_{i,j}``).

    Parameters
    ----------
    labels_true : sequence of array-like
        ``labels_true[i]``: the classes of task ``i``'s rows.
    labels_pred : sequence of sequences of array-like
        ``labels_pred[j][i]``, for ``i <= j``: the clusters predicted for
        task ``i``'s rows after training task ``j`` (entries ``i > j``, if
        present, are ignored). ``labels_pred[j]`` thus lists the predictions
        on every task seen so far after task ``j``.

    Returns
    -------
    accuracy_matrix : ndarray of shape (n_tasks, n_tasks)
        ``[i, j]``: :func:`clustering_accuracy` of ``labels_pred[j][i]``
        for ``j >= i``; NaN below the diagonal (task ``i`` not yet seen).
        The input of :func:`average_accuracy` and
        :func:`average_forgetting`.

    Examples
    --------
    >>> from skdeepclust.metrics import accuracy_matrix
    >>> y = [[0, 0, 1, 1], [2, 2, 3, 3]]
    >>> after_0 = [[5, 5, 6, 6]]
    >>> after_1 = [[5, 5, 5, 6], [7, 7, 8, 8]]
    >>> accuracy_matrix(y, [after_0, after_1]).round(2).tolist()
    [[1.0, 0.75], [nan, 1.0]]
    """
    n_tasks = len(labels_true)
    if len(labels_pred) != n_tasks:
        raise ValueError(f"labels_pred needs one entry per task ({n_tasks}), "
                         f"got {len(labels_pred)}.")
    A = np.full((n_tasks, n_tasks), np.nan)
    for j, after in enumerate(labels_pred):
        if len(after) < j + 1:
            raise ValueError(f"labels_pred[{j}] must hold the predictions on tasks 0..{j}, "
                             f"got {len(after)}.")
        for i in range(j + 1):
            A[i, j] = clustering_accuracy(labels_true[i], after[i])
    return A


@validate_params({"accuracy_matrix": ["array-like"]}, prefer_skip_nested_validation=True)
def average_accuracy(accuracy_matrix):
    """Average accuracy over all tasks after the last one (FBCC, eq. 6.10).

    .. math:: \\overline{ACC} = \\frac{1}{N} \\sum_{t=1}^{N} ACC_{t, N}

    Parameters
    ----------
    accuracy_matrix : array-like of shape (n_tasks, n_tasks)
        ``accuracy_matrix[i, j]``: the accuracy on task ``i``'s rows after
        training task ``j`` (e.g. :func:`clustering_accuracy`), for ``j >= i``;
        entries below the diagonal are ignored (NaN is fine there).

    Returns
    -------
    accuracy : float
        The mean of the last column.

    Examples
    --------
    >>> from skdeepclust.metrics import average_accuracy
    >>> A = [[0.9, 0.8, 0.7],
    ...      [0.0, 0.8, 0.6],
    ...      [0.0, 0.0, 0.5]]
    >>> round(average_accuracy(A), 4)  # (0.7 + 0.6 + 0.5) / 3
    0.6
    """
    return float(_check_accuracy_matrix(accuracy_matrix)[:, -1].mean())


@validate_params({"accuracy_matrix": ["array-like"]}, prefer_skip_nested_validation=True)
def average_forgetting(accuracy_matrix):
    """Average forgetting of the earlier tasks after the last one (FBCC, eq. 6.11).

    .. math:: \\overline{F} = \\frac{1}{N - 1} \\sum_{i=1}^{N-1}
              \\max_{t \\in \\{i, \\dots, N-1\\}} \\left(ACC_{i, t} - ACC_{i, N}\\right)

    For each task but the last: how far its accuracy fell from its best
    value before the last task was trained. The thesis writes
    :math:`t \\in \\{1, \\dots, N-1\\}`, which includes :math:`t < i`,
    where task :math:`i` was not yet seen; the standard range from
    :math:`i` is used. Negative values mean the task improved.

    Parameters
    ----------
    accuracy_matrix : array-like of shape (n_tasks, n_tasks)
        As in :func:`average_accuracy`; at least two tasks.

    Returns
    -------
    forgetting : float

    Examples
    --------
    >>> from skdeepclust.metrics import average_forgetting
    >>> A = [[0.9, 0.8, 0.7],
    ...      [0.0, 0.8, 0.6],
    ...      [0.0, 0.0, 0.5]]
    >>> round(average_forgetting(A), 4)  # ((0.9 - 0.7) + (0.8 - 0.6)) / 2
    0.2
    """
    A = _check_accuracy_matrix(accuracy_matrix, min_tasks=2)
    last = A.shape[0] - 1
    drops = [A[i, i:last].max() - A[i, last] for i in range(last)]
    return float(np.mean(drops))
