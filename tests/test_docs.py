"""Documentation coverage: runnable examples everywhere, and docs that list what the code has.

Every public class and function (``skdeepclust.__all__`` and the ``__all__`` of
each public module) needs a docstring with an Examples section holding at
least one ``>>>`` line; ``pytest --doctest-modules skdeepclust`` then runs
them. The API reference (``doc/conf.py``), the method pages and the README
must name every public module and estimator.
"""

import ast
import importlib
import inspect
import pkgutil
import re
import shlex
from pathlib import Path

import pytest

import skdeepclust
from skdeepclust.utils import all_estimators

ROOT = Path(__file__).resolve().parents[1]

# Public modules left out of the docstring and API checks, with the reason.
NOT_IN_API = {
    "base": "developer API for method authors; documented in its module docstring",
    "cli": "documented as commands in doc/cli.rst",
}


def _public_modules():
    return sorted(
        f"skdeepclust.{info.name}"
        for info in pkgutil.iter_modules(skdeepclust.__path__)
        if not info.name.startswith("_")
    )


def _documented_objects():
    """``(qualified name, object)`` for every public class and function to check."""
    found = {}
    modules = [skdeepclust] + [importlib.import_module(m) for m in _public_modules()
                               if m.rsplit(".", 1)[1] not in NOT_IN_API]
    for module in modules:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # constants, scorer instances, __version__
            if not getattr(obj, "__module__", "").startswith("skdeepclust"):
                continue  # re-exported from another package
            found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(found.items())


_SECTION = re.compile(r"^Examples\n-{8,}\n(?P<body>.*?)(?=^[^\s][^\n]*\n-{3,}\n|\Z)",
                      re.MULTILINE | re.DOTALL)


def examples_problem(obj):
    """Why ``obj``'s own docstring lacks a runnable Examples section, or None."""
    doc = obj.__doc__  # not inspect.getdoc: it would borrow a base class's docstring
    if not doc or not doc.strip():
        return "has no docstring"
    match = _SECTION.search(inspect.cleandoc(doc))
    if match is None:
        return "has no 'Examples' section (numpydoc: 'Examples' underlined with '--------')"
    if ">>>" not in match.group("body"):
        return "has an Examples section without a '>>>' line to run"
    return None


def test_checker_flags_missing_and_empty_examples():
    def no_doc():
        pass

    def no_examples():
        """Do something.

        Returns
        -------
        None
        """

    def prose_examples():
        """Do something.

        Examples
        --------
        Call it.

        Notes
        -----
        >>> this line belongs to Notes, not Examples
        """

    def good():
        """Do something.

        Examples
        --------
        >>> good()
        """

    assert examples_problem(no_doc) == "has no docstring"
    assert "no 'Examples' section" in examples_problem(no_examples)
    assert "without a '>>>' line" in examples_problem(prose_examples)
    assert examples_problem(good) is None


def test_public_objects_are_found():
    names = dict(_documented_objects())
    assert "skdeepclust._autoencoder_kmeans.AutoencoderKMeans" in names
    assert "skdeepclust.exceptions.TrainingDivergedError" in names
    assert "skdeepclust.nn.MLP" in names


@pytest.mark.parametrize("qualname, obj",
                         [pytest.param(q, o, id=q) for q, o in _documented_objects()])
def test_public_object_has_runnable_examples(qualname, obj):
    problem = examples_problem(obj)
    assert problem is None, f"{qualname} {problem}"


@pytest.mark.parametrize("module", _public_modules())
def test_public_module_has_a_docstring(module):
    doc = importlib.import_module(module).__doc__
    assert doc and doc.strip(), f"{module} has no module docstring"


def _api_modules_of_doc_conf():
    tree = ast.parse((ROOT / "doc" / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "API_MODULES" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise AssertionError("doc/conf.py has no API_MODULES")


def test_api_reference_lists_every_public_module():
    listed = _api_modules_of_doc_conf()
    expected = {m for m in _public_modules() if m.rsplit(".", 1)[1] not in NOT_IN_API}
    missing = sorted(expected - listed)
    assert not missing, f"add {missing} to API_MODULES in doc/conf.py"


@pytest.mark.parametrize("name, cls", all_estimators())
def test_every_estimator_has_a_method_page(name, cls):
    pages = (ROOT / "doc" / "methods").glob("*.rst")
    assert any(f"skdeepclust.{name}`" in page.read_text() for page in pages), (
        f"no page in doc/methods/ refers to :class:`skdeepclust.{name}`"
    )


@pytest.mark.parametrize("name, cls", all_estimators())
def test_readme_methods_table_lists_every_estimator(name, cls):
    rows = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.startswith("|")]
    assert any(f"`{name}`" in row for row in rows), f"README.md's methods table lacks `{name}`"


def test_readme_test_command_is_the_one_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    ci_pytest = [ln.strip() for ln in ci if ln.strip().startswith("python -m pytest")]
    assert len(ci_pytest) == 1
    readme = (ROOT / "README.md").read_text()
    commands = [ln.strip() for ln in readme.splitlines() if "python -m pytest" in ln]
    assert commands, "README.md gives no test command"
    for command in commands:
        pytest_part = command[command.index("python -m pytest"):].strip("` ")
        assert shlex.split(pytest_part) == shlex.split(ci_pytest[0])
