"""Tiny settings per estimator, so the common checks run in seconds.

A new estimator adds one entry here; ``tests/test_common.py`` finds it
through :func:`skdeepclust.utils.all_estimators`.
"""

TINY_PARAMS = {
    "AutoencoderKMeans": dict(hidden_layer_sizes=(16,), embedding_dim=2, pretrain_epochs=3,
                              batch_size=32, n_init=2),
    # Briefly trained, CC's cluster head can merge two blobs: a larger step and 3 epochs.
    "C3": dict(hidden_layer_sizes=(16,), embedding_dim=8, batch_size=16, pretrain_batch_size=16,
               pretrain_epochs=3, pretrain_lr=3e-3, max_epochs=1, n_neighbors=2),
    # MNet needs some width and updates: a narrow, briefly trained one merges clusters.
    # On these small sets each u-space epoch makes at least 30 updates.
    "DCSS": dict(hidden_layer_sizes=(16,), embedding_dim=2, mnet_hidden_layer_sizes=(32, 32),
                 batch_size=32, pretrain_epochs=3, max_epochs=1, mnet_epochs=2,
                 u_space_epochs=2, mnet_lr=1e-2, n_init=1),
    "DML": dict(hidden_layer_sizes=(16,), embedding_dim=2, batch_size=32, pretrain_epochs=3,
                base_epochs=1, max_epochs=1, n_init=1),
    "FBCC": dict(hidden_layer_sizes=(16,), student_hidden_layer_sizes=(8,), embedding_dim=8,
                 batch_size=16, max_epochs=3, lr=3e-3),
    "PIPCDR": dict(hidden_layer_sizes=(8,), projector_hidden_dim=8, predictor_hidden_dim=8,
                   embedding_dim=4, batch_size=32, max_epochs=2, warmup_epochs=1, n_init=2,
                   momentum=0.5, min_steps=0),
    "RDC": dict(hidden_layer_sizes=(16,), embedding_dim=2, pretrain_epochs=2, max_epochs=2,
                n_neighbors=2, n_iter_no_change=1, batch_size=16, n_init=1),
}

# Checks an estimator is expected to fail, each with its reason (also in the docs).
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def tiny_instance(cls, **overrides):
    """An instance of ``cls`` with its tiny test settings and a fixed seed."""
    params = {**TINY_PARAMS.get(cls.__name__, {}), "random_state": 0, **overrides}
    return cls(**params)
