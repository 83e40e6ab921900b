"""Deep clustering estimators that drop in where scikit-learn's KMeans stands."""

from skdeepclust._autoencoder_kmeans import AutoencoderKMeans
from skdeepclust._dcss import DCSS
from skdeepclust._pipcdr import PIPCDR
from skdeepclust._rdc import RDC

__version__ = "0.1.0"

__all__ = ["AutoencoderKMeans", "DCSS", "PIPCDR", "RDC", "__version__"]
