"""Network building blocks and shared losses."""

import pytest
import torch
from torch import nn

from skdeepclust.losses import ReconstructionCriterion, reconstruction_loss
from skdeepclust.nn import MLP, ClusteringHead, MLPAutoencoder, copy_module, xavier_init


def test_mlp_layers_follow_the_widths():
    mlp = MLP(5, [7, 3], 2, batch_norm=True)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 7), (7, 3), (3, 2)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in mlp) == 2
    assert isinstance(mlp[-1], nn.Linear)  # linear output


def test_autoencoder_decoder_mirrors_encoder():
    ae = MLPAutoencoder(6, [16, 8], 2)
    enc = [(m.in_features, m.out_features) for m in ae.encoder if isinstance(m, nn.Linear)]
    dec = [(m.in_features, m.out_features) for m in ae.decoder if isinstance(m, nn.Linear)]
    assert enc == [(6, 16), (16, 8), (8, 2)]
    assert dec == [(2, 8), (8, 16), (16, 6)]
    z, x_hat = ae(torch.randn(4, 6))
    assert z.shape == (4, 2) and x_hat.shape == (4, 6)
    assert (z < 0).any()  # linear bottleneck: codes are signed


def test_clustering_head_outputs_a_distribution():
    q = ClusteringHead(3, [8], 4).eval()(torch.randn(6, 3))
    assert q.shape == (6, 4)
    torch.testing.assert_close(q.sum(1), torch.ones(6))
    assert (q > 0).all()


def test_xavier_init_bounds_and_zero_bias():
    torch.manual_seed(0)
    lin = xavier_init(nn.Sequential(nn.Linear(30, 20)))[0]
    bound = (6 / (30 + 20)) ** 0.5
    assert lin.weight.abs().max() <= bound
    assert lin.weight.abs().max() > 0.9 * bound
    assert float(lin.bias.detach().abs().sum()) == 0.0


def test_copy_module_is_independent_and_frozen():
    lin = nn.Linear(2, 2)
    target = copy_module(lin)
    with torch.no_grad():
        lin.weight.add_(1.0)
    assert not torch.equal(lin.weight, target.weight)
    assert not any(p.requires_grad for p in target.parameters())


def test_reconstruction_loss_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    x_hat = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # row errors: 1 + 4 = 5 and 1 + 1 = 2
    assert float(reconstruction_loss(x, x_hat)) == pytest.approx(3.5)
    assert float(reconstruction_loss(x, x_hat, torch.tensor([1.0, 0.5]))) == pytest.approx(3.0)
    assert float(ReconstructionCriterion()((None, x_hat), torch.arange(2), x)) == pytest.approx(3.5)
