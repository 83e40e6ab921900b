"""Clustering accuracy against hand-worked values; scorers alone and inside GridSearchCV."""

import itertools

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.metrics import calinski_harabasz_score, silhouette_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skdeepclust import AutoencoderKMeans, metrics
from skdeepclust.metrics import (
    SCORERS,
    accuracy_scorer,
    calinski_harabasz_scorer,
    clustering_accuracy,
    get_scorer,
    make_calinski_harabasz_scorer,
    make_silhouette_scorer,
    silhouette_scorer,
)

TINY = dict(hidden_layer_sizes=(16,), embedding_dim=2, pretrain_epochs=2, batch_size=32,
            n_init=2, random_state=0)


class _FixedLabels:
    """A fitted 'clusterer' whose predict returns given labels (scorer edge cases)."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def predict(self, X):
        return self.labels[: len(X)]


# ------------------------------------------------------------ accuracy

def test_permuted_labels_score_one():
    y = [0, 0, 1, 1, 2, 2, 2]
    assert clustering_accuracy(y, [2, 2, 0, 0, 1, 1, 1]) == 1.0
    assert clustering_accuracy(["a", "a", "b", "b", "c", "c", "c"], [5, 5, 9, 9, 7, 7, 7]) == 1.0


def test_worked_six_sample_case():
    # Contingency (classes x clusters) = [[2, 1], [0, 3]]: the matching 0->0, 1->1 gets 2 + 3.
    assert clustering_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]) == pytest.approx(5 / 6)
    # [[0, 2, 0], [1, 0, 1], [0, 0, 2]]: 0->1, 1->0, 2->2 gets 2 + 1 + 2.
    assert clustering_accuracy([0, 0, 1, 1, 2, 2], [1, 1, 0, 2, 2, 2]) == pytest.approx(5 / 6)


def test_one_to_one_matching_beats_greedy_and_differs_from_purity():
    # Contingency [[3, 2], [2, 0]]: greedy takes the 3 and is left with 0 (3/7); purity maps
    # both classes to cluster x (5/7); the best one-to-one matching is 2 + 2 = 4/7.
    y_true = list("aaaaabb")
    y_pred = list("xxxyyxx")
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(4 / 7)


def test_unequal_numbers_of_clusters_and_classes():
    # Four clusters, two classes: only two clusters can be matched.
    assert clustering_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5
    # One cluster, four classes: one class is matched.
    assert clustering_accuracy([0, 1, 2, 3], [0, 0, 0, 0]) == 0.25
    # Extra clusters holding few samples cost only those samples.
    assert clustering_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 2]) == pytest.approx(5 / 6)


def test_equals_brute_force_over_all_matchings():
    rng = np.random.RandomState(0)
    for _ in range(20):
        y_true = rng.randint(4, size=30)
        y_pred = rng.randint(4, size=30)
        best = max(np.mean(np.asarray(perm)[y_pred] == y_true)
                   for perm in itertools.permutations(range(4)))
        assert clustering_accuracy(y_true, y_pred) == pytest.approx(best)
        assert clustering_accuracy(y_pred, y_true) == pytest.approx(best)


def test_input_validation():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clustering_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="1d"):
        clustering_accuracy([[0, 1], [1, 0]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        clustering_accuracy([], [])
    with pytest.raises(InvalidParameterError, match="labels_true"):
        clustering_accuracy(3, [0])
    with pytest.warns(UserWarning, match="expect discrete values"):
        assert clustering_accuracy([0.5, 1.5, 0.5], [0, 1, 0]) == 1.0


# ------------------------------------------------------------- scorers

@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=90, centers=[[0, 0, 0], [6, 6, 0], [0, 6, 6]],
                      cluster_std=0.5, random_state=0)
    return X.astype(np.float32), y


def test_label_free_scorers_equal_sklearn_metrics_on_the_input(blobs):
    X, _ = blobs
    km = KMeans(3, n_init=2, random_state=0).fit(X)
    assert silhouette_scorer(km, X) == pytest.approx(silhouette_score(X, km.labels_))
    assert calinski_harabasz_scorer(km, X) == pytest.approx(
        calinski_harabasz_score(X, km.labels_))
    assert silhouette_scorer(km, X) > 0.7


def test_degenerate_clusterings_score_worst_instead_of_raising():
    X = np.arange(10, dtype=float).reshape(5, 2)
    assert silhouette_scorer(_FixedLabels([0, 0, 0, 0, 0]), X) == -1.0
    assert silhouette_scorer(_FixedLabels([0, 1, 2, 3, 4]), X) == -1.0
    assert calinski_harabasz_scorer(_FixedLabels([1, 1, 1, 1, 1]), X) == 0.0
    assert silhouette_scorer(_FixedLabels([0, 0, 0, 1, 1]), X) > -1.0


def test_silhouette_subsamples_large_inputs_with_a_fixed_seed(monkeypatch):
    monkeypatch.setattr(metrics, "SILHOUETTE_SAMPLE_SIZE", 40)
    rng = np.random.RandomState(1)
    X = rng.normal(size=(100, 2))
    labels = (X[:, 0] > 0).astype(int)
    est = _FixedLabels(labels)
    idx = np.random.RandomState(0).choice(100, 40, replace=False)
    expected = silhouette_score(X[idx], labels[idx])
    assert silhouette_scorer(est, X) == pytest.approx(expected)
    assert silhouette_scorer(est, X) == silhouette_scorer(est, X)
    assert expected != pytest.approx(silhouette_score(X, labels))


def test_accuracy_scorer_in_grid_search_picks_the_true_number_of_clusters(blobs):
    X, y = blobs
    search = GridSearchCV(AutoencoderKMeans(**TINY), {"n_clusters": [2, 3]},
                          scoring=accuracy_scorer, cv=KFold(3)).fit(X, y)
    assert search.best_params_ == {"n_clusters": 3}
    assert search.best_score_ > 0.9
    # Two clusters can match at most two of three equal classes.
    assert search.cv_results_["mean_test_score"][0] < 0.7


def test_label_free_scorers_in_grid_search_without_y(blobs):
    X, _ = blobs
    search = GridSearchCV(
        AutoencoderKMeans(**TINY), {"n_clusters": [2, 3]},
        scoring={"silhouette": silhouette_scorer, "ch": calinski_harabasz_scorer},
        refit="silhouette", cv=KFold(3),
    ).fit(X)
    assert search.best_params_ == {"n_clusters": 3}
    ranks = search.cv_results_
    assert list(ranks["rank_test_ch"]) == [2, 1]
    assert ranks["mean_test_silhouette"][1] > 0.7


@pytest.fixture(scope="module")
def blobs_in_other_units():
    """Four blobs; the first column, in other units, shows only two groups of two."""
    X, y = make_blobs(n_samples=120, centers=[[0, 0, 0], [0, 6, 0], [6, 0, 6], [6, 6, 6]],
                      cluster_std=0.5, random_state=0)
    X[:, 0] *= 1000
    return X, y


def test_pipeline_scorers_measure_where_the_clusterer_saw_the_data(blobs_in_other_units):
    X, _ = blobs_in_other_units
    pipe = make_pipeline(StandardScaler(), KMeans(4, n_init=3, random_state=0)).fit(X)
    labels = pipe.predict(X)
    scaled = pipe[0].transform(X)
    assert silhouette_scorer(pipe, X) == pytest.approx(silhouette_score(scaled, labels))
    assert silhouette_scorer(pipe, X) != pytest.approx(silhouette_score(X, labels), abs=0.1)
    assert calinski_harabasz_scorer(pipe, X) == pytest.approx(
        calinski_harabasz_score(scaled, labels))
    assert calinski_harabasz_scorer(pipe, X) != pytest.approx(
        calinski_harabasz_score(X, labels), rel=0.1)
    # Pipelines inside pipelines unwrap the same way.
    nested = make_pipeline(StandardScaler(), make_pipeline(PCA(2), KMeans(4, random_state=0)))
    nested.fit(X)
    seen = nested[1][0].transform(nested[0].transform(X))
    assert silhouette_scorer(nested, X) == pytest.approx(
        silhouette_score(seen, nested.predict(X)))


def test_grid_search_in_a_pipeline_picks_the_true_number_of_clusters(blobs_in_other_units):
    X, _ = blobs_in_other_units
    model = make_pipeline(StandardScaler(), KMeans(n_init=3, random_state=0))
    grid = {"kmeans__n_clusters": [2, 3, 4, 5]}

    def raw_silhouette(estimator, X, y=None):
        return silhouette_score(X, estimator.predict(X))

    scorers = {"silhouette": silhouette_scorer, "ch": calinski_harabasz_scorer,
               "raw": raw_silhouette}
    search = GridSearchCV(model, grid, scoring=scorers, refit=False, cv=KFold(3)).fit(X)
    results = search.cv_results_
    best = {name: results["params"][int(np.argmax(results[f"mean_test_{name}"]))]
            for name in scorers}
    assert best["silhouette"] == best["ch"] == {"kmeans__n_clusters": 4}
    # On the raw columns the first one hides two of the four blobs.
    assert best["raw"] == {"kmeans__n_clusters": 2}


def test_embedding_space_scores_the_final_steps_transform(blobs_in_other_units):
    X, _ = blobs_in_other_units
    pipe = make_pipeline(StandardScaler(), AutoencoderKMeans(4, **TINY)).fit(X)
    labels = pipe.predict(X)
    embedding = pipe[-1].transform(pipe[0].transform(X))
    assert make_silhouette_scorer(space="embedding")(pipe, X) == pytest.approx(
        silhouette_score(embedding, labels), rel=1e-5)
    assert make_calinski_harabasz_scorer(space="embedding")(pipe, X) == pytest.approx(
        calinski_harabasz_score(embedding, labels), rel=1e-5)
    assert make_silhouette_scorer(space="input")(pipe, X) == silhouette_scorer(pipe, X)
    assert make_silhouette_scorer(space="input")(pipe, X) != pytest.approx(
        make_silhouette_scorer(space="embedding")(pipe, X))
    assert repr(make_silhouette_scorer(space="embedding")) == (
        "make_silhouette_scorer(space='embedding')")
    with pytest.raises(InvalidParameterError, match="'space' parameter"):
        make_silhouette_scorer(space="latent")
    with pytest.raises(ValueError, match="space='embedding' needs a clusterer with transform"):
        make_silhouette_scorer(space="embedding")(_FixedLabels(labels), X)


def test_get_scorer_by_name():
    assert get_scorer("accuracy") is accuracy_scorer
    assert get_scorer("clustering_accuracy") is accuracy_scorer
    assert get_scorer("silhouette") is silhouette_scorer
    assert get_scorer("calinski_harabasz") is calinski_harabasz_scorer
    assert set(SCORERS) == {"accuracy", "clustering_accuracy", "silhouette", "calinski_harabasz"}
    assert get_scorer(silhouette_scorer) is silhouette_scorer
    # scikit-learn's names still work.
    ari = get_scorer("adjusted_rand_score")
    km = KMeans(2, n_init=1, random_state=0).fit([[0.0], [0.1], [5.0], [5.1]])
    assert ari(km, [[0.0], [0.1], [5.0], [5.1]], [1, 1, 0, 0]) == 1.0
    with pytest.raises(ValueError, match="'silhouette'"):
        get_scorer("no_such_scorer")


# ------------------------------------------------------------ continual clustering


def test_average_accuracy_and_forgetting_on_a_hand_made_matrix():
    from skdeepclust.metrics import average_accuracy, average_forgetting

    # Task 0 peaks after task 1 (0.9) and ends at 0.6; task 1 improves (0.7 -> 0.8);
    # below the diagonal tasks were not yet seen: ignored, whatever they hold.
    A = np.array([[0.5, 0.9, 0.6],
                  [1.0, 0.7, 0.8],
                  [np.nan, 1.0, 0.4]])
    assert average_accuracy(A) == pytest.approx((0.6 + 0.8 + 0.4) / 3)
    # max over t in {i .. N-1}: (0.9 - 0.6) and (0.7 - 0.8); t < i would give 1.0 - 0.8.
    assert average_forgetting(A) == pytest.approx(((0.9 - 0.6) + (0.7 - 0.8)) / 2)


@pytest.mark.parametrize("matrix, match", [
    ([[0.5, 0.4]], "square"),
    ([[0.5, np.nan], [0.0, 0.4]], "finite for j >= i"),
])
def test_continual_metrics_reject_bad_matrices(matrix, match):
    from skdeepclust.metrics import average_accuracy, average_forgetting

    for metric in (average_accuracy, average_forgetting):
        with pytest.raises(ValueError, match=match):
            metric(matrix)


def test_forgetting_needs_two_tasks():
    from skdeepclust.metrics import average_accuracy, average_forgetting

    assert average_accuracy([[0.7]]) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="at least 2 tasks"):
        average_forgetting([[0.7]])
