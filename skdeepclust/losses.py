"""Losses shared by several methods.

Every loss takes batch tensors and returns a scalar tensor; the criteria
(``nn.Module`` subclasses) have the signature the skorch layer calls,
``criterion(y_pred, index, X)``, where ``index`` holds the batch's sample indices.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["reconstruction_loss", "ReconstructionCriterion"]


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor,
                        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error summed over features, averaged over the batch.

    .. math:: L_r = \\frac{1}{|B|} \\sum_{i \\in B} w_i \\lVert x_i - \\hat x_i \\rVert_2^2

    Parameters
    ----------
    x, x_hat : torch.Tensor of shape (batch, n_features)
        Input and reconstruction.
    weight : torch.Tensor of shape (batch,), default=None
        Per-sample weights ``w_i`` (all ones when None).

    Returns
    -------
    loss : torch.Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import reconstruction_loss
    >>> float(reconstruction_loss(torch.zeros(2, 3), torch.ones(2, 3)))
    3.0
    """
    per_sample = (x - x_hat).pow(2).sum(dim=1)
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()


class ReconstructionCriterion(nn.Module):
    """Criterion for autoencoder pretraining: ``y_pred = (code, reconstruction)``.

    Examples
    --------
    >>> import torch
    >>> from skdeepclust.losses import ReconstructionCriterion
    >>> x = torch.zeros(2, 3)
    >>> float(ReconstructionCriterion()((None, x + 1), torch.arange(2), x))
    3.0
    """

    def forward(self, y_pred, index, X):
        _, x_hat = y_pred
        return reconstruction_loss(X, x_hat)
