"""Two synthetic tables with the traits of data where the package's estimators fail or lose.

Neither is in the 26-table suite (its means stay comparable); ``suite.py --tables`` takes them by
name, and ``--synthetic`` adds both. Each is drawn once, from a fixed seed, so a table is the
same in every run; the run's seed only seeds the estimators.

* ``synthetic_images``: flattened small images. 1,500 rows of 16 x 16 = 256 pixels in
  ``[0, 1]``, 6 classes of strokes (a vertical bar, a horizontal bar, a diagonal, the other
  diagonal, a ring, a filled square) at a random position (jitter of up to 1 pixel), stroke
  width and intensity, with faint pixel noise; a two-pixel border is always background, so 60
  columns are constant. Standardised like every table (constant columns stay 0). KMeans reaches
  ACC about 0.74 (seeds 0-2).
* ``synthetic_embeddings``: embeddings of a pretrained network for a turntable object set
  (the COIL-20 shape): 1,440 rows, 20 classes of 72 poses each, 512 non-negative features.
  Each class is a closed curve (the object turning through 360 degrees) around its own centre:
  ``relu(c_k + A_k [cos t, sin t, cos 2t, sin 2t] + noise)`` in a 512-d space. The curves are
  long next to the distance between centres, so each class is a thin loop, not a ball:
  neighbour graphs follow it, centroid methods cut across it.

Examples::

    python benchmarks/suite.py --synthetic --tables synthetic_images synthetic_embeddings
    python -c "import synthetic_tables as s; print(s.synthetic_images()[0].shape)"
"""

from __future__ import annotations

import numpy as np

SYNTHETIC_TABLES = ("synthetic_images", "synthetic_embeddings")


def synthetic_images(n_samples=1500, size=16, seed=0):
    """``(X, y)``: flattened ``size x size`` images of 6 stroke classes on a fixed background."""
    rng = np.random.RandomState(seed)
    y = np.arange(n_samples) % 6
    rng.shuffle(y)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    centre = (size - 1) / 2
    X = np.zeros((n_samples, size, size))
    for i, label in enumerate(y):
        dr, dc = rng.randint(-1, 2, size=2)
        r, c = rows - centre - dr, cols - centre - dc
        width = rng.uniform(0.8, 1.6)
        if label == 0:    # vertical bar
            mask = (np.abs(c) <= width) & (np.abs(r) <= 4.5)
        elif label == 1:  # horizontal bar
            mask = (np.abs(r) <= width) & (np.abs(c) <= 4.5)
        elif label == 2:  # diagonal
            mask = (np.abs(r - c) <= 1.2 * width) & (np.abs(r + c) <= 8)
        elif label == 3:  # other diagonal
            mask = (np.abs(r + c) <= 1.2 * width) & (np.abs(r - c) <= 8)
        elif label == 4:  # ring
            mask = np.abs(np.hypot(r, c) - 3.5) <= 0.7 * width
        else:             # filled square
            mask = (np.abs(r) <= 2 + width) & (np.abs(c) <= 2 + width)
        X[i][mask] = rng.uniform(0.6, 1.0)
    X += rng.uniform(0, 0.05, size=X.shape)
    border = np.ones((size, size), dtype=bool)
    border[2:-2, 2:-2] = False
    X[:, border] = 0.0  # the fixed background
    return np.clip(X, 0, 1).reshape(n_samples, -1), y


def synthetic_embeddings(n_classes=20, n_poses=72, n_features=512, seed=0):
    """``(X, y)``: 20 closed curves of 72 poses each, non-negative 512-d "network features"."""
    rng = np.random.RandomState(seed)
    t = np.linspace(0, 2 * np.pi, n_poses, endpoint=False)
    basis = np.stack([np.cos(t), np.sin(t), np.cos(2 * t), np.sin(2 * t)], axis=1)
    X, y = [], []
    for k in range(n_classes):
        centre = rng.normal(0.0, 1.0, n_features)
        loop = rng.normal(0.0, 1.0, (4, n_features)) * np.array([1.1, 1.1, 0.55, 0.55])[:, None]
        X.append(centre + basis @ loop + rng.normal(0, 0.15, (n_poses, n_features)))
        y.append(np.full(n_poses, k))
    X = np.maximum(np.concatenate(X), 0.0)
    y = np.concatenate(y)
    order = rng.permutation(len(y))
    return X[order], y[order]


def load_synthetic(name):
    """``(X, y)`` of one of :data:`SYNTHETIC_TABLES` (unscaled)."""
    return {"synthetic_images": synthetic_images,
            "synthetic_embeddings": synthetic_embeddings}[name]()
