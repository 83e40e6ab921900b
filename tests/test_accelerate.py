"""Data-parallel training through skorch's AccelerateMixin, on the CPU.

Two processes launched by torchrun (gloo backend) train the estimators of
``_accelerate_fit.py``: they must end with the same model, each having
trained on half of every batch of the phases that split, and agree with a
fit in one process.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

accelerate = pytest.importorskip("accelerate", reason="accelerate is in the test extra")

from _accelerate_fit import ESTIMATORS, blobs, fitted_record  # noqa: E402

from skdeepclust import PIPCDR, AutoencoderKMeans  # noqa: E402
from skdeepclust._training import IndexedTensorDataset, SliceIterator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_shards_partition_every_batch():
    import torch

    dataset = IndexedTensorDataset(torch.zeros(11, 1), torch.Generator().manual_seed(0))
    whole = [idx for _, idx in SliceIterator(dataset, 4, shuffle=True)]
    shares = []
    for rank in range(2):
        dataset.generator.manual_seed(0)
        shares.append([idx for _, idx in SliceIterator(dataset, 4, shuffle=True,
                                                        shard=(rank, 2))])
    # Batches of 4, 4 and 3 rows: every one splits, the shares rebuild it.
    assert len(shares[0]) == len(shares[1]) == len(whole) == 3
    for batch, a, b in zip(whole, *shares):
        assert sorted(torch.cat([a, b]).tolist()) == sorted(batch.tolist())
    # A last batch with fewer rows than processes is dropped: both must step.
    dataset = IndexedTensorDataset(torch.zeros(9, 1))
    assert len(SliceIterator(dataset, 4, shard=(0, 2))) == 2
    assert len(list(SliceIterator(dataset, 4, shard=(1, 2)))) == 2


def test_one_process_accelerator_is_the_plain_fit():
    X = blobs()
    accelerator = accelerate.Accelerator(cpu=True)
    for make in ESTIMATORS.values():
        plain, accelerated = make(None).fit(X), make(accelerator).fit(X)
        if plain.random_state is not None:
            np.testing.assert_array_equal(accelerated.labels_, plain.labels_)
            np.testing.assert_array_equal(accelerated.transform(X), plain.transform(X))
        # The fitted nets hold no accelerator: the estimator pickles as a plain one.
        assert not hasattr(accelerated.net_, "accelerator")
        assert type(accelerated.net_) is type(plain.net_)


def test_device_conflicting_with_the_accelerator_is_an_error():
    accelerator = accelerate.Accelerator(cpu=True)
    est = AutoencoderKMeans(n_clusters=3, device="cuda", accelerator=accelerator)
    with pytest.raises(ValueError, match="conflicts with the accelerator"):
        est.fit(blobs())
    with pytest.raises(ValueError, match="accelerator"):
        PIPCDR(n_clusters=3, accelerator="yes").fit(blobs())


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", "2", str(ROOT / "tests" / "_accelerate_fit.py"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [dict(np.load(out / f"rank{rank}.npz")) for rank in range(2)]


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_processes_end_with_the_same_model(two_processes, name):
    first, second = two_processes
    for key in ("labels", "embedding"):
        np.testing.assert_array_equal(first[f"{name}_{key}"], second[f"{name}_{key}"])


# Rows of a batch each process trains on, in the phase of ``net_``: half where it splits,
# all of them in DCSS's pair phase (a pair loss needs the whole batch).
SHARE = {"aekm": 2, "rdc": 2, "dcss": 1}


@pytest.mark.parametrize("name", list(SHARE))
def test_two_processes_agree_with_one(two_processes, name):
    X = blobs()
    alone = fitted_record(ESTIMATORS[name](None).fit(X), X)
    ranks = two_processes
    np.testing.assert_array_equal(ranks[0][f"{name}_labels"], alone["labels"])
    # The gradient of each half-batch mean, averaged over the two processes, is the
    # whole batch's: the same training up to the order of float sums.
    np.testing.assert_allclose(ranks[0][f"{name}_embedding"], alone["embedding"], atol=1e-4)
    for rank in ranks:
        np.testing.assert_array_equal(rank[f"{name}_batch_sizes"] * SHARE[name],
                                      alone["batch_sizes"])
