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

from skdeepclust.neighbors import _GRAPH_DEGREE, _exact, kneighbors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import reset_peak, status_kib  # noqa: E402

nan = float("nan")
RESULTS = Path(__file__).resolve().parent / "results" / "neighbors.json"


def make_data(n, d, seed=0):
    """Gaussian blobs: 20 centres spread wider than the unit-variance clusters."""
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=4.0, size=(20, d))
    labels = rng.randint(20, size=n)
    return (centres[labels] + rng.normal(size=(n, d))).astype(np.float32)


def measure(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds of all threads, MiB of resident memory the call
    added at its peak or None)."""
    can_reset = reset_peak()
    before = status_kib("VmRSS") if can_reset else None
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = None
    if can_reset and before is not None:
        peak = (status_kib("VmHWM") - before) / 1024
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


HEADER = (f"{'d':>4} {'n':>8} {'exact s':>9} {'(cpu s)':>9} {'exact MiB':>10} "
          f"{'approx s':>9} {'(cpu s)':>9} {'approx MiB':>11} {'recall':>7}")


def format_row(row):
    def get(key):
        value = row.get(key)
        return nan if value is None else value

    return (f"{row['d']:>4} {row['n']:>8} {get('exact_s'):>9.2f} {get('exact_cpu_s'):>9.2f} "
            f"{get('exact_peak_mib'):>10.0f} {get('approx_warm_s'):>9.2f} "
            f"{get('approx_warm_cpu_s'):>9.2f} {get('approx_peak_mib'):>11.0f} "
            f"{get('recall'):>7.4f}")


def crossover(rows, jit_s, calls, key_exact, key_approx, scale=1.0):
    """Smallest n from which approx + jit / calls beats exact, or None if not measured.

    ``scale`` divides the search times (not the single-threaded compilation). Between two
    measured sizes each method's time is taken as a power of n (a straight line in log-log).
    """
    rows = sorted((r for r in rows if key_exact in r and key_approx in r), key=lambda r: r["n"])
    ns = np.array([r["n"] for r in rows], dtype=float)
    exact = np.array([r[key_exact] for r in rows]) / scale
    approx = np.array([r[key_approx] for r in rows]) / scale
    gap = exact - approx - jit_s / calls
    if len(gap) and gap[0] > 0:
        return f"<= {int(ns[0])}"
    for i in range(len(ns) - 1):
        if gap[i] <= 0 < gap[i + 1]:
            log_n = np.linspace(np.log(ns[i]), np.log(ns[i + 1]), 2001)
            t = (log_n - log_n[0]) / (log_n[-1] - log_n[0])
            e = np.exp(np.log(exact[i]) + t * np.log(exact[i + 1] / exact[i]))
            a = np.exp(np.log(approx[i]) + t * np.log(approx[i + 1] / approx[i]))
            first = np.argmax(e - a - jit_s / calls > 0)
            return int(round(np.exp(log_n[first]), -2))
    return None


def summarise(report):
    """Crossover sizes per d, from CPU seconds and from an idle-machine wall estimate."""
    c = report["cold"]
    threads = report["environment"]["torch_threads"]
    out = {}
    for d in sorted({r["d"] for r in report["rows"]}):
        rows = [r for r in report["rows"] if r["d"] == d]
        out[d] = {}
        for calls in (1, 10, 100):
            out[d][f"cpu_s_jit_over_{calls}_calls"] = crossover(
                rows, c["jit_cpu_s"], calls, "exact_cpu_s", "approx_warm_cpu_s")
            # Both searches run on all threads, the compilation on one.
            out[d][f"idle_wall_jit_over_{calls}_calls"] = crossover(
                rows, c["jit_cpu_s"], calls, "exact_cpu_s", "approx_warm_cpu_s", scale=threads)
    return out


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
        "cuda": torch.cuda.is_available(), "approx_graph_degree": _GRAPH_DEGREE,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--recall-rows", type=int, default=2000,
                        help="rows on which recall@k is computed")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--methods", nargs="+", choices=["exact", "approx"],
                        default=["exact", "approx"])
    parser.add_argument("--merge", action="store_true",
                        help="update the rows of the JSON in --out (e.g. approx only, after a "
                             "change to it, keeping the slow exact timings)")
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--summarise", action="store_true",
                        help="only recompute the crossover sizes of the JSON in --out")
    args = parser.parse_args(argv)

    if args.summarise:
        report = json.loads(args.out.read_text())
        report["crossover"] = summarise(report)
        args.out.write_text(json.dumps(report, indent=2))
        print(HEADER)
        print("\n".join(format_row(r) for r in report["rows"]))
        print(json.dumps(report["crossover"], indent=2))
        return

    if args.cold:
        print(json.dumps(cold(args.sizes[0], args.dims[0], args.k)))
        return

    methods = set(args.methods)
    report = {"k": args.k, "rows": []}
    if args.merge and args.out.exists():
        report = json.loads(args.out.read_text())
    report.update(environment=environment(), load_average_start=os.getloadavg())
    if "approx" not in methods and "cold" not in report:
        parser.error("--methods exact needs --merge onto a JSON that has the approx results")
    if "approx" in methods:
        # The compile cost exists once per interpreter: measure it in a fresh one.
        proc = subprocess.run(
            [sys.executable, __file__, "--cold", "--sizes", str(args.sizes[0]),
             "--dims", str(args.dims[0]), "--k", str(args.k)],
            capture_output=True, text=True, check=True,
        )
        report["cold"] = json.loads(proc.stdout.strip().splitlines()[-1])
        # Compile here too, outside the timings.
        kneighbors(make_data(2000, 5), args.k, 0, method="approx")
    c = report["cold"]
    print(f"pynndescent cold ({c['n']} x {c['d']}): import {c['import_s']:.1f} s, first call "
          f"{c['first_call_s']:.1f} s, warm {c['warm_call_s']:.1f} s -> JIT {c['jit_s']:.1f} s "
          f"wall, {c['jit_cpu_s']:.1f} s CPU", flush=True)

    print(HEADER, flush=True)
    rows_by_key = {(r["n"], r["d"]): r for r in report["rows"]}
    sample = np.random.RandomState(1)
    for d in args.dims:
        for n in args.sizes:
            X = make_data(n, d)
            Xt = torch.from_numpy(X)
            row = rows_by_key.setdefault((n, d), {"n": n, "d": d})
            if "exact" in methods:
                _, t, cpu, mem = measure(kneighbors, Xt, args.k, method="exact")
                row.update(exact_s=t, exact_cpu_s=cpu, exact_peak_mib=mem)
            if "approx" in methods:
                (_, a_idx), t, cpu, mem = measure(kneighbors, Xt, args.k, 0, method="approx")
                row.update(approx_warm_s=t, approx_warm_cpu_s=cpu, approx_peak_mib=mem,
                           approx_first_call_s=t + c["jit_s"])
                rows = torch.from_numpy(
                    sample.choice(n, size=min(args.recall_rows, n), replace=False))
                _, e_idx = _exact(Xt, args.k, rows)
                row["recall"] = recall(a_idx[rows], e_idx)
            row[f"load_average_{'_'.join(sorted(methods))}"] = os.getloadavg()
            report["rows"] = sorted(rows_by_key.values(), key=lambda r: (r["d"], r["n"]))
            print(format_row(row), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))
    report["load_average_end"] = os.getloadavg()
    report["crossover"] = summarise(report)
    args.out.write_text(json.dumps(report, indent=2))
    print("Smallest n where approx (compile amortised over 1 / 10 / 100 calls) beats exact:")
    print(json.dumps(report["crossover"], indent=2))
    print(f"JIT (once per process): {c['jit_s']:.1f} s wall, {c['jit_cpu_s']:.1f} s CPU; "
          f"approx first call = warm + JIT; load average {report['load_average_end']}. "
          f"Written to {args.out}")


if __name__ == "__main__":
    main()
