"""FBCC: forward-backward knowledge distillation for continual clustering.

The losses (:func:`~skdeepclust.losses.instance_contrastive_loss` with
prototypes as extra negatives, :func:`~skdeepclust.losses.forward_distillation_loss`,
:func:`~skdeepclust.losses.cluster_contrastive_loss`,
:func:`~skdeepclust.losses.backward_distillation_loss`), the views, the
teacher/student net and the continual mixin (its snapshot undoes a failed
call) are shared layers; this module holds FBCC's networks, its memory of
students, its prototypes and its task bookkeeping.
"""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from skdeepclust._autoencoder import resolve_hidden_layer_sizes
from skdeepclust._network import user_encoder
from skdeepclust._training import (
    TeacherStudentNet,
    TwoViewNet,
    batched_apply,
    batched_sum,
    continue_phase,
    passes_for,
)
from skdeepclust.augment import AUGMENTATION_NAMES, neighbor_views
from skdeepclust.base import BaseDeepClusterer, ContinualClustererMixin
from skdeepclust.losses import (
    backward_distillation_loss,
    cluster_contrastive_loss,
    forward_distillation_loss,
    instance_contrastive_loss,
)
from skdeepclust.nn import MLP, mlp_backbone
from skdeepclust.utils._docstrings import fill_doc

__all__ = ["FBCC"]


# ----------------------------------------------------------------------------- networks

class _Member(nn.Module):
    """A kept student, frozen with the projector of its task, and the teacher's predictor for it."""

    def __init__(self, student, projector, predictor):
        super().__init__()
        self.student = student.requires_grad_(False)
        self.projector = projector.requires_grad_(False)
        self.predictor = predictor

    def embed(self, x):
        return F.normalize(self.projector(self.student(x)), dim=1)


class _FBCCModel(nn.Module):
    """The teacher ``T`` + ``C^first``, one head per task, the current projector, the memory.

    In training the input is the two-view batch ``[x_a; x_b]`` and the
    output ``(h, z, c, q, u)``: the backbone output, the unit-norm projection
    of the current task, the current head's softmax, and per kept student
    the predictor's output and the student's (frozen, no gradient) unit-norm
    embedding.
    """

    def __init__(self, backbone, width, cluster_hidden, embedding_dim):
        super().__init__()
        self.backbone = backbone
        self.cluster_first = nn.Sequential(nn.Linear(width, cluster_hidden), nn.ReLU())
        self.heads = nn.ModuleList()
        self.projector = None
        self.memory = nn.ModuleList()
        self.register_buffer("prototypes", torch.zeros(0, embedding_dim))

    def hidden(self, x):
        """``h_hat = C^first(T(x))``, the space every head reads (``transform``)."""
        return self.cluster_first(self.backbone(x))

    def train(self, mode=True):
        super().train(mode)
        # Kept students are frozen: their BatchNorm statistics must not follow the new task.
        for member in self.memory:
            member.student.eval()
            member.projector.eval()
        return self

    def forward(self, x2):
        h = self.backbone(x2)
        z = F.normalize(self.projector(h), dim=1)
        c = torch.softmax(self.heads[-1](self.cluster_first(h)), dim=1)
        q, u = [], []
        for member in self.memory:
            with torch.no_grad():
                u.append(member.embed(x2))
            q.append(member.predictor(z))
        return h, z, c, q, u

    def project_frozen(self, h):
        """The current projector's unit-norm output with its weights as constants."""
        params = {k: v.detach() for k, v in self.projector.named_parameters()}
        return F.normalize(torch.func.functional_call(self.projector, params, (h,)), dim=1)


class _FBCCLoss(nn.Module):
    """Forward step ``L_con + L_dis + L_clu``; ``student_loss`` is the backward step ``L_stu``.

    Keeps each batch's ``(L_con, L_dis, L_clu)`` on the device for the epoch means.
    """

    def __init__(self, temperature, cluster_temperature, prototypes=None):
        super().__init__()
        self.temperature = temperature
        self.cluster_temperature = cluster_temperature
        self.prototypes = prototypes
        self.project = None  # the current projector with frozen weights (set per task)
        self.parts: list[torch.Tensor] = []

    def forward(self, y_pred, index, X, student):
        h, z, c, q, u = y_pred
        n = z.shape[0] // 2
        con = instance_contrastive_loss(z[:n], z[n:], self.temperature, self.prototypes)
        dis = (forward_distillation_loss(q, u, self.temperature) if q else z.new_zeros(()))
        # One column cannot be contrasted: a one-cluster fit learns the instances only.
        clu = (cluster_contrastive_loss(c[:n], c[n:], self.cluster_temperature)
               if c.shape[1] > 1 else z.new_zeros(()))
        self.parts.append(torch.stack([con, dis, clu]).detach())
        return con + dis + clu

    def student_loss(self, y_pred, index, X, student):
        h, z = y_pred[0], y_pred[1]
        h_s = student(X)
        return backward_distillation_loss(h_s, h, self.project(h_s), z, self.temperature)


class _FBCCNet(TeacherStudentNet, TwoViewNet):
    """Per batch of two views: the teacher's step, then the student's; ``passes`` per epoch.

    Records the epoch means of ``L_con``, ``L_dis`` and ``L_clu`` as
    ``con``, ``dis`` and ``clu`` (``train_student_loss`` is ``L_stu``).
    """

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        parts = self.criterion_.parts
        if parts:
            con, dis, clu = torch.stack(parts).float().mean(dim=0).cpu().tolist()
            self.history.record("con", con)
            self.history.record("dis", dis)
            self.history.record("clu", clu)
            parts.clear()


def _reliable_sums(z_a, z_b, c_a, c_b, n_clusters):
    """Per cluster, the sum of ``z_a + z_b`` over its reliable rows, and their count.

    A row is reliable when both views pick the same cluster. Sums over
    blocks of rows add up to the sums over all of them (:func:`_prototypes`).
    """
    la, lb = c_a.argmax(dim=1), c_b.argmax(dim=1)
    reliable = la == lb
    members = F.one_hot(la, n_clusters).to(z_a.dtype) * reliable[:, None].to(z_a.dtype)
    return members.T @ (z_a + z_b), members.sum(dim=0)


def _prototypes(sums, counts):
    """Prototypes of a task (eq. 6.7): per cluster, the normalised mean of its reliable rows.

    ``sums`` and ``counts`` come from :func:`_reliable_sums`; a cluster with
    no reliable row gets no prototype.

    Returns
    -------
    prototypes : torch.Tensor of shape (m, e)
    clusters : torch.Tensor of shape (m,)
        The cluster (column of the task's head) of each prototype.
    """
    keep = counts > 0
    return F.normalize(sums[keep], dim=1), torch.nonzero(keep).flatten()


@torch.inference_mode()
def _head_summary(model, head, X, columns=None):
    """A head over its task's rows: used columns, (mean, std) of the maximum logit, centroids.

    ``columns`` None: the columns that win the argmax for at least one row;
    the statistics and the unit-norm per-column centroids of ``h_hat`` are
    then over those columns.
    """
    logits = batched_apply(lambda x: head(model.hidden(x)), X)
    if columns is None:
        columns = torch.unique(logits.argmax(dim=1))
    columns = torch.as_tensor(columns, device=logits.device)
    used = logits[:, columns]
    top, local = used.max(dim=1)
    top = top.double()
    stats = [float(top.mean()), max(float(top.std(unbiased=False)), 1e-6)]
    # The centroids' sums batch by batch, the hidden layer computed again: holding it for
    # all rows would take n x width floats (1 GB at a million rows of width 256).

    def member_sums(x, rows):
        H = model.hidden(x)
        return F.one_hot(local[rows], len(columns)).to(H.dtype).T @ H

    centroids = F.normalize(batched_sum(member_sums, X), dim=1)
    return columns.cpu().numpy(), stats, centroids.cpu().numpy()


# ----------------------------------------------------------------------------- estimator

@fill_doc(embedding_dim_default=128, hidden_default="(256, 256)",
          batch_size_auto_default=(
              "128 rows at any size; smaller data makes more passes per\n"
              "    epoch (each epoch at least 30 updates), as the contrast needs many\n"
              "    rows per batch."),
          max_epochs_default=10)
class FBCC(ContinualClustererMixin, BaseDeepClusterer):
    r"""Forward-backward knowledge distillation for continual clustering (FBCC).

    Tasks arrive one after another, each with its own clusters (as classes
    in class-incremental learning); old tasks' rows are never seen again and
    none are stored. ``partial_fit`` has two meanings, set by
    ``partial_fit_unit``:

    * ``"task"`` (default): one call learns one whole task, ``max_epochs``
      epochs over its rows, with ``n_clusters`` new clusters (the call's
      ``n_clusters`` argument, else the parameter: an int for every task, or
      one int per task). Use it when a whole task is at hand.
    * ``"block"``: one call is one epoch over a block of rows of the open
      task, as scikit-learn's "one more batch" (dask-ml's ``Incremental``
      feeds a clone block by block); the task stays open until
      :meth:`end_task` closes it. The first call after ``end_task`` (or the
      very first) opens the next task.

    :meth:`fit` forgets every task and learns ``X`` as one task.

    A *teacher* (an MLP backbone ``T``, a shared layer ``C^first`` and one
    cluster head ``C_t`` per task) learns each task with Contrastive
    Clustering's losses on two augmented views ``a``, ``b`` of each row. A
    small *student* network is trained to imitate the teacher on the task
    (backward distillation) and kept; while later tasks are learned the
    teacher must stay predictive of what the last ``n_students - 1``
    students output on the new data (forward distillation), and its new
    instance embeddings are pushed away from *prototypes* (per-cluster mean
    embeddings) saved at the end of earlier tasks. Only the students are
    kept, no rows and no copy of the teacher.

    Per batch of ``N`` rows of task ``t``, with ``s`` the cosine, ``i'`` the
    other view of entry ``i`` among the ``2N``, ``z = n(I_t(T(x)))`` the
    projection of the task (``I_t`` a new projector per task), ``P`` the
    earlier tasks' prototypes, the **forward step** updates the teacher,
    ``C_t``, ``I_t`` and the predictors ``g_r`` on

    .. math::

        L_{con} = \frac{1}{2N} \sum_{i=1}^{2N} -\log
            \frac{e^{s(z_i, z_{i'})/\tau}}{\sum_{j \ne i} e^{s(z_i, z_j)/\tau}
                  + \sum_{p \in P} e^{s(z_i, p)/\tau}},

        L_{dis} = \frac{1}{|\mathcal{M}|} \sum_{r \in \mathcal{M}} \frac{1}{2N}
            \sum_{i=1}^{2N} -\log \frac{e^{s(q_i^r, u_i^r)/\tau}}
                                     {\sum_{j \ne i'} e^{s(q_i^r, u_j^r)/\tau}},

        L_{clu} = \frac{1}{2\lambda_t} \sum_{m=1}^{2\lambda_t} -\log
            \frac{e^{s(f_m, f_{m'})/\tau_c}}{\sum_{l \ne m} e^{s(f_m, f_l)/\tau_c}}
            - H(F),

    ``L_fwd = L_con + L_dis + L_clu``, where ``u^r = n(I_r(S_r(x)))`` is kept
    student ``r``'s embedding (frozen, no gradient), ``q^r = g_r(z)`` the
    teacher's prediction of it, ``f_m`` the columns of the head's softmax
    over the batch in both views and ``H(F)`` the entropy of the cluster
    marginals. Then the **backward step** updates the current student
    ``S_t`` alone on the teacher's outputs ``h = T(x)`` and ``z`` (as
    constants, ``R`` the width of ``h``, ``z^S = n(I_t(S_t(x)))``):

    .. math::

        L_{stu} = \frac{1}{2N} \sum_{i=1}^{2N} \Big[ \frac{1}{R}
            \lVert S_t(x_i) - h_i \rVert^2 - \log
            \frac{e^{s(z^S_i, z_i)/\tau}}{\sum_{j \ne i'} e^{s(z^S_i, z_j)/\tau}} \Big].

    At the end of a task its prototypes are the normalised mean ``z`` (over
    both views) of the rows whose two views the head puts in the same
    cluster. A row's cluster is the argmax over the used columns of all
    heads (``task_inference``).

    Parameters
    ----------
    n_clusters : int or sequence of int, default=8
        Clusters of each task (not in total): an int for every task, or one
        int per task (``partial_fit`` raises a ``ValueError`` once they are
        used up). ``partial_fit(X, n_clusters=k)`` overrides it for one task.
        A task needs at least 2 clusters; :meth:`fit` alone accepts 1.
    {embedding_dim}
        The projectors' output ``E`` (the space of the prototypes).
    hidden_layer_sizes : tuple of int or "auto", default=(256, 256)
        Widths of the teacher's backbone (each ``Linear-LayerNorm-ReLU``);
        the last is the width ``R`` the heads and students share.
        ``"auto"`` as in the other estimators, ``(w, w, 4 w)``. Not empty.
    {module_encoder}
        It replaces the teacher's backbone ``T`` (then also for every later
        task); ``C^first``, the heads, projectors and predictors are built on
        its width. The students stay MLPs of ``student_hidden_layer_sizes``,
        as the paper's students are smaller networks than its teacher.
    student_hidden_layer_sizes : tuple of int, default=(64,)
        Widths of a student's hidden layers (``Linear-BatchNorm-ReLU``),
        followed by a ``Linear`` to ``R``.
    projector_hidden_dim : int or None, default=None
        Hidden width of each task's projector ``R -> . -> E``; None: ``R``.
    predictor_hidden_dim : int or None, default=None
        Hidden width of the predictors ``E -> . -> E`` (with BatchNorm); None: ``R``.
    cluster_hidden_dim : int or None, default=None
        Width of ``C^first`` (``Linear-ReLU``), the columns of
        :meth:`transform`; None: ``R``.
    {batch_size}
    lr : float, default=3e-4
        Adam learning rate of the teacher on the first task, and of the
        heads, projectors and predictors on every task.
    continual_lr : float, default=1e-4
        Adam learning rate of the teacher from the second task on.
    student_lr : float, default=1e-3
        Adam learning rate of the students.
    max_epochs : int, default=10
        Epochs per task (with ``partial_fit_unit="task"``); on small data
        each epoch makes at least 30 updates (more passes over the rows).
    first_task_epochs : int or None, default=None
        Epochs of the first task (and of :meth:`fit`); None: ``max_epochs``.
    n_students : int, default=3
        ``M``, the students kept, the current one included: the forward
        step distils from the last ``M - 1``. 1 trains no student at all
        (no distillation).
    temperature : float, default=0.5
        ``tau`` of ``L_con``, ``L_dis`` and ``L_stu``.
    cluster_temperature : float, default=1.0
        ``tau_c`` of ``L_clu``.
    use_prototypes : bool, default=True
        Add the earlier tasks' prototypes as negatives of ``L_con``.
    task_inference : {{"standardized", "concat", "centroid"}}, default="standardized"
        How :meth:`predict` picks a cluster among all tasks' clusters.
        ``"concat"``: the argmax over all heads' logits side by side (the
        paper's rule). ``"standardized"``: the head whose maximum logit is
        highest in units of that head's spread on its own task (``(max -
        mu_u) / sigma_u``, ``head_logit_stats_``), then the argmax inside it;
        heads trained at different times have logits of different scales,
        which the paper's rule ignores. ``"centroid"``: the cluster whose
        centroid of :meth:`transform`'s output, stored at the end of its task
        (``hidden_centroids_``), is closest in cosine: right where tasks lie
        apart in that space (separated blobs), weaker where they overlap.
        It only changes inference: set it after fitting.
    partial_fit_unit : {{"task", "block"}}, default="task"
        What one :meth:`partial_fit` call is: a whole task, or one epoch over
        a block of the open task (closed by :meth:`end_task`).
    augmentation : {{"corruption", "noise", "mask"}}, callable or pair, default="corruption"
        How the two views are drawn (:func:`skdeepclust.augment.make_views`,
        as in :class:`C3`), from the statistics of the current task's (or
        block's) rows only.
    corruption_rate : float, default=0.3
        Probability that an entry is corrupted or masked.
    noise_scale : float, default=0.1
        Noise, in standard deviations of each feature.
    {runtime_parameters}

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,), dtype=int64
        :meth:`predict` on the rows of the last call (``fit``,
        ``partial_fit`` or ``end_task``).
    n_clusters_ : int
        Cluster ids in use, all tasks together: the used columns of every
        head (and, while a block task is open, all columns of its head).
    n_tasks_ : int
        Tasks learned and closed.
    cluster_offsets_ : ndarray of shape (n_tasks_,), dtype=int64
        First global cluster id of each task; task ``u``'s ids run up to the
        next offset (or ``n_clusters_``). Ids never change.
    head_logit_stats_ : ndarray of shape (n_tasks_, 2)
        Mean and standard deviation of each head's maximum logit over its
        task's rows (the ``"standardized"`` rule).
    hidden_centroids_ : ndarray of shape (n_clusters_, cluster_hidden_dim)
        Per cluster, the unit-norm mean of :meth:`transform` over its task's
        rows at the end of the task (the ``"centroid"`` rule).
    prototypes_ : ndarray of shape (n_prototypes, embedding_dim)
        The saved prototypes, each in the projector space of its task.
    prototype_labels_ : ndarray of shape (n_prototypes,), dtype=int64
        Their global cluster ids.
    net_ : skdeepclust._training.TeacherStudentNet
        The skorch net of the last task: ``net_.module_`` holds the teacher
        (``backbone``, ``cluster_first``, ``heads``), the current
        ``projector`` and the ``memory`` of kept students; ``net_.partner_``
        is the current student (None when ``n_students=1``).
    history_ : dict of str to list
        Per epoch, all tasks in order: ``"forward"`` (``L_fwd``), ``"con"``,
        ``"dis"``, ``"clu"``, ``"student"`` (``L_stu``, when
        ``n_students > 1``) and ``"task"`` (the task's index).
    n_iter_ : int
        Epochs run, all tasks together.
    n_steps_ : int
        ``partial_fit`` and ``end_task`` calls since the last ``fit``.
    {input_attributes}

    See Also
    --------
    C3 : Contrastive Clustering and its refinement, offline.
    PIPCDR : streaming chunks of one set of clusters through ``partial_fit``.
    sklearn.cluster.MiniBatchKMeans : k-means with ``partial_fit``.

    Notes
    -----
    Tasks are expected to hold disjoint classes: a second task of the same
    classes gets new, separate cluster ids (FBCC never merges clusters
    across tasks). Old rows may move to newer clusters as the teacher
    learns on (that is forgetting; see :func:`skdeepclust.metrics.average_forgetting`).
    :meth:`predict_within_task` is the paper's task-aware evaluation rule.

    Paper settings (images): ResNet-18 teacher (512-d), SqueezeNet 1.1
    students with a ``Linear`` to 512, projectors ``512-512-128``,
    predictors ``128-512-128``, ``C^first`` 512 wide; 1000 epochs on the
    first task and 400 on later ones, batch 256, Adam 3e-4 (teacher 1e-4
    from task 2, students 1e-3), ``tau = 0.5``, ``tau_c = 1``, ``M`` 3 or 5,
    SimCLR augmentations. Departures: MLP teacher ``(256, 256)`` with
    LayerNorm (BatchNorm's running statistics would follow the newest task
    and shift older tasks' rows at inference) and students ``(64,)`` (a
    quarter of the teacher's size, not a tenth); batches of 128;
    vector augmentations; 10 epochs per task, each making at least 30
    updates on small data; the positive is in every InfoNCE denominator
    (the code's NT-Xent; the thesis sums over negatives only); ``L_dis``
    averages over the kept students (the code divides by twice the number
    of tasks) and normalises the predictor's output (thesis); ``L_clu``
    uses ``log K - H`` per view, as the code (same gradient as ``-H``);
    prototypes from one pass over the whole task (as the code), only for
    clusters :meth:`predict` uses; the ``"standardized"`` rule as default
    (on split digits it found the task of more rows than the paper's
    ``"concat"``, which is offered, as is ``"centroid"``).

    References
    ----------
    .. [1] M. Sadeghi, Z. Wang and N. Armanfard, "Forward-backward knowledge
       distillation for continual clustering", 2024; M. Sadeghi,
       "Unsupervised representation learning for data clustering", PhD
       thesis, McGill University, 2025, chapter 6. Code:
       https://github.com/Armanfard-Lab/FBCC

    Examples
    --------
    Three tasks of two classes each (class-incremental):

    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepclust import FBCC
    >>> X, y = make_blobs(n_samples=240, centers=6, n_features=4, random_state=0)
    >>> est = FBCC(n_clusters=2, hidden_layer_sizes=(32,), student_hidden_layer_sizes=(8,),
    ...            embedding_dim=8, batch_size=40, max_epochs=2, random_state=0)
    >>> for task in ([0, 1], [2, 3], [4, 5]):
    ...     est = est.partial_fit(X[np.isin(y, task)])
    >>> est.n_tasks_, est.n_clusters_, est.cluster_offsets_.tolist()
    (3, 6, [0, 2, 4])
    >>> len(est.net_.module_.memory)  # students of tasks 1 and 2; task 3's is current
    2
    >>> est.predict(X).shape, est.transform(X).shape
    ((240,), (240, 32))
    >>> first = est.predict_within_task(X[np.isin(y, [0, 1])], task=0)
    >>> sorted(set(first.tolist())) <= [0, 1]
    True

    The same as blocks of one task at a time, closed by ``end_task``:

    >>> blocks = FBCC(n_clusters=2, hidden_layer_sizes=(32,), student_hidden_layer_sizes=(8,),
    ...               embedding_dim=8, batch_size=40, partial_fit_unit="block", random_state=0)
    >>> Xt = X[np.isin(y, [0, 1])]
    >>> for epoch in range(2):
    ...     for block in np.array_split(Xt, 2):
    ...         blocks = blocks.partial_fit(block)
    >>> blocks.n_tasks_, blocks.end_task(Xt).n_tasks_
    (0, 1)
    """

    # "auto" is 128 rows at any size (the contrast needs many rows per batch: small data
    # makes more passes); the code's 256 costs twice as much per step on 2 CPU cores.
    _auto_batch_size = 128
    _auto_batch_shrinks = False
    _hidden_layers_required = True  # the heads and students read the backbone's last layer

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "n_clusters": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "embedding_dim": [Interval(Integral, 2, None, closed="left")],
        "student_hidden_layer_sizes": ["array-like"],
        "projector_hidden_dim": [Interval(Integral, 1, None, closed="left"), None],
        "predictor_hidden_dim": [Interval(Integral, 1, None, closed="left"), None],
        "cluster_hidden_dim": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "continual_lr": [Interval(Real, 0, None, closed="neither")],
        "student_lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "first_task_epochs": [Interval(Integral, 0, None, closed="left"), None],
        "n_students": [Interval(Integral, 1, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "cluster_temperature": [Interval(Real, 0, None, closed="neither")],
        "use_prototypes": ["boolean"],
        "task_inference": [StrOptions({"concat", "standardized", "centroid"})],
        "partial_fit_unit": [StrOptions({"task", "block"})],
        "augmentation": [StrOptions(set(AUGMENTATION_NAMES)), callable, tuple],
        "corruption_rate": [Interval(Real, 0, 1, closed="left")],
        "noise_scale": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_clusters=8, *, embedding_dim=128, hidden_layer_sizes=(256, 256),
                 module=None, student_hidden_layer_sizes=(64,), projector_hidden_dim=None,
                 predictor_hidden_dim=None, cluster_hidden_dim=None, batch_size="auto",
                 lr=3e-4, continual_lr=1e-4, student_lr=1e-3, max_epochs=10,
                 first_task_epochs=None, n_students=3, temperature=0.5,
                 cluster_temperature=1.0, use_prototypes=True, task_inference="standardized",
                 partial_fit_unit="task", augmentation="corruption", corruption_rate=0.3,
                 noise_scale=0.1, device="auto", accelerator=None, random_state=None, verbose=0):
        self.n_clusters = n_clusters
        self.embedding_dim = embedding_dim
        self.hidden_layer_sizes = hidden_layer_sizes
        self.module = module
        self.student_hidden_layer_sizes = student_hidden_layer_sizes
        self.projector_hidden_dim = projector_hidden_dim
        self.predictor_hidden_dim = predictor_hidden_dim
        self.cluster_hidden_dim = cluster_hidden_dim
        self.batch_size = batch_size
        self.lr = lr
        self.continual_lr = continual_lr
        self.student_lr = student_lr
        self.max_epochs = max_epochs
        self.first_task_epochs = first_task_epochs
        self.n_students = n_students
        self.temperature = temperature
        self.cluster_temperature = cluster_temperature
        self.use_prototypes = use_prototypes
        self.task_inference = task_inference
        self.partial_fit_unit = partial_fit_unit
        self.augmentation = augmentation
        self.corruption_rate = corruption_rate
        self.noise_scale = noise_scale
        self.device = device
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ public continual API

    def partial_fit(self, X, y=None, *, n_clusters=None):
        """Learn one task (``partial_fit_unit="task"``) or one epoch over a block of the open task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The task's rows (or a block of them). None are kept after the call.
        y : Ignored
            Not used, present for API consistency by convention.
        n_clusters : int, default=None
            Clusters of this task (at least 2); None: from the ``n_clusters``
            parameter (its entry for this task when a sequence). In block
            mode it is read when the task opens; a later block may repeat it.

        Returns
        -------
        self : object
            The updated estimator.

        Raises
        ------
        ValueError
            On a feature count other than the first call's, fewer than 2
            clusters, fewer rows than clusters, or a used-up sequence of
            ``n_clusters``. The estimator is then left as it was.
        """
        return self._continue(X, n_clusters=n_clusters)

    def end_task(self, X):
        """Close the open task (``partial_fit_unit="block"``): used clusters, prototypes, stats.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The task's rows, or a sample of them.

        Returns
        -------
        self : object
            The estimator, its task closed; ``labels_`` is :meth:`predict` on ``X``.
        """
        return self._continue(X, close=True)

    def predict_within_task(self, X, task):
        """The cluster of each row among one task's clusters (the paper's task-aware rule).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows (of that task, for a task-aware accuracy).
        task : int
            Index of a closed task, ``0 .. n_tasks_ - 1``.

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype=int64
            Global cluster ids, all of task ``task``.
        """
        X_t = self._check_test_data(X)
        if not 0 <= int(task) < self.n_tasks_:
            raise ValueError(f"task={task} is not a closed task; tasks are 0..{self.n_tasks_ - 1}.")
        self._eval_mode()
        model = self.net_.module_
        cols = torch.as_tensor(self._used_columns[task], device=X_t.device)
        local = batched_apply(lambda x: model.heads[task](model.hidden(x))[:, cols].argmax(dim=1),
                              X_t)
        return local.cpu().numpy().astype(np.int64) + int(self.cluster_offsets_[task])

    # ------------------------------------------------------------ checks and parts

    def _check_n_samples(self, n_samples):
        # Clusters come per task: checked against each task's rows when it opens.
        pass

    def _task_clusters(self, n_clusters, task, minimum=2):
        """λ of task ``task`` (0-based) from the call's argument or the parameter."""
        spec = self.n_clusters if n_clusters is None else n_clusters
        if isinstance(spec, Integral):
            k = spec
        else:
            seq = list(np.ravel(spec))
            if task >= len(seq):
                raise ValueError(f"n_clusters={self.n_clusters!r} gives the clusters of "
                                 f"{len(seq)} task(s); this is task {task + 1}. Pass "
                                 "partial_fit(X, n_clusters=k) or a longer sequence.")
            k = seq[task]
        if not isinstance(k, Integral) or k < minimum:
            raise ValueError(f"A task needs at least {minimum} clusters (an int), got "
                             f"n_clusters={k!r}: its head's columns are contrasted with each "
                             "other.")
        return int(k)

    def _teacher_backbone(self, X):
        """The teacher ``T``, the MLP or the user's encoder, and its output width ``R``."""
        if self.module is not None:
            return user_encoder(self.module, X, self.embedding_dim, owner=type(self).__name__)
        hidden = list(resolve_hidden_layer_sizes(self.hidden_layer_sizes, X.shape[1]))
        # LayerNorm, not BatchNorm: running statistics would follow the newest task, and
        # shifted every older task's rows at inference (old heads fell to chance on blobs).
        return mlp_backbone(X.shape[1], hidden, norm="layer"), hidden[-1]

    def _widths(self, r):
        return self.cluster_hidden_dim or r, self.projector_hidden_dim or r, \
            self.predictor_hidden_dim or r

    def _views(self, X, ctx):
        return neighbor_views(self.augmentation, X, n_neighbors=0,
                              generator=ctx.device_generator, random_state=0,
                              corruption_rate=self.corruption_rate,
                              noise_scale=self.noise_scale)

    @staticmethod
    def _fresh_state():
        return {"net_": None, "n_tasks_": 0, "_used_columns": [], "_open": None,
                "_open_stats": None,
                "head_logit_stats_": np.zeros((0, 2)), "_open_centroids": None,
                "hidden_centroids_": None,
                "prototype_labels_": np.zeros(0, dtype=np.int64),
                "history_": {"forward": [], "con": [], "dis": [], "clu": [], "task": []},
                "n_iter_": 0}

    # ------------------------------------------------------------ one task

    def _open_task(self, st, X, ctx, k):
        """Steps 2-4 of a task: memory, new head, projector and student, the net."""
        n, d = X.shape
        if n < max(2, k):
            raise ValueError(f"n_samples={n} should be >= max(2, n_clusters={k}) for a task.")
        previous = st["net_"]
        if previous is None:
            backbone, r = self._teacher_backbone(X)
            rc, rp, rg = self._widths(r)
            model = _FBCCModel(backbone, r, rc, self.embedding_dim).to(ctx.device)
            student = (MLP(d, list(self.student_hidden_layer_sizes), r, batch_norm=True)
                       if self.n_students > 1 else None)
        else:
            model, student = previous.module_, previous.partner_
            r = model.cluster_first[0].in_features
            rc, rp, rg = self._widths(r)
            if self.n_students > 1:
                predictor = MLP(self.embedding_dim, [rg], self.embedding_dim, batch_norm=True)
                model.memory.append(_Member(copy.deepcopy(student), model.projector, predictor))
                while len(model.memory) > self.n_students - 1:
                    del model.memory[0]
                student = copy.deepcopy(student)  # the new student starts from the last one
        model.heads.append(nn.Linear(rc, k))
        model.projector = MLP(r, [rp], self.embedding_dim)
        model.to(ctx.device)
        prototypes = model.prototypes if self.use_prototypes and len(model.prototypes) else None
        first = st["n_tasks_"] == 0
        teacher_lr = self.lr if first else self.continual_lr
        b = ctx.batch_size(n)
        net = ctx.train_phase(
            model, _FBCCLoss(self.temperature, self.cluster_temperature, prototypes), X,
            epochs=0, phase=f"FBCC task {st['n_tasks_'] + 1}", batch_size=b,
            net_class=_FBCCNet, partner=student, partner_lr=self.student_lr,
            optimizer__param_groups=[("backbone.*", {"lr": teacher_lr}),
                                     ("cluster_first.*", {"lr": teacher_lr})],
            remedy="Lower `lr` or `continual_lr`, or standardise the features.")
        net.criterion_.project = model.project_frozen
        if previous is not None:
            # A predictor keeps its Adam state while its student stays in memory.
            old = previous.optimizer_.state
            for member in model.memory:
                for p in member.predictor.parameters():
                    if p in old:
                        net.optimizer_.state[p] = old[p]
        st["net_"] = net
        return net

    def _train(self, st, net, X, ctx, epochs):
        n = X.shape[0]
        b = min(ctx.batch_size(n), n)
        # The small-data rule, repeated-pass form: the contrast needs large batches.
        net.passes = passes_for(n // b if n > b else 1)
        net.make_views = self._views(X, ctx)
        seen = len(net.history)
        try:
            continue_phase(net, X, epochs, generator=ctx.generator,
                           phase=f"FBCC task {st['n_tasks_'] + 1}", verbose=self.verbose,
                           batch_size=b)
        finally:
            net.make_views = None
        hist = st["history_"]
        for row in list(net.history)[seen:]:
            if "train_loss" not in row:
                continue
            hist["forward"].append(float(row["train_loss"]))
            for key in ("con", "dis", "clu"):
                hist[key].append(float(row[key]))
            if "train_student_loss" in row:
                hist.setdefault("student", []).append(float(row["train_student_loss"]))
            hist["task"].append(st["n_tasks_"])
        st["n_iter_"] = len(hist["forward"])

    def _close_task(self, st, X, ctx):
        """Steps 6-7: used columns, head statistics, prototypes; the head is frozen."""
        net = st["net_"]
        model = net.module_
        model.eval()
        head = model.heads[-1]
        k = head.out_features
        used, stats, centroids = _head_summary(model, head, X)
        if len(used) < k:
            warnings.warn(f"FBCC used {len(used)} of task {st['n_tasks_'] + 1}'s {k} clusters; "
                          f"the empty ones get no id. Try fewer clusters or more epochs.",
                          ConvergenceWarning, stacklevel=5)
        offset = sum(len(u) for u in st["_used_columns"])
        if self.use_prototypes:
            views = self._views(X, ctx)

            def reliable_sums(x, rows):
                out = []
                for view in views(x, None):
                    h = model.backbone(view)
                    out += [F.normalize(model.projector(h), dim=1), head(model.cluster_first(h))]
                return _reliable_sums(out[0], out[2], out[1], out[3], k)

            # Sums batch by batch: the views' embeddings of all rows are never held.
            protos, clusters = _prototypes(*batched_sum(reliable_sums, X))
            rank = {int(c): offset + i for i, c in enumerate(used)}
            keep = [i for i, c in enumerate(clusters.tolist()) if c in rank]
            model.prototypes = torch.cat([model.prototypes, protos[keep]])
            st["prototype_labels_"] = np.concatenate(
                [st["prototype_labels_"],
                 np.asarray([rank[int(clusters[i])] for i in keep], dtype=np.int64)])
        head.requires_grad_(False)
        st["_used_columns"] = [*st["_used_columns"], used]
        st["head_logit_stats_"] = np.vstack([st["head_logit_stats_"], stats])
        st["hidden_centroids_"] = (centroids if st["hidden_centroids_"] is None
                                   else np.vstack([st["hidden_centroids_"], centroids]))
        st["n_tasks_"] += 1
        st["_open"] = None

    # ------------------------------------------------------------------ fit

    def _fit(self, X, ctx):
        st = self._fresh_state()
        k = self._task_clusters(None, 0, minimum=1)
        net = self._open_task(st, X, ctx, k)
        epochs = self.max_epochs if self.first_task_epochs is None else self.first_task_epochs
        self._train(st, net, X, ctx, epochs)
        self._close_task(st, X, ctx)
        return self._fitted(st, n_steps_=0, _partial_rng=np.random.RandomState(ctx.sub_seed()))

    def _partial_fit(self, X, ctx, first_call, n_clusters=None, close=False):
        st = self._fresh_state() if first_call else {k: getattr(self, k)
                                                     for k in self._fresh_state()}
        st["history_"] = {k: list(v) for k, v in st["history_"].items()}
        task = st["n_tasks_"]
        if close:
            if st["_open"] is None:
                raise ValueError("end_task closes a task opened by partial_fit with "
                                 "partial_fit_unit='block'; no task is open.")
            self._close_task(st, X, ctx)
            return self._fitted(st)
        block = self.partial_fit_unit == "block"
        if st["_open"] is not None:
            if not block:
                raise ValueError("A task opened with partial_fit_unit='block' is open; close "
                                 "it with end_task(X) first.")
            k = st["_open"]
            if n_clusters is not None and n_clusters != k:
                raise ValueError(f"The open task has {k} clusters, got n_clusters={n_clusters}.")
            net = st["net_"]
        else:
            k = self._task_clusters(n_clusters, task)
            net = self._open_task(st, X, ctx, k)
        if block:
            st["_open"] = k
            self._train(st, net, X, ctx, 1)
            # Provisional summary of the open head, for the "standardized" and "centroid" rules.
            model = net.module_
            model.eval()
            _, st["_open_stats"], st["_open_centroids"] = _head_summary(
                model, model.heads[-1], X, torch.arange(k))
            return self._fitted(st)
        epochs = (self.first_task_epochs if task == 0 and self.first_task_epochs is not None
                  else self.max_epochs)
        self._train(st, net, X, ctx, epochs)
        self._close_task(st, X, ctx)
        return self._fitted(st)

    def _fitted(self, st, **extra):
        model = st["net_"].module_
        sizes = [len(u) for u in st["_used_columns"]]
        return {**st, **extra,
                "cluster_offsets_": np.cumsum([0, *sizes[:-1]]).astype(np.int64)[:len(sizes)],
                "prototypes_": model.prototypes.detach().cpu().numpy().copy(),
                "_n_features_out": model.cluster_first[0].out_features}

    def _stable_cluster_count(self):
        return sum(len(u) for u in self._used_columns) + (self._open or 0)

    # ------------------------------------------------------------ inference

    def _embed(self, X):
        return self.net_.module_.hidden(X)

    def _assignment_input(self, X):
        return self.net_.module_.hidden(X)

    def _cluster_scores(self, H):
        """One column per global id, the argmax being :meth:`predict`'s choice.

        ``"concat"``: the used logits of every head, side by side.
        ``"standardized"``: each head's logits shifted so that their maximum is
        the head's standardised maximum (the overall argmax is then the best
        head's argmax). ``"centroid"``: the cosine to each cluster's centroid.
        """
        centroids = self.hidden_centroids_
        if self._open is not None:
            centroids = (self._open_centroids if centroids is None
                         else np.vstack([centroids, self._open_centroids]))
        if self.task_inference == "centroid":
            C = torch.as_tensor(centroids, device=H.device, dtype=H.dtype)
            return F.normalize(H, dim=1) @ C.T
        model = self.net_.module_
        columns = [torch.as_tensor(u, device=H.device) for u in self._used_columns]
        stats = [tuple(s) for s in self.head_logit_stats_]
        if self._open is not None:
            columns.append(torch.arange(self._open, device=H.device))
            stats.append(tuple(self._open_stats))
        parts = []
        for head, cols, (mu, sigma) in zip(model.heads, columns, stats):
            logits = head(H)[:, cols]
            if self.task_inference == "standardized":
                top = logits.max(dim=1, keepdim=True).values
                logits = logits - top + (top - mu) / sigma
            parts.append(logits)
        return torch.cat(parts, dim=1)

    def _proba(self, H):
        scores = self._cluster_scores(H)
        if self.task_inference == "centroid":
            scores = scores / self.temperature  # cosines: a softmax at the contrast's temperature
        return torch.softmax(scores, dim=1)

    def _inertia(self, X_t):
        # score: the mean confidence of predict_proba (higher is better).
        q = batched_apply(self._proba_of, X_t)
        return -float(q.max(dim=1).values.double().mean())
