"""Network building blocks, EMA targets, the feature queue, and the reconstruction loss."""

import pickle

import pytest
import torch
from torch import nn

from skdeepclust.losses import ReconstructionCriterion, reconstruction_loss
from skdeepclust.nn import (
    MLP,
    ClusteringHead,
    FeatureQueue,
    MLPAutoencoder,
    OnlineTarget,
    copy_module,
    cosine_momentum,
    ema_update,
    xavier_init,
)

# --------------------------------------------------------------------------- networks


def test_mlp_layers_follow_the_widths():
    mlp = MLP(5, [7, 3], 2, batch_norm=True)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 7), (7, 3), (3, 2)]
    assert [type(m) for m in mlp] == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 2 + [nn.Linear]
    assert [type(m) for m in MLP(5, [7], 2)] == [nn.Linear, nn.ReLU, nn.Linear]
    assert [type(m) for m in MLP(5, [], 2)] == [nn.Linear]


def test_mlp_activation_and_output_activation():
    mlp = MLP(2, [4], 3, activation=nn.Tanh, output_activation=nn.Softmax(dim=1))
    assert [type(m) for m in mlp] == [nn.Linear, nn.Tanh, nn.Linear, nn.Softmax]
    torch.testing.assert_close(mlp(torch.randn(5, 2)).sum(1), torch.ones(5))


def test_autoencoder_decoder_mirrors_encoder_and_the_code_is_linear():
    ae = MLPAutoencoder(6, [16, 8], 2)
    enc = [(m.in_features, m.out_features) for m in ae.encoder if isinstance(m, nn.Linear)]
    dec = [(m.in_features, m.out_features) for m in ae.decoder if isinstance(m, nn.Linear)]
    assert enc == [(6, 16), (16, 8), (8, 2)]
    assert dec == [(2, 8), (8, 16), (16, 6)]
    # Linear bottleneck and output: a negative bias comes out as it is (no ReLU on them).
    nn.init.constant_(ae.encoder[-1].bias, -5.0)
    nn.init.constant_(ae.decoder[-1].bias, -7.0)
    for lin in (ae.encoder[-1], ae.decoder[-1]):
        nn.init.zeros_(lin.weight)
    z, x_hat = ae(torch.randn(4, 6))
    torch.testing.assert_close(z, torch.full((4, 2), -5.0))
    torch.testing.assert_close(x_hat, torch.full((4, 6), -7.0))
    bn = MLPAutoencoder(6, [16, 8], 2, batch_norm=True)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in bn.modules()) == 4


def test_clustering_head_outputs_a_distribution():
    torch.manual_seed(0)
    head = ClusteringHead(3, [8], 4).eval()
    x = torch.randn(6, 3)
    q = head(x)
    assert q.shape == (6, 4)
    torch.testing.assert_close(q.sum(1), torch.ones(6))
    torch.testing.assert_close(q, torch.softmax(head.logits(x), dim=1))
    assert [type(m) for m in head.logits] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]


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
    assert torch.equal(lin.weight, target.weight)
    with torch.no_grad():
        lin.weight.add_(1.0)
    assert not torch.equal(lin.weight, target.weight)
    assert not any(p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in copy_module(lin, requires_grad=True).parameters())


# ------------------------------------------------------------------------ EMA targets


def test_ema_update_by_hand_moves_parameters_not_buffers():
    online, target = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        online.weight.fill_(3.0)
        online.running_mean.fill_(5.0)
        target.weight.fill_(1.0)
    ema_update(target, online, 0.75)  # 0.75 * 1 + 0.25 * 3
    torch.testing.assert_close(target.weight, torch.full((2,), 1.5))
    torch.testing.assert_close(target.running_mean, torch.zeros(2))
    ema_update(target, online, 1.0)  # momentum 1 leaves the target
    torch.testing.assert_close(target.weight, torch.full((2,), 1.5))
    ema_update(target, online, 0.0)  # momentum 0 copies
    torch.testing.assert_close(target.weight, torch.full((2,), 3.0))
    with pytest.raises(ValueError, match="same parameters"):
        ema_update(nn.Linear(2, 2), nn.Linear(2, 2, bias=False), 0.5)


def test_cosine_momentum_by_hand():
    # m_s = 1 - (1 - 0.9) (1 + cos(pi s / T)) / 2: 0.9, then 0.95 at T/2, 1 at T and after
    assert cosine_momentum(0.9, 0, 100) == pytest.approx(0.9)
    assert cosine_momentum(0.9, 25, 100) == pytest.approx(1 - 0.1 * (1 + 2**-0.5) / 2)
    assert cosine_momentum(0.9, 50, 100) == pytest.approx(0.95)
    assert cosine_momentum(0.9, 100, 100) == 1.0
    assert cosine_momentum(0.9, 300, 100) == 1.0
    assert cosine_momentum(0.9, -5, 100) == pytest.approx(0.9)
    assert cosine_momentum(0.9, 0, 0) == 1.0


def test_online_target_starts_as_a_copy_gets_no_gradient_and_follows_by_ema():
    online = nn.Linear(2, 2)
    pair = OnlineTarget(online, nn.Linear(2, 2))
    for p, q in zip(pair.online.parameters(), pair.target.parameters()):
        assert torch.equal(p, q) and p is not q
    assert not any(p.requires_grad for p in pair.target.parameters())
    x = torch.randn(3, 2)
    torch.testing.assert_close(pair(x), online(x))  # forward is the online network
    pair(x).sum().backward()
    assert all(p.grad is None for p in pair.target.parameters())
    names = [n for n, _ in pair.online_parameters()]
    assert names == ["online.weight", "online.bias", "predictor.weight", "predictor.bias"]
    before = pair.target.weight.detach().clone()
    with torch.no_grad():
        online.weight.add_(4.0)
    pair.update_target(0.75)
    torch.testing.assert_close(pair.target.weight, before + 1.0)


# ------------------------------------------------------------------------ feature queue


def test_feature_queue_push_wraps_around_and_the_newest_rows_win():
    q = FeatureQueue(3, 1)
    assert q.labels.tolist() == [-1, -1, -1] and len(q) == 3
    q.push(torch.tensor([[1.0], [2.0]]), torch.tensor([0, 1]), torch.tensor([10, 11]))
    assert q.features.flatten().tolist() == [1.0, 2.0, 0.0] and q.ptr == 2
    assert q.labels.tolist() == [0, 1, -1] and q.index.tolist() == [10, 11, -1]
    q.push(torch.tensor([[3.0], [4.0]]), torch.tensor([2, 3]), torch.tensor([12, 13]))
    assert q.features.flatten().tolist() == [4.0, 2.0, 3.0] and q.ptr == 1
    assert q.index.tolist() == [13, 11, 12]
    # More rows than slots: only the last `size` rows are kept, in order after the pointer.
    q.push(torch.arange(5.0)[:, None], torch.arange(5), torch.arange(20, 25))
    assert q.features.flatten().tolist() == [4.0, 2.0, 3.0] and q.ptr == 1
    assert q.index.tolist() == [24, 22, 23]
    empty = FeatureQueue(0, 2)
    empty.push(torch.ones(2, 2), torch.zeros(2, dtype=torch.long), torch.arange(2))
    assert len(empty) == 0 and empty.ptr == 0


def test_feature_queue_relabels_by_sample_index_or_by_nearest_centre():
    q = FeatureQueue(4, 2)
    q.push(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), torch.tensor([0, 0, 0]),
           torch.tensor([2, 0, 1]))
    q.relabel(labels=torch.tensor([5, 6, 7]))
    assert q.labels.tolist() == [7, 5, 6, -1]  # by index; the empty slot stays -1
    q.relabel(centers=torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert q.labels.tolist() == [0, 1, 1, -1]  # by the largest dot product
    restored = pickle.loads(pickle.dumps(q))
    assert restored.labels.tolist() == [0, 1, 1, -1] and "features" in q.state_dict()


# ------------------------------------------------------------------ reconstruction loss


def test_reconstruction_loss_by_hand():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    x_hat = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # row errors: 1 + 4 = 5 and 1 + 1 = 2
    assert float(reconstruction_loss(x, x_hat)) == pytest.approx(3.5)
    assert float(reconstruction_loss(x, x_hat, torch.tensor([1.0, 0.5]))) == pytest.approx(3.0)
    assert float(ReconstructionCriterion()((None, x_hat), torch.arange(2), x)) == pytest.approx(3.5)
