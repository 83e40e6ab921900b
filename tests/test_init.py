"""Importing the package: OMP_WAIT_POLICY is set for torch unless the user or torch came first."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _wait_policy_after(code, **env):
    """OMP_WAIT_POLICY as seen after running ``code`` in a fresh interpreter."""
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), environ.get("PYTHONPATH", "")])
    environ.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code + "; import os; print(os.environ.get('OMP_WAIT_POLICY'))"],
        capture_output=True, text=True, timeout=120, env=environ, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("code, env, expected", [
    ("import skdeepclust", {}, "PASSIVE"),
    ("import skdeepclust", {"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),
    # OpenMP read the variable when torch loaded: setting it now would only mislead.
    ("import torch; import skdeepclust", {}, "None"),
], ids=["unset", "user's setting", "torch first"])
def test_import_sets_a_passive_openmp_wait_policy_only_when_it_can(code, env, expected):
    assert _wait_policy_after(code, **env) == expected
