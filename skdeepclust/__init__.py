"""Deep clustering estimators that drop in where scikit-learn's KMeans stands."""

import os as _os
import sys as _sys

# torch's OpenMP threads busy-wait between parallel regions unless told otherwise, which
# slows a fit several times over when other processes share the cores. OpenMP reads the
# variable once, when torch loads it: too late if torch is already imported, and a user's
# own setting wins.
if "torch" not in _sys.modules and "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from skdeepclust._autoencoder_kmeans import AutoencoderKMeans  # noqa: E402
from skdeepclust._c3 import C3  # noqa: E402
from skdeepclust._dcss import DCSS  # noqa: E402
from skdeepclust._dml import DML  # noqa: E402
from skdeepclust._fbcc import FBCC  # noqa: E402
from skdeepclust._pipcdr import PIPCDR  # noqa: E402
from skdeepclust._rdc import RDC  # noqa: E402

__version__ = "0.1.0"

__all__ = ["AutoencoderKMeans", "C3", "DCSS", "DML", "FBCC", "PIPCDR", "RDC", "__version__"]
