"""Augmentations for vectors: values, rates, reproducibility."""

import pytest
import torch

from skdeepclust.augment import (
    Compose,
    GaussianNoise,
    MarginalCorruption,
    RandomMask,
    make_augmentation,
)


def _columns_with_disjoint_values(n=50, d=4):
    # Column j holds 1000 * j + 0..n-1: a value copied from another column is detectable.
    return torch.arange(n, dtype=torch.float32)[:, None] + 1000.0 * torch.arange(d)[None, :]


def test_marginal_corruption_keeps_each_column_within_its_observed_values():
    X = _columns_with_disjoint_values()
    view = MarginalCorruption(rate=0.7).fit(X)(X, torch.Generator().manual_seed(0))
    assert not torch.equal(view, X)
    for j in range(X.shape[1]):
        assert torch.isin(view[:, j], X[:, j]).all()


def test_marginal_corruption_draws_from_the_reference_not_the_batch():
    reference = _columns_with_disjoint_values()
    batch = torch.full((200, 4), -1.0)  # no value of the batch is in the reference
    view = MarginalCorruption(rate=0.5).fit(reference)(batch, torch.Generator().manual_seed(1))
    changed = view != -1.0
    for j in range(4):
        assert torch.isin(view[changed[:, j], j], reference[:, j]).all()


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.8])
def test_marginal_corruption_rate_is_respected(rate):
    reference = torch.rand(100, 5) + 1.0  # in [1, 2): never equal to the batch's zeros
    batch = torch.zeros(20_000, 5)
    view = MarginalCorruption(rate=rate).fit(reference)(batch, torch.Generator().manual_seed(2))
    frac = float((view != 0).float().mean())
    assert abs(frac - rate) < 0.01


def test_random_mask_rate_and_fill():
    x = torch.ones(20_000, 5)
    view = RandomMask(rate=0.25, fill=-3.0)(x, torch.Generator().manual_seed(0))
    assert set(view.unique().tolist()) == {-3.0, 1.0}
    assert abs(float((view == -3.0).float().mean()) - 0.25) < 0.01


def test_gaussian_noise_is_scaled_per_feature():
    X = torch.randn(50_000, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1., 4.])
    aug = GaussianNoise(scale=0.5).fit(X)
    noise = aug(X, torch.Generator().manual_seed(1)) - X
    assert torch.allclose(noise.std(dim=0), torch.tensor([0.5, 2.0]), rtol=0.03)
    assert abs(float(noise.mean())) < 0.02


@pytest.mark.parametrize("aug", [MarginalCorruption(0.4), GaussianNoise(0.3), RandomMask(0.4),
                                 Compose([MarginalCorruption(0.4), GaussianNoise(0.1)])])
def test_a_seeded_generator_repeats_exactly(aug):
    X = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    fitted = make_augmentation(aug, X)
    a = fitted(X, torch.Generator().manual_seed(7))
    b = fitted(X, torch.Generator().manual_seed(7))
    c = fitted(X, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_augmentations_leave_their_input_and_the_parameter_untouched():
    X = torch.randn(30, 3, generator=torch.Generator().manual_seed(0))
    before = X.clone()
    spec = Compose([MarginalCorruption(0.5), GaussianNoise(0.2)])
    fitted = make_augmentation(spec, X)
    fitted(X, torch.Generator().manual_seed(0))
    assert torch.equal(X, before)
    assert not hasattr(spec.augmentations[0], "reference_")  # the spec was copied, not fitted


def test_make_augmentation_rejects_unknown_names_and_non_callables():
    X = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="not one of"):
        make_augmentation("rotate", X)
    with pytest.raises(TypeError):
        make_augmentation(3, X)
