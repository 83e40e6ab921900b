"""Augmentations for vectors: values, rates, order of the named ones, user callables."""

import pytest
import torch

from skdeepclust.augment import (
    Compose,
    GaussianNoise,
    MarginalCorruption,
    RandomMask,
    check_augmentation,
    make_augmentation,
    make_views,
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


# ------------------------------------------------------------------ named augmentations


def test_marginal_corruption_draws_each_entry_from_its_own_random_row():
    reference = _columns_with_disjoint_values(n=50, d=4)
    view = MarginalCorruption(rate=1.0).fit(reference)(torch.zeros(400, 4),
                                                       torch.Generator().manual_seed(0))
    # Every entry comes from the reference, but the rows are mixtures of different rows.
    source_rows = view - 1000.0 * torch.arange(4)
    whole_rows = (source_rows == source_rows[:, :1]).all(dim=1)
    assert float(whole_rows.float().mean()) < 0.01


def test_named_augmentations_are_built_in_the_documented_order_with_the_given_rates():
    X = torch.randn(100, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([1., 2, 3])
    corruption = make_augmentation("corruption", X, corruption_rate=0.4, noise_scale=0.2)
    assert [type(a) for a in corruption.augmentations] == [MarginalCorruption, GaussianNoise]
    assert corruption.augmentations[0].rate == 0.4 and corruption.augmentations[1].scale == 0.2
    assert corruption.augmentations[0].reference_ is X  # fitted on the training data
    torch.testing.assert_close(corruption.augmentations[1].std_, X.std(dim=0))
    mask = make_augmentation("mask", X, corruption_rate=0.3, noise_scale=0.1)
    assert [type(a) for a in mask.augmentations] == [RandomMask, GaussianNoise]
    assert mask.augmentations[0].rate == 0.3
    noise = make_augmentation("noise", X, corruption_rate=0.3, noise_scale=0.5)
    assert type(noise) is GaussianNoise and noise.scale == 0.5
    # Without noise, only the first step.
    assert type(make_augmentation("mask", X, corruption_rate=0.3, noise_scale=0.0)) is RandomMask


def test_corruption_then_noise_by_values():
    # rate 1: every entry replaced by a reference value, then noised: the values sit near
    # the reference values (within a few noise std) but none is one of them.
    reference = _columns_with_disjoint_values(n=50, d=2)
    aug = make_augmentation("corruption", reference, corruption_rate=1.0, noise_scale=0.01)
    view = aug(torch.full((300, 2), -5000.0), torch.Generator().manual_seed(0))
    nearest = (view[:, :, None] - reference.T[None]).abs().min(dim=2).values
    assert float(nearest.max()) < 0.01 * 14.6 * 6  # std of 0..49 is 14.6
    assert not torch.isin(view, reference).any()


def test_mask_then_noise_by_values():
    X = torch.ones(5000, 2)
    X[::2] = 3.0  # std 1 per column
    view = make_augmentation("mask", X, corruption_rate=0.5, noise_scale=0.01)(
        torch.full((5000, 2), 10.0), torch.Generator().manual_seed(0))
    masked = view.abs() < 0.1
    assert abs(float(masked.float().mean()) - 0.5) < 0.03
    assert not (view == 0).any() and not (view == 10).any()  # noise after the mask
    assert float((view[~masked] - 10).abs().max()) < 0.1


@pytest.mark.parametrize("spec, rate, scale", [("corruption", 0.0, 0.0), ("mask", 0.0, 0.0),
                                               ("noise", 0.5, 0.0)])
def test_named_augmentations_that_change_nothing_are_rejected(spec, rate, scale):
    with pytest.raises(ValueError, match="leaves every row unchanged"):
        make_augmentation(spec, torch.randn(5, 2), corruption_rate=rate, noise_scale=scale)


@pytest.mark.parametrize("spec, rate, scale", [("corruption", 0.0, 0.1), ("mask", 0.2, 0.0),
                                               ("noise", 0.0, 0.1)])
def test_named_augmentations_with_one_nonzero_setting_are_accepted(spec, rate, scale):
    X = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    view = make_augmentation(spec, X, corruption_rate=rate, noise_scale=scale)(
        X, torch.Generator().manual_seed(0))
    assert not torch.equal(view, X)


def test_gaussian_noise_without_fit_has_unit_scale_and_one_row_gets_none():
    noise = GaussianNoise(scale=2.0)(torch.zeros(50_000, 1), torch.Generator().manual_seed(0))
    assert float(noise.std()) == pytest.approx(2.0, rel=0.03)
    one = GaussianNoise(scale=1.0).fit(torch.ones(1, 3))
    assert torch.equal(one(torch.ones(1, 3), torch.Generator()), torch.ones(1, 3))


# ------------------------------------------------------------------ user callables


def test_check_augmentation_enforces_the_contract():
    X = torch.zeros(4, 3)
    check_augmentation(lambda x, g: x + torch.rand(x.shape, generator=g), X)
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        check_augmentation(lambda x, g: x.numpy(), X)
    with pytest.raises(ValueError, match="shape, dtype and device"):
        check_augmentation(lambda x, g: x[:, :2], X)
    with pytest.raises(ValueError, match="shape, dtype and device"):
        check_augmentation(lambda x, g: x.double(), X)
    with pytest.raises(ValueError, match="in place"):
        check_augmentation(lambda x, g: x.add_(1.0), X)
    assert torch.equal(X, torch.zeros(4, 3))  # the check works on a copy


def test_check_augmentation_uses_a_generator_of_its_own():
    seen = []
    state = torch.random.get_rng_state()
    check_augmentation(lambda x, g: seen.append(g) or x + torch.rand(x.shape, generator=g),
                       torch.zeros(4, 3))
    assert isinstance(seen[0], torch.Generator)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_make_augmentation_checks_and_fits_a_user_callable():
    X = torch.arange(6.0).reshape(3, 2)
    with pytest.raises(ValueError, match="shape, dtype and device"):
        make_augmentation(lambda x, g: x[:1], X)

    class Shift:
        def fit(self, X):
            self.mean_ = X.mean(dim=0)
            return self

        def __call__(self, x, g):
            return x - self.mean_

    spec = Shift()
    fitted = make_augmentation(spec, X)
    assert fitted is not spec and not hasattr(spec, "mean_")
    torch.testing.assert_close(fitted(X, torch.Generator()), X - torch.tensor([2.0, 3.0]))

    def plain(x, g):
        return x * 2

    assert make_augmentation(plain, X) is plain


def test_make_views_pairs():
    X = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    a, b = make_views("noise", X)
    assert a is b and isinstance(a, GaussianNoise)
    a, b = make_views((RandomMask(0.5), GaussianNoise(0.3)), X)
    assert type(a) is RandomMask and type(b) is GaussianNoise and hasattr(b, "std_")
    with pytest.raises(ValueError, match="shape, dtype and device"):
        make_views((lambda x, g: x, lambda x, g: x[:1]), X)
    with pytest.raises(ValueError, match="pair of callables"):
        make_views((RandomMask(0.5),), X)
    with pytest.raises(ValueError, match="pair of callables"):
        make_views(("noise", "mask"), X)
