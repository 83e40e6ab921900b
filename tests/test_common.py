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
