"""Write the documentation's measured tables and suite figures from the benchmark results.

Reads the records of ``benchmarks/suite.py`` (default ``benchmarks/results/suite-defaults.jsonl``)
and the output of ``benchmarks/cost.py`` (default ``benchmarks/results/cost.json``) and writes:

* ``doc/_generated/methods_table.rst``: one table of every estimator of the package and every
  baseline of the suite, with its mean ACC over the tables, mean rank, wins against KMeans, mean
  fit seconds and when to use it, then the suite figure; included by ``doc/choosing.rst``;
* ``doc/_generated/cost_table.rst``: fit seconds and peak memory by data size, and the
  per-step overhead of the skorch layer; included by ``doc/user_guide.rst``;
* ``doc/_generated/scale_table.rst``: fit seconds and peak memory at a million rows
  (``benchmarks/results/scale.json``, also written by ``benchmarks/cost.py``); included by
  ``doc/scaling.rst``;
* ``doc/_static/figures/suite_vs_kmeans.png``: each package estimator's ACC minus KMeans' ACC
  on each table of the suite, and ``suite_vs_kmeans_compact.png``, a smaller version of it,
  which goes into ``README.md`` (between its two "suite figure" comment lines).

Nothing is fitted: this takes seconds and needs matplotlib (``pip install -e ".[doc]"``). When
an input file is missing, its table says so (the "use it when" column is written anyway) and
no figure is referenced, so the documentation builds from a fresh clone; rerun this script
after the benchmarks and commit what it writes.

Examples::

    python benchmarks/render_docs.py
    python benchmarks/render_docs.py --suite /tmp/suite-dev.jsonl --cost /tmp/cost.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
sys.path.insert(0, str(HERE))
from suite import BASELINES, label_of, read_records, summarise  # noqa: E402

GENERATED_NOTE = (".. Written by benchmarks/render_docs.py from {sources}; do not edit by hand:\n"
                  "   rerun the script after the benchmarks.\n\n")

# One line per estimator, from its page under doc/methods/ (and scikit-learn's user guide for
# the baselines). An estimator missing here gets a pointer to its page.
USE_IT_WHEN = {
    "AutoencoderKMeans": "First deep method to try and the reference for the others: fewest "
                         "parameters, quickest to train; clusters compact in a non-linear view "
                         "of the features, or the embedding itself is wanted.",
    "C3": "Many redundant columns, such as pixels (on digits 13 points over KMeans); a "
          "contrastive embedding on the unit sphere and a cluster head for new rows. Not for "
          "tables of a few columns, where it falls well under KMeans.",
    "DCSS": "k-means on autoencoder codes is a fair start but the clusters are not spherical or "
            "not well separated there; soft assignments (``predict_proba``) wanted; thousands "
            "of rows or more. Among the slower methods.",
    "DML": "Some clusters lie close together in an autoencoder's codes while others are "
           "well apart, and several clusters (three or more) are asked for; soft assignments "
           "(``predict_proba``) wanted. Among the slower methods.",
    "FBCC": "Tasks arrive one after another, each with new classes, and old rows are not "
            "kept (``partial_fit`` per task): continual clustering with a cluster id space "
            "that grows task by task. For one data set at once prefer C3 or KMeans.",
    "PIPCDR": "Many redundant columns (pixels, spectra, long feature vectors: its best table "
              "is digits, where it is the best estimator); data arrive in chunks "
              "(``partial_fit``). Not for tables of a few columns or strongly unequal "
              "classes, where it falls well under KMeans.",
    "RDC": "Clusters are unions of dense neighbourhoods (manifold-like data); ``n_clusters`` "
           "may change after training, since training does not use it.",
    "KMeans": "Compact, roughly spherical clusters of similar sizes; the fastest, and the "
              "reference every method here is compared to.",
    "GaussianMixture": "Ellipsoidal clusters of different shapes and sizes, many rows per "
                       "feature (full covariances); soft assignments.",
    "Ward": "A hierarchy of compact clusters on up to some 20,000 rows (its memory grows with "
            "the square of the rows).",
    "SpectralClustering": "Clusters connected through nearest neighbours but not convex, "
                          "such as the feature vectors a pretrained network gives for objects "
                          "seen from many angles (where the deep estimators lose); no "
                          "``predict`` for new rows.",
}
METHOD_PAGES = {"AutoencoderKMeans": "autoencoder_kmeans", "C3": "c3", "DCSS": "dcss", "DML": "dml",
                "FBCC": "fbcc", "PIPCDR": "pipcdr", "RDC": "rdc"}
BASELINE_ROLES = {
    "KMeans": ":class:`~sklearn.cluster.KMeans` (``n_init=10``)",
    "GaussianMixture": ":class:`~sklearn.mixture.GaussianMixture`",
    "Ward": "Ward (:class:`~sklearn.cluster.AgglomerativeClustering`)",
    "SpectralClustering": ":class:`~sklearn.cluster.SpectralClustering` (10-NN graph)",
}
# An empty cell; a bare "-" would start a bullet list inside a list-table.
NA = "\\-"
FIGURE = "suite_vs_kmeans.png"
README_MARKERS = ("<!-- suite figure: written by benchmarks/render_docs.py -->",
                  "<!-- end of suite figure -->")
COMPACT_FIGURE = "suite_vs_kmeans_compact.png"


def package_estimators():
    from skdeepclust.utils import all_estimators

    return [name for name, _ in all_estimators()]


def _rel(path):
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def read_headers(path):
    """The header lines (``# {...}``) of a suite records file: one per run that appended."""
    with open(path) as f:
        return [json.loads(line[2:]) for line in f if line.startswith("# ")]


def list_table(header, rows, widths):
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {' '.join(map(str, widths))}",
             ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return lines


def estimator_cell(name, label, ours):
    if name in ours:
        page = METHOD_PAGES.get(name)
        text = f":class:`~skdeepclust.{name}`"
        if page:
            text += f" (:doc:`page <methods/{page}>`)"
    else:
        text = BASELINE_ROLES.get(name, name)
    if label != name:
        text += f" ``{label[len(name):]}``"
    return text


# ----------------------------------------------------------------------------- figures


def per_table_differences(means, labels):
    """``{label: {table: ACC - KMeans' ACC}}`` on the tables both finished."""
    kmeans = means.get("KMeans", {})
    return {label: {t: v["acc"] - kmeans[t]["acc"] for t, v in means[label].items()
                    if t in kmeans} for label in labels}


def _short(label, est_of):
    """The estimator's name when its label is the only one of that estimator."""
    name = est_of[label]
    return name if sum(e == name for e in est_of.values()) == 1 else label


def draw_suite(diff, est_of, path, compact=False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(diff)
    tables = sorted({t for d in diff.values() for t in d},
                    key=lambda t: np.mean([d[t] for d in diff.values() if t in d]))
    markers = "osD^vP*X<>"
    colors = plt.get_cmap("tab10").colors
    if compact:
        fig, ax = plt.subplots(figsize=(1.4 + 1.1 * len(labels), 3.0))
        rng = np.random.default_rng(0)
        for i, label in enumerate(labels):
            values = np.array(list(diff[label].values()))
            x = i + rng.uniform(-0.18, 0.18, len(values))
            ax.scatter(x, 100 * values, s=14, color=colors[i % 10], alpha=0.7,
                       marker=markers[i % len(markers)], linewidths=0)
            ax.hlines(100 * values.mean(), i - 0.3, i + 0.3, color="black", lw=1.5)
        ax.set_xticks(range(len(labels)), [_short(lb, est_of) for lb in labels], fontsize=8)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylabel("ACC - KMeans' ACC (points)", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(f"Each dot one of {len(tables)} tables; bar: mean", fontsize=9)
    else:
        fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.28 * len(tables)))
        offsets = np.linspace(-0.25, 0.25, len(labels)) if len(labels) > 1 else [0.0]
        for i, label in enumerate(labels):
            y = [tables.index(t) + offsets[i] for t in diff[label]]
            x = [100 * v for v in diff[label].values()]
            mean = 100 * np.mean(list(diff[label].values()))
            ax.scatter(x, y, s=22, color=colors[i % 10], marker=markers[i % len(markers)],
                       label=f"{_short(label, est_of)} (mean {mean:+.1f} pts)", zorder=3)
        ax.set_yticks(range(len(tables)), tables, fontsize=8)
        ax.set_ylim(-0.6, len(tables) - 0.4)
        ax.axvline(0, color="grey", lw=0.8, zorder=1)
        for k in range(len(tables)):
            ax.axhline(k, color="0.92", lw=0.6, zorder=0)
        ax.set_xlabel("ACC minus KMeans' ACC on the same table (percentage points)")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# ------------------------------------------------------------------------------- pages


def methods_table(suite_path, figure_dir, ours):
    """The rst of the methods table, and the tables in the figures (written to ``figure_dir``,
    none when 0)."""
    if not Path(suite_path).exists():
        note = GENERATED_NOTE.format(sources=_rel(suite_path) + " (not there yet)")
        names = ours + list(BASELINES)
        rows = [[estimator_cell(n, n, ours), NA, NA, NA, NA, USE_IT_WHEN.get(n, "")]
                for n in names]
        text = [note.rstrip("\n"), "",
                "The measured columns are filled in from the suite's results "
                f"(``{_rel(suite_path)}``, written by ``benchmarks/suite.py``), which this "
                "version of the documentation does not have yet.", ""]
        return "\n".join(text + list_table(_header(0), rows, _WIDTHS)) + "\n", 0

    records = read_records(suite_path)
    means, overall = summarise(records)
    est_of = {label_of(r): r["estimator"] for r in records if not r.get("error")}
    headers = read_headers(suite_path)
    n = max((row["n_tables"] for row in overall.values()), default=0)
    seeds = sorted({r["seed"] for r in records})
    order = sorted(overall, key=lambda lb: (overall[lb]["rank"], -overall[lb]["acc"]))
    rows = []
    for label in order:
        row, name = overall[label], est_of[label]
        wins = (f"{row['wins_vs_kmeans']}/{row['n_tables']}"
                if name != "KMeans" and "wins_vs_kmeans" in row else NA)
        rows.append([estimator_cell(name, label, ours), f"{row['acc']:.3f}",
                     f"{row['rank']:.2f}", wins, _seconds(row["seconds"]),
                     USE_IT_WHEN.get(name, f"See :class:`~skdeepclust.{name}`.")])
    missing = [n for n in ours if n not in est_of.values()]
    for name in missing:
        rows.append([estimator_cell(name, name, ours), NA, NA, NA, NA,
                     USE_IT_WHEN.get(name, "")])
    env = headers[-1]["environment"] if headers else {}
    errors = sorted({f"{label_of(r)} on {r['table']}" for r in records if r.get("error")})
    threads = env.get("torch_threads_per_fit", "?")
    text = [GENERATED_NOTE.format(sources=_rel(suite_path)).rstrip("\n"), "",
            f"Mean over the {n} tables (an estimator with failed fits: over the tables it "
            f"finished), each the mean over seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))}, standardised, ``n_clusters`` = the number of "
            "classes; rank 1 is the best ACC on a table (ties share their mean rank); wins "
            "count the tables where ACC is above KMeans'; fit seconds are the mean wall time "
            f"of one fit with {threads} torch thread{'s' if threads != 1 else ''} "
            f"({env.get('processor', '')} CPU, torch {env.get('torch', '?')}, scikit-learn "
            f"{env.get('sklearn', '?')}).", ""]
    if missing:
        text += [f"Not in these results: {', '.join(missing)}.", ""]
    if errors:
        text += ["Fits that failed (their tables are left out of that estimator's means "
                 f"and ranks): {'; '.join(errors)}.", ""]
    text += list_table(_header(n), rows, _WIDTHS)
    labels = [lb for lb in order if est_of[lb] in ours]
    n_figure_tables = 0
    if labels and "KMeans" in means:
        diff = per_table_differences(means, labels)
        n_figure_tables = len({t for d in diff.values() for t in d})
        figure_dir.mkdir(parents=True, exist_ok=True)
        draw_suite(diff, est_of, figure_dir / FIGURE)
        draw_suite(diff, est_of, figure_dir / COMPACT_FIGURE, compact=True)
        text += ["", f".. figure:: /_static/figures/{FIGURE}", "   :width: 100%",
                 "   :alt: ACC of each estimator minus KMeans' ACC on each table", "",
                 "   Each package estimator's ACC minus KMeans' ACC on each table of the suite "
                 "where both finished (mean over seeds), in percentage points; tables sorted "
                 "by the mean difference. Right of the grey line the estimator beat KMeans on "
                 "that table."]
    text += ["", "Produced by " + _provenance(headers) + "."]
    md = Path(suite_path).with_suffix(".md")
    if md.exists():
        text[-1] += f" Per-table scores: ``{_rel(md)}``."
    return "\n".join(text) + "\n", n_figure_tables


_WIDTHS = (22, 8, 8, 9, 8, 45)


def _header(n):
    return ["Estimator", "Mean ACC", "Mean rank", f"Wins vs KMeans{f' (of {n})' if n else ''}",
            "Fit s", "Use it when"]


def _seconds(s):
    return f"{s:.2f}" if s < 10 else f"{s:.0f}"


def _provenance(headers):
    """The distinct commands that wrote a records file, with the date each first ran."""
    runs = {}
    for h in headers:
        runs.setdefault(_command_tail(h["command"]), h.get("started", ""))
    if not runs:
        return "``benchmarks/suite.py``"
    return " and ".join(f"``{cmd}`` ({started})" for cmd, started in runs.items())


def _command_tail(cmd):
    """The command from the script on (the interpreter's path says nothing to a reader)."""
    i = cmd.find("benchmarks/")
    return ("python " + cmd[i:]) if i >= 0 else cmd


def _role(name):
    module = "sklearn.cluster" if name in ("KMeans", "MiniBatchKMeans") else "skdeepclust"
    return f":class:`~{module}.{name}`"


def _not_there_yet(what, path):
    """The text of a table whose results file this checkout lacks."""
    return (GENERATED_NOTE.format(sources=_rel(path) + " (not there yet)")
            + f"The {what} is filled in from ``benchmarks/cost.py``'s results "
              f"(``{_rel(path)}``), which this version of the documentation does not have "
              "yet.\n")


def cost_table(cost_path):
    if not Path(cost_path).exists():
        return _not_there_yet("cost table", cost_path)
    report = json.loads(Path(cost_path).read_text())
    fits = report.get("fits", [])
    names = list(dict.fromkeys(r["estimator"] for r in fits))
    sizes = sorted({r["n_rows"] for r in fits})
    by = {(r["estimator"], r["n_rows"]): r for r in fits}
    env = report.get("environment", {})

    def cell(rec, key, fmt):
        if rec is None:
            return NA
        if rec.get("timed_out"):
            return f"> {rec['timeout']:g} s" if key == "seconds" else NA
        if rec.get("skipped"):
            return "not run"
        if rec.get("error"):
            return "error"
        return fmt(rec)

    def seconds(rec):
        return " ".join(f"{v:.1f}" if v < 100 else f"{v:,.0f}"
                        for v in (rec["seconds"], rec["cpu_seconds"])).replace(" ", " (", 1) + ")"

    def memory(rec):
        return f"{rec['peak_rss_delta_mib']:,.0f}"

    # A report merged from several runs (its "runs") gives the load of each.
    load = "; ".join(f"load average {r['load_average_start'][0]:.1f} at the start"
                     + (f" for the {r['used_for']}" if "used_for" in r else "")
                     for r in report.get("runs") or [report])
    text = [GENERATED_NOTE.format(sources=_rel(cost_path)).rstrip("\n"), "",
            f"Standardised Gaussian blobs, {fits[0]['n_features'] if fits else 50} features, "
            f"{fits[0].get('n_clusters', 5) if fits else 5} clusters, every estimator at its "
            f"defaults (``n_clusters=5``), each fit in a fresh process with {env.get('threads')}"
            f" threads on {env.get('cpu_count')} CPU cores ({env.get('processor', '')}, torch "
            f"{env.get('torch')}, scikit-learn {env.get('sklearn')}; {load}). Seconds of "
            "``fit``, wall (process CPU over all threads):", ""]
    header = ["Estimator"] + [f"{n:,} rows" for n in sizes]
    widths = [20] + [14] * len(sizes)
    text += list_table(header, [[_role(n)] + [cell(by.get((n, s)), "seconds", seconds)
                                              for s in sizes] for n in names], widths)
    text += ["", "Peak memory of ``fit``, MiB above the process before it (the peak resident "
                 "set size, torch's allocator and the copies of the data included):", ""]
    text += list_table(header, [[_role(n)] + [cell(by.get((n, s)), "memory", memory)
                                              for s in sizes] for n in names], widths)
    steps = report.get("steps")
    if steps:
        w, c = steps["wall"], steps["cpu"]
        text += ["", "An optimiser step has a fixed cost, and on a small table an epoch still "
                     f"makes {steps['steps_per_epoch']} of them: one step on "
                     f"{steps['batch_size']} rows of the {steps['n_features']}-500-500-2000-10 "
                     f"autoencoder took {w['skorch_us_per_step'] / 1000:.1f} ms through the "
                     f"package's skorch layer and {w['raw_us_per_step'] / 1000:.1f} ms in a raw "
                     f"torch loop over the same module and batches (median; ratio "
                     f"{w['ratio_median']:.2f} in wall time, {c['ratio_median']:.2f} in CPU "
                     "time)."]
    text += ["", f"Produced by ``{_command_tail(report.get('command', 'benchmarks/cost.py'))}`` "
                 f"({report.get('started', '')})."]
    return "\n".join(text) + "\n"


def scale_table(scale_path):
    """The million-row fits: seconds, peak memory, settings and code of each."""
    if not Path(scale_path).exists():
        return _not_there_yet("million-row table", scale_path)
    report = json.loads(Path(scale_path).read_text())
    fits = report["fits"]

    def settings(rec):
        params = rec.get("params") or {}
        return ", ".join(f"``{k}={v}``" for k, v in params.items()) or "defaults"

    def seconds(rec):
        if rec.get("timed_out"):
            return f"over {rec['timeout']:,.0f}"
        return f"{rec['seconds']:,.0f} ({rec['cpu_seconds']:,.0f})"

    def memory(rec):
        return "-" if rec.get("timed_out") else f"{rec['peak_rss_delta_mib']:,.0f}"

    env = report.get("environment", {})
    n_rows, n_features = fits[0]["n_rows"], fits[0]["n_features"]
    text = [GENERATED_NOTE.format(sources=_rel(scale_path)).rstrip("\n"), "",
            f"{n_rows:,} x {n_features} rows ({report.get('data', 'make_blobs')}), "
            f"``n_clusters={fits[0].get('n_clusters', 5)}``, ``random_state=0``, each fit in a "
            f"fresh process with {env.get('threads')} threads on {env.get('cpu_count')} CPU "
            f"cores shared with other work (torch {env.get('torch')}, "
            f"``OMP_WAIT_POLICY={env.get('OMP_WAIT_POLICY')}``). Seconds of ``fit``, wall "
            "(process CPU over all threads); peak memory in MiB above the process before the "
            "fit, which already holds the data:", ""]
    rows = [[_role(r["estimator"]), settings(r), seconds(r), memory(r),
             r.get("skdeepclust_commit", "")] for r in fits]
    text += list_table(["Estimator", "Settings (others at defaults)", "Fit seconds",
                        "Peak MiB", "Code"], rows, [18, 42, 14, 10, 10])
    text += ["", "Produced by " + " and ".join(
        f"``{_command_tail(run['command'])}`` ({run.get('started', '')})"
        for run in report.get("runs") or [report]) + "."]
    return "\n".join(text) + "\n"


def readme_figure(readme, n_tables):
    """Put the compact figure between the README's markers; False when they are missing."""
    text = readme.read_text()
    start, end = (text.find(m) for m in README_MARKERS)
    if start < 0 or end < start:
        return False
    block = (f"\n![ACC minus KMeans' ACC on each of {n_tables} tables, every estimator at its "
             f"defaults](doc/_static/figures/{COMPACT_FIGURE})\n\nEach estimator's ACC minus "
             f"KMeans' ACC on {n_tables} real tables ([doc/choosing.rst](doc/choosing.rst)).\n")
    readme.write_text(text[:start + len(README_MARKERS[0])] + block + text[end:])
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=Path, default=RESULTS_DIR / "suite-defaults.jsonl",
                        help="records of benchmarks/suite.py")
    parser.add_argument("--cost", type=Path, default=RESULTS_DIR / "cost.json",
                        help="output of benchmarks/cost.py")
    parser.add_argument("--scale", type=Path, default=RESULTS_DIR / "scale.json",
                        help="output of benchmarks/cost.py at a million rows")
    parser.add_argument("--doc-dir", type=Path, default=ROOT / "doc")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md",
                        help="README that gets the compact figure when the suite was read")
    args = parser.parse_args(argv)

    ours = package_estimators()
    generated = args.doc_dir / "_generated"
    generated.mkdir(parents=True, exist_ok=True)
    figures = args.doc_dir / "_static" / "figures"
    text, figured = methods_table(args.suite, figures, ours)
    if figured and args.readme is not None:
        if not readme_figure(args.readme, figured):
            print(f"no suite figure markers in {args.readme}; left as it is")
    (generated / "methods_table.rst").write_text(text)
    (generated / "cost_table.rst").write_text(cost_table(args.cost))
    (generated / "scale_table.rst").write_text(scale_table(args.scale))
    print(f"wrote {_rel(generated / 'methods_table.rst')}, {_rel(generated / 'cost_table.rst')}, "
          f"{_rel(generated / 'scale_table.rst')}"
          + (f", {_rel(figures / FIGURE)}, {_rel(figures / COMPACT_FIGURE)}" if figured else ""))


if __name__ == "__main__":
    main()
