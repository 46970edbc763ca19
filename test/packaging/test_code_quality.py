"""The code's own rules, checked with maintained tools: ruff (lint + format) and import-linter (layers).

The configurations live in the repository (ruff.toml, setup.cfg [importlinter]); the tools are pinned in
setup.py's dev extra. A missing tool is a failure, not a skip: CI installs the dev extra.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

TOOLS = Path(sys.executable).parent
LINTED = ["pilotnet_brain", "test", "launch", "setup.py"]


def _tool(name: str) -> str:
    path = TOOLS / name
    if path.is_file():
        return str(path)
    found = shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[dev]'"
    return found


def _run(argv):
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_passes():
    run = _run([_tool("ruff"), "check", *LINTED])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_ruff_format_is_applied():
    run = _run([_tool("ruff"), "format", "--check", *LINTED])
    assert run.returncode == 0, "run `ruff format`:\n" + run.stdout[-4000:] + run.stderr[-2000:]


def test_import_contracts_are_kept():
    run = _run([_tool("lint-imports"), "--no-cache"])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout, run.stdout[-3000:]


@pytest.mark.parametrize("contract", ["layers", "runtime-not-build-time", "ros-only-under-ros", "ray-only-in-sweep"])
def test_contract_is_configured(contract):
    """The contracts the architecture promises exist (a deleted contract would pass lint-imports)."""
    text = (REPO_ROOT / "setup.cfg").read_text()
    assert f"[importlinter:contract:{contract}]" in text


def test_a_layer_violation_is_caught(tmp_path):
    """import-linter really enforces the layers: a sim module importing the CLI breaks the contract."""
    pkg = tmp_path / "pkgcopy"
    shutil.copytree(
        REPO_ROOT / "pilotnet_brain", pkg / "pilotnet_brain", ignore=shutil.ignore_patterns("models", "__pycache__")
    )
    shutil.copy(REPO_ROOT / "setup.cfg", pkg / "setup.cfg")
    bad = pkg / "pilotnet_brain" / "sim" / "vehicle.py"
    bad.write_text(bad.read_text() + "\nimport pilotnet_brain.cli.main  # noqa\n")
    run = subprocess.run(
        [_tool("lint-imports"), "--no-cache"],
        cwd=pkg,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(pkg), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode != 0 and "BROKEN" in run.stdout.upper(), run.stdout[-3000:]
