"""scikit-learn's estimator checks over every estimator, found by discovery."""

import pytest
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skdeepclust.utils import all_estimators
from skdeepclust.utils._test_settings import EXPECTED_FAILED_CHECKS, TINY_PARAMS, tiny_instance

ESTIMATORS = [tiny_instance(cls) for _, cls in all_estimators()]


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est).__name__, {}),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("name, cls", all_estimators())
def test_every_estimator_has_tiny_settings(name, cls):
    assert name in TINY_PARAMS, f"add {name} to skdeepclust/utils/_test_settings.py"


@pytest.mark.parametrize("name, cls", all_estimators())
def test_every_parameter_has_a_constraint(name, cls):
    est = cls()
    assert set(est.get_params()) == set(cls._parameter_constraints)


class _NotAParameterValue:
    pass


@pytest.mark.parametrize("name, cls", all_estimators())
def test_bad_parameter_type_raises_standard_message_in_fit(name, cls):
    X = [[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]
    for param in cls().get_params():
        est = tiny_instance(cls, **{param: _NotAParameterValue()})  # __init__ never validates
        with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter of {name}"):
            est.fit(X)


# Groups of names for one meaning; at most one name of each group may appear in the
# package (the papers and earlier versions used several).
SYNONYMS = [
    {"n_init", "kmeans_n_init", "n_restarts"},
    {"noise_scale", "noise_std", "noise_sigma"},
    {"corruption_rate", "mask_rate", "corruption_prob"},
    {"hidden_layer_sizes", "hidden_dims", "hidden_sizes"},
    {"embedding_dim", "latent_dim", "z_dim", "n_components"},
    {"lr", "learning_rate"},
    {"max_epochs", "epochs", "n_epochs"},
    {"batch_size", "bs"},
    {"random_state", "seed"},
    {"device", "use_cuda"},
]


def test_one_name_per_meaning_across_estimators():
    names = {}
    for est_name, cls in all_estimators():
        for param in cls().get_params():
            names.setdefault(param, []).append(est_name)
    for group in SYNONYMS:
        used = {n: names[n] for n in group if n in names}
        assert len(used) <= 1, f"one meaning, several names: {used}"


@pytest.mark.parametrize("name, cls", all_estimators())
def test_common_parameters_take_the_same_forms(name, cls):
    est = cls()
    params = est.get_params()
    for common in ("n_clusters", "embedding_dim", "hidden_layer_sizes", "batch_size", "lr",
                   "device", "random_state", "verbose"):
        assert common in params, f"{name} lacks {common}"
    assert params["batch_size"] == "auto" and params["device"] == "auto"
    assert params["n_clusters"] == 8 and params["verbose"] == 0
    X = [[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]
    with pytest.raises(InvalidParameterError, match="'batch_size' parameter"):
        tiny_instance(cls, n_clusters=2, batch_size="large").fit(X)
    if "augmentation" in params:
        from skdeepclust.augment import AUGMENTATION_NAMES

        for value in AUGMENTATION_NAMES:  # every estimator takes every named augmentation
            tiny_instance(cls, n_clusters=2, augmentation=value).set_params()._validate_params()
