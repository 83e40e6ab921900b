"""What a fit costs: seconds and peak memory of every estimator at its defaults, by data size.

Part 1, fits. Every estimator of the package (found by ``skdeepclust.utils.all_estimators``)
at its defaults, scikit-learn's ``KMeans()`` (its default ``n_init``) and
``MiniBatchKMeans()``, each with ``n_clusters=5`` and ``random_state=0``, fits standardised
Gaussian blobs (``make_blobs``: 5 centres, 50 features, seed 0; 200, 1,000, 10,000 and
100,000 rows by default). Each fit runs in a fresh Python process, so that its peak memory is
its own:

* seconds: wall time and the process's CPU time (all threads) of ``fit`` alone;
* peak memory: the peak resident set size during ``fit`` minus the resident set size just
  before it (after the imports and the data). On Linux the high-water mark is reset before
  the fit (``/proc/self/clear_refs``), so a larger peak while the data were made does not
  hide the fit's; the peak is the process's ``VmHWM`` there (elsewhere
  ``getrusage(RUSAGE_SELF).ru_maxrss``, which also counts the forking parent's peak). This is
  what the process asks of the machine (torch's allocator and the data copies included),
  which ``tracemalloc`` does not see.

Before the fit the worker creates and steps one Adam optimiser (the first one a process
creates imports ``torch._dynamo``, a one-time cost of several seconds) and its time is
recorded apart, as ``warmup_seconds``. A fit that runs over ``--timeout`` seconds is killed
and recorded as such; the larger sizes of that estimator are then skipped. Torch,
OpenMP and BLAS get ``--threads`` threads (default 2).

Part 2, steps. The time of one optimiser step on a batch of 32 rows through the package's
skorch layer (``skdeepclust._training.train_phase``) against a raw torch loop over the same
module (the ``50-500-500-2000-10`` MLP autoencoder, the default shape of the autoencoder
methods on 50 features), with the same weights and the same seeded permutations: the loops
of ``benchmarks/speed.py`` on 960 rows, i.e. 30 steps per epoch, what the small-data rule
gives any table of up to 960 rows. Runs alternate, the first epoch of each is dropped; the
median seconds per epoch divided by the steps per epoch give microseconds per step, and the
ratio of the two loops is the overhead per step that a small table pays.

Scale. ``--features`` sets the width of the data (default 50) and ``--params`` a JSON dict of
parameters given to each estimator of the package that has them (the others ignore a key;
each record lists the ones applied), e.g. fewer epochs for a million rows, where the peak
memory is the figure sought: it barely depends on the epochs, the time does. The scale
table of the documentation (``benchmarks/results/scale.json``) is::

    nice -n 5 python benchmarks/cost.py --sizes 1000000 --features 100 --no-steps \
        --params '{"pretrain_epochs": 1, "max_epochs": 1, "base_epochs": 1, "mnet_epochs": 1,
                   "mnet_warmup_epochs": 0, "u_space_epochs": 1, "warmup_epochs": 0}' \
        --out benchmarks/results/scale-1m.json

Writes ``benchmarks/results/cost.json`` (every measurement, the command and the environment)
and ``cost.md`` beside it (the tables); ``--markdown`` prints the tables of an existing file.

Examples::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/cost.py                # everything, ~hours
    python benchmarks/cost.py --sizes 200 1000 --estimators KMeans AutoencoderKMeans
    python benchmarks/cost.py --sizes 200 --timeout 60 --out /tmp/cost.json
    python benchmarks/cost.py --markdown                             # tables of cost.json
    python benchmarks/cost.py --sizes 10000 --features 100 --params '{"max_epochs": 1}'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _memory import peak_kib, reset_peak, status_kib  # noqa: E402

RESULTS_DIR = HERE / "results"
DEFAULT_SIZES = (200, 1000, 10000, 100000)
N_FEATURES = 50
N_CLUSTERS = 5
BASELINES = ("KMeans", "MiniBatchKMeans")
# Imports and data creation are not part of the timed fit; they get this long on their own.
SETUP_TIMEOUT = 600
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def package_estimators():
    from skdeepclust.utils import all_estimators

    return [name for name, _ in all_estimators()]


def make_data(n_rows, seed=0, n_features=N_FEATURES):
    """Standardised blobs: ``(X float32, y)``, ``N_CLUSTERS`` centres, ``n_features`` columns."""
    import numpy as np
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n_rows, n_features=n_features, centers=N_CLUSTERS,
                      random_state=seed)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y


def applicable(name, params):
    """The entries of ``params`` that estimator ``name`` of the package accepts."""
    if name in BASELINES or not params:
        return {}
    import skdeepclust

    accepted = getattr(skdeepclust, name)().get_params(deep=False)
    return {k: v for k, v in params.items() if k in accepted}


def make_estimator(name, device, params=None):
    if name in BASELINES:
        import sklearn.cluster

        return getattr(sklearn.cluster, name)(n_clusters=N_CLUSTERS, random_state=0)
    import skdeepclust

    extra = {} if device is None else {"device": device}
    return getattr(skdeepclust, name)(n_clusters=N_CLUSTERS, random_state=0, **extra,
                                      **applicable(name, params))


# ----------------------------------------------------------------------------- worker


def _say(**message):
    print(json.dumps(message), flush=True)


def worker(name, n_rows, threads, device, n_features=N_FEATURES, params=None):
    """One fit in this (fresh) process; reports JSON lines on stdout."""
    t_start = time.perf_counter()
    import numpy as np
    import torch

    from skdeepclust.metrics import clustering_accuracy

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p])
    p.sum().backward()
    opt.step()
    warmup = time.perf_counter() - t0
    X, y = make_data(n_rows, n_features=n_features)
    est = make_estimator(name, device, params)
    import_seconds = time.perf_counter() - t_start - warmup
    reset = reset_peak()
    rss_before = status_kib("VmRSS")
    peak_before = peak_kib()
    _say(event="ready", rss_before_kib=rss_before, peak_before_kib=peak_before,
         peak_reset=reset, import_seconds=import_seconds, warmup_seconds=warmup)
    wall, cpu = time.perf_counter(), time.process_time()
    est.fit(X)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_after = peak_kib()
    base = rss_before if rss_before is not None else peak_before
    labels = np.asarray(est.labels_)
    result = {"event": "done", "seconds": wall, "cpu_seconds": cpu,
              "peak_rss_kib": peak_after, "peak_rss_delta_mib": (peak_after - base) / 1024,
              "acc": float(clustering_accuracy(y, labels)),
              "n_labels": int(len(np.unique(labels))),
              "n_iter": int(getattr(est, "n_iter_", 0) or 0),
              "device": str(getattr(est, "device_", "cpu")),
              "torch_threads": torch.get_num_threads()}
    if result["device"].startswith("cuda"):
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    _say(**result)


# ------------------------------------------------------------------------------ runner


def _reader(stream, lines):
    for line in stream:
        lines.put(line)
    lines.put(None)


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker leads a process group of its own
    except ProcessLookupError:
        pass
    proc.wait()


def run_fit(name, n_rows, threads, timeout, device, n_features=N_FEATURES, params=None):
    """Run one fit in a fresh process; its record (errors and timeouts recorded)."""
    rec = {"estimator": name, "n_rows": n_rows, "n_features": n_features,
           "n_clusters": N_CLUSTERS, "params": applicable(name, params), "timeout": timeout,
           "timed_out": False, "error": None, "load_average": os.getloadavg()}
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARIABLES})
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(n_rows),
           "--threads", str(threads), "--features", str(n_features),
           "--params", json.dumps(params or {})] + (["--device", device] if device else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    lines = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    errors = []
    threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True).start()
    deadline = time.monotonic() + SETUP_TIMEOUT
    state = "setup"
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            _kill(proc)
            if state == "fit":
                rec["timed_out"] = True
            else:
                rec["error"] = f"setup took over {SETUP_TIMEOUT} s"
            break
        if line is None:  # the worker ended without a result
            proc.wait()
            rec["error"] = (f"worker exited with {proc.returncode}: "
                            + "".join(errors[-20:]).strip()[-2000:])
            break
        try:
            msg = json.loads(line)
        except ValueError:
            continue  # something else printed on stdout
        if msg.get("event") == "ready":
            rec.update({k: v for k, v in msg.items() if k != "event"})
            state, deadline = "fit", time.monotonic() + timeout
        elif msg.get("event") == "done":
            rec.update({k: v for k, v in msg.items() if k != "event"})
            proc.wait()
            break
    return rec


# ------------------------------------------------------------------------------- steps


def step_overhead(threads, n_rows, batch_size, epochs, repeats, seed=0):
    """Microseconds per step, skorch layer against a raw loop (the loops of speed.py)."""
    import torch

    sys.path.insert(0, str(HERE))
    from speed import benchmark

    torch.set_num_threads(threads)
    summary, runs = benchmark(torch.device("cpu"), n_rows, N_FEATURES, epochs, repeats,
                              batch_size, 1e-3, seed)
    steps = -(-n_rows // batch_size)
    out = {"n_rows": n_rows, "n_features": N_FEATURES, "batch_size": batch_size,
           "steps_per_epoch": steps, "epochs_per_run": epochs, "repeats": repeats,
           "module": f"MLPAutoencoder({N_FEATURES}, (500, 500, 2000), 10)",
           "torch_threads": torch.get_num_threads(), "runs": runs}
    for clock, row in summary.items():
        out[clock] = {"raw_us_per_step": row["raw"]["median"] / steps * 1e6,
                      "skorch_us_per_step": row["skorch"]["median"] / steps * 1e6,
                      "raw_us_per_step_min": row["raw"]["min"] / steps * 1e6,
                      "skorch_us_per_step_min": row["skorch"]["min"] / steps * 1e6,
                      "ratio_median": row["ratio_median"], "ratio_min": row["ratio_min"]}
    return out


# ------------------------------------------------------------------------------ report


def _cell(rec, key, fmt, timed_out="timed out"):
    if rec is None:
        return "-"
    if rec.get("timed_out"):
        return timed_out.format(**rec)
    if rec.get("skipped"):
        return "skipped"
    if rec.get("error"):
        return "error"
    return fmt.format(rec[key])


def tables(report):
    """The markdown tables of a report: fit seconds, peak memory, per-step overhead."""
    fits = report.get("fits", [])
    names = list(dict.fromkeys(r["estimator"] for r in fits))
    sizes = sorted({r["n_rows"] for r in fits})
    by = {(r["estimator"], r["n_rows"]): r for r in fits}
    head = "| estimator | " + " | ".join(f"{n:,} rows" for n in sizes) + " |"
    rule = "|---|" + "---|" * len(sizes)
    widths = sorted({r.get("n_features", N_FEATURES) for r in fits}) or [N_FEATURES]
    features = " or ".join(str(w) for w in widths)
    lines = [f"Fit seconds, wall (process CPU), {features} features, {N_CLUSTERS} clusters:",
             "", head, rule]
    for name in names:
        cells = []
        for n in sizes:
            rec = by.get((name, n))
            text = _cell(rec, "seconds", "{:.1f}", "> {timeout:g}")
            if rec is not None and "cpu_seconds" in rec and not rec.get("timed_out"):
                text += f" ({rec['cpu_seconds']:.1f})"
            cells.append(text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Peak memory of the fit (MiB above the process before it):", "", head, rule]
    for name in names:
        cells = [_cell(by.get((name, n)), "peak_rss_delta_mib", "{:.0f}") for n in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    steps = report.get("steps")
    if steps:
        lines += ["", f"One optimiser step on {steps['batch_size']} rows "
                      f"({steps['module']}, {steps['steps_per_epoch']} steps per epoch), "
                      "median microseconds:", "",
                  "| clock | raw torch loop | skorch layer | ratio |", "|---|---|---|---|"]
        for clock in ("wall", "cpu"):
            s = steps[clock]
            lines.append(f"| {clock} | {s['raw_us_per_step']:,.0f} | "
                         f"{s['skorch_us_per_step']:,.0f} | {s['ratio_median']:.3f} |")
    env = report.get("environment", {})
    # A report merged from several runs (its "runs") gives each run's load.
    runs = report.get("runs") or [report]
    load = "; ".join(f"load average {r['load_average_start'][0]:.1f} -> "
                     f"{r.get('load_average_end', [float('nan')])[0]:.1f}"
                     + (f" ({r['used_for']})" if "used_for" in r else "") for r in runs)
    lines += ["", f"torch {env.get('torch')}, scikit-learn {env.get('sklearn')}, "
                  f"{env.get('threads')} threads, OMP_WAIT_POLICY="
                  f"{env.get('OMP_WAIT_POLICY')}, {env.get('cpu_count')} CPUs; {load}"]
    return "\n".join(lines)


def package_commit():
    """The git commit of the skdeepclust that is imported (the code whose cost is measured)."""
    import skdeepclust

    where = Path(skdeepclust.__file__).resolve().parent
    try:
        return subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def environment(threads):
    import sklearn
    import skorch
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "skorch": skorch.__version__, "sklearn": sklearn.__version__, "threads": threads,
            "skdeepclust_commit": package_commit(),
            "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE (set for the fits)")}


def _write(report, out):
    report["markdown"] = tables(report)
    out.write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(report["markdown"] + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=list(DEFAULT_SIZES),
                        help="rows of the data sets (default 200 1000 10000 100000)")
    parser.add_argument("--estimators", nargs="+", default=None,
                        help=f"estimators of the package and {', '.join(BASELINES)}; "
                             "default: all")
    parser.add_argument("--threads", type=int, default=2, help="torch/OpenMP/BLAS threads")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds a fit may run before it is killed (default 1800)")
    parser.add_argument("--device", default=None,
                        help="device of the package's estimators (default: theirs, 'auto')")
    parser.add_argument("--features", type=int, default=N_FEATURES,
                        help=f"columns of the data (default {N_FEATURES})")
    parser.add_argument("--params", type=json.loads, default={},
                        help="JSON dict of parameters for the package's estimators that have "
                             "them, e.g. '{\"max_epochs\": 1}'")
    parser.add_argument("--no-steps", action="store_true", help="skip part 2 (step overhead)")
    parser.add_argument("--step-rows", type=int, default=960)
    parser.add_argument("--step-batch", type=int, default=32)
    parser.add_argument("--step-epochs", type=int, default=6, help="epochs per run (first dropped)")
    parser.add_argument("--step-repeats", type=int, default=4, help="runs of each loop")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "cost.json")
    parser.add_argument("--markdown", nargs="?", type=Path, const=RESULTS_DIR / "cost.json",
                        default=None, metavar="FILE",
                        help="only print the tables of FILE (default benchmarks/results/cost.json)")
    parser.add_argument("--worker", nargs=2, metavar=("ESTIMATOR", "ROWS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.threads, args.device, args.features,
               args.params)
        return
    if args.markdown is not None:
        print(tables(json.loads(args.markdown.read_text())))
        return

    ours = package_estimators()
    names = args.estimators or ours + list(BASELINES)
    unknown = set(names) - set(ours) - set(BASELINES)
    if unknown:
        raise SystemExit(f"unknown estimators {sorted(unknown)}; known: {ours + list(BASELINES)}")
    report = {"command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "load_average_start": os.getloadavg(), "environment": environment(args.threads),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                           if k not in ("worker", "markdown")},
              "data": f"make_blobs({args.features} features, {N_CLUSTERS} centres, random_state=0),"
                      " standardised, float32",
              "fits": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        timed_out_at = None
        for n in sorted(args.sizes):
            if timed_out_at is not None:
                rec = {"estimator": name, "n_rows": n, "n_features": args.features,
                       "skipped": f"timed out at {timed_out_at} rows", "error": None,
                       "timed_out": False, "timeout": args.timeout}
            else:
                rec = run_fit(name, n, args.threads, args.timeout, args.device, args.features,
                              args.params)
                if rec["timed_out"]:
                    timed_out_at = n
            report["fits"].append(rec)
            shown = (rec.get("skipped") or rec["error"]
                     or (f"over {args.timeout:g} s" if rec["timed_out"] else
                         f"{rec['seconds']:.2f} s wall, {rec['cpu_seconds']:.2f} s CPU, "
                         f"peak +{rec['peak_rss_delta_mib']:.0f} MiB, ACC {rec['acc']:.3f}"))
            print(f"{name:<20} {n:>8} rows: {shown}", flush=True)
            report["load_average_end"] = os.getloadavg()
            _write(report, args.out)  # keep what is done if the run is stopped
    if not args.no_steps:
        print(f"# steps: {args.step_rows} rows, batch {args.step_batch}", flush=True)
        report["steps"] = step_overhead(args.threads, args.step_rows, args.step_batch,
                                        args.step_epochs, args.step_repeats)
    report["load_average_end"] = os.getloadavg()
    _write(report, args.out)
    print(report["markdown"])
    print(f"\nwritten to {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
