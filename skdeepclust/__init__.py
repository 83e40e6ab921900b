"""Deep clustering estimators that drop in where scikit-learn's KMeans stands."""

from skdeepclust._autoencoder_kmeans import AutoencoderKMeans
from skdeepclust._rdc import RDC

__version__ = "0.1.0"

__all__ = ["AutoencoderKMeans", "RDC", "__version__"]
