"""The launch files (genuine ROS 2 Python launch files) and the launcher describe the same graph.

`launch`/`launch_ros` are not pip-installable, so the files are parsed with `ast`: executables, node
names, parameters files, launch arguments and the LARGE_DATA environment must match launcher.py and
setup.py. Where launch_ros imports (a ROS 2 install), the descriptions are also built for real.
"""

import ast
import re

import pytest
from conftest import REPO_ROOT

from pilotnet_brain.ros import launcher
from pilotnet_brain.ros.brain_node import BRAIN_PARAMETERS
from pilotnet_brain.ros.metrics_node import METRICS_PARAMETERS
from pilotnet_brain.ros.sim_node import sim_node_defaults

ROOT = REPO_ROOT
LAUNCH = ROOT / "launch"


def calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def kw(call, key):
    for k in call.keywords:
        if k.arg == key:
            return k.value
    return None


def literal_strings(node):
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def dict_keys(node):
    return {k.value for d in ast.walk(node) if isinstance(d, ast.Dict) for k in d.keys if isinstance(k, ast.Constant)}


def parse(name):
    tree = ast.parse((LAUNCH / name).read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    return tree


def nodes(tree):
    out = {}
    for call in calls(tree, "Node"):
        assert kw(call, "package").value == "pilotnet_brain"
        exe = kw(call, "executable").value
        assert kw(call, "name").value == exe
        out[exe] = call
    return out


def console_scripts():
    text = (ROOT / "setup.py").read_text()
    return dict(re.findall(r'"(\w+) = (pilotnet_brain[\w.]+):main"', text))


def test_simulation_launch_matches_launcher(tmp_path):
    tree = parse("simulation.launch.py")
    found = nodes(tree)
    assert set(found) == set(launcher.NODE_MODULES) | {launcher.RECORDER_EXECUTABLE}
    # the same executables exist as console scripts (lib/pilotnet_brain under colcon) running the same modules
    scripts = console_scripts()
    for exe, module in launcher.NODE_MODULES.items():
        assert scripts.get(exe) == module
    # launch arguments = run_simulation's knobs
    args = {c.args[0].value for c in calls(tree, "DeclareLaunchArgument")}
    assert args == set(launcher.SIMULATION_LAUNCH_ARGS)
    # same config files: simulation.yaml for sim_node, a config/brains YAML for brain_node
    assert "simulation.yaml" in literal_strings(tree) and "brains" in literal_strings(tree)
    assert "explicit.yaml" in literal_strings(tree)
    # parameters named in the launch file exist on the nodes
    known = {"sim_node": sim_node_defaults(), "brain_node": BRAIN_PARAMETERS, "metrics_node": METRICS_PARAMETERS}
    for exe, params in known.items():
        assert dict_keys(kw(found[exe], "parameters")) <= set(params), exe
    assert kw(found["bag_recorder"], "condition") is not None
    # LARGE_DATA for the images
    env = [(c.args[0].value, c.args[1].value) for c in calls(tree, "SetEnvironmentVariable")]
    assert env == list(launcher.topics.FASTDDS_ENV.items())
    # the launcher passes the same parameter names, with the same files
    graph = launcher.simulation_graph(
        "simple_circuit", "cw", "explicit", clock="lockstep", out_dir=tmp_path, timeout=5.0, domain_id=50
    )
    argv = {p.name: p.argv for p in graph.processes}
    assert set(argv) == set(launcher.NODE_MODULES)
    for exe, a in argv.items():
        assert a[a.index("--ros-args") :][:3] == ["--ros-args", "-r", f"__node:={exe}"]
        passed = {x.split(":=")[0] for i, x in enumerate(a) if i and a[i - 1] == "-p"}
        assert passed <= set(known[exe]), exe
        launch_names = dict_keys(kw(found[exe], "parameters"))
        assert passed <= launch_names, exe
    assert argv["sim_node"][argv["sim_node"].index("--params-file") + 1].endswith("config/simulation.yaml")
    assert argv["brain_node"][argv["brain_node"].index("--params-file") + 1].endswith("config/brains/explicit.yaml")
    assert graph.env["FASTDDS_BUILTIN_TRANSPORTS"] == "LARGE_DATA" and graph.env["ROS_DOMAIN_ID"] == "50"
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE" not in launcher.topics.FASTDDS_ENV


def test_brain_launch_matches_launcher():
    tree = parse("brain.launch.py")
    assert set(nodes(tree)) == {"brain_node"}
    assert {c.args[0].value for c in calls(tree, "DeclareLaunchArgument")} == set(launcher.BRAIN_LAUNCH_ARGS)
    assert "explicit.yaml" in literal_strings(tree)
    graph = launcher.brain_graph("pilotnet_fp32")
    assert graph.processes[0].argv[-1].endswith("config/brains/pilotnet_fp32.yaml")
    assert graph.env["FASTDDS_BUILTIN_TRANSPORTS"] == "LARGE_DATA"


def test_shipped_brain_configs_are_valid():
    from pilotnet_brain.ros.brain_node import load_brain_parameters

    files = sorted((ROOT / "config" / "brains").glob("*.yaml"))
    assert {f.name for f in files} >= {"explicit.yaml", "pilotnet_fp32.yaml"}
    for f in files:
        p = load_brain_parameters(f)
        assert p["brain"] in ("explicit", "pilotnet")


@pytest.mark.parametrize("name", ["simulation.launch.py", "brain.launch.py"])
def test_launch_files_build_with_launch_ros(name):
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (not on PyPI): parsed with ast only")
    from launch.launch_description_sources import get_launch_description_from_python_launch_file

    ld = get_launch_description_from_python_launch_file(str(LAUNCH / name))
    assert ld.entities
