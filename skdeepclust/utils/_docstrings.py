"""Parameter and attribute texts shared by every estimator's docstring.

A method's docstring writes ``{n_clusters}`` (etc.) where the shared text
goes, and the class is decorated with :func:`fill_doc`.
"""

from __future__ import annotations

import textwrap

__all__ = ["fill_doc", "SHARED_DOCS", "AUTO_BATCH_TEXT"]

#: ``batch_size="auto"`` of the autoencoder phases (the small-data rule).
AUTO_BATCH_TEXT = (
    "256 rows, or fewer on small data so that an\n"
    "    epoch makes at least 30 updates, but not below 32 rows (256 from\n"
    "    7,680 rows on, 60 for 1,797 rows)."
)

#: Fitted attributes every estimator has: its device and what it saw of the input.
_INPUT_ATTRIBUTES = """device_ : str
    The device the networks were trained on.
n_features_in_ : int
    Number of features seen during :term:`fit`.
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during :term:`fit`, when ``X`` has string
    column names."""

SHARED_DOCS = {
    "n_clusters": """n_clusters : int, default=8
    The number of clusters to form.""",
    "embedding_dim": """embedding_dim : int, default={embedding_dim_default}
    Width of the learned embedding (the columns of :meth:`transform`).""",
    "hidden_layer_sizes": """hidden_layer_sizes : tuple of int or "auto", default={hidden_default}
    Widths of the encoder's hidden layers, as in ``MLPClassifier``; the
    decoder, where there is one, mirrors them. ``"auto"``: the papers'
    ``(500, 500, 2000)`` shape scaled to the input, ``(w, w, 4 w)`` with
    ``w`` the power of two at or above twice ``n_features``, between 64 and
    256 (``(64, 64, 256)`` up to 32 features, ``(128, 128, 512)`` up to 64,
    ``(256, 256, 1024)`` from 65 on).""",
    "module_autoencoder": """module : torch.nn.Module, callable or None, default=None
    The autoencoder to train instead of the MLP of ``hidden_layer_sizes``
    (which is then ignored): a module with ``encoder`` (rows ``(batch,
    n_features)`` to codes ``(batch, embedding_dim)``) and ``decoder``
    (codes back to rows) submodules, such as
    :class:`skdeepclust.nn.Autoencoder` or
    :class:`skdeepclust.nn.ConvAutoencoder`, or a callable
    ``module(n_features, embedding_dim)`` that builds one (a class, a
    function, a :func:`functools.partial`). A module is deep-copied by
    each fit and by ``clone``, so its weights are never trained in place
    and never shared between two fits; a callable builds it under the
    fit's seed. Rows stay 2-D: an image network reshapes them itself
    (as ``ConvAutoencoder`` does). Its shapes are checked on the first
    rows before training.""",
    "module_encoder": """module : torch.nn.Module, callable or None, default=None
    The encoder to train instead of the MLP of ``hidden_layer_sizes``
    (which is then ignored): a module mapping rows ``(batch,
    n_features)`` to a 2-D output of any width, the method's heads being
    built on that width; an autoencoder (such as
    :class:`skdeepclust.nn.ConvAutoencoder`) lends its ``encoder``. Or a
    callable ``module(n_features, embedding_dim)`` that builds one (a
    class, a function, a :func:`functools.partial`). A module is
    deep-copied by each fit and by ``clone``, so its weights are never
    trained in place and never shared between two fits; a callable builds
    it under the fit's seed. Rows stay 2-D: an image network reshapes them
    itself. Its output is checked on the first rows before training.""",
    "batch_size": """batch_size : int or "auto", default="auto"
    Rows per update. An int is used as given in every phase (capped at the
    number of samples). ``"auto"``: {batch_size_auto_default}""",
    "lr": """lr : float, default={lr_default}
    Learning rate of the Adam optimiser.""",
    "pretrain_epochs": """pretrain_epochs : int, default={pretrain_epochs_default}
    Epochs of autoencoder pretraining (reconstruction only).""",
    "pretrain_lr": """pretrain_lr : float, default={pretrain_lr_default}
    Adam learning rate of the pretraining.""",
    "fuzziness": """fuzziness : float, default={fuzziness_default}
    ``m > 1`` of the fuzzy memberships: 1 would give hard memberships,
    large values uniform ones.""",
    "max_epochs": """max_epochs : int, default={max_epochs_default}
    Epochs of the main clustering phase.""",
    "n_init": """n_init : int, default={n_init_default}
    Restarts of each k-means the method runs (as ``KMeans(n_init=...)``);
    the run with the best inertia is kept.""",
    "device": """device : str or torch.device, default="auto"
    Where the networks train: ``"auto"`` takes CUDA when available, else
    the CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` are used as
    given. A device this machine lacks raises a ``ValueError`` in ``fit``.""",
    "accelerator": """accelerator : accelerate.Accelerator, default=None
    Hugging Face Accelerate's accelerator (``pip install accelerate``), to
    train on several devices at once (launched with ``accelerate launch``):
    the phases whose loss is an average over rows train data-parallel
    through skorch's :class:`~skorch.hf.AccelerateMixin`, each process on
    its share of every batch; the others train whole batches on every
    process. Training runs on the accelerator's device, and every process
    ends with the same fitted estimator. See the user guide's "Scaling up"
    page.""",
    "random_state": """random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, shuffles, augmentations and k-means. With
    an int, a fit on CPU repeats bit for bit; the caller's global NumPy,
    torch and Python random states are never changed.""",
    "verbose": """verbose : int, default=0
    0 prints nothing; 1 shows a progress bar per training phase, with the
    current loss, on stderr (a widget in a notebook). Values above 1 show
    the same as 1.""",
    "fitted_attributes": """labels_ : ndarray of shape (n_samples,), dtype=int64
    Cluster of each training sample, in ``0 .. k - 1`` with no unused id
    (``k <= n_clusters``; ``k < n_clusters`` only when a cluster ended
    empty, with a warning). Equal to ``predict`` on the training data.
n_clusters_ : int
    Number of clusters found: ``n_clusters`` unless some ended empty.
n_iter_ : int
    Epochs run, summed over all training phases.
history_ : dict of str to list of float
    Mean training loss of each epoch, per phase.
""" + _INPUT_ATTRIBUTES,
    "input_attributes": _INPUT_ATTRIBUTES,
}
#: The parameters every estimator ends its list with, in this order.
SHARED_DOCS["runtime_parameters"] = "\n".join(
    SHARED_DOCS[key] for key in ("device", "accelerator", "random_state", "verbose"))


def fill_doc(**defaults):
    """Class decorator filling ``{name}`` placeholders of the docstring.

    Parameters
    ----------
    **defaults
        Values for the ``*_default`` fields of the shared texts (for
        example ``embedding_dim_default=10``).

    Returns
    -------
    decorator : callable

    Examples
    --------
    >>> from skdeepclust.utils._docstrings import fill_doc
    >>> @fill_doc()
    ... class A:
    ...     '''Parameters
    ...     ----------
    ...     {n_clusters}
    ...     '''
    >>> "number of clusters" in A.__doc__
    True
    """

    def decorate(cls):
        doc = cls.__doc__
        fields = {}
        for key, text in SHARED_DOCS.items():
            placeholder = "{" + key + "}"
            if placeholder not in doc:
                continue
            text = text.format(**defaults) if "_default}" in text else text
            # Indent continuation lines like the line holding the placeholder.
            line = next(ln for ln in doc.splitlines() if placeholder in ln)
            indent = line[: len(line) - len(line.lstrip())]
            fields[key] = textwrap.indent(text, indent)[len(indent):]
        for key, text in fields.items():
            doc = doc.replace("{" + key + "}", text)
        cls.__doc__ = doc
        return cls

    return decorate
