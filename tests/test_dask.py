"""The estimators on Dask: dask-ml's wrappers and joblib's dask backend, on a local cluster."""

import numpy as np
import pytest

_EXTRA = "dask, distributed and dask-ml are in the test extra"
pytest.importorskip("dask", reason=_EXTRA)
distributed = pytest.importorskip("distributed", reason=_EXTRA)
wrappers = pytest.importorskip("dask_ml.wrappers", reason=_EXTRA)

import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from skdeepclust import PIPCDR, AutoencoderKMeans  # noqa: E402
from skdeepclust.utils import all_estimators  # noqa: E402
from skdeepclust.utils._test_settings import tiny_instance  # noqa: E402

ESTIMATOR_CLASSES = [cls for _, cls in all_estimators()]
CONTINUAL_CLASSES = [cls for cls in ESTIMATOR_CLASSES if hasattr(cls, "partial_fit")]
CHUNK = 64


@pytest.fixture(scope="module")
def client():
    # Two single-threaded workers in this process: light and quick to start.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=256, centers=3, n_features=4, cluster_std=0.5, random_state=0)
    return X.astype(np.float32)


def _blocks(X, order):
    return [X[i * CHUNK:(i + 1) * CHUNK] for i in order]


@pytest.mark.parametrize("cls", CONTINUAL_CLASSES, ids=lambda c: c.__name__)
def test_incremental_equals_partial_fit_on_the_same_blocks(cls, client, blobs):
    X = blobs
    inc = wrappers.Incremental(tiny_instance(cls, n_clusters=3), shuffle_blocks=True,
                               random_state=0)
    inc.fit(da.from_array(X, chunks=(CHUNK, -1)))
    # dask-ml's block order: check_random_state(random_state).shuffle(range(nblocks)).
    order = list(range(len(X) // CHUNK))
    np.random.RandomState(0).shuffle(order)
    assert order != sorted(order)
    ref = tiny_instance(cls, n_clusters=3)
    for block in _blocks(X, order):
        ref.partial_fit(block)
    est = inc.estimator_
    assert est.n_steps_ == ref.n_steps_ == len(order)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))
    np.testing.assert_array_equal(est.transform(X), ref.transform(X))
    dX = da.from_array(X, chunks=(CHUNK, -1))
    labels = inc.predict(dX)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), ref.predict(X))
    np.testing.assert_allclose(inc.transform(dX).compute(), ref.transform(X), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("cls", [c for c in ESTIMATOR_CLASSES if c not in CONTINUAL_CLASSES],
                         ids=lambda c: c.__name__)
def test_incremental_refuses_an_estimator_without_partial_fit(cls, blobs):
    # dask-ml says so itself, before reading any block.
    inc = wrappers.Incremental(tiny_instance(cls, n_clusters=3))
    with pytest.raises(ValueError, match="does not implement 'partial_fit'"):
        inc.fit(da.from_array(blobs, chunks=(CHUNK, -1)))


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_parallel_post_fit_predicts_block_by_block(cls, client, blobs):
    X = blobs
    ppf = wrappers.ParallelPostFit(tiny_instance(cls, n_clusters=3)).fit(X)
    est = ppf.estimator
    # Uneven blocks: a batch-dependent inference (batch statistics) would show.
    dX = da.from_array(X, chunks=(100, -1))
    labels = ppf.predict(dX)
    assert isinstance(labels, da.Array) and labels.numblocks == (3,)
    np.testing.assert_array_equal(labels.compute(), est.predict(X))
    np.testing.assert_allclose(ppf.transform(dX).compute(), est.transform(X), rtol=1e-5,
                               atol=1e-6)
    if hasattr(est, "predict_proba"):
        # ParallelPostFit.predict_proba sizes its blocks by a classifier's classes_;
        # map_blocks does the same block by block for a clusterer.
        proba = dX.map_blocks(est.predict_proba, chunks=(dX.chunks[0], est.n_clusters_),
                              dtype=np.float32)
        np.testing.assert_allclose(proba.compute(), est.predict_proba(X), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_fit_on_dask_array_raises_instead_of_loading_it(cls, blobs):
    dX = da.from_array(blobs, chunks=(CHUNK, -1))
    est = tiny_instance(cls, n_clusters=3)
    continual = "partial_fit" if hasattr(est, "partial_fit") else "has no partial_fit"
    with pytest.raises(TypeError, match=rf"cannot learn block by block.*X\.compute\(\).*"
                                        rf"{continual}"):
        est.fit(dX)
    with pytest.raises(TypeError, match="cannot learn block by block"):
        est.fit_predict(dX)
    assert not hasattr(est, "labels_")


def test_fit_on_dask_dataframe_raises(blobs):
    dd = pytest.importorskip("dask.dataframe", reason="dask[dataframe] is in the test extra")
    pd = pytest.importorskip("pandas", reason="pandas is part of the test extra")
    df = dd.from_pandas(pd.DataFrame(blobs), npartitions=2)
    with pytest.raises(TypeError, match="cannot learn block by block"):
        tiny_instance(AutoencoderKMeans, n_clusters=3).fit(df)


@pytest.mark.parametrize("cls", CONTINUAL_CLASSES, ids=lambda c: c.__name__)
def test_partial_fit_takes_a_computed_block_not_the_dask_array(cls, blobs):
    dX = da.from_array(blobs, chunks=(CHUNK, -1))
    est = tiny_instance(cls, n_clusters=3)
    with pytest.raises(TypeError, match="partial_fit takes one in-memory block"):
        est.partial_fit(dX)
    ref = tiny_instance(cls, n_clusters=3)
    for block, x in zip(dX.to_delayed().ravel(), _blocks(blobs, range(dX.numblocks[0]))):
        est.partial_fit(block.compute())
        ref.partial_fit(x)
    np.testing.assert_array_equal(est.predict(blobs), ref.predict(blobs))


def test_grid_search_on_joblib_dask_backend_equals_serial(client, blobs):
    X = blobs
    search = GridSearchCV(tiny_instance(AutoencoderKMeans, n_clusters=3, pretrain_epochs=2),
                          {"embedding_dim": [2, 3], "n_clusters": [2, 3]}, cv=2)
    serial = clone(search).fit(X)
    with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as tasks:
        parallel = clone(search).set_params(n_jobs=2).fit(X)
    # The 8 fits ran on the cluster's two workers.
    assert len({t["worker"] for t in tasks.data}) == 2
    assert parallel.best_params_ == serial.best_params_
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(parallel.cv_results_[key], serial.cv_results_[key])
    np.testing.assert_array_equal(parallel.best_estimator_.labels_,
                                  serial.best_estimator_.labels_)


def test_fit_in_a_worker_equals_the_fit_in_process(client, blobs):
    X = blobs
    est = tiny_instance(PIPCDR, n_clusters=3)

    def fit_transform(est, X):
        return est.fit(X).transform(X)

    remote = client.submit(fit_transform, clone(est), X, pure=False).result()
    np.testing.assert_array_equal(remote, fit_transform(clone(est), X))


def test_scaling_page_examples_run():
    # doc/scaling.rst's examples (a memory-mapped file, Incremental, ParallelPostFit, the
    # error on a dask array) run as written.
    import doctest
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "doc" / "scaling.rst"
    result = doctest.testfile(str(page), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
