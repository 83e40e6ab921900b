"""Seconds per epoch: our skorch layer against a raw torch loop over the same model and batches.

The model is the ``784-500-500-2000-10`` MLP autoencoder of the papers
(:class:`skdeepclust.nn.MLPAutoencoder`, Xavier init), trained on the reconstruction
loss with Adam (lr 1e-3), batch 256, on 10,000 x 784 float32 random data resident on
the device. Both loops start from the same weights and draw the same seeded
permutation each epoch, and a batch is an index slice of the resident tensor:

* ``skorch``: ``skdeepclust._training.train_phase`` with ``ReconstructionCriterion``;
* ``raw``: ``zero_grad / forward / loss / backward / step`` per batch, the per-batch
  losses kept on the device and read once per epoch (as our layer does).

Runs alternate (raw, skorch, skorch, raw, ...) to spread the drift of a shared machine
over both, the first epoch of each run is dropped as warm-up, and the table shows the
median (and min) seconds per epoch and the ratio of medians, for two clocks: wall time,
and the process's CPU time (all threads), which other users' jobs on a shared machine
disturb far less than wall time (on CUDA the wall clock is the one that counts). The
target is a ratio <= 1.05 on CPU and <= 1.10 on CUDA.

Examples::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/speed.py                 # CPU
    python benchmarks/speed.py --device cuda --n-samples 70000
    python benchmarks/speed.py --profile skorch                        # cProfile of one run
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from skorch.callbacks import Callback

from skdeepclust._training import train_phase
from skdeepclust.losses import ReconstructionCriterion, reconstruction_loss
from skdeepclust.nn import MLPAutoencoder, xavier_init

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock():
    """(wall, process CPU) seconds; CPU time is far less disturbed by other users' jobs."""
    return time.perf_counter(), time.process_time()


def _since(t0):
    t1 = _clock()
    return t1[0] - t0[0], t1[1] - t0[1]


class EpochTimer(Callback):
    """Times of each epoch, from its first batch request to the end of its last step."""

    def __init__(self, device):
        self.device = device
        self.times = []

    def on_epoch_begin(self, net, **kwargs):
        _sync(self.device)
        self.t0 = _clock()

    def on_epoch_end(self, net, **kwargs):
        _sync(self.device)
        self.times.append(_since(self.t0))


def run_skorch(module, X, epochs, batch_size, lr, seed):
    timer = EpochTimer(X.device)
    train_phase(module, ReconstructionCriterion(), X, epochs=epochs, batch_size=batch_size, lr=lr,
                generator=torch.Generator().manual_seed(seed), phase="speed", callbacks=[timer])
    return timer.times


def run_raw(module, X, epochs, batch_size, lr, seed):
    module = module.to(X.device)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    times = []
    for _ in range(epochs):
        _sync(X.device)
        t0 = _clock()
        module.train()
        order = torch.randperm(n, generator=generator).to(X.device)
        losses = []
        for start in range(0, n, batch_size):
            xb = X[order[start:start + batch_size]]
            optimizer.zero_grad()
            _, x_hat = module(xb)
            loss = reconstruction_loss(xb, x_hat)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        torch.stack(losses).cpu()  # one host read per epoch, as in UnsupervisedNet
        _sync(X.device)
        times.append(_since(t0))
    return times


RUNNERS = {"raw": run_raw, "skorch": run_skorch}


def environment(device):
    import skorch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def benchmark(device, n_samples, n_features, epochs, repeats, batch_size, lr, seed):
    torch.manual_seed(seed)
    template = xavier_init(MLPAutoencoder(n_features, (500, 500, 2000), 10))
    X = torch.rand(n_samples, n_features, generator=torch.Generator().manual_seed(seed)).to(device)
    per_epoch = {name: {"wall": [], "cpu": []} for name in RUNNERS}
    runs = []
    order = ["raw", "skorch"]
    for r in range(repeats):
        for name in order:
            load = os.getloadavg()
            times = RUNNERS[name](copy.deepcopy(template).to(device), X, epochs, batch_size, lr,
                                  seed + r)
            kept = times[1:] if len(times) > 1 else times  # first epoch: warm-up
            per_epoch[name]["wall"] += [w for w, _ in kept]
            per_epoch[name]["cpu"] += [c for _, c in kept]
            runs.append({"loop": name, "repeat": r, "epoch_wall_seconds": [w for w, _ in times],
                         "epoch_cpu_seconds": [c for _, c in times], "load_average": load})
            print(f"  repeat {r} {name:<6} wall " + " ".join(f"{w:.3f}" for w, _ in times)
                  + "  cpu " + " ".join(f"{c:.3f}" for _, c in times), flush=True)
        order.reverse()
    summary = {}
    for clock in ("wall", "cpu"):
        row = {name: {"median": statistics.median(v[clock]), "min": min(v[clock]),
                      "n": len(v[clock])} for name, v in per_epoch.items()}
        row["ratio_median"] = row["skorch"]["median"] / row["raw"]["median"]
        row["ratio_min"] = row["skorch"]["min"] / row["raw"]["min"]
        summary[clock] = row
    return summary, runs


def profile(device, loop, n_samples, n_features, epochs, batch_size, lr, seed, top):
    import cProfile
    import pstats

    torch.manual_seed(seed)
    module = xavier_init(MLPAutoencoder(n_features, (500, 500, 2000), 10)).to(device)
    X = torch.rand(n_samples, n_features, generator=torch.Generator().manual_seed(seed)).to(device)
    prof = cProfile.Profile()
    prof.enable()
    RUNNERS[loop](module, X, epochs, batch_size, lr, seed)
    prof.disable()
    stats = pstats.Stats(prof).sort_stats("tottime")
    stats.print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, or 'all' (cpu and "
                        "cuda when available)")
    parser.add_argument("--n-samples", type=int, default=10000)
    parser.add_argument("--n-features", type=int, default=784)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (first dropped)")
    parser.add_argument("--repeats", type=int, default=4, help="runs of each loop, alternated")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=list(RUNNERS), default=None,
                        help="print a cProfile of one run of this loop instead of timing")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)

    if args.device == "all":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    if args.profile:
        for dev in devices:
            profile(torch.device(dev), args.profile, args.n_samples, args.n_features,
                    args.epochs, args.batch_size, args.lr, args.seed, top=30)
        return

    report = {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_start": os.getloadavg(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "profile")},
        "results": {},
    }
    for dev in devices:
        device = torch.device(dev)
        print(f"# {device}: {args.n_samples} x {args.n_features}, batch {args.batch_size}, "
              f"{args.repeats} x {args.epochs} epochs per loop", flush=True)
        summary, runs = benchmark(device, args.n_samples, args.n_features, args.epochs,
                                  args.repeats, args.batch_size, args.lr, args.seed)
        report["results"][str(device)] = {"environment": environment(device),
                                          "summary": summary, "runs": runs}
    report["load_average_end"] = os.getloadavg()

    lines = ["| device | clock | raw s/epoch (median, min) | skorch s/epoch (median, min) "
             "| ratio (median) | ratio (min) |", "|---|---|---|---|---|---|"]
    for dev, res in report["results"].items():
        for clock, s in res["summary"].items():
            lines.append(f"| {dev} | {clock} | {s['raw']['median']:.3f}, {s['raw']['min']:.3f} | "
                         f"{s['skorch']['median']:.3f}, {s['skorch']['min']:.3f} | "
                         f"{s['ratio_median']:.3f} | {s['ratio_min']:.3f} |")
    env = next(iter(report["results"].values()))["environment"]
    lines.append(f"\ntorch {env['torch']}, skorch {env['skorch']}, {env['torch_threads']} threads, "
                 f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}, load average "
                 f"{report['load_average_start'][0]:.2f} -> {report['load_average_end'][0]:.2f}")
    report["markdown"] = "\n".join(lines)
    print(report["markdown"])

    out = args.out or RESULTS_DIR / f"speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
