"""Command line: ``skdeepclust demo`` and ``skdeepclust cluster FILE.csv``.

Also reachable as ``python -m skdeepclust``. Run ``skdeepclust --help`` (or
``skdeepclust cluster --help``) for the options.

* ``demo`` fits every estimator of the package, plus scikit-learn's
  ``KMeans``, on a bundled data set (``digits`` by default) and prints a
  table of ACC, NMI, ARI and seconds. New estimators join automatically
  (through :func:`skdeepclust.utils.all_estimators`).
* ``cluster`` reads a numeric CSV file (a header row is detected),
  standardises it, fits one estimator and writes one label per row. The
  output file is checked before the fit (it must not be the input, and its
  folder must exist and be writable) and written whole or not at all.

Errors in the input (missing file, a non-numeric column, an unknown method,
a bad number of clusters, an output that cannot be written...) end with exit
status 2 and a one-line message on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import ast
import csv
import math
import os
import stat
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager, redirect_stdout, suppress
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.preprocessing import StandardScaler

from skdeepclust.datasets import BENCHMARK_DATASETS, load_benchmark
from skdeepclust.metrics import clustering_accuracy
from skdeepclust.utils import all_estimators

__all__ = ["main", "run_demo", "read_numeric_csv", "DEMO_PARAMS", "DEMO_BUDGET_S"]

#: The whole ``skdeepclust demo`` (default settings, every estimator, digits)
#: must finish within this many seconds on 2 CPU cores.
DEMO_BUDGET_S = 120

#: Demo overrides of estimator defaults, by estimator name, for an estimator
#: whose defaults would take more than its share of :data:`DEMO_BUDGET_S` on
#: digits (1,797 x 64). Keep them small: fewer epochs, not other models. An
#: estimator without an entry runs with its defaults.
#:
#: Seconds of a fit with defaults on digits (2 idle cores): AutoencoderKMeans 7,
#: C3 10, DCSS 13, DML 15, PIPCDR 13, RDC 8, KMeans < 1; the whole demo took
#: 64 s with the imports, so no override is needed yet. A new estimator gets
#: the remaining 50 s or so; beyond that, shrink here.
DEMO_PARAMS: dict[str, dict] = {}


class CLIError(Exception):
    """A user error: reported as one line on stderr with exit status 2."""


# --------------------------------------------------------------- estimators

def _known_methods():
    """Estimator classes the CLI can run, by name: the package's and ``KMeans``."""
    methods = dict(all_estimators())
    methods["KMeans"] = KMeans
    return methods


def _resolve_method(name, methods):
    if name in methods:
        return name
    by_lower = {known.lower(): known for known in methods}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    raise CLIError(f"unknown method {name!r}; known methods: {', '.join(sorted(methods))}.")


def _parse_param(text):
    """``key=value`` -> ``(key, value)``, the value read as a Python literal when it is one."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        value = raw.strip()  # a bare word such as cpu or auto
    return key, value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _delimiter(text):
    """A one-character field separator; ``\\t`` (backslash, t) or ``tab`` stands for a tab."""
    text = "\t" if text in ("\\t", "tab") else text
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"expected one character (or \\t for a tab), "
                                         f"got {text!r}")
    return text


def _make_estimator(name, methods, *, n_clusters, seed, params):
    est = methods[name](n_clusters=n_clusters, random_state=seed)
    valid = est.get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise CLIError(
            f"{name} has no parameter {', '.join(unknown)}; its parameters: "
            f"{', '.join(sorted(valid))}."
        )
    return est.set_params(**params)


@contextmanager
def _recording_warnings(record):
    """Collect warnings raised during a fit, so they print after its progress line."""
    if not record:
        yield []
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _messages(caught):
    """Distinct warning texts, in order."""
    return list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))


@contextmanager
def _showing_warnings(prefix):
    """Print each distinct warning raised inside as one line on stderr, when it is raised.

    A long fit's warnings then appear beside its progress bars, not after it ends.
    """
    from tqdm import tqdm

    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = f"{category.__name__}: {message}"
        if text not in seen:
            seen.add(text)
            # tqdm.write keeps an active progress bar intact below the line.
            tqdm.write(f"{prefix}warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():  # restores showwarning and the filters on exit
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


# ---------------------------------------------------------------------- csv

def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_numeric_csv(path, delimiter=","):
    """Read a CSV file of numbers, with or without a header row.

    The first row is a header when all its cells are non-numeric, or when a
    cell is non-numeric where the second row has a number. Blank lines are
    skipped; surrounding spaces are ignored.

    Parameters
    ----------
    path : str or path-like
        The file.
    delimiter : str, default=","
        Field separator.

    Returns
    -------
    X : ndarray of shape (n_rows, n_columns), dtype=float64
        The values (finite).
    columns : list of str or None
        Header names, or None when the file has no header.

    Raises
    ------
    CLIError
        On a missing or unreadable file, an empty file, rows of unequal
        length, or a cell that is not a finite number (naming its column and
        line). When the file reads as a single column whose text holds
        another separator (``;``, a tab, ``|`` or ``,``), the message says
        which ``--delimiter`` to pass.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skdeepclust.cli import read_numeric_csv
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "data.csv"
    >>> _ = path.write_text("a,b\\n1,2\\n3,4.5\\n")
    >>> read_numeric_csv(path)
    (array([[1. , 2. ],
           [3. , 4.5]]), ['a', 'b'])
    """
    path = Path(path)
    if not path.exists():
        raise CLIError(f"file not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            rows = []
            for row in reader:
                cells = [cell.strip() for cell in row]
                if any(cells):
                    rows.append((reader.line_num, cells))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    if not rows:
        raise CLIError(f"{path} is empty.")
    try:
        return _parse_rows(rows, path)
    except CLIError as exc:
        hint = _delimiter_hint(rows, delimiter)
        if hint is None:
            raise
        raise CLIError(f"{exc} {hint}") from None


#: Separators that ``--delimiter`` hints at, in order of preference, with how to pass them.
_OTHER_DELIMITERS = {";": "';'", "\t": "'\\t'", "|": "'|'", ",": "','"}


def _delimiter_hint(rows, delimiter):
    """Advice to pass ``--delimiter`` when every row is one cell holding another separator."""
    sample = [cells for _, cells in rows[:20]]
    if any(len(cells) != 1 for cells in sample):
        return None
    for other, quoted in _OTHER_DELIMITERS.items():
        if other != delimiter and all(other in cells[0] for cells in sample):
            what = "tabs" if other == "\t" else repr(other)
            return (f"The file reads as a single column whose text contains {what}: "
                    f"pass --delimiter {quoted}.")
    return None


def _parse_rows(rows, path):
    """``(X, columns)`` from the non-blank ``(line number, cells)`` rows of ``path``."""
    first = rows[0][1]
    first_numeric = [_is_number(cell) for cell in first]
    has_header = not any(first_numeric) or (
        not all(first_numeric) and len(rows) > 1 and any(
            not num and j < len(rows[1][1]) and _is_number(rows[1][1][j])
            for j, num in enumerate(first_numeric)
        )
    )
    columns = first if has_header else None
    data = rows[1:] if has_header else rows
    if not data:
        raise CLIError(f"{path} has a header but no data rows.")
    n_columns = len(first)
    for line, cells in data:
        if len(cells) != n_columns:
            raise CLIError(f"line {line} of {path} has {len(cells)} fields, expected {n_columns}.")

    def column_name(j):
        return f"column {columns[j]!r} (column {j + 1})" if columns else f"column {j + 1}"

    try:
        X = np.array([cells for _, cells in data]).astype(np.float64)
    except ValueError:
        X = None  # find the offending cell below, to name it
    for j in range(n_columns):
        if X is not None and np.isfinite(X[:, j]).all():
            continue
        for line, cells in data:
            cell = cells[j]
            try:
                value = float(cell)
            except ValueError:
                what = "a missing value" if cell == "" else f"the non-numeric value {cell!r}"
                raise CLIError(
                    f"{column_name(j)} of {path} has {what} on line {line}; "
                    "every column must be numeric."
                ) from None
            if not math.isfinite(value):
                raise CLIError(f"{column_name(j)} of {path} has {cell!r} on line {line}; "
                               "values must be finite.")
    if X is None:  # every cell parsed one by one (numpy rejects some forms float accepts)
        X = np.array([[float(cell) for cell in cells] for _, cells in data])
    return X, columns


# --------------------------------------------------------------------- demo

def run_demo(methods=None, *, dataset="digits", seed=0, params=None, stream=None):
    """Fit estimators on a bundled data set and measure them against its classes.

    Parameters
    ----------
    methods : list of str, default=None
        Estimator names (see ``skdeepclust demo --help``); None means every
        estimator of the package plus ``KMeans``.
    dataset : str, default="digits"
        One of :data:`skdeepclust.datasets.BENCHMARK_DATASETS`.
    seed : int, default=0
        ``random_state`` of every estimator.
    params : dict of str to dict, default=None
        Extra parameters per estimator name, applied over :data:`DEMO_PARAMS`.
    stream : file-like, default=None
        Where progress lines go (one per estimator); None is silent.

    Returns
    -------
    rows : list of dict
        One per estimator: ``method``, ``acc``, ``nmi``, ``ari``, ``seconds``
        and ``error`` (None, or the message of a fit that failed).

    Examples
    --------
    >>> from skdeepclust.cli import run_demo
    >>> [row["method"] for row in run_demo(["KMeans"], dataset="iris")]
    ['KMeans']
    """
    known = _known_methods()
    names = sorted(known) if methods is None else [_resolve_method(m, known) for m in methods]
    X, y = load_benchmark(dataset)
    n_clusters = len(np.unique(y))
    params = params or {}
    rows = []
    for i, name in enumerate(names, 1):
        if stream is not None:
            print(f"[{i}/{len(names)}] {name} ...", end=" ", file=stream, flush=True)
        config = {**DEMO_PARAMS.get(name, {}), **params.get(name, {})}
        est = _make_estimator(name, known, n_clusters=n_clusters, seed=seed, params=config)
        start = time.perf_counter()
        with _recording_warnings(stream is not None) as caught:
            try:
                labels = est.fit_predict(X)
                error = None
            except Exception as exc:  # the demo goes on; the failure shows in the table
                error = f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        if error is None:
            rows.append(dict(method=name, acc=clustering_accuracy(y, labels),
                             nmi=normalized_mutual_info_score(y, labels),
                             ari=adjusted_rand_score(y, labels), seconds=seconds, error=None))
        else:
            rows.append(dict(method=name, acc=np.nan, nmi=np.nan, ari=np.nan, seconds=seconds,
                             error=error))
        if stream is not None:
            status = f"{seconds:.1f} s" if error is None else f"failed after {seconds:.1f} s"
            print(status, file=stream, flush=True)
            for message in _messages(caught) + ([error] if error else []):
                print(f"    {message}", file=stream, flush=True)
    return rows


def _format_table(rows):
    width = max([len("method")] + [len(row["method"]) for row in rows])
    lines = [f"{'method':<{width}}  {'ACC':>6}  {'NMI':>6}  {'ARI':>6}  {'seconds':>8}"]
    for row in rows:
        if row["error"] is None:
            metrics = f"{row['acc']:6.3f}  {row['nmi']:6.3f}  {row['ari']:6.3f}"
        else:
            metrics = f"{'failed':>6}  {'-':>6}  {'-':>6}"
        lines.append(f"{row['method']:<{width}}  {metrics}  {row['seconds']:8.1f}")
    return "\n".join(lines)


def _cmd_demo(args):
    known = _known_methods()
    names = (sorted(known) if args.methods is None
             else [_resolve_method(m, known) for m in args.methods])
    params = {}
    if args.tiny:
        from skdeepclust.utils._test_settings import TINY_PARAMS

        params = {name: dict(TINY_PARAMS.get(name, {})) for name in names}
    for key, value in args.param:
        accepting = [n for n in names if key in known[n]().get_params()]
        if not accepting:
            raise CLIError(f"no selected method has a parameter {key!r}.")
        for name in accepting:
            params.setdefault(name, {})[key] = value
    X, y = load_benchmark(args.dataset)
    print(f"{args.dataset}: {X.shape[0]} samples, {X.shape[1]} features, "
          f"{len(np.unique(y))} classes", file=sys.stderr, flush=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    rows = run_demo(names, dataset=args.dataset, seed=args.seed, params=params,
                    stream=sys.stderr)
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(f"total: {total:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr)
    print(_format_table(rows))
    # On 2 free cores the wall time is at most the CPU time (all threads), so
    # the CPU time tells a busy machine from a demo that outgrew its budget.
    if args.methods is None and not params and total > DEMO_BUDGET_S:
        advice = ("--methods runs a subset, and --param max_epochs=... or "
                  "--param pretrain_epochs=... shortens the fits" if cpu > DEMO_BUDGET_S
                  else "its CPU time is within that, so other processes were sharing the cores")
        print(f"note: the demo took {total:.0f} s, more than the {DEMO_BUDGET_S} s it usually "
              f"takes on two idle cores; {advice}.", file=sys.stderr)
    return 1 if any(row["error"] for row in rows) else 0


# ------------------------------------------------------------------ cluster

def _output_target(out, source):
    """The file ``--out`` names (links followed), once it is known that it can be written.

    Checked before the fit, so that a long fit does not end in an error.
    """
    out_path = Path(out)
    if out_path.is_dir():
        raise CLIError(f"--out {out} is a folder; give a file name.")
    source = Path(source)
    if out_path.exists() and source.exists() and os.path.samefile(out_path, source):
        raise CLIError(f"--out {out} is the input file {source}; the labels would "
                       "overwrite the data. Give another file name.")
    target = Path(os.path.realpath(out_path))
    folder = target.parent
    if not folder.is_dir():
        raise CLIError(f"cannot write {out}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f"cannot write {out}: the folder {folder} is not writable.")
    if target.exists() and not os.access(target, os.W_OK):
        raise CLIError(f"cannot write {out}: the file is not writable.")
    return target


def _write_atomically(target, text):
    """Write ``text`` to ``target`` whole or not at all.

    The text goes to a temporary file in the same folder, which then replaces
    ``target`` in one step: a failure leaves no partial file, and a previous
    ``target`` stays as it was.
    """
    if target.exists():
        mode = stat.S_IMODE(target.stat().st_mode)
    else:
        umask = os.umask(0)  # read it; there is no other way
        os.umask(umask)
        mode = 0o666 & ~umask  # what a plain open() would have given
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)  # mkstemp makes it private
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _cmd_cluster(args):
    known = _known_methods()
    name = _resolve_method(args.method, known)
    params = dict(args.param)
    if args.verbose and "verbose" in known[name]().get_params():
        params.setdefault("verbose", 1)  # a --param verbose=... wins
    est = _make_estimator(name, known, n_clusters=args.n_clusters, seed=args.seed,
                          params=params)
    target = None if args.out is None else _output_target(args.out, args.file)
    X, _ = read_numeric_csv(args.file, delimiter=args.delimiter)
    if X.shape[0] < args.n_clusters:
        raise CLIError(f"{args.file} has {X.shape[0]} data rows, fewer than "
                       f"--n-clusters={args.n_clusters}.")
    if args.standardize:
        X = StandardScaler().fit_transform(X)
    X = X.astype(np.float32)
    if args.verbose:
        print(f"{name}: fitting {X.shape[0]} rows x {X.shape[1]} features "
              f"({'standardised' if args.standardize else 'as read'}) into "
              f"{args.n_clusters} clusters", file=sys.stderr, flush=True)
    start = time.perf_counter()
    # stdout carries the labels: whatever an estimator prints (KMeans' verbose) goes to stderr.
    with _showing_warnings("skdeepclust cluster: "), redirect_stdout(sys.stderr):
        try:
            labels = est.fit_predict(X)
        except ValueError as exc:  # parameter values (InvalidParameterError) and data checks
            raise CLIError(f"{name} could not fit {args.file}: {exc}") from None
    seconds = time.perf_counter() - start
    text = "label\n" + "".join(f"{label}\n" for label in labels)
    if target is None:
        sys.stdout.write(text)
    else:
        try:
            _write_atomically(target, text)
        except OSError as exc:
            raise CLIError(f"cannot write {args.out}: {exc}") from None
    print(f"{name}: {X.shape[0]} rows x {X.shape[1]} features -> "
          f"{len(np.unique(labels))} clusters in {seconds:.1f} s"
          + ("" if args.out is None else f"; labels written to {args.out}"),
          file=sys.stderr)
    return 0


# ------------------------------------------------------------------- parser

def _build_parser():
    from skdeepclust import __version__

    methods = ", ".join(sorted(_known_methods()))
    parser = argparse.ArgumentParser(
        prog="skdeepclust",
        description="Deep clustering estimators with scikit-learn's KMeans interface.",
    )
    parser.add_argument("--version", action="version", version=f"skdeepclust {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    param_help = ("estimator parameter, e.g. --param pretrain_epochs=5 "
                  "--param hidden_layer_sizes='(64, 32)' (repeatable)")

    demo = sub.add_parser(
        "demo", help="compare every estimator and KMeans on a bundled data set",
        description=("Fit every estimator (or those given to --methods) and KMeans on a "
                     "bundled data set and print ACC, NMI, ARI and seconds. Methods: "
                     f"{methods}."),
    )
    demo.add_argument("--methods", nargs="+", metavar="NAME", help="estimators to run "
                      "(default: all)")
    demo.add_argument("--dataset", default="digits", choices=BENCHMARK_DATASETS,
                      help="bundled data set (default: digits)")
    demo.add_argument("--seed", type=int, default=0, help="random_state (default: 0)")
    demo.add_argument("--param", type=_parse_param, action="append", default=[],
                      metavar="KEY=VALUE",
                      help=param_help + "; applied to every method that has it")
    # Tiny networks and epochs (the test settings): for tests and smoke runs.
    demo.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(func=_cmd_demo)

    cluster = sub.add_parser(
        "cluster", help="cluster the rows of a numeric CSV file",
        description=("Cluster the rows of a numeric CSV file (a header row is detected) and "
                     "write one label per row, under a 'label' header. Methods: "
                     f"{methods}."),
    )
    cluster.add_argument("file", metavar="FILE.csv", help="numeric CSV file")
    cluster.add_argument("--method", required=True, metavar="NAME", help="estimator name")
    cluster.add_argument("--n-clusters", required=True, type=_positive_int, metavar="K",
                         help="number of clusters")
    cluster.add_argument("--out", metavar="LABELS.csv",
                         help="output file, written once the fit is done (default: stdout); "
                              "not the input file, and its folder must exist")
    cluster.add_argument("--seed", type=int, default=0, help="random_state (default: 0)")
    cluster.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                         help="scale each column to zero mean and unit variance first "
                              "(default: on)")
    cluster.add_argument("--delimiter", default=",", type=_delimiter,
                         help="field separator, one character; '\\t' for a tab (default: ',')")
    cluster.add_argument("-v", "--verbose", action="store_true",
                         help="show progress on stderr (the estimator's verbose=1)")
    cluster.add_argument("--param", type=_parse_param, action="append", default=[],
                         metavar="KEY=VALUE", help=param_help)
    cluster.set_defaults(func=_cmd_cluster)
    return parser


def main(argv=None):
    """Run the command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; None reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 when a demo estimator failed, 2 on a usage or
        input error (message on stderr), 130 when interrupted.

    Examples
    --------
    >>> from skdeepclust.cli import main
    >>> main(["--version"])  # doctest: +ELLIPSIS
    skdeepclust ...
    0
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's own errors (status 2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"skdeepclust {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"skdeepclust {args.command}: interrupted", file=sys.stderr)
        return 130
