"""Build the package the ROS 2 way (colcon, ament_python) in a scratch workspace and check the install
tree has what `ros2 run`, `ros2 launch` and the ament index need (what `make colcon-check` runs)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

PKG = "pilotnet_brain"
INSTALLED = [
    f"lib/{PKG}/pilotnet-brain",
    f"lib/{PKG}/brain_node",
    f"lib/{PKG}/sim_node",
    f"lib/{PKG}/metrics_node",
    f"lib/{PKG}/bag_recorder",
    f"share/{PKG}/package.xml",
    f"share/{PKG}/config/simulation.yaml",
    f"share/{PKG}/config/fastdds.xml",
    f"share/{PKG}/config/brains/pilotnet_fp32.yaml",
    f"share/{PKG}/launch/simulation.launch.py",
    f"share/{PKG}/launch/brain.launch.py",
    f"share/ament_index/resource_index/packages/{PKG}",
]


def _source_files():
    """Tracked and untracked-but-not-ignored files: what a user's checkout has (no .venv, build/, runs/)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [f for f in out.decode().split("\0") if f and (REPO_ROOT / f).is_file()]


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory):
    colcon = Path(sys.executable).parent / "colcon"
    if not colcon.is_file():
        pytest.fail("colcon is not installed: pip install -e '.[dev]' (colcon-common-extensions)")
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files a user's source tree has")
    ws = tmp_path_factory.mktemp("colcon_ws")
    src = ws / "src" / PKG
    for rel in _source_files():
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, dst)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    run = subprocess.run(
        [
            str(colcon),
            "--log-base",
            "log",
            "build",
            "--base-paths",
            "src",
            "--build-base",
            "build",
            "--install-base",
            "install",
        ],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return ws / "install"


@pytest.mark.parametrize("rel", INSTALLED)
def test_install_tree_has(colcon_install, rel):
    assert (colcon_install / PKG / rel).exists(), rel


def test_installed_cli_is_executable_and_runs(colcon_install):
    exe = colcon_install / PKG / "lib" / PKG / "pilotnet-brain"
    assert os.access(exe, os.X_OK)
    env = dict(os.environ)
    run = subprocess.run(
        ["bash", "-c", f"set +u; source {colcon_install}/setup.bash; cd /tmp; {exe} --help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_sourced_workspace_imports_the_installed_package(colcon_install):
    """After `source install/setup.bash` Python finds the installed package and its share/ (ament index)."""
    code = (
        "import pathlib, pilotnet_brain, pilotnet_brain.resources as r; "
        "print(pathlib.Path(pilotnet_brain.__file__).resolve()); print(r.share_dir().resolve())"
    )
    run = subprocess.run(
        [
            "bash",
            "-c",
            f"set +u; source {colcon_install}/setup.bash; cd /tmp; {sys.executable} -c '{code}'",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    module_file, share = (Path(line) for line in run.stdout.split())
    root = colcon_install.resolve()
    assert root in module_file.parents, f"imported {module_file}, not from {root}"
    assert root in share.parents, f"share_dir() is {share}, not in {root}"
