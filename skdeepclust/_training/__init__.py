"""The skorch layer: how every network of the package is trained.

Each training phase of a method is one :class:`UnsupervisedNet` built by
:func:`train_phase` (and trained further by :func:`continue_phase`). The data
set is one float32 tensor already on the training device; a batch is
``(X[idx], idx)`` where ``idx`` are the sample indices, so whatever a method
computed on the whole data set (target distributions, pseudo-labels,
neighbour lists) is looked up per batch by index. Shuffles come from a seeded
:class:`torch.Generator` that travels with the data set, never from the
global random state.

* ``_tools``: deliberate stops, batched inference, eval mode;
* ``_net``: the net, its slicing iterator, running a phase, the small-data rule;
* ``_callbacks``: guards, progress bars and scheduled refreshes of targets
  (neighbour graphs, k-means pseudo-labels);
* ``_nets``: nets with a train step of their own (alternating players,
  cluster-specific updates, two views);
* ``_accelerate``: data-parallel phases through skorch's ``AccelerateMixin``
  (imported only when an estimator has an ``accelerator``).
"""

from skdeepclust._training._callbacks import (
    EmbeddingRefresh,
    EveryNEpochs,
    KMeansRefresh,
    NeighborRefresh,
    NonFiniteLossGuard,
    ProgressBar,
)
from skdeepclust._training._net import (
    MIN_UPDATES_PER_EPOCH,
    ONE_THREAD_WORK,
    IndexedTensorDataset,
    SliceIterator,
    UnsupervisedNet,
    continue_phase,
    cpu_threads_for,
    loss_history,
    passes_for,
    small_data_batch_size,
    train_phase,
)
from skdeepclust._training._nets import (
    AdversarialNet,
    AlternatingNet,
    ClusterSpecificCriterion,
    ClusterSpecificNet,
    TeacherStudentNet,
    TwoViewNet,
)
from skdeepclust._training._tools import (
    StopTraining,
    batched_apply,
    batched_sum,
    evaluating,
    stop_phase,
)

__all__ = [
    "IndexedTensorDataset",
    "SliceIterator",
    "UnsupervisedNet",
    "StopTraining",
    "stop_phase",
    "train_phase",
    "continue_phase",
    "batched_apply",
    "batched_sum",
    "evaluating",
    "loss_history",
    "small_data_batch_size",
    "passes_for",
    "MIN_UPDATES_PER_EPOCH",
    "ONE_THREAD_WORK",
    "cpu_threads_for",
    "NonFiniteLossGuard",
    "ProgressBar",
    "EveryNEpochs",
    "EmbeddingRefresh",
    "NeighborRefresh",
    "KMeansRefresh",
    "AlternatingNet",
    "AdversarialNet",
    "TeacherStudentNet",
    "ClusterSpecificCriterion",
    "ClusterSpecificNet",
    "TwoViewNet",
]
