"""PIPCDR: losses by hand, EMA and momentum schedule, known structure, partial_fit contract."""

import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from torch import nn

from skdeepclust import PIPCDR
from skdeepclust._kmeans import spherical_kmeans
from skdeepclust.losses import cdr_loss, pip_loss
from skdeepclust.nn import cosine_momentum, ema_update

SMALL = dict(hidden_layer_sizes=(32,), projector_hidden_dim=32, predictor_hidden_dim=32,
             embedding_dim=8, batch_size=64, max_epochs=12, warmup_epochs=2, momentum=0.9,
             n_init=3, min_steps=0)


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=300, centers=3, n_features=6, cluster_std=1.0, random_state=0)


# ------------------------------------------------------------------ losses by hand

def test_pip_loss_by_hand():
    z = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # cosines 0.6 and 0: (2 - 1.2 + 2 - 0) / 2
    assert float(pip_loss(z, t, nn.Identity())) == pytest.approx(1.4)


def test_pip_loss_with_sigma_zero_is_the_byol_loss():
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(5, 3, generator=g), F.normalize(torch.randn(5, 3, generator=g), dim=1)
    predictor = nn.Linear(3, 3)
    byol = (F.normalize(predictor(z), dim=1) - t).pow(2).sum(dim=1).mean()
    got = pip_loss(z, t, predictor, sigma=0.0).detach()
    assert float(got) == pytest.approx(float(byol.detach()), abs=1e-6)


def test_pip_loss_samples_a_gaussian_neighbour_of_the_online_embedding():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    expected = (F.normalize(z + 0.5 * eps, dim=1) - t).pow(2).sum(dim=1).mean()
    got = pip_loss(z, t, nn.Identity(), sigma=0.5, generator=torch.Generator().manual_seed(3))
    assert float(got) == pytest.approx(float(expected), abs=1e-6)
    assert float(got) != pytest.approx(float(pip_loss(z, t, nn.Identity())), abs=1e-3)


def _cdr_two_clusters():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # mu_0 = (1, 0), mu'_0 = n(1.6, 0.8) = (2, 1)/sqrt(5), mu_1 = mu'_1 = (0, 1), mu_0.mu_1 = 0.
    tau = 0.5
    pos0, pos1 = (2 / math.sqrt(5)) / tau, 1.0 / tau
    expected = 0.5 * ((-pos0 + math.log(math.exp(pos0) + 1.0))
                      + (-pos1 + math.log(math.exp(pos1) + 1.0)))
    return z, t, labels, tau, expected


def test_cdr_loss_by_hand():
    z, t, labels, tau, expected = _cdr_two_clusters()
    assert float(cdr_loss(z, t, labels, 2, tau)) == pytest.approx(expected, abs=1e-6)


def test_cdr_loss_ignores_clusters_absent_from_the_batch():
    z, t, labels, tau, expected = _cdr_two_clusters()
    # Clusters 2..4 have no member: neither a term of their own nor a negative.
    assert float(cdr_loss(z, t, labels, 5, tau)) == pytest.approx(expected, abs=1e-6)
    # A third present cluster does change the value (the check above can fail).
    z3 = torch.cat([z, torch.tensor([[-1.0, 0.0]])])
    t3 = torch.cat([t, torch.tensor([[-1.0, 0.0]])])
    other = cdr_loss(z3, t3, torch.cat([labels, torch.tensor([2])]), 5, tau)
    assert float(other) != pytest.approx(expected, abs=1e-3)


def test_cdr_loss_adds_the_queue_to_both_prototypes_and_skips_empty_slots():
    z = t = torch.tensor([[1.0, 0.0]])
    labels = torch.tensor([0])
    queue = torch.tensor([[0.0, 1.0], [0.6, 0.8]])
    # Slot 0 holds cluster 1, slot 1 is empty (-1): mu_0 = mu'_0 = (1, 0), mu_1 = mu'_1 = (0, 1).
    got = cdr_loss(z, t, labels, 2, 0.5, queue=queue, queue_labels=torch.tensor([1, -1]))
    assert float(got) == pytest.approx(-2.0 + math.log(math.exp(2.0) + 1.0), abs=1e-6)
    # Without the queue only cluster 0 is present: no negative, loss 0.
    assert float(cdr_loss(z, t, labels, 2, 0.5)) == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------- EMA and schedule

def test_ema_update_moves_parameters_not_buffers():
    online = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    target = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    for p in online.parameters():
        nn.init.constant_(p, 1.0)
    for p in target.parameters():
        nn.init.constant_(p, 3.0)
    online[1].running_mean.fill_(5.0)
    ema_update(target, online, 0.9)
    for p in target.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.9 * 3.0 + 0.1 * 1.0))
    assert torch.equal(target[1].running_mean, torch.zeros(2))
    for p in online.parameters():
        assert torch.equal(p, torch.ones_like(p))


def test_cosine_momentum_schedule():
    base, total = 0.996, 400
    assert cosine_momentum(base, 0, total) == pytest.approx(base)
    assert cosine_momentum(base, 100, total) == pytest.approx(
        1 - 0.004 * (1 + math.cos(math.pi / 4)) / 2)
    assert cosine_momentum(base, 200, total) == pytest.approx(0.998)
    assert cosine_momentum(base, 400, total) == pytest.approx(1.0)
    assert cosine_momentum(base, 900, total) == pytest.approx(1.0)
    values = [cosine_momentum(base, s, total) for s in range(0, total + 1, 10)]
    assert all(a <= b for a, b in zip(values, values[1:]))


def test_spherical_kmeans_warm_start_keeps_ids():
    g = torch.Generator().manual_seed(0)
    Z = torch.cat([torch.tensor([1.0, 0.0]) + 0.05 * torch.randn(20, 2, generator=g),
                   torch.tensor([0.0, 1.0]) + 0.05 * torch.randn(20, 2, generator=g)])
    init = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    centers, labels, inertia = spherical_kmeans(Z, 2, generator=g, init=init)
    assert labels[:20].eq(1).all() and labels[20:].eq(0).all()
    assert torch.allclose(centers.norm(dim=1), torch.ones(2))
    cos = F.normalize(Z, dim=1) @ centers.T
    assert inertia == pytest.approx(float((1 - cos.max(dim=1).values).sum()), abs=1e-5)


# ------------------------------------------------------------------ estimator

def test_fit_recovers_blobs(blobs):
    X, y = blobs
    est = PIPCDR(n_clusters=3, random_state=0, **SMALL).fit(X)
    assert adjusted_rand_score(y, est.labels_) >= 0.95
    assert np.array_equal(est.predict(X), est.labels_)
    Z = est.transform(X)
    assert Z.shape == (300, 8)
    assert np.allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    cos = Z @ est.cluster_centers_.T
    assert est.score(X) == pytest.approx(-(1 - cos.max(axis=1)).sum(), rel=1e-4)
    assert est.inertia_ == pytest.approx(-est.score(X), rel=1e-3)
    assert len(est.history_["train"]) == est.n_iter_ == 12
    assert est.history_["cdr"][0] == 0.0 and est.history_["cdr"][-1] > 0.0  # warm-up


def test_partial_fit_over_chunks_recovers_blobs(blobs):
    X, y = blobs
    est = PIPCDR(n_clusters=3, random_state=0, **SMALL)
    for chunk in np.array_split(X, 5):
        est.partial_fit(chunk)
    assert est.n_steps_ == 5
    assert adjusted_rand_score(y, est.predict(X)) >= 0.95
    assert np.array_equal(est.labels_, est.predict(X[-60:]))


def test_partial_fit_contract(blobs):
    X, _ = blobs
    est = PIPCDR(n_clusters=3, random_state=0, **SMALL).partial_fit(X[:60])
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:60, :4])
    with pytest.raises(ValueError, match="n_clusters"):
        PIPCDR(n_clusters=3, **SMALL).partial_fit(X[:2])
    runs = []
    for _ in range(2):
        est = PIPCDR(n_clusters=3, random_state=5, **SMALL)
        for chunk in np.array_split(X, 3):
            est.partial_fit(chunk)
        runs.append(est.predict(X))
    assert np.array_equal(runs[0], runs[1])


def test_partial_fit_continues_after_fit_and_fit_starts_over(blobs):
    X, y = blobs
    est = PIPCDR(n_clusters=3, random_state=0, **SMALL).fit(X)
    net, steps = est.net_, est._stream.step
    est.partial_fit(X[:100])
    assert est.net_ is net and est.n_steps_ == 1
    assert est._stream.step == steps + 2  # ceil(100 / 64) optimiser steps
    assert adjusted_rand_score(y, est.predict(X)) >= 0.95
    est.fit(X)
    assert est.net_ is not net and est.n_steps_ == 0


def test_same_seed_same_labels_and_pickle(blobs):
    X, _ = blobs
    a = PIPCDR(n_clusters=3, random_state=1, queue_size=128, **SMALL).fit(X)
    b = PIPCDR(n_clusters=3, random_state=1, queue_size=128, **SMALL).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.transform(X), b.transform(X))
    c = pickle.loads(pickle.dumps(a))
    assert np.array_equal(c.predict(X), a.labels_)


def _swap_noise(x, generator):
    return x + 0.5 * torch.randn(x.shape, generator=generator, device=x.device)


def _bad_shape(x, generator):
    return x[:, :1]


def _not_a_tensor(x, generator):
    return x.numpy()


def test_augmentation_callables_and_their_contract(blobs):
    X, y = blobs
    est = PIPCDR(n_clusters=3, random_state=0, augmentation=(_swap_noise, _swap_noise), **SMALL)
    assert adjusted_rand_score(y, est.fit(X).labels_) >= 0.95
    with pytest.raises(ValueError, match="shape"):
        PIPCDR(n_clusters=3, augmentation=_bad_shape, **SMALL).fit(X)
    with pytest.raises(TypeError, match="torch.Tensor"):
        PIPCDR(n_clusters=3, augmentation=_not_a_tensor, **SMALL).fit(X)
    with pytest.raises(ValueError, match="pair of callables"):
        PIPCDR(n_clusters=3, augmentation=(_swap_noise,), **SMALL).fit(X)


def test_warmup_must_be_shorter_than_training(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="warmup_epochs"):
        PIPCDR(n_clusters=3, **{**SMALL, "warmup_epochs": 12}).fit(X)


def test_tol_stops_when_pseudo_labels_settle(blobs):
    X, _ = blobs
    est = PIPCDR(n_clusters=3, random_state=0, tol=0.5, **{**SMALL, "kmeans_every": 1}).fit(X)
    # k-means after epochs 2 (end of warm-up), 3 and 4; two small changes stop at epoch 4.
    assert est.converged_ and est.n_iter_ == 4
    assert len(est.history_["label_change"]) == 2
    assert max(est.history_["label_change"]) < 0.5
    assert not PIPCDR(n_clusters=3, random_state=0, **SMALL).fit(X).converged_


def test_min_steps_repeats_passes_within_each_epoch(blobs):
    X, _ = blobs
    # 300 rows, batch 64: 4 steps per pass; 3 epochs of one pass make 12 < 30 steps, so
    # each epoch makes ceil(30 / 12) = 3 passes (12 steps): 36 steps in 3 epochs, the
    # warm-up and the refresh schedule still counted in epochs.
    params = {**SMALL, "max_epochs": 3, "warmup_epochs": 1, "kmeans_every": 1}
    est = PIPCDR(n_clusters=3, random_state=0, **{**params, "min_steps": 30}).fit(X)
    assert est.n_iter_ == 3 and est._stream.step == 36
    assert est.history_["cdr"][0] == 0.0 and est.history_["cdr"][1] > 0
    assert len(est.history_["label_change"]) == 1  # refreshes after epochs 1 and 2
    short = PIPCDR(n_clusters=3, random_state=0, **{**params, "min_steps": 12}).fit(X)
    assert short.n_iter_ == 3 and short._stream.step == 12


class _Recorder:
    """Identity augmentation that keeps every batch it is given."""

    def __init__(self):
        self.seen = []

    def __call__(self, x, generator):
        self.seen.append(x.clone())
        return x.clone()


def test_views_start_between_a_row_and_one_of_its_neighbours():
    # Pairs of rows 0.5 apart, pairs 10 apart: each row's nearest neighbour is its partner.
    base = np.repeat(np.arange(20.0) * 10.0, 2)
    X = np.stack([base + np.tile([0.0, 0.5], 20), np.zeros(40)], axis=1)
    params = {**SMALL, "batch_size": 16, "max_epochs": 2, "warmup_epochs": 1}
    for k, moved in ((1, True), (0, False)):
        rec = _Recorder()
        PIPCDR(n_clusters=2, random_state=0, standardize=False, n_neighbors=k,
               augmentation=rec, **params).fit(X)
        seen = torch.cat(rec.seen[1:]).numpy()  # [0] is the 2-row contract check
        offset = seen[:, 0] - 10.0 * np.floor(seen[:, 0] / 10.0)
        assert np.all(seen[:, 1] == 0.0)
        assert np.all((offset >= 0.0) & (offset <= 0.5 + 1e-6))  # on the pair's segment
        between = (offset > 1e-6) & (offset < 0.5 - 1e-6)
        assert between.any() == moved
