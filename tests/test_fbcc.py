"""FBCC: its losses by hand, the two steps of a batch, prototypes, the memory, the contract."""

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from skdeepclust import FBCC
from skdeepclust._fbcc import _FBCCLoss, _prototypes, _reliable_sums
from skdeepclust.losses import (
    backward_distillation_loss,
    forward_distillation_loss,
    instance_contrastive_loss,
)
from skdeepclust.metrics import accuracy_matrix, average_accuracy, average_forgetting

TINY = dict(hidden_layer_sizes=(16,), student_hidden_layer_sizes=(8,), embedding_dim=8,
            batch_size=16, max_epochs=1, lr=3e-3, continual_lr=1e-3)


def _tiny(**kwargs):
    return FBCC(**{"n_clusters": 2, "random_state": 0, **TINY, **kwargs})


@pytest.fixture(scope="module")
def tasks():
    """Three tasks of two well separated blobs each (six classes in all)."""
    X, y = make_blobs(n_samples=240, centers=6, n_features=6, cluster_std=0.6,
                      center_box=(-12, 12), random_state=3)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    return [(X[np.isin(y, pair)], y[np.isin(y, pair)]) for pair in ([0, 1], [2, 3], [4, 5])]


def _cos(u, v):
    return float(u @ v) / (float(u.norm()) * float(v.norm()))


# ------------------------------------------------------------------ losses by hand (N = 2)

Z_A = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
Z_B = torch.tensor([[3.0, 4.0], [-3.0, 4.0]])  # (.6, .8) and (-.6, .8) once normalised


def _con_by_hand(tau, prototypes=()):
    # Entries a0, a1, b0, b1; the positive of each is the other view of its row.
    e = [Z_A[0], Z_A[1], Z_B[0], Z_B[1]]
    total = 0.0
    for i in range(4):
        others = [j for j in range(4) if j != i]
        den = sum(math.exp(_cos(e[i], e[j]) / tau) for j in others)
        den += sum(math.exp(_cos(e[i], p) / tau) for p in prototypes)
        total -= math.log(math.exp(_cos(e[i], e[(i + 2) % 4]) / tau) / den)
    return total / 4


def test_contrastive_loss_with_one_prototype_and_with_none_by_hand():
    p = torch.tensor([[1.0, 1.0]])
    # Cosines: a0.a1 = 0, a0.b0 = .6, a0.b1 = -.6, a1.b0 = a1.b1 = .8, b0.b1 = .28;
    # with p = (1, 1)/sqrt 2: a0 .7071, a1 .7071, b0 .9899, b1 .1414.
    assert _con_by_hand(0.5) == pytest.approx(
        (-math.log(math.exp(1.2) / (math.exp(0) + math.exp(1.2) + math.exp(-1.2)))
         - math.log(math.exp(1.6) / (math.exp(0) + math.exp(1.6) + math.exp(1.6)))
         - math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6) + math.exp(0.56)))
         - math.log(math.exp(1.6) / (math.exp(-1.2) + math.exp(1.6) + math.exp(0.56)))) / 4)
    criterion = _FBCCLoss(0.5, 1.0, prototypes=p)
    c = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    y_pred = (None, torch.cat([Z_A, Z_B]), torch.cat([c, c]), [], [])
    with_p = float(criterion(y_pred, None, None, None))
    con, dis, clu = criterion.parts[-1].tolist()
    assert con == pytest.approx(_con_by_hand(0.5, [p[0]]), rel=1e-5)
    assert dis == 0.0
    assert with_p == pytest.approx(con + clu, rel=1e-5)
    # No prototype: Contrastive Clustering's instance loss.
    none = _FBCCLoss(0.5, 1.0)
    none(y_pred, None, None, None)
    assert none.parts[-1][0] == pytest.approx(_con_by_hand(0.5), rel=1e-5)
    assert none.parts[-1][0] == pytest.approx(float(instance_contrastive_loss(Z_A, Z_B, 0.5)))
    assert con > float(none.parts[-1][0])  # a prototype is one more negative


def _infonce_by_hand(q, u, tau):
    # Row i of [view a; view b]: positive u_i, negatives the other row's keys in both views.
    total = 0.0
    for i in range(4):
        keys = [i] + [j for j in range(4) if j % 2 != i % 2]
        den = sum(math.exp(_cos(q[i], u[j]) / tau) for j in keys)
        total -= math.log(math.exp(_cos(q[i], u[i]) / tau) / den)
    return total / 4


def test_forward_distillation_is_a_cosine_infonce_averaged_over_kept_students():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 1.0]])
    u1 = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    u2 = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [1.0, -1.0]])
    # Scale does not matter (cosine): u1 scaled by 5 gives the same loss.
    one = _infonce_by_hand(q, u1, 0.5)
    assert float(forward_distillation_loss([q], [5 * u1], 0.5)) == pytest.approx(one, rel=1e-5)
    two = (one + _infonce_by_hand(q, u2, 0.5)) / 2
    assert float(forward_distillation_loss([q, q], [u1, u2], 0.5)) == pytest.approx(two,
                                                                                     rel=1e-5)
    assert float(forward_distillation_loss([], [], 0.5)) == 0.0
    # Through the criterion: L_dis is the mean over the kept students, added to the total.
    criterion = _FBCCLoss(0.5, 1.0)
    c = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    y_pred = (None, torch.cat([Z_A, Z_B]), torch.cat([c, c]), [q, q], [u1, u2])
    total = float(criterion(y_pred, None, None, None))
    con, dis, clu = criterion.parts[-1].tolist()
    assert dis == pytest.approx(two, rel=1e-5)
    assert total == pytest.approx(con + dis + clu, rel=1e-5)


def test_student_loss_is_mse_over_r_plus_infonce_by_hand():
    h_s = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [2.0, 0.0, 0.0]])
    h_t = torch.zeros(4, 3)
    z_s = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 1.0]])
    z_t = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    mse = (5 + 1 + 3 + 4) / 3 / 4  # squared norms over R = 3, mean over the 2N = 4 rows
    expected = mse + _infonce_by_hand(z_s, z_t, 0.5)
    got = backward_distillation_loss(h_s, h_t, z_s, z_t, 0.5)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # The teacher's outputs are constants.
    h_t.requires_grad_(True)
    backward_distillation_loss(h_s.requires_grad_(True), h_t, z_s, z_t, 0.5).backward()
    assert h_t.grad is None and h_s.grad is not None


def test_accuracy_matrix_and_its_summaries_on_a_hand_made_3x3():
    y = [np.array([0, 0, 1, 1]), np.array([2, 2, 3, 3]), np.array([4, 4, 5, 5])]
    after = [
        [[7, 7, 8, 8]],                                        # task 0: 1.0
        [[7, 7, 7, 8], [1, 1, 2, 2]],                          # 0.75, 1.0
        [[7, 7, 7, 7], [1, 2, 2, 2], [3, 3, 4, 4]],            # 0.5, 0.75, 1.0
    ]
    A = accuracy_matrix(y, after)
    expected = np.array([[1.0, 0.75, 0.5], [np.nan, 1.0, 0.75], [np.nan, np.nan, 1.0]])
    np.testing.assert_allclose(A, expected)
    assert average_accuracy(A) == pytest.approx((0.5 + 0.75 + 1.0) / 3)
    assert average_forgetting(A) == pytest.approx(((1.0 - 0.5) + (1.0 - 0.75)) / 2)
    with pytest.raises(ValueError, match="predictions on tasks 0..1"):
        accuracy_matrix(y, [after[0], after[0], after[2]])


# ------------------------------------------------------------------ prototypes


def test_prototypes_are_normalised_means_of_the_rows_whose_views_agree():
    z_a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.0]])
    z_b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    # views agree on rows 0 (cluster 0), 1 (cluster 1) and 3 (cluster 0); row 2 disagrees.
    c_a = torch.tensor([[5.0, 1, 0], [0, 5, 1], [5, 0, 0], [4, 0, 1]])
    c_b = torch.tensor([[3.0, 1, 0], [0, 2, 1], [0, 5, 0], [9, 0, 1]])
    protos, clusters = _prototypes(*_reliable_sums(z_a, z_b, c_a, c_b, 3))
    assert clusters.tolist() == [0, 1]  # cluster 2: no reliable row, no prototype
    np.testing.assert_allclose(protos[0], [1.0, 0.0], atol=1e-6)  # (1,0)+(1,0)+(3,0)+(1,0)
    np.testing.assert_allclose(protos[1], [0.0, 1.0], atol=1e-6)  # row 2 left out
    np.testing.assert_allclose(protos.norm(dim=1), 1.0, rtol=1e-6)
    # The fit sums block by block: two blocks give the same prototypes.
    halves = [_reliable_sums(z_a[r], z_b[r], c_a[r], c_b[r], 3) for r in (slice(0, 2),
                                                                          slice(2, 4))]
    blocks, block_clusters = _prototypes(halves[0][0] + halves[1][0],
                                         halves[0][1] + halves[1][1])
    assert block_clusters.tolist() == [0, 1]
    np.testing.assert_allclose(blocks, protos, atol=1e-6)


def test_earlier_prototypes_are_the_negatives_of_the_next_task(tasks):
    est = _tiny().partial_fit(tasks[0][0])
    first = est.prototypes_.copy()
    assert len(first) == 2 and set(est.prototype_labels_) == {0, 1}
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    est.partial_fit(tasks[1][0])
    negatives = est.net_.criterion_.prototypes
    np.testing.assert_array_equal(negatives.cpu().numpy(), first)
    np.testing.assert_array_equal(est.prototypes_[:2], first)
    assert set(est.prototype_labels_[2:]) <= {2, 3}
    off = _tiny(use_prototypes=False).partial_fit(tasks[0][0]).partial_fit(tasks[1][0])
    assert off.net_.criterion_.prototypes is None and len(off.prototypes_) == 0


# ------------------------------------------------------------------ the two steps of a batch


def _params(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_forward_step_moves_no_student_and_backward_step_only_the_student(tasks):
    # Block mode leaves task 2 open (its head trainable), with task 1's student in memory.
    est = _tiny(n_students=3, partial_fit_unit="block").partial_fit(tasks[0][0])
    est.end_task(tasks[0][0]).partial_fit(tasks[1][0])
    net = est.net_
    model, student = net.module_, net.partner_
    kept = model.memory[0]
    groups = {"teacher": model.backbone, "cluster_first": model.cluster_first,
              "head": model.heads[-1], "old_head": model.heads[0], "projector": model.projector,
              "predictor": kept.predictor, "kept_student": kept.student, "student": student}
    snaps = [{k: _params(m) for k, m in groups.items()}]
    step = net.optimizer_.step

    def record_after_teacher_step(*args, **kwargs):
        out = step(*args, **kwargs)
        snaps.append({k: _params(m) for k, m in groups.items()})
        return out

    net.optimizer_.step = record_after_teacher_step
    X = torch.as_tensor(tasks[2][0][:16])
    gen = torch.Generator().manual_seed(0)
    X2 = torch.cat([X + 0.1 * torch.randn(X.shape, generator=gen),
                    X + 0.1 * torch.randn(X.shape, generator=gen)])
    net.train_step((X2, torch.arange(16)))
    snaps.append({k: _params(m) for k, m in groups.items()})
    before, mid, after = snaps
    moved = {k for k in groups if not torch.equal(before[k], mid[k])}
    assert moved == {"teacher", "cluster_first", "head", "projector", "predictor"}
    moved = {k for k in groups if not torch.equal(mid[k], after[k])}
    assert moved == {"student"}


# ------------------------------------------------------------------ memory of students


def test_memory_after_t_tasks_keeps_the_last_students_and_drops_the_oldest(tasks):
    X = np.vstack([x for x, _ in tasks])
    est = _tiny(n_students=3, max_epochs=1)
    students = []
    for t in range(1, 5):
        est.partial_fit(X[(t - 1) * 40:(t - 1) * 40 + 80])
        assert len(est.net_.module_.memory) == min(t - 1, 3 - 1)
        students.append({k: v.clone() for k, v in est.net_.partner_.state_dict().items()})
    kept = [m.student.state_dict() for m in est.net_.module_.memory]
    # After task 4 the memory holds the students of tasks 2 and 3 (task 1's was dropped).
    for got, want in zip(kept, students[1:3]):
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert len(est.history_["student"]) == est.n_iter_ == 4
    alone = _tiny(n_students=1, max_epochs=1)
    for t in range(3):
        alone.partial_fit(X[t * 40:t * 40 + 80])
    assert len(alone.net_.module_.memory) == 0 and alone.net_.partner_ is None
    assert "student" not in alone.history_


# ------------------------------------------------------------------ inference rules


def test_standardized_rule_picks_the_head_with_the_highest_standardised_maximum(tasks):
    est = _tiny().partial_fit(tasks[0][0]).partial_fit(tasks[1][0])
    X = np.vstack([tasks[0][0], tasks[1][0]])
    model = est.net_.module_
    est.head_logit_stats_ = np.array([[5.0, 2.0], [-1.0, 0.5]])
    with torch.no_grad():
        H = model.hidden(torch.as_tensor(X))
        logits = [model.heads[u](H)[:, torch.as_tensor(est._used_columns[u])].numpy()
                  for u in range(2)]
    z = np.stack([(lg.max(1) - mu) / sd for lg, (mu, sd) in zip(logits, est.head_logit_stats_)])
    head = z.argmax(0)
    expected = np.where(head == 0, logits[0].argmax(1),
                        est.cluster_offsets_[1] + logits[1].argmax(1))
    est.set_params(task_inference="standardized")
    np.testing.assert_array_equal(est.predict(X), expected)
    np.testing.assert_array_equal(est.predict_proba(X).argmax(1), expected)
    est.set_params(task_inference="concat")
    concat = np.concatenate(logits, axis=1).argmax(1)
    np.testing.assert_array_equal(est.predict(X), concat)
    np.testing.assert_array_equal(est.predict_proba(X).argmax(1), concat)
    assert (concat != expected).any()  # the stats above change the answer


# ------------------------------------------------------------------ contract


def test_fit_predict_equals_labels_and_labels_follow_the_last_call(tasks):
    X = tasks[0][0]
    est = _tiny().fit(X)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    assert est.n_tasks_ == 1 and est.n_steps_ == 0
    est.partial_fit(tasks[1][0])
    np.testing.assert_array_equal(est.predict(tasks[1][0]), est.labels_)
    assert est.n_tasks_ == 2 and est.n_steps_ == 1
    est.fit(X)  # fit forgets every task
    assert est.n_tasks_ == 1 and est.n_clusters_ == 2 and len(est.net_.module_.heads) == 1


def test_feature_mismatch_one_cluster_and_a_used_up_list_raise_and_keep_the_model(tasks):
    est = _tiny(n_clusters=[2, 2]).partial_fit(tasks[0][0])
    state = {k: v.clone() for k, v in est.net_.module_.state_dict().items()}
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(tasks[1][0][:, :-1])
    with pytest.raises(ValueError, match="at least 2 clusters"):
        est.partial_fit(tasks[1][0], n_clusters=1)
    with pytest.raises(ValueError, match=r"n_samples=4 should be >= max\(2, n_clusters=5"):
        est.partial_fit(tasks[1][0][:4], n_clusters=5)
    after = est.net_.module_.state_dict()
    assert est.n_tasks_ == 1 and after.keys() == state.keys()
    assert all(torch.equal(after[k], state[k]) for k in state)
    est.partial_fit(tasks[1][0])
    with pytest.raises(ValueError, match="clusters of 2 task"):
        est.partial_fit(tasks[2][0])
    assert est.n_tasks_ == 2 and len(est.net_.module_.heads) == 2
    est.partial_fit(tasks[2][0], n_clusters=3)  # the argument goes beyond the list
    assert est.n_tasks_ == 3 and est.n_clusters_ <= 7
    with pytest.raises(ValueError, match="at least 2 clusters"):
        _tiny(n_clusters=1).partial_fit(tasks[0][0])
    # fit accepts one cluster (every row in it), as KMeans.
    assert set(_tiny(n_clusters=1).fit(tasks[0][0]).labels_) == {0}


def test_same_seed_and_tasks_give_the_same_labels_bit_for_bit(tasks):
    runs = []
    for _ in range(2):
        est = _tiny()
        for X, _ in tasks[:2]:
            est.partial_fit(X)
        X_all = np.vstack([x for x, _ in tasks])
        runs.append((est.labels_, est.predict(X_all), est.transform(X_all)))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_old_cluster_ids_never_change(tasks):
    est = _tiny()
    est.partial_fit(tasks[0][0])
    offsets, protos = est.cluster_offsets_.copy(), est.prototype_labels_.copy()
    n_first = est.n_clusters_
    est.partial_fit(tasks[1][0])
    est.partial_fit(tasks[2][0])
    assert est.cluster_offsets_[0] == offsets[0] == 0
    assert est.cluster_offsets_[1] == n_first
    np.testing.assert_array_equal(est.prototype_labels_[:len(protos)], protos)
    assert set(est.predict_within_task(tasks[0][0], 0)) <= set(range(n_first))
    assert set(est.predict_within_task(tasks[2][0], 2)) <= set(
        range(est.cluster_offsets_[2], est.n_clusters_))
    with pytest.raises(ValueError, match="not a closed task"):
        est.predict_within_task(tasks[0][0], 3)


def test_block_mode_fed_like_incremental_keeps_one_task_until_end_task(tasks):
    # dask-ml's Incremental: a clone, then partial_fit on shuffled blocks, epoch after epoch.
    est = clone(_tiny(partial_fit_unit="block"))
    rng = np.random.RandomState(0)
    for t, (X, _) in enumerate(tasks[:2]):
        for _ in range(3):
            for block in np.array_split(X[rng.permutation(len(X))], 3):
                est.partial_fit(block)
                assert est.n_tasks_ == t and len(est.net_.module_.heads) == t + 1
                assert est.n_clusters_ == 2 * t + 2
                np.testing.assert_array_equal(est.predict(block), est.labels_)
        with pytest.raises(ValueError, match="open task has 2 clusters"):
            est.partial_fit(X[:20], n_clusters=3)
        est.end_task(X)
        assert est.n_tasks_ == t + 1
    assert est.n_iter_ == 18 and est.n_steps_ == 20
    assert est.history_["task"] == [0] * 9 + [1] * 9
    with pytest.raises(ValueError, match="no task is open"):
        est.end_task(tasks[0][0])
    with pytest.raises(ValueError, match="no task is open"):
        clone(est).end_task(tasks[0][0])


def test_three_tasks_of_two_blobs_are_clustered_within_and_across_tasks(tasks):
    est = FBCC(n_clusters=2, hidden_layer_sizes=(32,), student_hidden_layer_sizes=(16,),
               embedding_dim=16, batch_size=32, max_epochs=3, random_state=0)
    for X, _ in tasks:
        est.partial_fit(X)
    for u, (X, y) in enumerate(tasks):
        assert adjusted_rand_score(y, est.predict_within_task(X, u)) >= 0.95
    X_all = np.vstack([x for x, _ in tasks])
    y_all = np.concatenate([y for _, y in tasks])
    # The blobs of different tasks lie apart: the nearest centroid finds their task.
    est.set_params(task_inference="centroid")
    assert adjusted_rand_score(y_all, est.predict(X_all)) >= 0.9
    np.testing.assert_array_equal(est.predict_proba(X_all).argmax(1), est.predict(X_all))
    assert 0 < est.score(X_all) <= 1
