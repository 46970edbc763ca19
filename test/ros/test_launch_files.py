"""The launch files (genuine ROS 2 Python launch files) and the launcher describe the same graph.

`launch`/`launch_ros` are not pip-installable, so the files are parsed with `ast` (executables, node
names, parameters files, the Fast DDS profile must match launcher.py and setup.py) and run with
stand-ins for the launch classes that record how the file built them (launch arguments: names, defaults
and descriptions from the schemas of pilotnet_brain.config; node parameters known to the nodes' schemas).
Where launch_ros imports (a ROS 2 install), the descriptions are also built for real.
"""

import ast
import importlib.util
import re
import sys
import types

import pytest
from conftest import REPO_ROOT

from pilotnet_brain import config
from pilotnet_brain.ros import launcher

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
    # same config file for sim_node (the brain's comes from the brain_config argument)
    assert "simulation.yaml" in literal_strings(tree)
    # parameters named in the launch file exist on the nodes
    known = {name: schema.names for name, schema in config.NODE_SCHEMAS.items()}
    for exe, params in known.items():
        assert dict_keys(kw(found[exe], "parameters")) <= set(params), exe
    assert kw(found["bag_recorder"], "condition") is not None
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
    assert graph.env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(ROOT / "config" / "fastdds.xml")
    assert "FASTDDS_BUILTIN_TRANSPORTS" not in graph.env and graph.env["ROS_DOMAIN_ID"] == "50"


def test_brain_launch_matches_launcher():
    tree = parse("brain.launch.py")
    assert set(nodes(tree)) == {"brain_node"}
    graph = launcher.brain_graph("pilotnet_fp32")
    assert graph.processes[0].argv[-1].endswith("config/brains/pilotnet_fp32.yaml")
    assert graph.env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(ROOT / "config" / "fastdds.xml")


# --- the launch files run against recording stand-ins of launch / launch_ros -----------------------
class Recorded:
    """Stands in for a launch / launch_ros class: keeps the arguments the launch file passed."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __repr__(self):
        return f"{type(self).__name__}{self.args}"


LAUNCH_CLASSES = {
    "launch": ("LaunchDescription",),
    "launch.actions": ("DeclareLaunchArgument", "EmitEvent", "RegisterEventHandler", "SetEnvironmentVariable"),
    "launch.conditions": ("IfCondition",),
    "launch.event_handlers": ("OnProcessExit",),
    "launch.events": ("Shutdown",),
    "launch.substitutions": ("LaunchConfiguration", "PathJoinSubstitution", "PythonExpression"),
    "launch_ros.actions": ("Node",),
    "launch_ros.substitutions": ("FindPackageShare",),
}


def run_launch_file(name, monkeypatch):
    """generate_launch_description() of launch/<name>, built from Recorded stand-ins: its entities."""
    for module_name, classes in LAUNCH_CLASSES.items():
        module = types.ModuleType(module_name)
        for cls in classes:
            setattr(module, cls, type(cls, (Recorded,), {}))
        monkeypatch.setitem(sys.modules, module_name, module)
    spec = importlib.util.spec_from_file_location(f"launch_file_{name.split('.')[0]}", LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert type(description).__name__ == "LaunchDescription"
    return description.args[0]


def of_type(entities, name):
    return [e for e in entities if type(e).__name__ == name]


def launch_configurations(obj):
    """Names of every LaunchConfiguration inside a recorded object (its args, kwargs, lists, dicts)."""
    if type(obj).__name__ == "LaunchConfiguration":
        return {obj.args[0]}
    if isinstance(obj, Recorded):
        return launch_configurations(list(obj.args) + list(obj.kwargs.values()))
    if isinstance(obj, dict):
        return set().union(*map(launch_configurations, obj.values())) if obj else set()
    if isinstance(obj, (list, tuple)):
        return set().union(*map(launch_configurations, obj)) if obj else set()
    return set()


def check_declared(declared, arguments):
    """The declared launch arguments are `arguments`: names, defaults and descriptions from the schema."""
    assert [d.args[0] for d in declared] == [a.name for a in arguments]
    for d, a in zip(declared, arguments):
        assert d.kwargs["description"] == a.description()
        default = d.kwargs["default_value"]
        if a.name == "brain_config":  # a file of the installed package
            assert type(default).__name__ == "PathJoinSubstitution"
            share, *parts = default.args[0]
            assert type(share).__name__ == "FindPackageShare" and share.args == ("pilotnet_brain",)
            assert "/".join(parts) == f"config/{config.DEFAULT_BRAIN_CONFIG}"
            assert (ROOT / "config" / config.DEFAULT_BRAIN_CONFIG).is_file()
        else:
            assert default == config.launch_default(a)


def test_simulation_launch_arguments_come_from_the_schemas(monkeypatch):
    entities = run_launch_file("simulation.launch.py", monkeypatch)
    check_declared(of_type(entities, "DeclareLaunchArgument"), config.SIMULATION_LAUNCH_ARGUMENTS)
    assert launcher.SIMULATION_LAUNCH_ARGS == tuple(a.name for a in config.SIMULATION_LAUNCH_ARGUMENTS)
    arguments = {a.name: a for a in config.SIMULATION_LAUNCH_ARGUMENTS}
    used = set()
    for node in of_type(entities, "Node"):
        schema = config.NODE_SCHEMAS[node.kwargs["name"]]
        for entry in node.kwargs["parameters"]:
            if not isinstance(entry, dict):
                continue  # a parameters file (checked above / by test_config)
            for name, value in entry.items():
                assert name in schema, f"{schema.node} has no parameter {name}"
                if type(value).__name__ == "LaunchConfiguration":
                    # the argument's default and every choice are values the node accepts
                    argument = arguments[value.args[0]]
                    schema[name].check(argument.default, f"{schema.node}.{name} <- {argument.name}")
                    for choice in argument.choices:
                        schema[name].check(choice, f"{schema.node}.{name} <- {argument.name}")
                elif not isinstance(value, Recorded):
                    schema[name].check(value, schema.node)  # a literal value
        used |= launch_configurations(node)
    used |= launch_configurations(of_type(entities, "RegisterEventHandler"))
    assert used == set(arguments), "every launch argument is used, and only declared ones are"


@pytest.mark.parametrize("name", ["simulation.launch.py", "brain.launch.py"])
def test_launch_files_give_the_nodes_the_fastdds_profile(name, monkeypatch):
    (env,) = of_type(run_launch_file(name, monkeypatch), "SetEnvironmentVariable")
    variable, path = env.args
    assert variable == launcher.topics.FASTDDS_PROFILE_VARIABLE
    share, *parts = path.args[0]
    assert type(share).__name__ == "FindPackageShare" and share.args == ("pilotnet_brain",)
    assert parts == ["config", launcher.topics.FASTDDS_PROFILE_FILE]
    assert launcher.fastdds_environment() == {variable: str(ROOT.joinpath(*parts))}


def test_brain_launch_arguments_come_from_the_schemas(monkeypatch):
    entities = run_launch_file("brain.launch.py", monkeypatch)
    check_declared(of_type(entities, "DeclareLaunchArgument"), config.BRAIN_LAUNCH_ARGUMENTS)
    assert launcher.BRAIN_LAUNCH_ARGS == ("brain_config",)
    (node,) = of_type(entities, "Node")
    assert launch_configurations(node) == {"brain_config"}


def test_shipped_brain_configs_are_valid():
    from pilotnet_brain.ros.params import load_brain_parameters

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
