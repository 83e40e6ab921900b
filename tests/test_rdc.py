"""R-DC: losses and neighbourhood rules on hand-worked values; the estimator on known data.

Each mechanism the docstring names (ACAI's critic and adversarial term, augmentation in both
phases, the neighbour refresh and its interval, core points and reliable neighbours, the
proximity loss and its weight, the stopping rule, duplicate rows, the final k-means) has a
test here that fails when it is switched off.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs, make_moons
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler
from torch import nn

import skdeepclust._rdc as rdc_module
from skdeepclust import RDC
from skdeepclust._rdc import (
    _ACAICriterion,
    _ProximityCriterion,
    _Views,
    acai_autoencoder_loss,
    acai_critic_loss,
    neighborhood_targets,
    proximity_loss,
)
from skdeepclust._training import AdversarialNet, train_phase
from skdeepclust.neighbors import kneighbors
from skdeepclust.nn import MLPAutoencoder

TINY = dict(hidden_layer_sizes=(32,), batch_size=32, random_state=0)


# ------------------------------------------------------------------ phase 1: ACAI


def test_acai_autoencoder_loss_hand_values():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x_hat = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    critic_interp = torch.tensor([0.2, -0.4])
    # per-element reconstruction (1 + 0 + 0 + 4) / 4 = 1.25; critic^2 mean (0.04 + 0.16) / 2 = 0.1
    assert float(acai_autoencoder_loss(x, x_hat, critic_interp, 0.5)) == pytest.approx(1.3)
    assert float(acai_autoencoder_loss(x, x_hat, critic_interp, 0.0)) == pytest.approx(1.25)
    assert float(acai_autoencoder_loss(x, x_hat, None, 0.5)) == pytest.approx(1.25)


def test_acai_critic_target_is_the_mixing_coefficient_and_zero_on_data():
    # (0.2 - 0.3)^2 = 0.01, (0.1 - 0.5)^2 = 0.16 -> 0.085; mix term (0.09 + 0) / 2 = 0.045
    loss = acai_critic_loss(torch.tensor([0.2, 0.1]), torch.tensor([0.3, 0.5]),
                            torch.tensor([0.3, 0.0]))
    assert float(loss) == pytest.approx(0.13)
    # A critic that outputs phi on interpolants and 0 on data has zero loss.
    assert float(acai_critic_loss(torch.tensor([0.1, 0.4]), torch.tensor([0.1, 0.4]),
                                  torch.zeros(2))) == 0.0


def test_acai_criterion_builds_the_critic_inputs_by_hand():
    def critic(t):
        return t.sum(dim=1)

    y_pred = {
        "x": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        "x_hat": torch.zeros(2, 2, requires_grad=True),
        "x_interp": torch.tensor([[0.2, 0.2], [0.1, 0.0]]),
        "phi": torch.tensor([0.4, 0.3]),
        "eta": torch.tensor([[0.5], [0.25]]),
    }
    y_pred["x_interp"].requires_grad_(True)
    crit = _ACAICriterion(adversarial_weight=0.5)
    # interpolants: c = (0.4, 0.1) vs phi (0.4, 0.3) -> 0.02;
    # mixes eta * x: c = (0.5, 0.25) -> 0.15625
    critic_loss = crit.critic_loss(y_pred, None, None, critic)
    assert float(critic_loss) == pytest.approx(0.17625)
    # The critic's loss trains the critic only: interpolants and reconstruction are detached
    # (this critic has no parameters, so nothing in the loss needs a gradient).
    assert not critic_loss.requires_grad
    # AE side: reconstruction (1 + 0 + 0 + 1) / 4 = 0.5, adversarial 0.5 * (0.16 + 0.01) / 2
    assert float(crit(y_pred, None, None, critic).detach()) == pytest.approx(0.5 + 0.0425)


def _identity_autoencoder():
    ae = MLPAutoencoder(2, (), 2)
    for lin in (ae.encoder[0], ae.decoder[0]):
        nn.init.eye_(lin.weight)
        nn.init.zeros_(lin.bias)
    return ae


def test_interpolants_mix_each_code_with_the_reversed_batch():
    views = _Views(_identity_autoencoder(), interpolate=True).train()
    views.generator = torch.Generator().manual_seed(0)
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 4.0]])
    out = views(x)
    phi = out["phi"][:, None]
    expected = phi * x + (1 - phi) * x.flip(0)
    torch.testing.assert_close(out["x_interp"], expected)
    assert bool(((out["phi"] >= 0) & (out["phi"] <= 0.5)).all())
    assert bool(((out["eta"] >= 0) & (out["eta"] <= 0.5)).all())


def test_views_augment_only_while_training_and_feed_the_view_to_the_autoencoder():
    ae = _identity_autoencoder()
    with torch.no_grad():
        ae.decoder[0].weight.mul_(0.5)  # x_hat = z / 2, to tell x, z, x_hat apart
    views = _Views(ae, interpolate=True).train()
    views.augment = lambda x, g: x + 10.0
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = views(x)
    torch.testing.assert_close(out["x"], x + 10)  # the target is the view
    torch.testing.assert_close(out["z"], x + 10)
    torch.testing.assert_close(out["x_hat"], (x + 10) / 2)
    views.eval()
    out = views(x)  # inference: the rows themselves, no interpolants
    torch.testing.assert_close(out["z"], x)
    assert set(out) == {"x", "z", "x_hat"}
    views.train()
    views.augment = None
    torch.testing.assert_close(views(x)["z"], x)


def test_adversarial_net_trains_the_critic_only_through_its_own_loss():
    X = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))

    def run(critic_lr):
        torch.manual_seed(0)
        views = _Views(MLPAutoencoder(2, (8,), 2), interpolate=True)
        views.generator = torch.Generator().manual_seed(1)
        critic = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
        before = [p.detach().clone() for p in critic.parameters()]
        net = train_phase(views, _ACAICriterion(0.5), X, epochs=2, batch_size=16, lr=1e-2,
                          generator=torch.Generator().manual_seed(2), phase="t",
                          net_class=AdversarialNet, partner=critic, partner_lr=critic_lr)
        moved = any(not torch.equal(b, p) for b, p in zip(before, critic.parameters()))
        return net, moved

    net, moved = run(critic_lr=1e-2)
    assert moved and len(net.history[:, "train_critic_loss"]) == 2
    # With a zero critic lr the critic stays put although the AE loss flows through it.
    _, moved = run(critic_lr=0.0)
    assert not moved


# ------------------------------------------------------ phase 2: neighbourhood rules


def _line_points():
    # 1-d codes; with M = 2 the ratios d1/d2 are 0.5, 1, 0.5, 1/6, 0.2, 0.833.
    return torch.tensor([[0.0], [1.0], [2.0], [10.0], [10.5], [13.0]])


def test_core_points_reliable_neighbours_and_targets_by_hand():
    Z = _line_points()
    distances, indices = kneighbors(Z, 2, method="exact")
    core, sigma, reliable = neighborhood_targets(Z, distances, indices, core_threshold=0.6,
                                                 neighbor_margin=0.4)
    assert core.tolist() == [False, True, False, False, False, True]
    # point 1: neighbours 0 and 2 both at distance 1 -> both reliable, sigma = 1
    assert reliable[1].tolist() == [True, True]
    assert float(sigma[1, 0]) == pytest.approx(1.0)
    # point 13: neighbours 10.5 (2.5) and 10 (3): 3 - 2.5 > 0.4 -> only 10.5 is reliable
    assert reliable[5].tolist() == [True, False]
    assert float(sigma[5, 0]) == pytest.approx(10.5)
    # a wider margin keeps both: sigma = (10.5 + 10) / 2
    _, sigma, reliable = neighborhood_targets(Z, distances, indices, 0.6, 0.6)
    assert reliable[5].tolist() == [True, True]
    assert float(sigma[5, 0]) == pytest.approx(10.25)


def test_coinciding_codes_count_as_core():
    Z = torch.tensor([[0.0], [0.0], [0.0], [5.0], [7.0]])
    distances, indices = kneighbors(Z, 2, method="exact")
    core, sigma, _ = neighborhood_targets(Z, distances, indices, 0.6, 0.6)
    assert core.tolist() == [True, True, True, False, False]  # ratio 0/0 := 1; 2/5, 2/7
    assert torch.equal(sigma[:3], torch.zeros(3, 1))


def test_proximity_loss_core_and_border_by_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    x_hat = torch.zeros(2, 2, requires_grad=True)
    z = torch.tensor([[1.0, 1.0], [2.0, 2.0]], requires_grad=True)
    core = torch.tensor([True, False])
    sigma = torch.tensor([[0.0, 1.0], [9.0, 9.0]])
    decoded = torch.tensor([[1.0, 1.0], [9.0, 9.0]])
    # core row: ||g(sigma) - x_hat||^2 = 2, ||z - sigma||^2 = 1 -> 2 + 2 * 1
    # border row: ||x - x_hat||^2 = 9 + 16 = 25, no latent term
    loss = proximity_loss(x, z, x_hat, core, sigma, decoded, latent_weight=2.0)
    assert float(loss.detach()) == pytest.approx((4.0 + 25.0) / 2)
    loss.backward()
    assert z.grad[1].abs().sum() == 0  # a border code is not pulled anywhere
    torch.testing.assert_close(z.grad[0], torch.tensor([2.0, 0.0]))  # 2 * 2 * (z - sigma) / 2


def test_proximity_criterion_decodes_sigma_with_the_current_decoder_without_gradient():
    crit = _ProximityCriterion(latent_weight=1.0)
    crit.core = torch.tensor([True, False, True])
    crit.sigma = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    scale = torch.tensor(3.0, requires_grad=True)
    crit.decode = lambda s: scale * s
    y_pred = {"x": torch.ones(2, 2),
              "z": torch.tensor([[1.0, 0.0], [5.0, 5.0]], requires_grad=True),
              "x_hat": torch.zeros(2, 2)}
    # batch = rows 2 and 1. Row 2 is core: target g(sigma) = (0, 6) -> 36, and
    # ||z - sigma||^2 = ||(1, 0) - (0, 2)||^2 = 5. Row 1 is border: ||x - x_hat||^2 = 2.
    loss = crit(y_pred, torch.tensor([2, 1]), None)
    expected = ((36.0 + 5.0) + 2.0) / 2
    assert float(loss.detach()) == pytest.approx(expected)
    loss.backward()
    assert scale.grad is None


# ------------------------------------------------------------------- estimator


def test_duplicate_rows_do_not_stall_phase_2():
    X, _ = make_blobs(n_samples=100, centers=3, n_features=4, random_state=0)
    X = np.vstack([X, X])  # every row twice: each copy's nearest row is at distance 0
    est = RDC(n_clusters=3, embedding_dim=2, pretrain_epochs=3, max_epochs=2,
              n_neighbors=3, **TINY).fit(X)
    assert est.core_fraction_ > 0.2
    core = np.zeros(200, bool)
    core[est.core_sample_indices_] = True
    assert np.array_equal(core[:100], core[100:])  # copies share their core flag


def test_phase_2_stops_when_the_core_fraction_stops_growing():
    X, _ = make_blobs(n_samples=120, centers=3, n_features=4, random_state=0)
    # tol=1: no refresh can beat the first, so the third refresh stops the phase.
    est = RDC(n_clusters=3, embedding_dim=2, pretrain_epochs=2, max_epochs=10, tol=1.0,
              n_iter_no_change=2, **TINY).fit(X)
    assert est.converged_
    assert len(est.history_["core_fraction"]) == 3
    assert len(est.history_["proximity"]) == 2
    assert est.n_iter_ == 4
    assert est.core_fraction_ == est.history_["core_fraction"][-1]
    assert len(est.core_sample_indices_) == round(est.core_fraction_ * 120)


def test_no_phase_2_gives_empty_core_attributes_and_consistent_predict():
    X, _ = make_blobs(n_samples=90, centers=3, n_features=4, random_state=1)
    est = RDC(n_clusters=3, embedding_dim=2, pretrain_epochs=2, max_epochs=0,
              adversarial_weight=0, **TINY).fit(X)
    assert est.core_sample_indices_.size == 0 and np.isnan(est.core_fraction_)
    assert "pretrain_critic" not in est.history_
    np.testing.assert_array_equal(est.fit(X).predict(X), est.labels_)
    assert est.score(X) == pytest.approx(-est.inertia_)
    assert list(est.get_feature_names_out()) == ["rdc0", "rdc1"]


def test_well_separated_blobs_are_recovered():
    X, y = make_blobs(n_samples=400, centers=4, n_features=8, cluster_std=1.0, random_state=3)
    X = StandardScaler().fit_transform(X)
    est = RDC(n_clusters=4, embedding_dim=4, pretrain_epochs=10, max_epochs=5, **TINY).fit(X)
    assert adjusted_rand_score(y, est.labels_) >= 0.95


def _noisy_moons_10d(n=400, seed=0):
    # Two interleaved moons (noise 0.1) plus 8 noise dimensions (std 0.5), rotated into 10-d.
    X2, y = make_moons(n_samples=n, noise=0.1, random_state=seed)
    rng = np.random.RandomState(seed)
    Q, _ = np.linalg.qr(rng.randn(10, 10))
    X = np.hstack([X2, 0.5 * rng.randn(n, 8)]) @ Q
    return StandardScaler().fit_transform(X), y


def test_phase_2_improves_on_phase_1_on_interleaved_moons():
    # Phase 2 pulls each dense code to its neighbours' mean, which removes the noise
    # directions; k-means then cuts the moons better. Measured mean ARI over these
    # seeds: 0.255 after phase 1, 0.315 after 60 phase-2 epochs (0.277 when the
    # default stopping rule ends phase 2 after 20-25 epochs).
    X, y = _noisy_moons_10d()
    params = dict(n_clusters=2, hidden_layer_sizes=(32,), batch_size=32, embedding_dim=4,
                  pretrain_epochs=20)
    gains = []
    for seed in range(4):
        p1 = RDC(max_epochs=0, random_state=seed, **params).fit(X)
        p2 = RDC(max_epochs=60, n_iter_no_change=60, random_state=seed, **params).fit(X)
        gains.append(adjusted_rand_score(y, p2.labels_) - adjusted_rand_score(y, p1.labels_))
    assert np.mean(gains) > 0.03


@pytest.mark.parametrize("n_samples, batch", [(100, 32), (1797, 60), (5000, 167), (7680, 256)])
def test_auto_batch_size_keeps_30_steps_per_epoch_on_small_data(n_samples, batch):
    # 256 rows, or ceil(n / 30) on small data, but not below 32 rows.
    X = np.random.RandomState(0).randn(n_samples, 3).astype(np.float32)
    est = RDC(n_clusters=2, hidden_layer_sizes=(4,), embedding_dim=2, pretrain_epochs=1,
              max_epochs=1, adversarial_weight=0, n_init=1, random_state=0).fit(X)
    assert est.get_params()["batch_size"] == "auto"
    assert est.net_.history[-1, "batches"][0]["train_batch_size"] == batch
    # An int is used as given.
    est.set_params(batch_size=50).fit(X[:200])
    assert est.net_.history[-1, "batches"][0]["train_batch_size"] == 50


def test_acai_phase_1_trains_a_critic_when_asked():
    X, _ = make_blobs(n_samples=60, centers=2, n_features=4, random_state=0)
    est = RDC(n_clusters=2, embedding_dim=2, pretrain_epochs=2, max_epochs=0,
              adversarial_weight=0.5, **TINY).fit(X)
    critic = est.history_["pretrain_critic"]
    assert len(critic) == 2 and np.isfinite(critic).all() and min(critic) > 0
    # The default (adversarial_weight=0) trains no critic.
    assert "pretrain_critic" not in RDC(n_clusters=2, embedding_dim=2, pretrain_epochs=1,
                                        max_epochs=0, **TINY).fit(X).history_


# ------------------------------------------------------------ estimator: each mechanism


def _blobs(n=64, seed=0):
    X, _ = make_blobs(n_samples=n, centers=3, n_features=4, random_state=seed)
    return StandardScaler().fit_transform(X).astype(np.float32)


SMALL = dict(n_clusters=3, hidden_layer_sizes=(8,), embedding_dim=2, batch_size=32, n_init=2,
             random_state=0)


def test_augmentation_runs_in_every_training_batch_of_both_phases_and_nowhere_else():
    X = _blobs(64)
    calls = []

    def shift(x, g):
        calls.append((x.shape[0], torch.is_grad_enabled()))
        return x + 0.01 * torch.randn(x.shape, generator=g)

    est = RDC(pretrain_epochs=1, max_epochs=3, n_iter_no_change=100, augmentation=shift,
              **SMALL).fit(X)
    # 1 contract check on 2 rows, then 2 batches of 32 rows per epoch: 1 + 3 epochs
    assert calls[0] == (2, True)
    assert calls[1:] == [(32, True)] * (2 * 1 + 2 * 3)
    n_calls = len(calls)
    est.transform(X), est.predict(X), est.score(X)
    assert len(calls) == n_calls  # inference never augments
    assert est.net_.module_.augment is None and est.net_.module_.generator is None


def test_augmentation_changes_both_phases_and_gets_the_estimators_rates(monkeypatch):
    X = _blobs(64)
    plain = RDC(pretrain_epochs=2, max_epochs=2, n_iter_no_change=100, **SMALL).fit(X)
    noisy = RDC(pretrain_epochs=2, max_epochs=2, n_iter_no_change=100, augmentation="noise",
                noise_scale=0.5, **SMALL).fit(X)
    assert not np.allclose(plain.history_["pretrain"], noisy.history_["pretrain"])
    # Phase 2 alone, from the same initial autoencoder: the views change its losses too.
    plain = RDC(pretrain_epochs=0, max_epochs=2, n_iter_no_change=100, **SMALL).fit(X)
    noisy = RDC(pretrain_epochs=0, max_epochs=2, n_iter_no_change=100, augmentation="noise",
                noise_scale=0.5, **SMALL).fit(X)
    assert plain.history_["core_fraction"][0] == noisy.history_["core_fraction"][0]
    assert not np.allclose(plain.history_["proximity"], noisy.history_["proximity"])
    seen = {}
    real = rdc_module.make_augmentation

    def spy(spec, X, **kwargs):
        seen.update(kwargs, spec=spec)
        return real(spec, X, **kwargs)

    monkeypatch.setattr(rdc_module, "make_augmentation", spy)
    RDC(pretrain_epochs=1, max_epochs=0, augmentation="corruption", corruption_rate=0.25,
        noise_scale=0.05, **SMALL).fit(X)
    assert seen == {"spec": "corruption", "corruption_rate": 0.25, "noise_scale": 0.05}


def test_the_adversarial_term_reaches_the_autoencoder():
    # Same draws (interpolants, critic, shuffles) with a large weight or next to nothing:
    # the autoencoders differ only through the critic's term in their loss (measured:
    # 2e-3 at weight 50, below 1e-6 when the term is dropped).
    X = _blobs(64)
    params = dict(pretrain_epochs=2, max_epochs=0, **SMALL)
    strong = RDC(adversarial_weight=50.0, **params).fit(X)
    faint = RDC(adversarial_weight=1e-9, **params).fit(X)
    assert "pretrain_critic" in faint.history_
    assert np.abs(strong.transform(X) - faint.transform(X)).max() > 2e-4


def test_neighbours_are_refreshed_every_interval_on_the_current_codes():
    X = _blobs(64)
    est = RDC(pretrain_epochs=1, max_epochs=5, neighbors_update_interval=2, n_iter_no_change=100,
              **SMALL).fit(X)
    assert len(est.history_["proximity"]) == 5
    assert len(est.history_["core_fraction"]) == 3  # before epochs 1, 3 and 5
    # the codes move between refreshes, and each refresh sees them
    assert len(set(est.history_["median_nn_distance"])) == 3


def test_core_threshold_and_neighbor_margin_reach_the_neighbourhood_rules():
    X = _blobs(64)
    params = dict(pretrain_epochs=1, max_epochs=1, n_neighbors=4, **SMALL)
    every = RDC(core_threshold=0.0, neighbor_margin=1e6, **params).fit(X)
    assert every.history_["core_fraction"] == [1.0]
    assert every.history_["mean_reliable_neighbors"] == [4.0]
    assert sorted(every.core_sample_indices_) == list(range(64))
    nearest_only = RDC(core_threshold=0.0, neighbor_margin=0.0, **params).fit(X)
    assert nearest_only.history_["mean_reliable_neighbors"] == [1.0]
    with pytest.warns(UserWarning, match="No point ever became core"):
        none = RDC(core_threshold=1.0, **params).fit(X)
    assert none.core_fraction_ == 0.0 and none.core_sample_indices_.size == 0


def test_latent_weight_reaches_the_proximity_loss():
    X = _blobs(64)
    params = dict(pretrain_epochs=1, max_epochs=2, core_threshold=0.0, n_iter_no_change=100,
                  **SMALL)
    off = RDC(latent_weight=0.0, **params).fit(X)
    on = RDC(latent_weight=10.0, **params).fit(X)
    assert off.history_["pretrain"] == on.history_["pretrain"]
    assert off.history_["median_nn_distance"][0] == on.history_["median_nn_distance"][0]
    # every point is core: the first epoch's loss grows by 10 * mean ||z - sigma||^2 > 0
    assert on.history_["proximity"][0] > off.history_["proximity"][0] + 1e-3


def _scripted_core_fractions(monkeypatch, taus):
    """Make the k-th refresh find the first ``taus[k] * n`` distinct rows core."""
    real = rdc_module.neighborhood_targets
    taus = iter(taus)

    def scripted(Z, distances, indices, core_threshold, neighbor_margin):
        _, sigma, reliable = real(Z, distances, indices, core_threshold, neighbor_margin)
        core = torch.arange(Z.shape[0]) < round(next(taus) * Z.shape[0])
        return core, sigma, reliable

    monkeypatch.setattr(rdc_module, "neighborhood_targets", scripted)


@pytest.mark.parametrize("taus, tol, patience, n_refreshes", [
    # (fractions of the 64 rows) gains of 2 and 3 rows stay within tol = 0.05 (3.2 rows):
    # two refreshes without an increase
    ([32 / 64, 34 / 64, 35 / 64, 58 / 64, 58 / 64, 58 / 64, 58 / 64, 58 / 64], 0.05, 2, 3),
    # an increase resets the count
    ([0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75], 0.0, 2, 5),
    # the paper's rule: stop at the first refresh without an increase
    ([0.25, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 0.75], 0.0, 1, 3),
])
def test_phase_2_stops_after_n_iter_no_change_refreshes_without_a_gain_above_tol(
        monkeypatch, taus, tol, patience, n_refreshes):
    _scripted_core_fractions(monkeypatch, taus)
    X = _blobs(64)
    est = RDC(pretrain_epochs=1, max_epochs=7, tol=tol, n_iter_no_change=patience,
              **SMALL).fit(X)
    assert est.history_["core_fraction"] == taus[:n_refreshes]
    assert len(est.history_["proximity"]) == n_refreshes - 1
    assert est.converged_ and est.core_fraction_ == taus[n_refreshes - 1]
    assert len(est.core_sample_indices_) == round(taus[n_refreshes - 1] * 64)


def test_phase_2_without_a_stall_runs_max_epochs(monkeypatch):
    _scripted_core_fractions(monkeypatch, [0.25, 0.5, 0.75, 1.0])
    est = RDC(pretrain_epochs=1, max_epochs=4, tol=0.0, n_iter_no_change=1, **SMALL).fit(_blobs())
    assert len(est.history_["proximity"]) == 4 and not est.converged_


def test_too_few_distinct_rows_skip_phase_2_with_a_warning():
    X = np.repeat(_blobs(4), 10, axis=0)  # 4 distinct rows; n_neighbors=5 needs 6
    with pytest.warns(UserWarning, match="skips phase 2: 4 distinct rows"):
        est = RDC(pretrain_epochs=1, max_epochs=3, n_neighbors=5, **{**SMALL, "n_clusters": 2}
                  ).fit(X)
    assert est.history_["proximity"] == [] and est.history_["core_fraction"] == []
    assert np.isnan(est.core_fraction_) and not est.converged_


def test_final_kmeans_runs_on_the_final_codes_and_inertia_sums_over_rows(monkeypatch):
    X = _blobs(64)
    seen = {}
    real = rdc_module.kmeans_on_codes

    def spy(Z, n_clusters, **kwargs):
        seen.update(kwargs, Z=Z.clone(), n_clusters=n_clusters)
        return real(Z, n_clusters, **kwargs)

    monkeypatch.setattr(rdc_module, "kmeans_on_codes", spy)
    est = RDC(pretrain_epochs=2, max_epochs=2, n_iter_no_change=100, **SMALL).fit(X)
    Z = est.transform(X)
    np.testing.assert_allclose(seen["Z"].numpy(), Z, rtol=1e-5, atol=1e-6)
    assert seen["n_clusters"] == 3 and seen["n_init"] == 2
    d2 = ((Z[:, None, :] - est.cluster_centers_[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(est.labels_, d2.argmin(axis=1))
    assert est.inertia_ == pytest.approx(d2.min(axis=1).sum(), rel=1e-5)
    assert est.score(X) == pytest.approx(-est.inertia_, rel=1e-6)
    assert est.score(X[:10]) == pytest.approx(-d2[:10].min(axis=1).sum(), rel=1e-5)


def test_fitted_net_keeps_no_fit_time_targets():
    est = RDC(pretrain_epochs=1, max_epochs=1, **SMALL).fit(_blobs())
    crit = est.net_.criterion_
    assert crit.core is None and crit.sigma is None and crit.decode is None


def test_core_targets_are_decoded_by_the_decoder_being_trained(monkeypatch):
    decoders = []

    class Recording(rdc_module._ProximityCriterion):
        def forward(self, y_pred, index, X):
            decoders.append(self.decode)
            return super().forward(y_pred, index, X)

    monkeypatch.setattr(rdc_module, "_ProximityCriterion", Recording)
    est = RDC(pretrain_epochs=1, max_epochs=1, **SMALL).fit(_blobs())
    assert len(decoders) == 2
    assert all(d is est.net_.module_.autoencoder.decoder for d in decoders)


def test_rdc_starts_from_the_fan_in_init_of_the_reference_code():
    # Keras' VarianceScaling(1/3, fan_in, uniform): weights in +-1/sqrt(fan_in), zero biases
    # (Xavier's bound for 64 -> 256 is 0.137, above 1/8).
    X = np.random.RandomState(0).randn(40, 64).astype(np.float32)
    est = RDC(n_clusters=2, hidden_layer_sizes=(256,), embedding_dim=2, pretrain_epochs=0,
              max_epochs=0, n_init=1, random_state=0).fit(X)
    first = est.net_.module_.autoencoder.encoder[0]
    assert float(first.weight.detach().abs().max()) <= 1 / 8
    assert float(first.weight.abs().max()) > 0.12
    assert all(float(m.bias.abs().max()) == 0.0 for m in est.net_.module_.modules()
               if isinstance(m, nn.Linear))
