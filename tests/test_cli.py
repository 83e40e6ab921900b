"""The command line, run in-process through ``main([...])`` with tiny settings."""

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

from skdeepclust import AutoencoderKMeans, cli
from skdeepclust.cli import DEMO_PARAMS, CLIError, main, read_numeric_csv, run_demo
from skdeepclust.datasets import load_benchmark
from skdeepclust.metrics import clustering_accuracy
from skdeepclust.utils import all_estimators

TINY_AE = dict(hidden_layer_sizes=(16,), embedding_dim=2, pretrain_epochs=2, n_init=2)
TINY_AE_ARGS = [arg for key, value in TINY_AE.items()
                for arg in ("--param", f"{key}={value!r}")]


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=30, centers=[[0, 0, 0], [6, 6, 0], [0, 6, 6]], cluster_std=0.5,
                      random_state=0)
    return X, y


def _write_csv(path, X, header=None):
    lines = [",".join(header)] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _read_labels(text):
    lines = text.strip().splitlines()
    assert lines[0] == "label"
    return np.array([int(line) for line in lines[1:]])


# ---------------------------------------------------------------- cluster

def test_cluster_with_header_writes_the_estimators_labels(tmp_path, blobs, capsys):
    X, y = blobs
    data = _write_csv(tmp_path / "data.csv", X, header=["a", "b", "c"])
    out = tmp_path / "labels.csv"
    rc = main(["cluster", data, "--method", "AutoencoderKMeans", "--n-clusters", "3",
               "--out", str(out), *TINY_AE_ARGS])
    assert rc == 0
    labels = _read_labels(out.read_text())
    expected = AutoencoderKMeans(3, random_state=0, **TINY_AE).fit_predict(
        StandardScaler().fit_transform(X).astype(np.float32))
    np.testing.assert_array_equal(labels, expected)
    assert clustering_accuracy(y, labels) == 1.0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "AutoencoderKMeans: 30 rows x 3 features -> 3 clusters" in captured.err


def test_cluster_without_header_to_stdout_reads_the_same_rows(tmp_path, blobs, capsys):
    X, _ = blobs
    with_header = _write_csv(tmp_path / "h.csv", X, header=["a", "b", "c"])
    without = _write_csv(tmp_path / "n.csv", X)
    args = ["--method", "autoencoderkmeans", "--n-clusters", "3", *TINY_AE_ARGS]
    assert main(["cluster", with_header, *args]) == 0
    first = _read_labels(capsys.readouterr().out)
    assert main(["cluster", without, *args]) == 0
    second = _read_labels(capsys.readouterr().out)
    assert len(second) == 30
    np.testing.assert_array_equal(first, second)


def test_cluster_standardizes_unless_told_not_to(tmp_path, capsys):
    X = np.random.RandomState(0).normal(size=(40, 2)) * [1.0, 100.0]
    data = _write_csv(tmp_path / "data.csv", X)
    args = ["cluster", data, "--method", "KMeans", "--n-clusters", "3", "--seed", "1"]
    assert main(args) == 0
    scaled = _read_labels(capsys.readouterr().out)
    assert main([*args, "--no-standardize"]) == 0
    raw = _read_labels(capsys.readouterr().out)
    np.testing.assert_array_equal(
        scaled, KMeans(3, random_state=1).fit_predict(
            StandardScaler().fit_transform(X).astype(np.float32)))
    np.testing.assert_array_equal(raw, KMeans(3, random_state=1).fit_predict(
        X.astype(np.float32)))
    assert clustering_accuracy(scaled, raw) < 1.0


def test_param_values_are_read_as_python_literals(tmp_path, blobs, capsys):
    X, _ = blobs
    data = _write_csv(tmp_path / "data.csv", X)
    rc = main(["cluster", data, "--method", "KMeans", "--n-clusters", "3",
               "--param", "init=random", "--param", "n_init=2", "--param", "tol=1e-3"])
    assert rc == 0
    expected = KMeans(3, init="random", n_init=2, tol=1e-3, random_state=0).fit_predict(
        StandardScaler().fit_transform(X).astype(np.float32))
    np.testing.assert_array_equal(_read_labels(capsys.readouterr().out), expected)


def test_cluster_prints_fit_warnings_as_one_line_each(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    path.write_text("1,2\n1,2\n1,2\n")
    assert main(["cluster", str(path), "--method", "KMeans", "--n-clusters", "2"]) == 0
    captured = capsys.readouterr()
    assert _read_labels(captured.out).tolist() == [0, 0, 0]
    assert ("skdeepclust cluster: warning: ConvergenceWarning: Number of distinct clusters (1)"
            in captured.err)
    assert "Traceback" not in captured.err and "warnings.warn" not in captured.err


class _NoFitKMeans(KMeans):
    """Fails the test if a fit starts: checks of --out must come first."""

    def fit(self, X, y=None, sample_weight=None):
        raise AssertionError("the fit ran before --out was checked")


def _no_fit(monkeypatch):
    monkeypatch.setattr(cli, "_known_methods", lambda: {"KMeans": _NoFitKMeans})


@pytest.mark.parametrize("form", ["same path", "relative", "dotted", "symlink", "hard link"])
def test_out_that_is_the_input_file_is_refused_before_the_fit(form, tmp_path, blobs, capsys,
                                                               monkeypatch):
    X, _ = blobs
    data = tmp_path / "data.csv"
    _write_csv(data, X)
    before = data.read_text()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    if form == "symlink":
        (tmp_path / "link.csv").symlink_to(data)
    elif form == "hard link":
        os.link(data, tmp_path / "link.csv")
    out = {"same path": str(data), "relative": "../data.csv", "dotted": "../sub/../data.csv",
           "symlink": str(tmp_path / "link.csv"), "hard link": "../link.csv"}[form]
    _no_fit(monkeypatch)
    assert main(["cluster", str(data), "--method", "KMeans", "--n-clusters", "3",
                 "--out", out]) == 2
    err = capsys.readouterr().err
    assert f"error: --out {out} is the input file" in err
    assert data.read_text() == before


def test_out_in_a_missing_folder_exits_2_before_any_fit(tmp_path, blobs, capsys, monkeypatch):
    data = _write_csv(tmp_path / "data.csv", blobs[0])
    _no_fit(monkeypatch)
    out = tmp_path / "no_such_folder" / "labels.csv"
    assert main(["cluster", data, "--method", "KMeans", "--n-clusters", "3",
                 "--out", str(out)]) == 2
    assert (f"error: cannot write {out}: the folder {tmp_path / 'no_such_folder'} does not exist"
            in capsys.readouterr().err)
    assert main(["cluster", data, "--method", "KMeans", "--n-clusters", "3",
                 "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path} is a folder" in capsys.readouterr().err


def test_out_in_a_folder_without_write_permission_exits_2_before_any_fit(tmp_path, blobs,
                                                                        capsys, monkeypatch):
    data = _write_csv(tmp_path / "data.csv", blobs[0])
    folder = tmp_path / "locked"
    folder.mkdir()
    real_access = os.access
    # The superuser may write anywhere, so the refusal is simulated rather than chmod-ed.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        Path(path) != folder and real_access(path, mode, **kw)))
    _no_fit(monkeypatch)
    assert main(["cluster", data, "--method", "KMeans", "--n-clusters", "3",
                 "--out", str(folder / "labels.csv")]) == 2
    assert f"the folder {folder} is not writable" in capsys.readouterr().err


def test_a_failed_write_leaves_the_previous_file_and_no_partial_one(tmp_path, blobs, capsys,
                                                                   monkeypatch):
    data = _write_csv(tmp_path / "data.csv", blobs[0])
    out = tmp_path / "labels.csv"
    out.write_text("previous\n")

    def failing_replace(src, dst):
        assert Path(src).parent == tmp_path and Path(src).read_text().startswith("label\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    assert main(["cluster", data, "--method", "KMeans", "--n-clusters", "3",
                 "--out", str(out)]) == 2
    assert f"cannot write {out}: [Errno 28] No space left on device" in capsys.readouterr().err
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "labels.csv"]


def test_out_through_a_symlink_writes_its_target_with_usual_permissions(tmp_path, blobs,
                                                                       monkeypatch):
    data = _write_csv(tmp_path / "data.csv", blobs[0])
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "labels.csv"
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    old_umask = os.umask(0o027)
    try:
        assert main(["cluster", data, "--method", "KMeans", "--n-clusters", "3",
                     "--out", str(link)]) == 0
    finally:
        os.umask(old_umask)
    assert link.is_symlink()
    assert len(_read_labels(target.read_text())) == 30
    assert target.stat().st_mode & 0o777 == 0o640  # as open() with that umask, not 0o600
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["labels.csv"]


def test_verbose_shows_the_estimators_progress_on_stderr(tmp_path, blobs, capsys):
    data = _write_csv(tmp_path / "data.csv", blobs[0])
    args = ["cluster", data, "--method", "AutoencoderKMeans", "--n-clusters", "3",
            *TINY_AE_ARGS]
    assert main(args) == 0
    quiet = capsys.readouterr()
    assert main([*args, "-v"]) == 0
    loud = capsys.readouterr()
    assert "pretrain" not in quiet.err and "loss=" not in quiet.err
    assert "pretrain" in loud.err and "loss=" in loud.err
    assert "AutoencoderKMeans: fitting 30 rows x 3 features (standardised) into 3" in loud.err
    np.testing.assert_array_equal(_read_labels(loud.out), _read_labels(quiet.out))


def test_verbose_output_an_estimator_prints_stays_off_stdout(tmp_path, blobs, capsys):
    data = _write_csv(tmp_path / "data.csv", blobs[0])
    assert main(["cluster", data, "--method", "KMeans", "--n-clusters", "3", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert len(_read_labels(captured.out)) == 30  # labels only
    assert "Initialization complete" in captured.err  # KMeans(verbose=1) prints it


class _SlowWarningKMeans(KMeans):
    def fit(self, X, y=None, sample_weight=None):
        warnings.warn("early news", UserWarning, stacklevel=2)
        warnings.warn("early news", UserWarning, stacklevel=2)
        print("FIT GOES ON", file=sys.stderr)
        return super().fit(X, y, sample_weight)


def test_fit_warnings_show_while_the_fit_runs(tmp_path, blobs, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_known_methods", lambda: {"Warner": _SlowWarningKMeans})
    data = _write_csv(tmp_path / "data.csv", blobs[0])
    assert main(["cluster", data, "--method", "Warner", "--n-clusters", "3"]) == 0
    err = capsys.readouterr().err.splitlines()
    line = "skdeepclust cluster: warning: UserWarning: early news"
    assert err.count(line) == 1
    assert err.index(line) < err.index("FIT GOES ON")


@pytest.mark.parametrize("content, delimiter, hint", [
    ("a;b\n1;2\n3;4\n", ",", "--delimiter ';'"),
    ("1\t2\n3\t4\n", ",", "--delimiter '\\t'"),
    ("1|2\n3|4\n", ",", "--delimiter '|'"),
    ("1,2\n3,4\n", ";", "--delimiter ','"),
    ("a;b\n", ",", "--delimiter ';'"),  # a header alone
], ids=["semicolon", "tab", "pipe", "comma", "header only"])
def test_a_single_column_holding_another_separator_hints_at_delimiter(content, delimiter, hint,
                                                                      tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_text(content)
    assert main(["cluster", str(path), "--method", "KMeans", "--n-clusters", "2",
                 "--delimiter", delimiter]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith(f"pass {hint}.")
    if content.count("\n") > 1:  # the hint, followed, works
        assert main(["cluster", str(path), "--method", "KMeans", "--n-clusters", "2",
                     "--delimiter", hint.split()[1].strip("'")]) == 0
        assert len(_read_labels(capsys.readouterr().out)) == 2


def test_no_delimiter_hint_where_columns_were_found(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_text("1,x;y\n3,4\n")
    assert main(["cluster", str(path), "--method", "KMeans", "--n-clusters", "2"]) == 2
    assert "--delimiter" not in capsys.readouterr().err


def test_delimiter_must_be_one_character(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_text("1,2\n3,4\n")
    assert main(["cluster", str(path), "--method", "KMeans", "--n-clusters", "2",
                 "--delimiter", ";;"]) == 2
    assert "expected one character (or \\t for a tab), got ';;'" in capsys.readouterr().err


def test_header_detection(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x, 2020\n1,2\n\n3,4\n")
    X, columns = read_numeric_csv(path)
    assert columns == ["x", "2020"]
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    path.write_text("1;2\n3;4\n")
    X, columns = read_numeric_csv(path, delimiter=";")
    assert columns is None
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])


ERROR_CASES = {
    "missing file": (None, ["--method", "KMeans", "--n-clusters", "2"], "file not found"),
    "non-numeric column, header": (
        "a,b,c\n1,x,2\n3,4,5\n", ["--method", "KMeans", "--n-clusters", "2"],
        r"column 'b' \(column 2\) of .* has the non-numeric value 'x' on line 2"),
    "non-numeric column, no header": (
        "1,2,foo\n3,4,bar\n", ["--method", "KMeans", "--n-clusters", "2"],
        "column 3 of .* has the non-numeric value 'foo' on line 1"),
    "missing value": ("a,b\n1,2\n3,\n", ["--method", "KMeans", "--n-clusters", "2"],
                      "column 'b' .* has a missing value on line 3"),
    "non-finite value": ("1,2\n3,nan\n", ["--method", "KMeans", "--n-clusters", "2"],
                         "column 2 .* has 'nan' on line 2; values must be finite"),
    "ragged rows": ("1,2\n3,4,5\n", ["--method", "KMeans", "--n-clusters", "2"],
                    "line 2 of .* has 3 fields, expected 2"),
    "empty file": ("\n", ["--method", "KMeans", "--n-clusters", "2"], "is empty"),
    "header only": ("a,b\n", ["--method", "KMeans", "--n-clusters", "2"], "no data rows"),
    "unknown method": ("1,2\n3,4\n", ["--method", "DeepMagic", "--n-clusters", "2"],
                       "unknown method 'DeepMagic'; known methods: AutoencoderKMeans, .*KMeans"),
    "n-clusters zero": ("1,2\n3,4\n", ["--method", "KMeans", "--n-clusters", "0"],
                        "argument --n-clusters: expected a positive integer, got 0"),
    "n-clusters not a number": ("1,2\n3,4\n", ["--method", "KMeans", "--n-clusters", "two"],
                                "expected a positive integer, got 'two'"),
    "fewer rows than clusters": ("1,2\n3,4\n", ["--method", "KMeans", "--n-clusters", "3"],
                                 "has 2 data rows, fewer than --n-clusters=3"),
    "unknown parameter": ("1,2\n3,4\n", ["--method", "KMeans", "--n-clusters", "2",
                                         "--param", "epochs=3"],
                          "KMeans has no parameter epochs; its parameters: .*n_init"),
    "malformed parameter": ("1,2\n3,4\n", ["--method", "KMeans", "--n-clusters", "2",
                                           "--param", "epochs"], "expected KEY=VALUE"),
    "invalid parameter value": ("1,2\n3,4\n", ["--method", "KMeans", "--n-clusters", "2",
                                               "--param", "n_init=-1"],
                                "KMeans could not fit .*'n_init' parameter"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_cluster_errors_exit_2_with_a_message_and_no_traceback(case, tmp_path, capsys):
    content, args, message = ERROR_CASES[case]
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    assert main(["cluster", str(path), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert "error:" in captured.err
    assert any(re.search(message, line) for line in captured.err.splitlines()), (
        captured.err)


def test_errors_from_a_real_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "skdeepclust", "cluster", str(tmp_path / "nope.csv"),
         "--method", "KMeans", "--n-clusters", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"skdeepclust cluster: error: file not found: {tmp_path / 'nope.csv'}"]


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "cluster" in capsys.readouterr().err


# ------------------------------------------------------------------- demo

def test_demo_prints_progress_and_a_table_of_scores(capsys):
    rc = main(["demo", "--methods", "AutoencoderKMeans", "KMeans", "--tiny", "--seed", "3"])
    assert rc == 0
    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert [line.split()[1] for line in progress] == ["AutoencoderKMeans", "KMeans"]
    assert captured.err.startswith("digits: 1797 samples, 64 features, 10 classes")
    header, *rows = captured.out.strip().splitlines()
    assert header.split() == ["method", "ACC", "NMI", "ARI", "seconds"]
    table = {row.split()[0]: [float(v) for v in row.split()[1:]] for row in rows}
    assert set(table) == {"AutoencoderKMeans", "KMeans"}
    X, y = load_benchmark("digits")
    acc = clustering_accuracy(y, KMeans(10, random_state=3).fit_predict(X))
    assert table["KMeans"][0] == pytest.approx(acc, abs=5e-4)
    assert table["KMeans"][0] > 0.6
    assert all(0 <= v <= 1 for scores in table.values() for v in scores[:3])


def test_demo_reports_a_failed_fit_and_goes_on(capsys):
    rows = run_demo(["KMeans", "AutoencoderKMeans"], dataset="iris",
                    params={"KMeans": {"n_init": -1}, "AutoencoderKMeans": TINY_AE})
    assert [row["method"] for row in rows] == ["KMeans", "AutoencoderKMeans"]
    assert "n_init" in rows[0]["error"] and np.isnan(rows[0]["acc"])
    assert rows[1]["error"] is None and rows[1]["acc"] > 0.5
    assert main(["demo", "--methods", "KMeans", "--dataset", "iris",
                 "--param", "n_init=-1"]) == 1
    assert "failed" in capsys.readouterr().out


class _WarningKMeans(KMeans):
    def fit(self, X, y=None, sample_weight=None):
        warnings.warn("something to know", UserWarning, stacklevel=2)
        return super().fit(X, y, sample_weight)


def test_demo_prints_warnings_under_the_progress_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_known_methods", lambda: {"Warner": _WarningKMeans})
    assert main(["demo", "--methods", "Warner", "--dataset", "iris"]) == 0
    err = capsys.readouterr().err.splitlines()
    at = next(i for i, line in enumerate(err) if line.startswith("[1/1] Warner ... "))
    assert err[at].endswith(" s")
    assert err[at + 1] == "    UserWarning: something to know"


def test_demo_rejects_unknown_methods_and_parameters(capsys):
    assert main(["demo", "--methods", "NoSuchMethod"]) == 2
    assert "known methods: AutoencoderKMeans" in capsys.readouterr().err
    assert main(["demo", "--methods", "KMeans", "--param", "pretrain_epochs=1"]) == 2
    assert "no selected method has a parameter 'pretrain_epochs'" in capsys.readouterr().err
    with pytest.raises(CLIError):
        run_demo(["nope"])


def test_demo_overrides_name_existing_estimators_and_parameters():
    estimators = dict(all_estimators())
    for name, params in DEMO_PARAMS.items():
        assert name in estimators, f"DEMO_PARAMS has an entry for unknown estimator {name}"
        assert set(params) <= set(estimators[name]().get_params()), name


def test_demo_applies_its_overrides_under_the_users_parameters(monkeypatch):
    built = {}
    original = cli._make_estimator

    def spy(name, methods, *, n_clusters, seed, params):
        est = original(name, methods, n_clusters=n_clusters, seed=seed, params=params)
        built[name] = est.get_params()
        return est

    monkeypatch.setattr(cli, "_make_estimator", spy)
    monkeypatch.setitem(DEMO_PARAMS, "AutoencoderKMeans", {**TINY_AE, "pretrain_epochs": 1})
    run_demo(["AutoencoderKMeans"], dataset="iris",
             params={"AutoencoderKMeans": {"embedding_dim": 3}})
    got = built["AutoencoderKMeans"]
    assert got["pretrain_epochs"] == 1 and got["hidden_layer_sizes"] == (16,)  # the demo's
    assert got["embedding_dim"] == 3  # the user's wins over the demo's 2


def test_demo_over_budget_note_speaks_to_the_user_not_of_the_source(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_known_methods", lambda: {"KMeans": KMeans})
    monkeypatch.setattr(cli, "DEMO_BUDGET_S", 0)
    assert main(["demo", "--dataset", "iris"]) == 0
    note = next(line for line in capsys.readouterr().err.splitlines()
                if line.startswith("note:"))
    assert "--methods runs a subset" in note
    assert "cli.py" not in note and "DEMO_PARAMS" not in note
