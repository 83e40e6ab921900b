"""The estimators inside scikit-learn's tools: Pipeline, GridSearchCV, set_output, metrics."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdeepclust import AutoencoderKMeans
from skdeepclust.utils import all_estimators
from skdeepclust.utils._test_settings import tiny_instance

ESTIMATOR_CLASSES = [cls for _, cls in all_estimators()]


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(n_samples=90, centers=3, n_features=5, cluster_std=0.5, random_state=1)
    # Unscaled, shifted features: the pipeline's scaler matters.
    return X * np.array([1, 10, 100, 1, 1000]) + 50, y


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_pipeline_with_standard_scaler(cls, data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), tiny_instance(cls, n_clusters=3))
    labels = pipe.fit_predict(X)
    np.testing.assert_array_equal(labels, pipe.predict(X))
    assert adjusted_rand_score(y, labels) >= 0.9
    # embedding_dim columns, or the layer the clusters are read from (FBCC): named either way.
    assert pipe.transform(X).shape == (len(X), len(pipe[-1].get_feature_names_out()))


def test_grid_search_without_labels_uses_score(data):
    X, _ = data
    search = GridSearchCV(
        make_pipeline(StandardScaler(), tiny_instance(AutoencoderKMeans)),
        {"autoencoderkmeans__n_clusters": [2, 3], "autoencoderkmeans__lr": [1e-3, 1e-2]},
        cv=2,
    ).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and len(scores) == 4
    # score is minus the within-cluster spread: more clusters, higher score
    assert search.best_params_["autoencoderkmeans__n_clusters"] == 3


def test_grid_search_with_labels_and_a_clustering_metric(data):
    X, y = data
    search = GridSearchCV(
        make_pipeline(StandardScaler(), tiny_instance(AutoencoderKMeans)),
        {"autoencoderkmeans__n_clusters": [2, 3], "autoencoderkmeans__lr": [1e-3, 1e-2]},
        scoring="adjusted_rand_score",
        cv=2,
    ).fit(X, y)
    assert search.best_params_["autoencoderkmeans__n_clusters"] == 3
    assert search.best_score_ >= 0.9


def test_set_output_pandas_names_the_embedding_columns(data):
    pd = pytest.importorskip("pandas", reason="pandas is part of the test extra")
    X, _ = data
    est = tiny_instance(AutoencoderKMeans, n_clusters=3).set_output(transform="pandas")
    frame = est.fit(pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])).transform(
        pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]))
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [f"autoencoderkmeans{i}" for i in range(est.embedding_dim)]
    np.testing.assert_array_equal(est.feature_names_in_, [f"f{i}" for i in range(5)])


def test_feature_names_mismatch_warns_like_sklearn(data):
    pd = pytest.importorskip("pandas", reason="pandas is part of the test extra")
    X, _ = data
    est = tiny_instance(AutoencoderKMeans, n_clusters=3).fit(
        pd.DataFrame(X, columns=[f"f{i}" for i in range(5)]))
    with pytest.raises(ValueError, match="feature names"):
        est.predict(pd.DataFrame(X, columns=[f"g{i}" for i in range(5)]))
