"""How R-DC's phase 2 scales: the neighbour refresh at 10k-200k rows, and a whole fit at 200k.

Part 1 times one R-DC neighbour refresh (the encoder pass over the rows, the 5-NN search of
the 10-d codes, and the core / reliable-neighbour / centroid computation) with the exact
chunked search and with pynndescent, at 10,000, 100,000 and 200,000 rows, and the resident
memory each adds at its peak. The search itself is ``skdeepclust.neighbors.kneighbors``;
``benchmarks/neighbors.py`` measures it alone (k=10, and pynndescent's cold start), and its
data generator and measuring helper are reused here. pynndescent is warmed up once on a
small set first, so its numba compilation (about 40 s per process) is not counted.

Part 2 fits ``RDC`` on 200,000 x 20 standardised rows (small network and few epochs: the
point is that phase 2 never builds an n x n matrix, so the fit stays within memory) and
reports its time and the process's peak resident memory.

Run with the machine otherwise as idle as possible::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/rdc_scaling.py            # both parts
    OMP_WAIT_POLICY=PASSIVE python benchmarks/rdc_scaling.py --sizes 10000 --no-fit

Writes ``benchmarks/results/rdc_scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neighbors import environment, make_data, measure  # noqa: E402

from skdeepclust import RDC  # noqa: E402
from skdeepclust._rdc import neighborhood_targets  # noqa: E402
from skdeepclust._training import batched_apply  # noqa: E402
from skdeepclust.neighbors import kneighbors  # noqa: E402
from skdeepclust.nn import MLPAutoencoder  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "rdc_scaling.json"


def refresh(encoder, X, method, n_neighbors=5):
    """One phase-2 refresh as RDC runs it: codes, kNN, targets."""
    Z = batched_apply(encoder, X).clone()
    distances, indices = kneighbors(Z, n_neighbors, 0, method=method)
    core, sigma, _ = neighborhood_targets(Z, distances, indices, 0.6, 0.6)
    return float(core.float().mean())


def part1(sizes, n_features, methods):
    torch.manual_seed(0)
    encoder = MLPAutoencoder(n_features, (500, 500, 2000), 10).encoder.eval()
    kneighbors(torch.randn(2000, 10), 5, 0, method="approx")  # compile pynndescent once
    rows = []
    for n in sizes:
        X = torch.as_tensor(make_data(n, n_features))
        for method in methods:
            tau, seconds, cpu, peak = measure(refresh, encoder, X, method)
            row = {"n": n, "d_in": n_features, "method": method, "seconds": seconds,
                   "cpu_seconds": cpu, "peak_added_mib": peak, "core_fraction": tau}
            rows.append(row)
            print(f"refresh n={n:>7} {method:>6}: {seconds:7.2f} s, +{peak or float('nan'):7.1f} "
                  f"MiB peak, tau={tau:.3f}", flush=True)
    return rows


def part2(n, n_features):
    X = make_data(n, n_features)
    X = (X - X.mean(0)) / X.std(0)
    params = dict(n_clusters=20, hidden_layer_sizes=(64,), pretrain_epochs=1, max_epochs=3,
                  n_iter_no_change=10, n_init=2, random_state=0)
    t0 = time.perf_counter()
    est = RDC(**params).fit(X)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"n": n, "d_in": n_features, "params": {k: str(v) for k, v in params.items()},
           "seconds": seconds, "process_peak_rss_mib": peak,
           "core_fraction": est.history_["core_fraction"],
           "n_by_n_float32_mib": n * n * 4 / 2**20}
    print(f"fit n={n} x {n_features}: {seconds:.1f} s, process peak RSS {peak:.0f} MiB "
          f"(an n x n float32 matrix would be {out['n_by_n_float32_mib']:.0f} MiB)", flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 200_000])
    parser.add_argument("--methods", nargs="+", default=["exact", "approx"])
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--fit-rows", type=int, default=200_000)
    parser.add_argument("--no-fit", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = {"environment": environment(),
              "refresh": part1(args.sizes, args.features, args.methods)}
    if not args.no_fit:
        result["fit"] = part2(args.fit_rows, args.features)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
