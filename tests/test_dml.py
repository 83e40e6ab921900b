"""DML: the difficulty rule, the networks it builds, its schedule and its inference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

import skdeepclust._training._nets as nets_module
from skdeepclust import DCSS, DML
from skdeepclust._dml import difficult_clusters
from skdeepclust.losses import fuzzy_centers
from skdeepclust.nn import MLPAutoencoder

TINY = dict(hidden_layer_sizes=(16,), embedding_dim=2, batch_size=50, pretrain_epochs=5,
            base_epochs=1, max_epochs=2, n_init=2, random_state=0)

# Five blobs, the first two close together: the rule should single out exactly those two.
CLOSE_PAIR_CENTERS = [[0.0, 0.0], [3.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]]
# A base trained long enough for its codes to keep that geometry.
CLOSE_PAIR_SETTINGS = dict(n_clusters=5, hidden_layer_sizes=(32,), embedding_dim=2,
                           pretrain_epochs=20, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, cluster_std=0.5, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def close_pair():
    X, y = make_blobs(n_samples=300, centers=CLOSE_PAIR_CENTERS, cluster_std=0.5,
                      random_state=0)
    return X.astype(np.float32), y


# ------------------------------------------------------------ difficulty rule


def test_tau_rule_on_centres_on_a_line():
    # Distances: 1, 5, 10, 4, 9, 5 -> d_min = 1, d_max = 10, tau = 11 / 4 = 2.75; only the
    # pair (0, 1) is closer. Difficult clusters get networks 0 and 1, the easy ones share 2.
    tau, difficult, network, n_networks = difficult_clusters([[0.0], [1.0], [5.0], [10.0]])
    assert tau == pytest.approx(2.75)
    assert difficult.tolist() == [True, True, False, False]
    assert network.tolist() == [0, 1, 2, 2] and n_networks == 3


def test_tau_rule_distances_are_not_squared_and_strict():
    # In 2-D: |(0,0)-(3,4)| = 5 (squared 25). Centres 0, (3,4), (30,40): d = 5, 50, 45,
    # tau = 55 / 4 = 13.75 -> the pair at 5 is difficult; squared distances would give
    # tau = (25 + 2500) / 4 = 631 and make every cluster difficult.
    tau, difficult, _, _ = difficult_clusters([[0.0, 0.0], [3.0, 4.0], [30.0, 40.0]])
    assert tau == pytest.approx(13.75) and difficult.tolist() == [True, True, False]
    # A distance equal to tau is not below it.
    _, difficult, _, n = difficult_clusters([[0.0], [2.0], [10.0]], tau=2.0)
    assert not difficult.any() and n == 1


def test_tau_rule_user_threshold_all_difficult_and_edge_cases():
    # Every cluster difficult: no general network.
    _, difficult, network, n = difficult_clusters([[0.0], [1.0], [2.0]], tau=5.0)
    assert difficult.all() and network.tolist() == [0, 1, 2] and n == 3
    # Two clusters: d_min = d_max, tau = d / 2 never fires.
    tau, difficult, network, n = difficult_clusters([[0.0], [4.0]])
    assert tau == 2.0 and not difficult.any() and network.tolist() == [0, 0] and n == 1
    # One cluster: no pair, no threshold.
    tau, difficult, network, n = difficult_clusters([[1.0, 2.0]])
    assert math.isnan(tau) and network.tolist() == [0] and n == 1


# ------------------------------------------------------------ one code path


def test_base_is_bit_identical_to_dcss_phase_one(blobs):
    # Same seed and settings: DML's stage 0 and DCSS without MNet run the same code, draw
    # the same numbers, and give the same weights and centres (max_epochs=0: the copies
    # are untrained).
    X, _ = blobs
    common = dict(n_clusters=3, hidden_layer_sizes=(16,), embedding_dim=2, batch_size=32,
                  pretrain_epochs=4, n_init=2, lr=1e-3, fuzziness=1.5, random_state=5)
    dcss = DCSS(max_epochs=3, mnet_epochs=0, **common).fit(X)
    dml = DML(base_epochs=3, max_epochs=0, **common).fit(X)
    reference = dcss.net_.module_.state_dict()
    for network in dml.net_.module_:
        state = network.state_dict()
        assert state.keys() == reference.keys()
        for key in reference:
            assert torch.equal(state[key], reference[key]), key
    np.testing.assert_array_equal(dml.cluster_centers_, dcss.cluster_centers_)
    np.testing.assert_array_equal(dml.labels_, dcss.labels_)
    assert dml.history_["base"] == dcss.history_["phase1"]
    assert dml.history_["pretrain"] == dcss.history_["pretrain"]


def test_base_ae_skips_dsl_and_starts_from_kmeans(blobs, monkeypatch):
    X, _ = blobs
    starts = []
    net_init = nets_module.ClusterSpecificNet.initialize

    def spy(self):
        out = net_init(self)
        starts.append(self.criterion_.centers.clone())
        return out

    monkeypatch.setattr(nets_module.ClusterSpecificNet, "initialize", spy)
    ae = DML(n_clusters=3, **{**TINY, "base": "ae", "base_epochs": 4}).fit(X)
    assert ae.history_["base"] == [] and len(ae.history_["dml"]) == 2
    assert ae.n_iter_ == 5 + 0 + 2
    dsl = DML(n_clusters=3, **{**TINY, "base_epochs": 4}).fit(X)
    assert len(dsl.history_["base"]) == 4 and dsl.n_iter_ == 5 + 4 + 2
    # Nets built: "ae" base, "ae" DML stage, "dsl" base, "dsl" DML stage. Both bases start
    # from the same k-means centres (same seed); with "ae" the DML stage starts from them,
    # with "dsl" from the centres DSL moved.
    assert torch.equal(starts[0], starts[2])
    assert torch.equal(starts[1], starts[0])
    assert not torch.equal(starts[3], starts[2])


# ------------------------------------------------------------ the DML stage


def test_each_network_steps_once_per_cluster_it_serves(close_pair):
    X, _ = close_pair
    est = DML(**{**CLOSE_PAIR_SETTINGS, "batch_size": 100, "max_epochs": 2}).fit(X)
    assert sorted(est.difficult_clusters_.tolist()) == sorted(
        np.flatnonzero(est.cluster_network_ < est.n_networks_ - 1).tolist())
    assert est.n_networks_ == 3 and len(est.net_.module_) == 3
    served = np.bincount(est.cluster_network_, minlength=est.n_networks_)
    assert served.tolist() == [1, 1, 3]
    # 3 batches x 2 epochs; network l is updated once per batch for each cluster it serves.
    opt = est.net_.optimizer_
    for network, count in zip(est.net_.module_, served):
        steps = {int(opt.state[p]["step"]) for p in network.parameters()}
        assert steps == {count * 3 * 2}


def test_networks_start_as_copies_of_the_base_and_then_differ(close_pair):
    X, _ = close_pair
    base = DML(n_clusters=5, **{**TINY, "max_epochs": 0}).fit(X)
    est = DML(n_clusters=5, **TINY).fit(X)
    first = [p.detach() for p in base.net_.module_[0].parameters()]
    for network in base.net_.module_:
        assert all(torch.equal(a, b) for a, b in zip(first, network.parameters()))
    trained = [list(n.parameters()) for n in est.net_.module_]
    for i in range(len(trained)):
        for j in range(i + 1, len(trained)):
            assert not all(torch.equal(a, b) for a, b in zip(trained[i], trained[j]))


def test_centres_refreshed_at_each_epoch_start_and_after_the_last(blobs, monkeypatch):
    X, _ = blobs
    refreshes = []

    def spy(U, centers, fuzziness, batch_size=4096):
        out = fuzzy_centers(U, centers, fuzziness, batch_size)
        refreshes.append((centers.clone(), out.clone()))
        return out

    monkeypatch.setattr(nets_module, "fuzzy_centers", spy)
    est = DML(n_clusters=3, **{**TINY, "base_epochs": 1, "max_epochs": 3}).fit(X)
    # Base: after its epoch 1. DML stage: before epoch 1, then after epochs 1, 2 and 3.
    assert len(refreshes) == 1 + 1 + 3
    for (_, previous), (start, _) in zip(refreshes, refreshes[1:]):
        assert torch.equal(start, previous)  # each refresh was applied
    np.testing.assert_array_equal(est.cluster_centers_, refreshes[-1][1].numpy())
    # The last refresh read the final networks: it ran after the last epoch.
    U = est.net_.cluster_space(torch.as_tensor(X))
    assert torch.equal(fuzzy_centers(U, refreshes[-1][0], est.fuzziness), refreshes[-1][1])


def test_dml_history_has_both_terms(blobs):
    X, _ = blobs
    est = DML(n_clusters=3, **TINY).fit(X)
    assert set(est.history_) == {"pretrain", "base", "base_reconstruction", "base_centering",
                                 "dml", "dml_reconstruction", "dml_centering"}
    assert len(est.history_["dml_centering"]) == 2
    rec, cen = est.history_["dml_reconstruction"][-1], est.history_["dml_centering"][-1]
    # loss = mean over K updates of (L_r + lambda L_c): the terms are those means.
    assert est.history_["dml"][-1] == pytest.approx(rec + 0.1 * cen, rel=1e-4)


# ------------------------------------------------------------ inference


def _one_dimensional_dml():
    """A fitted DML whose two networks embed x as x and 10 x; centres 0 (net 0), 10 (net 1)."""
    X = np.array([[0.0], [0.1], [1.0], [1.1]], dtype=np.float32)
    est = DML(n_clusters=2, hidden_layer_sizes=(2,), embedding_dim=1, pretrain_epochs=1,
              base_epochs=0, max_epochs=0, n_init=1, random_state=0).fit(X)
    networks = nn.ModuleList()
    for scale in (1.0, 10.0):
        ae = MLPAutoencoder(1, (), 1)
        nn.init.constant_(ae.encoder[0].weight, scale)
        nn.init.zeros_(ae.encoder[0].bias)
        networks.append(ae)
    est.net_.module_ = networks
    est.net_.cluster_to_network = [0, 1]
    vars(est.net_).pop("cluster_index_", None)
    est._centers_all = est.cluster_centers_ = np.array([[0.0], [10.0]], dtype=np.float32)
    est._active_clusters = np.array([0, 1])
    est.cluster_network_ = np.array([0, 1])
    est.fuzziness = 1.5
    return est


def test_memberships_predict_transform_and_score_use_each_clusters_space():
    est = _one_dimensional_dml()
    X = np.array([[0.3], [0.9]], dtype=np.float32)
    # x = 0.3: D = (0.09, (3 - 10)^2 = 49); x = 0.9: D = (0.81, (9 - 10)^2 = 1).
    D = np.array([[0.09, 49.0], [0.81, 1.0]])
    p = D**-2 / (D**-2).sum(axis=1, keepdims=True)  # m = 1.5
    np.testing.assert_allclose(est.predict_proba(X), p, rtol=1e-5)
    # In one shared space (network 0's) x = 0.9 would be nearer centre 0 (0.81 < 82.8).
    assert est.predict(X).tolist() == [0, 0]
    X2 = np.array([[0.95]], dtype=np.float32)  # D = (0.9025, 0.25): cluster 1 wins
    assert est.predict(X2).tolist() == [1]
    # transform: the winning network's embedding (0.3 in net 0; 9.5 in net 1).
    np.testing.assert_allclose(est.transform(np.vstack([X[:1], X2])), [[0.3], [9.5]],
                               rtol=1e-6)
    assert est.score(np.vstack([X, X2])) == pytest.approx(-(0.09 + 0.81 + 0.25), rel=1e-5)


def test_fitted_attributes_and_labels_equal_predict(close_pair):
    X, _ = close_pair
    est = DML(n_clusters=5, **TINY).fit(X)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    proba = est.predict_proba(X)
    np.testing.assert_array_equal(proba.argmax(axis=1), est.labels_)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert est.cluster_centers_.shape == (est.n_clusters_, 2)
    assert est.transform(X).shape == (300, 2)
    assert est.cluster_network_.shape == (est.n_clusters_,)
    assert est.tau_ > 0 and est.n_networks_ == est.cluster_network_.max() + 1


# ------------------------------------------------------------ known structure


def test_well_separated_blobs_are_found():
    X, y = make_blobs(n_samples=400, centers=4, n_features=6, cluster_std=0.6, random_state=3)
    est = DML(n_clusters=4, hidden_layer_sizes=(32,), embedding_dim=4, pretrain_epochs=20,
              random_state=0).fit(X)
    assert adjusted_rand_score(y, est.labels_) >= 0.95


def test_close_pair_is_difficult_and_separated_no_worse_than_the_base(close_pair):
    X, y = close_pair
    est = DML(**CLOSE_PAIR_SETTINGS).fit(X)
    base = DML(**{**CLOSE_PAIR_SETTINGS, "max_epochs": 0}).fit(X)
    pair = np.isin(y, [0, 1])
    # The two close blobs, and only they, have networks of their own.
    labels_of_pair = {int(np.bincount(est.labels_[y == c]).argmax()) for c in (0, 1)}
    assert set(est.difficult_clusters_.tolist()) == labels_of_pair
    assert est.n_networks_ == 3
    ari = adjusted_rand_score(y[pair], est.labels_[pair])
    assert ari >= adjusted_rand_score(y[pair], base.labels_[pair]) and ari >= 0.9
    assert adjusted_rand_score(y, est.labels_) >= 0.95


def test_same_seed_same_result(blobs):
    X, _ = blobs
    a = DML(n_clusters=3, **TINY).fit(X)
    b = DML(n_clusters=3, **TINY).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


# ------------------------------------------------------------ parameters


@pytest.mark.parametrize("params", [dict(tau=0.0), dict(tau="large"), dict(base="dcn"),
                                    dict(base_epochs=-1), dict(fuzziness=1.0),
                                    dict(centering_weight=-0.1), dict(pretrain_lr=0.0),
                                    dict(center_update_interval=0)])
def test_out_of_range_parameters_raise_in_fit(blobs, params):
    X, _ = blobs
    est = DML(n_clusters=3, **{**TINY, **params})  # nothing checked here
    with pytest.raises(InvalidParameterError):
        est.fit(X)
    assert not hasattr(est, "labels_")


def test_empty_hidden_layers_refused(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="hidden_layer_sizes must not be empty for DML"):
        DML(n_clusters=3, **{**TINY, "hidden_layer_sizes": ()}).fit(X)
