"""Exact chunked k-NN search against pynndescent on this machine's CPU.

Times ``kneighbors(method="exact")`` and ``kneighbors(method="approx")`` for k=10 over
n = 10k, 50k, 100k, 200k rows and d = 10, 50 features (Gaussian blobs), with the peak
resident memory each call adds, and the recall@k of the approximate result. pynndescent
compiles its numba functions on its first call in a process; that cost is measured once in
a fresh interpreter (``--cold``) and reported separately from the warm times.

Prints a table and writes ``benchmarks/results/neighbors.json``. The thresholds in
``skdeepclust/neighbors.py`` come from this table. Run it with the machine otherwise as
idle as possible::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/neighbors.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from skdeepclust.neighbors import kneighbors

RESULTS = Path(__file__).resolve().parent / "results" / "neighbors.json"


def make_data(n, d, seed=0):
    """Gaussian blobs: 20 centres spread wider than the unit-variance clusters."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=4.0, size=(20, d))
    labels = rng.randint(20, size=n)
    return (centres[labels] + rng.normal(size=(n, d))).astype(np.float32)


def _status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def _reset_peak():
    """Reset the kernel's resident-memory high-water mark (Linux >= 4.0); False if not."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of all threads, MiB of resident memory the call
    added at its peak or None)."""
    can_reset = _reset_peak()
    before = _status_kib("VmRSS") if can_reset else None
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = None
    if can_reset and before is not None:
        peak = (_status_kib("VmHWM") - before) / 1024
    return result, seconds, cpu, peak


def recall(approx_idx, exact_idx):
    a, e = np.asarray(approx_idx), np.asarray(exact_idx)
    hits = (a[:, :, None] == e[:, None, :]).any(axis=2)
    return float(hits.mean())


def cold(n, d, k):
    """In this (fresh) interpreter: import, first (compiling) and second approx call."""
    X = make_data(n, d)
    t0 = time.perf_counter()
    import pynndescent  # noqa: F401

    t_import = time.perf_counter() - t0
    _, t_first, cpu_first, _ = measure(kneighbors, X, k, 0, method="approx")
    _, t_warm, cpu_warm, _ = measure(kneighbors, X, k, 0, method="approx")
    return {"n": n, "d": d, "import_s": t_import, "first_call_s": t_first,
            "warm_call_s": t_warm, "jit_s": t_first - t_warm, "first_call_cpu_s": cpu_first,
            "warm_call_cpu_s": cpu_warm, "jit_cpu_s": cpu_first - cpu_warm,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def environment():
    import numba
    import pynndescent

    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "numba": numba.__version__,
        "pynndescent": pynndescent.__version__, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "numba_threads": numba.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "machine": platform.processor() or platform.machine(),
        "cuda": torch.cuda.is_available(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--recall-rows", type=int, default=2000,
                        help="rows on which recall@k is computed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.cold:
        print(json.dumps(cold(args.sizes[0], args.dims[0], args.k)))
        return

    report = {"k": args.k, "environment": environment(), "load_average_start": os.getloadavg()}
    # The compile cost exists once per interpreter: measure it in a fresh one.
    proc = subprocess.run(
        [sys.executable, __file__, "--cold", "--sizes", str(args.sizes[0]),
         "--dims", str(args.dims[0]), "--k", str(args.k)],
        capture_output=True, text=True, check=True,
    )
    report["cold"] = json.loads(proc.stdout.strip().splitlines()[-1])
    c = report["cold"]
    print(f"pynndescent cold ({c['n']} x {c['d']}): import {c['import_s']:.1f} s, first call "
          f"{c['first_call_s']:.1f} s, warm {c['warm_call_s']:.1f} s -> JIT {c['jit_s']:.1f} s "
          f"wall, {c['jit_cpu_s']:.1f} s CPU", flush=True)

    # Compile here too, outside the timings.
    kneighbors(make_data(2000, 5), args.k, 0, method="approx")
    report["rows"] = []
    header = (f"{'d':>4} {'n':>8} {'exact s':>9} {'(cpu s)':>9} {'exact MiB':>10} "
              f"{'approx s':>9} {'(cpu s)':>9} {'approx MiB':>11} {'recall':>7}")
    print(header, flush=True)
    sample = np.random.RandomState(1)
    for d in args.dims:
        for n in args.sizes:
            X = make_data(n, d)
            Xt = torch.from_numpy(X)
            (_, e_idx), t_exact, cpu_exact, m_exact = measure(
                kneighbors, Xt, args.k, method="exact")
            (_, a_idx), t_approx, cpu_approx, m_approx = measure(
                kneighbors, Xt, args.k, 0, method="approx")
            rows = sample.choice(n, size=min(args.recall_rows, n), replace=False)
            row = {"n": n, "d": d, "exact_s": t_exact, "exact_cpu_s": cpu_exact,
                   "exact_peak_mib": m_exact, "approx_warm_s": t_approx,
                   "approx_warm_cpu_s": cpu_approx, "approx_peak_mib": m_approx,
                   "approx_first_call_s": t_approx + c["jit_s"],
                   "recall": recall(a_idx[rows], e_idx[rows]), "load_average": os.getloadavg()}
            report["rows"].append(row)
            print(f"{d:>4} {n:>8} {t_exact:>9.2f} {cpu_exact:>9.2f} "
                  f"{m_exact or float('nan'):>10.0f} {t_approx:>9.2f} {cpu_approx:>9.2f} "
                  f"{m_approx or float('nan'):>11.0f} {row['recall']:>7.4f}", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))
    report["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2))
    print(f"JIT (once per process): {c['jit_s']:.1f} s wall, {c['jit_cpu_s']:.1f} s CPU; "
          f"approx first call = warm + JIT; load average {report['load_average_end']}. "
          f"Written to {args.out}")


if __name__ == "__main__":
    main()
