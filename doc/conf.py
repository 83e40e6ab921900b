"""Sphinx configuration of the skdeepclust documentation.

The API page lists what the package exports, so it follows the code: the
estimators are every class in ``skdeepclust.__all__`` and each public module
contributes the names of its own ``__all__``. Both lists are written to
``_api_*.rst`` (ignored by git, included by ``api.rst``) before Sphinx reads
the sources; the pages of the members go to ``generated/``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shutil
import sys
from pathlib import Path

# Document the checkout this file belongs to, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import skdeepclust  # noqa: E402

project = "skdeepclust"
copyright = "skdeepclust developers"
release = skdeepclust.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]

# No mapping: CI has no network beyond package registries, so nothing is fetched.
intersphinx_mapping: dict = {}

# _generated/: tables written by benchmarks/render_docs.py, included by the pages.
exclude_patterns = ["_build", "_api_*.rst", "_generated"]
templates_path = ["_templates"]
default_role = "literal"

# Every page, plus the API lists written below (included by api.rst, so
# autosummary would not scan them otherwise).
autosummary_generate = sorted(
    str(p.relative_to(Path(__file__).parent))
    for p in Path(__file__).parent.rglob("*.rst")
    if not {"_build", "_templates", "generated", "_generated"} & set(p.parts)
    and not p.name.startswith("_api_")
) + ["_api_estimators.rst", "_api_modules.rst"]
autodoc_typehints = "none"
autodoc_default_options = {"member-order": "groupwise"}

numpydoc_show_class_members = False
# Style checks belong to tests/test_docs.py, not to the build.
numpydoc_validation_checks: set = set()
numpydoc_xref_param_type = False

try:
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
except ImportError:
    html_theme = "alabaster"
html_title = f"skdeepclust {release}"
html_static_path: list = []
html_show_sourcelink = False

# Public modules of the API page, in this order, with their section titles.
# Adding one is one line; a module whose file does not exist yet is skipped.
API_MODULES = {
    "skdeepclust.metrics": "Metrics",
    "skdeepclust.datasets": "Data sets",
    "skdeepclust.augment": "Augmentations",
    "skdeepclust.neighbors": "Nearest neighbours",
    "skdeepclust.nn": "Network building blocks",
    "skdeepclust.losses": "Losses",
    "skdeepclust.exceptions": "Exceptions and warnings",
    "skdeepclust.utils": "Utilities",
}

_HERE = Path(__file__).parent


def _autosummary_by_template(module: str, names: list[str]) -> list[str]:
    """One autosummary block per template, keeping the order of ``names``."""
    mod = importlib.import_module(module)
    groups: dict[str, list[str]] = {}
    for name in names:
        obj = getattr(mod, name)
        if inspect.isclass(obj) and issubclass(obj, skdeepclust.base.BaseDeepClusterer):
            template = "estimator.rst"
        elif inspect.isclass(obj):
            template = "class.rst"
        elif callable(obj):
            template = "function.rst"
        else:
            template = "data.rst"
        groups.setdefault(template, []).append(name)
    lines = [f".. currentmodule:: {module}", ""]
    for template, members in groups.items():
        lines += [".. autosummary::", "   :toctree: generated", f"   :template: {template}",
                  "   :nosignatures:", ""]
        lines += [f"   {name}" for name in members]
        lines.append("")
    return lines


def _write_api_lists() -> None:
    import skdeepclust.base  # noqa: F401  (estimator detection)

    out = _HERE  # beside api.rst, so the ":toctree: generated" paths agree
    # Stubs of names that left __all__ would be orphan pages (a warning, so an error).
    shutil.rmtree(_HERE / "generated", ignore_errors=True)
    estimators = [n for n in skdeepclust.__all__ if not n.startswith("_")]
    (out / "_api_estimators.rst").write_text(
        "\n".join(_autosummary_by_template("skdeepclust", estimators)) + "\n")

    lines: list[str] = []
    for module, title in API_MODULES.items():
        if importlib.util.find_spec(module) is None:
            continue  # not written yet
        mod = importlib.import_module(module)  # an import error fails the build, as it should
        heading = f":mod:`{module}`: {title}"
        lines += [f".. _api-{module.rsplit('.', 1)[1]}:", "", heading, "-" * len(heading), "",
                  f".. automodule:: {module}", "   :no-members:", ""]
        lines += _autosummary_by_template(module, list(mod.__all__))
    (out / "_api_modules.rst").write_text("\n".join(lines) + "\n")


_write_api_lists()


def _write_cli_help() -> None:
    """``--help`` of each sub-command, for cli.rst, at a fixed width."""
    import contextlib
    import io
    import os

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        for command in ("demo", "cluster"):
            text = io.StringIO()
            try:
                from skdeepclust.cli import main

                with contextlib.redirect_stdout(text):
                    main([command, "--help"])
            except ImportError:
                text.write("(the command line is not installed in this version)")
            (_HERE / f"_cli_{command}_help.txt").write_text(text.getvalue())
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


_write_cli_help()

# scikit-learn's glossary terms and the labels of its own docs could only be
# resolved through intersphinx (no network here): inherited docstrings and the
# shared parameter texts show them as text instead of failing the build.
_TERM = re.compile(r":term:`([^`<]*?)(?:\s*<([^`>]*)>)?`")
_REF = re.compile(r":ref:`([^`<]*?)(?:\s*<([^`>]*)>)?`")


# ``of shape (n_clusters_, d)``: a bare word ending in "_" is an rst link.
_SHAPE = re.compile(r"of shape \(([^)`]*)\)")
_TRAILING_UNDERSCORE = re.compile(r"\b([A-Za-z]\w*_)(?=[\s,]|$)")


def _quote_shape(match):
    return "of shape (" + _TRAILING_UNDERSCORE.sub(r"`\1`", match.group(1)) + ")"


def _unlink_sklearn_roles(app, what, name, obj, options, lines):
    from_sklearn = getattr(obj, "__module__", "") or ""
    for i, line in enumerate(lines):
        line = _TERM.sub(lambda m: f"*{m.group(1).strip()}*", line)
        line = _SHAPE.sub(_quote_shape, line)
        if from_sklearn.startswith("sklearn"):
            line = _REF.sub(lambda m: m.group(1).strip(), line)
        lines[i] = line


# An estimator shows ``predict_proba`` only where it has one (the method is
# defined on the base class behind ``available_if``). Members are filtered
# right after their class's own docstring is processed.
_current_class: list = [None]


def _remember_class(app, what, name, obj, options, lines):
    if what == "class":
        _current_class[0] = obj


def _skip_unavailable(app, what, name, obj, skip, options):
    cls = _current_class[0]
    if name == "predict_proba" and cls is not None and not callable(getattr(cls, "_proba", None)):
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _remember_class)
    app.connect("autodoc-process-docstring", _unlink_sklearn_roles)
    app.connect("autodoc-skip-member", _skip_unavailable)
