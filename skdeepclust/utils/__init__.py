"""Utilities: estimator discovery and shared docstring texts."""

from skdeepclust.utils.discovery import all_estimators

__all__ = ["all_estimators"]
