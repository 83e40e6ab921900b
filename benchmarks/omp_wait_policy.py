"""A short fit with torch's OpenMP threads spinning, against the same fit with them passive.

``import skdeepclust`` sets ``OMP_WAIT_POLICY=PASSIVE`` when the variable is unset and torch
is not imported yet; importing torch first leaves OpenMP at its default, whose idle threads
spin. Each fit (``AutoencoderKMeans`` on Gaussian blobs) runs in a fresh interpreter without
the variable, either as ``import torch; import skdeepclust`` ("torch first", spinning) or
``import skdeepclust`` ("skdeepclust first", passive), while a busy-loop process occupies one
core, as another user's job would on a shared machine. The two orders alternate (A B B A
...) and the medians of wall and CPU seconds are compared.

Prints a summary and writes ``benchmarks/results/omp-wait-policy.json``::

    python benchmarks/omp_wait_policy.py                        # 1,000 x 20, 2 epochs, 1 repeat
    python benchmarks/omp_wait_policy.py --repeats 3 --pretrain-epochs 10
    python benchmarks/omp_wait_policy.py --busy 0               # no competing process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "omp-wait-policy.json"

IMPORTS = {"torch first": "import torch\nimport skdeepclust\n",
           "skdeepclust first": "import skdeepclust\n"}

# Run in the child after the imports; prints one JSON line.
FIT = """
import json, os, time
import numpy as np
import torch
from sklearn.datasets import make_blobs
from skdeepclust import AutoencoderKMeans

X, _ = make_blobs(n_samples={n_samples}, n_features={n_features}, centers=5, random_state=0)
X = X.astype(np.float32)
est = AutoencoderKMeans(5, pretrain_epochs={epochs}, random_state=0)
wall, cpu = time.perf_counter(), time.process_time()
est.fit(X)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps(dict(wall_s=wall, cpu_s=cpu, threads=torch.get_num_threads(),
                      omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))))
"""


# One core's worth of load; it ends by itself once this script is gone, however it ended.
BUSY = """
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


def run_fit(order, args):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    code = IMPORTS[order] + FIT.format(n_samples=args.n_samples, n_features=args.n_features,
                                       epochs=args.pretrain_epochs)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=ROOT, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def environment():
    return {
        "python": platform.python_version(),
        "torch": version("torch"),
        "sklearn": version("scikit-learn"),
        "skorch": version("skorch"),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-features", type=int, default=20)
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="fits per import order")
    parser.add_argument("--busy", type=int, default=1,
                        help="busy-loop processes running during the fits (default: 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    report = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": environment(),
        "load_average_start": os.getloadavg(),
        "runs": [],
    }
    busy = [subprocess.Popen([sys.executable, "-c", BUSY, str(os.getpid())])
            for _ in range(args.busy)]
    try:
        time.sleep(1.0 if busy else 0.0)  # let the busy loops get scheduled
        report["load_average_busy"] = os.getloadavg()
        orders = list(IMPORTS)
        for i in range(args.repeats):
            for order in (orders if i % 2 == 0 else orders[::-1]):
                run = dict(order=order, **run_fit(order, args))
                report["runs"].append(run)
                print(f"{order:>17}: {run['wall_s']:6.2f} s wall, {run['cpu_s']:6.2f} s CPU "
                      f"(OMP_WAIT_POLICY={run['omp_wait_policy']}, "
                      f"{run['threads']} threads)", flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    report["load_average_end"] = os.getloadavg()

    summary = {}
    for order in IMPORTS:
        runs = [r for r in report["runs"] if r["order"] == order]
        summary[order] = {"median_wall_s": statistics.median(r["wall_s"] for r in runs),
                          "median_cpu_s": statistics.median(r["cpu_s"] for r in runs)}
    spinning, passive = summary["torch first"], summary["skdeepclust first"]
    summary["wall_ratio_spinning_over_passive"] = (
        spinning["median_wall_s"] / passive["median_wall_s"])
    report["summary"] = summary
    print(f"median wall: torch first {spinning['median_wall_s']:.2f} s, skdeepclust first "
          f"{passive['median_wall_s']:.2f} s, ratio "
          f"{summary['wall_ratio_spinning_over_passive']:.2f}; load average "
          f"{report['load_average_end']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
