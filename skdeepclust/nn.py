"""Network building blocks: MLPs, autoencoders (MLP and convolutional), heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "MLP",
    "mlp_backbone",
    "Autoencoder",
    "MLPAutoencoder",
    "ConvAutoencoder",
    "ClusteringHead",
    "xavier_init",
    "copy_module",
    "ema_update",
    "cosine_momentum",
    "OnlineTarget",
    "FeatureQueue",
]


class MLP(nn.Sequential):
    """Multi-layer perceptron ``in -> hidden layers -> out``.

    Each hidden layer is ``Linear -> [BatchNorm1d] -> activation``; the output
    layer is linear unless ``output_activation`` is given.

    Parameters
    ----------
    in_features : int
        Input width.
    hidden_layer_sizes : sequence of int
        Widths of the hidden layers (may be empty: a single linear map).
    out_features : int
        Output width.
    batch_norm : bool, default=False
        Insert ``BatchNorm1d`` after each hidden ``Linear``.
    activation : type, default=torch.nn.ReLU
        Hidden activation class.
    output_activation : torch.nn.Module, default=None
        Appended after the output layer.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.nn import MLP
    >>> MLP(4, [8, 8], 2)(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """

    def __init__(self, in_features: int, hidden_layer_sizes: Sequence[int], out_features: int,
                 *, batch_norm: bool = False, activation: type[nn.Module] = nn.ReLU,
                 output_activation: nn.Module | None = None):
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden_layer_sizes:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(activation())
            width = h
        layers.append(nn.Linear(width, out_features))
        if output_activation is not None:
            layers.append(output_activation)
        super().__init__(*layers)
        self.in_features = in_features
        self.out_features = out_features


def mlp_backbone(in_features: int, hidden_layer_sizes: Sequence[int],
                 norm: str = "batch") -> nn.Sequential:
    """``Linear -> norm -> ReLU`` for every width: a backbone whose heads read its last layer.

    Every layer alike, the output non-negative (like ResNet's pooled output,
    which Contrastive Clustering's heads were built on). With
    ``norm="batch"`` the layers are those of ``MLP(in, widths[:-1],
    widths[-1], batch_norm=True)`` followed by ``BatchNorm1d`` and ``ReLU``,
    in one flat ``nn.Sequential``. ``norm="layer"`` normalises each row on
    its own (``LayerNorm``): no running statistics, which in continual
    learning would follow the newest task's data and shift every older
    task's rows at inference.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.nn import mlp_backbone
    >>> net = mlp_backbone(4, [8, 6])
    >>> len(net), net(torch.randn(5, 4)).shape, bool((net(torch.randn(5, 4)) >= 0).all())
    (6, torch.Size([5, 6]), True)
    >>> type(mlp_backbone(4, [8], norm="layer")[1]).__name__
    'LayerNorm'
    """
    hidden = list(hidden_layer_sizes)
    if norm == "batch":
        return nn.Sequential(*MLP(in_features, hidden[:-1], hidden[-1], batch_norm=True),
                             nn.BatchNorm1d(hidden[-1]), nn.ReLU())
    if norm != "layer":
        raise ValueError(f"norm must be 'batch' or 'layer', got {norm!r}")
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """An encoder and a decoder joined: ``x -> (code, reconstruction)``.

    The shape every autoencoder-based estimator trains: pass one (or a
    callable that builds one) as an estimator's ``module`` to replace its
    MLP. The encoder maps rows ``(batch, n_features)`` to codes ``(batch,
    embedding_dim)``, the decoder codes back to rows.

    Parameters
    ----------
    encoder : torch.nn.Module
        Rows to codes.
    decoder : torch.nn.Module
        Codes to rows.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skdeepclust.nn import Autoencoder
    >>> ae = Autoencoder(nn.Linear(6, 2), nn.Linear(2, 6))
    >>> z, x_hat = ae(torch.zeros(5, 6))
    >>> tuple(z.shape), tuple(x_hat.shape)
    ((5, 2), (5, 6))
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return z, self.decoder(z)


class MLPAutoencoder(Autoencoder):
    """Symmetric MLP autoencoder ``D -> hidden -> d -> reversed(hidden) -> D``.

    The bottleneck and the output are linear: standardised inputs need a
    signed reconstruction, and a ReLU on the code would confine it to the
    positive orthant.

    Parameters
    ----------
    n_features : int
        Input width ``D``.
    hidden_layer_sizes : sequence of int
        Encoder widths; the decoder mirrors them.
    embedding_dim : int
        Code width ``d``.
    batch_norm : bool, default=False
        BatchNorm after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.nn import MLPAutoencoder
    >>> ae = MLPAutoencoder(6, [16, 8], 2)
    >>> z, x_hat = ae(torch.zeros(5, 6))
    >>> tuple(z.shape), tuple(x_hat.shape)
    ((5, 2), (5, 6))
    """

    def __init__(self, n_features: int, hidden_layer_sizes: Sequence[int], embedding_dim: int,
                 *, batch_norm: bool = False):
        hidden = list(hidden_layer_sizes)
        super().__init__(MLP(n_features, hidden, embedding_dim, batch_norm=batch_norm),
                         MLP(embedding_dim, hidden[::-1], n_features, batch_norm=batch_norm))


class _Bottleneck(nn.Module):
    """Residual bottleneck ``1x1 -> 3x3 -> 1x1`` (width 64) with BatchNorm, as in ResNet."""

    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return torch.relu(x + self.body(x))


class _Unflatten(nn.Module):
    """Rows ``(batch, C * H * W)`` to images ``(batch, C, H, W)``."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class ConvAutoencoder(Autoencoder):
    """The convolutional autoencoder of DCSS and DML for 28 x 28 images.

    The reference architecture of both papers' grey-scale results (MNIST,
    Fashion-MNIST). Encoder: conv 5x5/2 to 32 channels (BatchNorm, ReLU), a
    residual bottleneck block, conv 5x5/2 to 64 (ReLU), a block, conv 3x3/2
    to 128 (ReLU), a block, flatten (1,152) and a linear map to the code.
    Decoder: linear to 1,152 (ReLU), transposed convs 3x3/2 to 64 and 5x5/2
    to 32 (ReLU), 4x4/2 to the image (linear output). Rows stay 2-D, as
    scikit-learn wants them: the network reshapes ``(batch, C * 784)`` rows
    to images and flattens its reconstructions back.

    The signature is the one an estimator calls a ``module`` builder with,
    so ``DCSS(module=ConvAutoencoder)`` trains it with the estimator's
    ``embedding_dim``.

    Parameters
    ----------
    n_features : int, default=784
        Row width: ``channels * 28 * 28``.
    embedding_dim : int, default=10
        Code width (10 in the papers).
    channels : int, default=1
        Image channels.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.nn import ConvAutoencoder
    >>> ae = ConvAutoencoder(784, 10)
    >>> z, x_hat = ae(torch.zeros(3, 784))
    >>> tuple(z.shape), tuple(x_hat.shape)
    ((3, 10), (3, 784))
    """

    def __init__(self, n_features: int = 784, embedding_dim: int = 10, *, channels: int = 1):
        if n_features != channels * 28 * 28:
            raise ValueError(
                f"ConvAutoencoder takes 28 x 28 images with {channels} channel(s), i.e. rows of "
                f"{channels * 784} features; got {n_features} features."
            )
        encoder = nn.Sequential(
            _Unflatten((channels, 28, 28)),
            nn.Conv2d(channels, 32, 5, stride=2, padding=2), nn.BatchNorm2d(32), nn.ReLU(),
            _Bottleneck(32),
            nn.Conv2d(32, 64, 5, stride=2, padding=2), nn.ReLU(),   # 14 -> 7
            _Bottleneck(64),
            nn.Conv2d(64, 128, 3, stride=2), nn.ReLU(),             # 7 -> 3
            _Bottleneck(128),
            nn.Flatten(),
            nn.Linear(128 * 3 * 3, embedding_dim),
        )
        decoder = nn.Sequential(
            nn.Linear(embedding_dim, 128 * 3 * 3), nn.ReLU(),
            _Unflatten((128, 3, 3)),
            nn.ConvTranspose2d(128, 64, 3, stride=2), nn.ReLU(),                             # 7
            nn.ConvTranspose2d(64, 32, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),  # 14
            nn.ConvTranspose2d(32, channels, 4, stride=2, padding=1),                        # 28
            nn.Flatten(),
        )
        super().__init__(encoder, decoder)


class ClusteringHead(nn.Module):
    """MLP ending in a softmax over ``n_clusters`` (soft assignments).

    Parameters
    ----------
    in_features : int
        Input (embedding) width.
    hidden_layer_sizes : sequence of int
        Hidden widths; each hidden layer is ``Linear -> BatchNorm1d -> ReLU``.
    n_clusters : int
        Number of outputs.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.nn import ClusteringHead
    >>> q = ClusteringHead(3, [8], 4)(torch.randn(5, 3))
    >>> torch.allclose(q.sum(1), torch.ones(5))
    True
    """

    def __init__(self, in_features: int, hidden_layer_sizes: Sequence[int], n_clusters: int):
        super().__init__()
        self.logits = MLP(in_features, hidden_layer_sizes, n_clusters, batch_norm=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(z), dim=1)


def xavier_init(module: nn.Module) -> nn.Module:
    """Xavier-uniform weights and zero biases for every ``Linear`` of ``module``.

    Draws from torch's global generator, which the estimators fork and seed
    around a fit.

    Examples
    --------
    >>> from torch import nn
    >>> from skdeepclust.nn import xavier_init
    >>> float(xavier_init(nn.Linear(3, 2)).bias.abs().sum())
    0.0
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def copy_module(module: nn.Module, requires_grad: bool = False) -> nn.Module:
    """A deep copy of ``module`` (e.g. an EMA target network), gradients off by default.

    Examples
    --------
    >>> from torch import nn
    >>> from skdeepclust.nn import copy_module
    >>> target = copy_module(nn.Linear(2, 2))
    >>> any(p.requires_grad for p in target.parameters())
    False
    """
    import copy

    clone = copy.deepcopy(module)
    for p in clone.parameters():
        p.requires_grad_(requires_grad)
    return clone


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move ``target``'s parameters towards ``online``'s: ``xi <- m * xi + (1 - m) * theta``.

    The update of BYOL-style target networks, one fused ``_foreach_lerp_``
    call over all parameters. Only parameters move; buffers (BatchNorm
    running statistics) stay the target's own.

    Parameters
    ----------
    target, online : torch.nn.Module
        Networks of identical structure (e.g. ``target = copy_module(online)``).
    momentum : float
        ``m`` in ``[0, 1]``; 1 leaves the target unchanged, 0 copies the online network.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skdeepclust.nn import ema_update
    >>> online, target = nn.Linear(1, 1), nn.Linear(1, 1)
    >>> _ = nn.init.constant_(online.weight, 1.0), nn.init.constant_(target.weight, 0.0)
    >>> ema_update(target, online, 0.75)
    >>> float(target.weight.detach())
    0.25
    """
    t_params = list(target.parameters())
    o_params = [p.detach() for p in online.parameters()]
    if len(t_params) != len(o_params):
        raise ValueError("target and online networks must have the same parameters.")
    torch._foreach_lerp_(t_params, o_params, 1.0 - momentum)


def cosine_momentum(base: float, step: int, total_steps: int) -> float:
    """EMA momentum rising from ``base`` at step 0 to 1 at ``total_steps`` on a cosine.

    ``m_s = 1 - (1 - base) * (1 + cos(pi * s / T)) / 2`` (BYOL, Grill et al.
    2020; ProPos). Steps past ``T`` keep momentum 1.

    Examples
    --------
    >>> from skdeepclust.nn import cosine_momentum
    >>> [cosine_momentum(0.99, s, 100) for s in (0, 50, 100)]
    [0.99, 0.995, 1.0]
    """
    import math

    if total_steps <= 0:
        return 1.0
    frac = min(max(step / total_steps, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (1.0 + math.cos(math.pi * frac)) / 2.0


class OnlineTarget(nn.Module):
    """A BYOL-style pair: an online network with a predictor, and its EMA target.

    The target starts as a copy of the online network, gets no gradients
    and only moves by :meth:`update_target` (:func:`ema_update`).

    Parameters
    ----------
    online : torch.nn.Module
        The online network ``f``.
    predictor : torch.nn.Module
        The predictor ``g`` on top of ``f``'s output.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skdeepclust.nn import OnlineTarget
    >>> pair = OnlineTarget(nn.Linear(2, 2), nn.Identity())
    >>> with torch.no_grad():
    ...     _ = pair.online.weight.add_(1.0)
    >>> before = pair.target.weight.clone()
    >>> pair.update_target(0.5)
    >>> torch.allclose(pair.target.weight, before + 0.5)
    True
    """

    def __init__(self, online: nn.Module, predictor: nn.Module):
        super().__init__()
        self.online = online
        self.predictor = predictor
        self.target = copy_module(online)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.online(x)

    def update_target(self, momentum: float) -> None:
        """One EMA step of the target towards the online network."""
        ema_update(self.target, self.online, momentum)

    def online_parameters(self):
        """Named parameters trained by gradient (online network and predictor)."""
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("target.")]


class FeatureQueue(nn.Module):
    """A first-in first-out queue of embeddings with their labels and sample indices.

    All of it lives in buffers, so it moves with the module, is saved in its
    ``state_dict`` and pickles with it. Slots never written hold label -1.

    Parameters
    ----------
    size : int
        Slots (0: an empty queue that stores nothing).
    dim : int
        Width of the embeddings.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.nn import FeatureQueue
    >>> q = FeatureQueue(3, 2)
    >>> q.push(torch.ones(2, 2), torch.tensor([0, 1]), torch.tensor([5, 6]))
    >>> q.push(torch.zeros(2, 2), torch.tensor([1, 1]), torch.tensor([7, 8]))
    >>> q.labels.tolist(), int(q.ptr)
    ([1, 1, 1], 1)
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("features", torch.zeros(size, dim))
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("index", torch.full((size,), -1, dtype=torch.long))
        # Kept on the host: the write position is needed to build the slot indices.
        self.ptr = 0

    def __len__(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def push(self, features: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> None:
        """Write rows at the current position, wrapping around; the newest rows win."""
        size = len(self)
        if size == 0:
            return
        features, labels, index = features[-size:], labels[-size:], index[-size:]
        pos = (self.ptr + torch.arange(features.shape[0], device=features.device)) % size
        self.features[pos], self.labels[pos], self.index[pos] = features, labels, index
        self.ptr = (self.ptr + features.shape[0]) % size

    @torch.no_grad()
    def relabel(self, labels: torch.Tensor | None = None, centers: torch.Tensor | None = None):
        """Relabel the filled slots: by sample index into ``labels``, or by nearest ``centers``."""
        filled = self.labels >= 0
        if labels is not None:
            new = torch.where(self.index >= 0, labels[self.index.clamp_min(0)], self.labels)
        else:
            new = torch.where(filled, (self.features @ centers.T).argmax(dim=1), self.labels)
        self.labels.copy_(new)
