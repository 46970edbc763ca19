"""Packaging checks: package.xml, setup.py/setup.cfg, the single torch pin, and resources lookup.

Fast and offline: no colcon here (`make colcon-check` does the real ament build).
"""

import configparser
import re
import runpy
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from pilotnet_brain import resources

REPO = REPO_ROOT
PKG = "pilotnet_brain"
TORCH_PIN = "torch==2.13.0"


# --------------------------------------------------------------------------- package.xml


@pytest.fixture(scope="module")
def package_xml():
    return ET.parse(REPO / "package.xml").getroot()


def _texts(root, tag):
    return [el.text.strip() for el in root.findall(tag) if el.text]


def test_package_xml_format_3_ament_python(package_xml):
    assert package_xml.tag == "package"
    assert package_xml.get("format") == "3"
    assert package_xml.findtext("name").strip() == PKG
    assert package_xml.findtext("export/build_type").strip() == "ament_python"
    for tag in ("version", "description", "maintainer", "license"):
        assert (package_xml.findtext(tag) or "").strip(), tag


def test_package_xml_dependencies(package_xml):
    exec_deps = set(_texts(package_xml, "exec_depend")) | set(_texts(package_xml, "depend"))
    for dep in ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_msgs", "cv_bridge"):
        assert dep in exec_deps, dep
    test_deps = _texts(package_xml, "test_depend")
    assert any(d in ("pytest", "python3-pytest") for d in test_deps), test_deps


# --------------------------------------------------------------------------- setup.py / setup.cfg


@pytest.fixture(scope="module")
def setup_kwargs():
    """Run setup.py with setuptools.setup replaced by a recorder (cwd = repo, as pip/colcon do)."""
    import os

    import setuptools

    captured = {}
    real_setup, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        os.chdir(REPO)
        runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = real_setup
        os.chdir(cwd)
    assert captured, "setup.py did not call setuptools.setup()"
    return captured


def test_setup_metadata_matches_package_xml(setup_kwargs, package_xml):
    assert setup_kwargs["name"] == PKG
    assert setup_kwargs["version"] == package_xml.findtext("version").strip()
    assert PKG in setup_kwargs["packages"]
    assert not any(p == "test" or p.startswith("test.") for p in setup_kwargs["packages"])


def test_setup_data_files(setup_kwargs):
    data = {dest: list(files) for dest, files in setup_kwargs["data_files"]}
    assert data["share/ament_index/resource_index/packages"] == ["resource/" + PKG]
    assert (REPO / "resource" / PKG).is_file()
    assert "package.xml" in data["share/" + PKG]
    # every launch file and config file in the tree is installed
    launch = sorted(str(p.relative_to(REPO)) for p in (REPO / "launch").glob("*.py"))
    config = sorted(
        str(p.relative_to(REPO)) for pattern in ("*.yaml", "*.xml") for p in (REPO / "config").glob(pattern)
    )
    assert sorted(data["share/%s/launch" % PKG]) == launch
    assert sorted(data["share/%s/config" % PKG]) == config
    assert "config/simulation.yaml" in config and "config/fastdds.xml" in config


def test_setup_entry_point(setup_kwargs):
    scripts = [s.replace(" ", "") for s in setup_kwargs["entry_points"]["console_scripts"]]
    assert "pilotnet-brain=pilotnet_brain.cli.main:main" in scripts


def test_setup_cfg_puts_ros2_run_scripts_in_lib():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert cfg.get("develop", "script_dir") == "$base/lib/" + PKG
    assert cfg.get("install", "install_scripts") == "$base/lib/" + PKG


def test_pip_install_put_console_script_in_env_bin():
    """pip ignores setup.cfg's script dirs: the console script must land in the env's bin/."""
    from importlib import metadata

    try:
        dist = metadata.distribution(PKG)
    except metadata.PackageNotFoundError:
        pytest.skip("pilotnet_brain is not pip-installed here (source tree only)")
    if dist.read_text("RECORD") is None or dist.read_text("INSTALLER") is None:
        pytest.skip("not installed by pip (e.g. colcon's setup.py install)")
    eps = [ep for ep in dist.entry_points if ep.group == "console_scripts"]
    assert any(ep.name == "pilotnet-brain" and ep.value == "pilotnet_brain.cli.main:main" for ep in eps)
    scripts = [dist.locate_file(f) for f in (dist.files or []) if f.name == "pilotnet-brain"]
    assert scripts, "RECORD lists no pilotnet-brain script"
    import sysconfig

    bindir = Path(sysconfig.get_path("scripts")).resolve()
    assert any(Path(s).resolve().parent == bindir and Path(s).is_file() for s in scripts), scripts


# --------------------------------------------------------------------------- the torch pin

# a requirement-ish mention of torch: 'torch', "torch==…", torch>=…, `pip install torch`
_TORCH_REQ = re.compile(r"""(?<![\w.-])torch(?![\w.-])\s*(?:[<>=!~]=?\s*[\w.*+-]+)?""")


def _code_lines(path):
    text = path.read_text()
    if path.name == "setup.cfg":  # import-linter contracts name modules (e.g. torch), not requirements
        text = text.split("[importlinter", 1)[0]
    for line in text.splitlines():
        stripped = line.split("#", 1)[0]
        if stripped.strip():
            yield stripped


def test_torch_pinned_exactly_once():
    found = {}
    files = [REPO / "setup.py", REPO / "setup.cfg", REPO / "Makefile"]
    files += sorted(p for p in (REPO / ".ci").rglob("*") if p.is_file())
    files += sorted(REPO.glob("requirements*.txt")) + sorted(REPO.glob("pyproject.toml"))
    for path in files:
        if not path.is_file():
            continue
        hits = []
        for line in _code_lines(path):
            # ignore identifiers like TORCH / "[torch]" extra names used as keys: only quoted or
            # shell-word mentions of the *distribution* count
            for m in re.finditer(r"""["']\s*(torch(?![\w.-])[^"']*)["']|(?:^|\s)(torch(?![\w.-])\S*)""", line):
                hits.append((m.group(1) or m.group(2)).strip())
        if hits:
            found[str(path.relative_to(REPO))] = hits
    # setup.py's extras key "torch" is a name, not a requirement
    setup_hits = [h for h in found.pop("setup.py", []) if h != "torch"]
    assert setup_hits == [TORCH_PIN], setup_hits
    assert not found, "torch requirements outside setup.py: %r" % found


def test_torch_extra_uses_the_pin(setup_kwargs):
    extras = setup_kwargs["extras_require"]
    assert extras["torch"] == [TORCH_PIN]
    others = [r for name, reqs in extras.items() if name != "torch" for r in reqs]
    others += list(setup_kwargs["install_requires"])
    assert not [r for r in others if _TORCH_REQ.fullmatch(r.strip())], others


def test_ray_is_pinned_once_in_the_sweep_extra(setup_kwargs):
    """Every node of a Ray cluster needs the same Ray: one exact pin, in the 'sweep' extra, installed here."""
    import importlib.metadata

    mentions = [
        (name, r) for name, reqs in setup_kwargs["extras_require"].items() for r in reqs if re.match(r"ray\b", r)
    ]
    mentions += [("install_requires", r) for r in setup_kwargs["install_requires"] if re.match(r"ray\b", r)]
    assert len(mentions) == 1 and mentions[0][0] == "sweep", mentions
    name, _, version = mentions[0][1].partition("==")
    assert name == "ray" and version, mentions
    try:
        assert importlib.metadata.version("ray") == version
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("Ray is not installed (the 'sweep' extra)")


# --------------------------------------------------------------------------- resources


def test_resources_finds_simulation_config():
    path = resources.config_path("simulation.yaml")
    assert path.is_file()
    assert path.name == "simulation.yaml" and path.parent.name == "config"
    assert (resources.share_dir() / "package.xml").is_file()


def test_resources_uses_source_tree_when_run_from_checkout():
    if not (resources._PKG_DIR.parent / "setup.py").is_file():
        pytest.skip("pilotnet_brain is imported from an install, not from the checkout")
    assert resources.share_dir() == REPO
    assert resources.config_path("simulation.yaml") == REPO / "config" / "simulation.yaml"


def test_resources_missing_file_names_places_searched():
    with pytest.raises(FileNotFoundError) as err:
        resources.config_path("no_such_file.yaml")
    msg = str(err.value)
    assert "no_such_file.yaml" in msg
    for _, place in resources.search_dirs():
        assert str(place) in msg
    with pytest.raises(FileNotFoundError):
        resources.launch_path("no_such.launch.py")


@pytest.mark.parametrize("bad", ["../setup.py", "/etc/passwd", ""])
def test_resources_rejects_paths_outside_share(bad):
    with pytest.raises(ValueError):
        resources.config_path(bad)


def _fake_prefix(root: Path, with_index: bool) -> Path:
    """A prefix laid out like a pip/colcon install: share/pilotnet_brain + site-packages/pilotnet_brain."""
    share = root / "share" / PKG
    (share / "config").mkdir(parents=True)
    (share / "launch").mkdir()
    (share / "package.xml").write_text("<package/>")
    (share / "config" / "simulation.yaml").write_text("x: 1\n")
    (share / "launch" / "drive.launch.py").write_text("")
    if with_index:
        index = root / "share" / "ament_index" / "resource_index" / "packages"
        index.mkdir(parents=True)
        (index / PKG).write_text("")
    pkg_dir = root / "lib" / "python3" / "site-packages" / PKG
    pkg_dir.mkdir(parents=True)
    return pkg_dir


def test_resources_pip_install_uses_sys_prefix_share(tmp_path, monkeypatch):
    pkg_dir = _fake_prefix(tmp_path, with_index=False)
    monkeypatch.setattr(resources, "_PKG_DIR", pkg_dir)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    share = tmp_path / "share" / PKG
    assert resources.share_dir() == share
    assert resources.config_path("simulation.yaml") == share / "config" / "simulation.yaml"
    assert resources.launch_path("drive.launch.py") == share / "launch" / "drive.launch.py"


def test_resources_colcon_install_uses_ament_index(tmp_path, monkeypatch):
    pytest.importorskip("ament_index_python")
    pkg_dir = _fake_prefix(tmp_path, with_index=True)
    monkeypatch.setattr(resources, "_PKG_DIR", pkg_dir)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    share = tmp_path / "share" / PKG
    assert resources.search_dirs()[0] == ("ament index", share)
    assert resources.config_path("simulation.yaml") == share / "config" / "simulation.yaml"


def test_resources_stale_ament_prefix_does_not_shadow_checkout(tmp_path, monkeypatch):
    pytest.importorskip("ament_index_python")
    if not (resources._PKG_DIR.parent / "setup.py").is_file():
        pytest.skip("pilotnet_brain is imported from an install, not from the checkout")
    _fake_prefix(tmp_path, with_index=True)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert resources.config_path("simulation.yaml") == REPO / "config" / "simulation.yaml"


def test_resources_import_does_not_import_ros():
    code = (
        "import sys; import pilotnet_brain.resources; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'ament_index_python')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(REPO), timeout=60)
