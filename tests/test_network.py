"""The ``module`` parameter: a user's network in every estimator, and the conv autoencoder."""

import functools
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

from skdeepclust import DML, RDC
from skdeepclust.nn import Autoencoder, ConvAutoencoder
from skdeepclust.utils import all_estimators
from skdeepclust.utils._test_settings import EXPECTED_FAILED_CHECKS, tiny_instance

# Methods that train an autoencoder; the others train an encoder.
DECODING = {"AutoencoderKMeans", "DCSS", "DML", "RDC"}


class TinyEncoder(nn.Module):
    """A builder's signature: ``TinyEncoder(n_features, embedding_dim, width=...)``."""

    def __init__(self, n_features, embedding_dim, width=16):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(n_features, width), nn.Tanh(),
                                    nn.Linear(width, embedding_dim))

    def forward(self, x):
        return self.layers(x)


class TinyAutoencoder(Autoencoder):
    def __init__(self, n_features, embedding_dim, width=16):
        super().__init__(TinyEncoder(n_features, embedding_dim, width),
                         TinyEncoder(embedding_dim, n_features, width))


class _NoDecoder(nn.Module):
    def __init__(self, n_features, embedding_dim):
        super().__init__()
        self.encoder = nn.Linear(n_features, embedding_dim)

    def forward(self, x):
        return self.encoder(x)


def _builder(name):
    return TinyAutoencoder if name in DECODING else TinyEncoder


def _tiny(cls, **overrides):
    return tiny_instance(cls, module=_builder(cls.__name__), **overrides)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, n_features=5, centers=3, cluster_std=0.5, random_state=0)
    return X.astype(np.float32), y


def _weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@parametrize_with_checks(
    [_tiny(cls) for _, cls in all_estimators()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_estimator_checks_with_a_user_module(estimator, check):
    check(estimator)


@pytest.mark.parametrize("name, cls", all_estimators())
def test_a_user_module_instance_is_trained_on_a_copy(name, cls, blobs):
    X, _ = blobs
    module = _builder(name)(X.shape[1], tiny_instance(cls).embedding_dim)
    before = _weights(module)
    est = tiny_instance(cls, n_clusters=3, module=module).fit(X)
    # The caller's module keeps its weights: each fit trains a deep copy.
    after = _weights(module)
    assert all(torch.equal(before[k], after[k]) for k in before)
    trained = [m for m in est.net_.module_.modules() if isinstance(m, TinyEncoder)]
    assert trained and all(m is not module and m is not getattr(module, "encoder", None)
                           for m in trained)
    # The user's module is what trained: the fitted weights moved away from its own.
    encoder = module.encoder if name in DECODING else module
    fitted = _weights(trained[0])
    assert any(not torch.equal(fitted[k], v) for k, v in _weights(encoder).items())
    assert est.predict(X).shape == (X.shape[0],)
    assert est.transform(X).shape[0] == X.shape[0]


@pytest.mark.parametrize("name, cls", all_estimators())
def test_clone_and_pickle_keep_a_user_module_apart(name, cls, blobs):
    X, _ = blobs
    module = _builder(name)(X.shape[1], tiny_instance(cls).embedding_dim)
    est = tiny_instance(cls, n_clusters=3, module=module)
    twin = clone(est)
    assert twin.module is not module and isinstance(twin.module, type(module))
    fitted = est.fit(X)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    np.testing.assert_allclose(restored.transform(X), fitted.transform(X))


@pytest.mark.parametrize("name, cls", all_estimators())
def test_a_builder_repeats_bit_for_bit(name, cls, blobs):
    X, _ = blobs
    a = _tiny(cls, n_clusters=3).fit(X)
    b = _tiny(cls, n_clusters=3).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


@pytest.mark.parametrize("name, cls", all_estimators())
def test_grid_search_over_a_module_constructor_argument(name, cls, blobs):
    X, _ = blobs
    grid = [functools.partial(_builder(name), width=w) for w in (4, 16)]
    search = GridSearchCV(tiny_instance(cls, n_clusters=3), {"module": grid}, cv=2).fit(X)
    assert search.best_params_["module"] in grid
    widths = {m.layers[0].out_features
              for m in search.best_estimator_.net_.module_.modules() if isinstance(m, TinyEncoder)}
    assert widths == {search.best_params_["module"].keywords["width"]}


class _WrongWidth(TinyEncoder):
    def __init__(self, n_features, embedding_dim):
        super().__init__(n_features, embedding_dim + 1)


@pytest.mark.parametrize("name, cls", [(n, c) for n, c in all_estimators() if n in DECODING])
def test_wrong_shapes_of_an_autoencoder_name_the_module_and_shapes(name, cls, blobs):
    X, _ = blobs
    d = tiny_instance(cls).embedding_dim
    wrong_code = Autoencoder(_WrongWidth(5, d), TinyEncoder(d + 1, 5))
    with pytest.raises(ValueError, match=rf"encoder _WrongWidth maps rows of shape \(2, 5\) "
                                         rf"to \(2, {d + 1}\); expected \(2, embedding_dim={d}\)"):
        tiny_instance(cls, n_clusters=3, module=wrong_code).fit(X)
    wrong_rows = Autoencoder(TinyEncoder(5, d), TinyEncoder(d, 4))
    with pytest.raises(ValueError, match=rf"decoder TinyEncoder maps codes of shape \(2, {d}\) "
                                         r"to \(2, 4\); expected the rows' shape \(2, 5\)"):
        tiny_instance(cls, n_clusters=3, module=wrong_rows).fit(X)
    wrong_input = TinyAutoencoder(7, d)
    with pytest.raises(ValueError, match=r"encoder TinyEncoder fails on rows of shape \(2, 5\)"):
        tiny_instance(cls, n_clusters=3, module=wrong_input).fit(X)
    with pytest.raises(TypeError, match="'encoder' and 'decoder' submodules"):
        tiny_instance(cls, n_clusters=3, module=_NoDecoder).fit(X)
    est = tiny_instance(cls, n_clusters=3, module=wrong_rows)
    with pytest.raises(ValueError):
        est.fit(X)
    assert not hasattr(est, "net_") and not hasattr(est, "labels_")


@pytest.mark.parametrize("name, cls", [(n, c) for n, c in all_estimators() if n not in DECODING])
def test_an_encoder_of_any_width_gets_the_heads_and_bad_outputs_are_named(name, cls, blobs):
    X, y = blobs
    est = tiny_instance(cls, n_clusters=3, module=functools.partial(TinyEncoder, width=8)).fit(X)
    assert est.transform(X).shape == (X.shape[0], tiny_instance(cls).embedding_dim)
    # An autoencoder lends its encoder.
    est = tiny_instance(cls, n_clusters=3, module=TinyAutoencoder(5, 8)).fit(X)
    assert not any(isinstance(m, Autoencoder) for m in est.net_.module_.modules())
    with pytest.raises(ValueError, match=r"encoder Unflatten maps rows of shape \(2, 5\) to "
                                         r"\(2, 5, 1\); expected \(2, width\)"):
        tiny_instance(cls, n_clusters=3, module=nn.Unflatten(1, (5, 1))).fit(X)


def test_a_builder_that_returns_no_module_is_a_type_error(blobs):
    X, _ = blobs
    with pytest.raises(TypeError, match=r"module=.*should build a torch.nn.Module .* returned "
                                        "list"):
        tiny_instance(DML, n_clusters=3, module=lambda d, e: [d, e]).fit(X)


def test_rdc_critic_is_a_fresh_copy_of_the_users_encoder(blobs):
    X, _ = blobs
    est = tiny_instance(RDC, n_clusters=3, module=TinyAutoencoder, adversarial_weight=0.5).fit(X)
    assert "pretrain_critic" in est.history_
    from skdeepclust._rdc import _Critic
    critic = _Critic(TinyEncoder(5, 2))
    assert isinstance(critic.mlp, TinyEncoder)
    # Fresh weights: not the encoder's, with zero biases (the R-DC code's init).
    encoder = TinyEncoder(5, 2)
    critic = _Critic(encoder)
    assert not torch.equal(critic.mlp.layers[0].weight, encoder.layers[0].weight)
    assert torch.count_nonzero(critic.mlp.layers[0].bias) == 0


def test_dml_networks_are_copies_of_the_users_autoencoder(blobs):
    X, y = blobs
    est = tiny_instance(DML, n_clusters=3, module=TinyAutoencoder, tau=10.0).fit(X)
    assert est.n_networks_ >= 2
    networks = [m for m in est.net_.module_.modules() if isinstance(m, TinyAutoencoder)]
    assert len(networks) == est.n_networks_
    assert adjusted_rand_score(y, est.labels_) > 0.9


def test_conv_autoencoder_shapes_on_28_by_28_images():
    ae = ConvAutoencoder(784, 10)
    x = torch.randn(3, 784)
    z, x_hat = ae(x)
    assert z.shape == (3, 10) and x_hat.shape == (3, 784)
    # 28 -> 14 -> 7 -> 3: the papers' 1,152 features before the code.
    assert ae.encoder[-1].in_features == 128 * 3 * 3
    h = ae.encoder[:-2](x)
    assert h.shape == (3, 128, 3, 3)
    assert ConvAutoencoder(3 * 784, 5, channels=3)(torch.zeros(2, 3 * 784))[1].shape == (2, 2352)
    with pytest.raises(ValueError, match="28 x 28 images with 1 channel.*got 64 features"):
        ConvAutoencoder(64, 10)


def test_conv_autoencoder_trains_in_an_estimator():
    from skdeepclust import AutoencoderKMeans
    rng = np.random.RandomState(0)
    X = rng.rand(40, 784).astype(np.float32)
    est = AutoencoderKMeans(n_clusters=2, module=ConvAutoencoder, pretrain_epochs=1,
                            batch_size=20, n_init=1, random_state=0).fit(X)
    assert isinstance(est.net_.module_, ConvAutoencoder)
    assert est.transform(X).shape == (40, 10)
