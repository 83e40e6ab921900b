"""Exceptions and warnings raised by skdeepclust."""

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """Training stopped because a loss became NaN or infinite.

    The message names the phase and the epoch, and what to change (usually a
    lower learning rate, or standardised features). The estimator is left as
    it was before the call to ``fit``.

    Examples
    --------
    >>> from skdeepclust.exceptions import TrainingDivergedError
    >>> issubclass(TrainingDivergedError, FloatingPointError)
    True
    """
