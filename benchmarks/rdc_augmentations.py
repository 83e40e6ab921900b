"""RDC on digits with each augmentation, including the paper's kind (image shifts).

The paper augments images with random shifts and rotations in both phases. Digits rows are
8 x 8 images, so a shift by up to one pixel (12 % of the width, the paper's 10 % of 28
pixels is about 3) can be written as an ``augmentation`` callable; the package's tabular
augmentations are run beside it.

Example::

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python benchmarks/rdc_augmentations.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load  # noqa: E402
from quality import RESULTS_DIR, clustering_accuracy, environment  # noqa: E402

from skdeepclust import RDC  # noqa: E402


def shift_8x8(x, generator):
    """Shift each 8 x 8 image by -1, 0 or +1 pixel in each direction (zero fill)."""
    n = x.shape[0]
    padded = torch.nn.functional.pad(x.reshape(n, 8, 8), (1, 1, 1, 1))
    views = torch.stack([padded[:, i:i + 8, j:j + 8].reshape(n, 64)
                         for i in range(3) for j in range(3)], dim=1)
    pick = torch.randint(0, 9, (n,), generator=generator, device=generator.device)
    return views[torch.arange(n, device=x.device), pick.to(x.device)]


AUGMENTATIONS = {"none (default)": None, "shift 8x8": shift_8x8, "noise": "noise",
                 "corruption": "corruption", "mask": "mask"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "rdc-augmentations-digits.json")
    args = parser.parse_args(argv)
    X, y = load("digits")
    result = {"command": " ".join(sys.argv), "environment": environment(),
              "load_average": os.getloadavg(), "records": []}
    for name, augmentation in AUGMENTATIONS.items():
        for max_epochs, label in ((50, "RDC"), (0, "phase 1 only")):
            for seed in range(args.seeds):
                start = time.perf_counter()
                est = RDC(n_clusters=10, augmentation=augmentation, max_epochs=max_epochs,
                          random_state=seed).fit(X)
                record = {"augmentation": name, "variant": label, "seed": seed,
                          "acc": clustering_accuracy(y, est.labels_),
                          "seconds": time.perf_counter() - start}
                result["records"].append(record)
                print(json.dumps(record), flush=True)
                args.out.write_text(json.dumps(result, indent=1))
    print("\n| augmentation | RDC | phase 1 only |\n|---|---|---|")
    for name in AUGMENTATIONS:
        cells = []
        for label in ("RDC", "phase 1 only"):
            accs = [r["acc"] for r in result["records"]
                    if r["augmentation"] == name and r["variant"] == label]
            cells.append(f"{np.mean(accs):.3f} ± {np.std(accs):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
