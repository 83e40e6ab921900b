"""Estimator configurations benchmarked by ``quality.py`` (one entry per row of its table).

Each method adds its rows here: label -> (estimator class name in skdeepclust, parameters).
Parameters are the defaults a user gets unless a row says otherwise (ablations).
"""

QUALITY_CONFIGS = {
    "AutoencoderKMeans": ("AutoencoderKMeans", {}),
    "RDC": ("RDC", {}),
    "RDC phase-1-only ablation (max_epochs=0)": ("RDC", {"max_epochs": 0}),
    "DCSS": ("DCSS", {}),
    "DCSS_u phase-1-only ablation (mnet_epochs=0)": ("DCSS", {"mnet_epochs": 0}),
    "DML": ("DML", {}),
    "DML base-alone ablation (max_epochs=0)": ("DML", {"max_epochs": 0}),
    "DML on autoencoder + k-means (base='ae')": ("DML", {"base": "ae"}),
    "PIPCDR": ("PIPCDR", {}),
    "PIPCDR BYOL ablation (cdr_weight=0, sigma=0)": ("PIPCDR", {"cdr_weight": 0.0, "sigma": 0.0}),
    "C3": ("C3", {}),
    "C3 CC-alone ablation (max_epochs=0)": ("C3", {"max_epochs": 0}),
    "C3 unweighted ablation (gamma=0)": ("C3", {"gamma": 0.0}),
    "FBCC": ("FBCC", {}),
}
