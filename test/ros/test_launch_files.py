"""The launch files (genuine ROS 2 Python launch files) and the launcher describe the same graph.

`launch`/`launch_ros` are not pip-installable, so the files are parsed with `ast` (executables, node
names, parameters files, the Fast DDS profile must match launcher.py and setup.py) and run with
stand-ins for the launch classes that record how the file built them (launch arguments: names, defaults
and descriptions from the schemas of pilotnet_brain.config; node parameters known to the nodes' schemas).
The stand-ins take the keyword arguments of the upstream classes (launch_ros.actions.Node,
launch.actions.DeclareLaunchArgument), and the command line launch_ros would give a recorded Node
(`--ros-args -r __node:= -r __ns:= --params-file/-p ... -r from:=to`, as in launch_ros/actions/node.py) is
compared with the launcher's. Where launch_ros imports (a ROS 2 install), the descriptions are also built
for real.
"""

import ast
import importlib.util
import inspect
import os
import re
import sys
import types

import pytest
import yaml
from conftest import REPO_ROOT

from pilotnet_brain import config
from pilotnet_brain import interfaces as topics
from pilotnet_brain.ros import environment, launcher

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
    # every node knows its schema's parameters and ROS's own (use_sim_time)
    known = {name: schema.names + config.BUILTIN_PARAMETERS for name, schema in config.NODE_SCHEMAS.items()}
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
    argv = graph.processes[0].argv
    assert argv[argv.index("--params-file") + 1].endswith("config/brains/pilotnet_fp32.yaml")
    assert graph.env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(ROOT / "config" / "fastdds.xml")


# --- the launch files run against recording stand-ins of launch / launch_ros -----------------------
class Recorded:
    """Stands in for a launch / launch_ros class: keeps the arguments the launch file passed (checked
    against the upstream constructor's signature where UPSTREAM_SIGNATURES has it)."""

    def __init__(self, *args, **kwargs):
        signature = UPSTREAM_SIGNATURES.get(type(self).__name__)
        if signature is not None:
            signature.bind(*args, **kwargs)  # TypeError: the real class would refuse these arguments
            extra = set(kwargs) - set(signature.parameters) - EXECUTE_PROCESS_KEYWORDS
            assert not extra, f"{type(self).__name__} takes no {sorted(extra)}"
        self.args, self.kwargs = args, kwargs

    def __repr__(self):
        return f"{type(self).__name__}{self.args}"


# The constructors of launch_ros.actions.Node (launch_ros/actions/node.py) and
# launch.actions.DeclareLaunchArgument; Node passes other keywords on to launch.actions.ExecuteProcess.
def _node(
    *,
    executable,
    package=None,
    name=None,
    namespace=None,
    exec_name=None,
    parameters=None,
    remappings=None,
    ros_arguments=None,
    arguments=None,
    **kwargs,
): ...


def _declare_launch_argument(name, *, default_value=None, description=None, choices=None, **kwargs): ...


UPSTREAM_SIGNATURES = {
    "Node": inspect.signature(_node),
    "DeclareLaunchArgument": inspect.signature(_declare_launch_argument),
}
#: ExecuteProcess's and Action's keywords (launch/actions/execute_process.py, launch/action.py).
EXECUTE_PROCESS_KEYWORDS = {
    "output",
    "condition",
    "cwd",
    "env",
    "additional_env",
    "shell",
    "emulate_tty",
    "sigterm_timeout",
    "sigkill_timeout",
    "respawn",
    "respawn_delay",
    "on_exit",
    "log_cmd",
    "prefix",
}


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
        given_sim_time = False
        for entry in node.kwargs["parameters"]:
            if not isinstance(entry, dict):
                continue  # a parameters file (checked above / by test_config)
            for name, value in entry.items():
                # ROS's own use_sim_time, or the node's parameter
                parameter = config.USE_SIM_TIME if name == config.USE_SIM_TIME.name else schema[name]
                given_sim_time |= parameter is config.USE_SIM_TIME
                if type(value).__name__ == "LaunchConfiguration":
                    # the argument's default and every choice are values the node accepts
                    argument = arguments[value.args[0]]
                    parameter.check(argument.default, f"{schema.node}.{name} <- {argument.name}")
                    for choice in argument.choices:
                        parameter.check(choice, f"{schema.node}.{name} <- {argument.name}")
                elif not isinstance(value, Recorded):
                    parameter.check(value, schema.node)  # a literal value
        assert given_sim_time, f"{schema.node} does not get use_sim_time"
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
    assert environment.fastdds_environment() == {variable: str(ROOT.joinpath(*parts))}


def test_brain_launch_arguments_come_from_the_schemas(monkeypatch):
    entities = run_launch_file("brain.launch.py", monkeypatch)
    check_declared(of_type(entities, "DeclareLaunchArgument"), config.BRAIN_LAUNCH_ARGUMENTS)
    assert launcher.BRAIN_LAUNCH_ARGS == tuple(a.name for a in config.BRAIN_LAUNCH_ARGUMENTS)
    (node,) = of_type(entities, "Node")
    assert launch_configurations(node) == set(launcher.BRAIN_LAUNCH_ARGS), "every argument is used"
    # camera_topic / cmd_vel_topic remap the F1 topics brain_node uses by default
    sources = [source for source, _ in node.kwargs["remappings"]]
    assert sources == [topics.CAMERA_TOPIC, topics.CMD_VEL_TOPIC]
    assert sources == [config.BRAIN_NODE["camera_topic"].default, config.BRAIN_NODE["cmd_vel_topic"].default]
    assert [t.args[0] for _, t in node.kwargs["remappings"]] == ["camera_topic", "cmd_vel_topic"]
    assert node.kwargs["namespace"].args == ("namespace",)


# --- what launch_ros would run, from the recorded Node ----------------------------------------------
def evaluate(obj, values):
    """A recorded substitution (or text, or a list of them) as launch would expand it."""
    kind = type(obj).__name__
    if isinstance(obj, str):
        return obj
    if isinstance(obj, (list, tuple)):
        return "".join(evaluate(part, values) for part in obj)
    if kind == "LaunchConfiguration":
        return values[obj.args[0]]
    if kind == "PathJoinSubstitution":
        return os.path.join(*(evaluate(part, values) for part in obj.args[0]))
    if kind == "FindPackageShare":
        return str(ROOT)  # the installed share directory has the repository's config/ layout
    if kind == "PythonExpression":
        return str(eval(evaluate(obj.args[0], values)))
    raise AssertionError(f"cannot evaluate {obj!r}")


def launch_ros_command(node, values):
    """The node's ROS arguments as launch_ros's Node builds them (launch_ros/actions/node.py):
    name, namespace (made absolute), parameters (files; dicts whose substituted values are read as YAML),
    remapping rules. Returned as {"name", "namespace", "files", "params", "remappings"}."""
    namespace = node.kwargs.get("namespace")
    if namespace is not None:
        namespace = evaluate(namespace, values).rstrip("/") or "/"
        namespace = namespace if namespace.startswith("/") else "/" + namespace
    files, params = [], {}
    for entry in node.kwargs.get("parameters") or []:
        if isinstance(entry, dict):
            for name, value in entry.items():
                is_substitution = isinstance(value, (str, Recorded, list))
                params[name] = yaml.safe_load(evaluate(value, values)) if is_substitution else value
        else:
            files.append(evaluate(entry, values))
    remappings = [(evaluate(s, values), evaluate(t, values)) for s, t in node.kwargs.get("remappings") or []]
    return {
        "name": node.kwargs["name"],
        "namespace": None if namespace in (None, "/") else namespace,
        "files": files,
        "params": params,
        "remappings": remappings,
    }


def launcher_command(argv):
    """The same view of the launcher's `--ros-args ...` for a process."""
    args = argv[argv.index("--ros-args") + 1 :]
    view = {"name": None, "namespace": None, "files": [], "params": {}, "remappings": []}
    for flag, value in zip(args[::2], args[1::2]):
        key, _, target = value.partition(":=")
        if flag == "--params-file":
            view["files"].append(value)
        elif flag == "-p":
            view["params"][key] = yaml.safe_load(target)
        elif key == "__node":
            view["name"] = target
        elif key == "__ns":
            view["namespace"] = None if target == "/" else target
        else:
            view["remappings"].append((key, target))
    return view


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {
            "namespace": "car1",
            "camera_topic": "camera/image_raw",
            "cmd_vel_topic": "/car1/cmd_vel",
            "use_sim_time": True,
        },
        {"namespace": "/robots/f1/", "use_sim_time": False},
    ],
    ids=["defaults", "namespaced", "absolute_namespace"],
)
def test_brain_launch_runs_the_node_as_the_launcher_does(monkeypatch, arguments):
    (node,) = of_type(run_launch_file("brain.launch.py", monkeypatch), "Node")
    preset = launcher.resolve_brain_config(config.DEFAULT_BRAIN_CONFIG.removeprefix("brains/"))
    values = {a.name: config.launch_default(a) for a in config.BRAIN_LAUNCH_ARGUMENTS}
    values.update({k: config.show(v) for k, v in arguments.items()}, brain_config=str(preset))
    graph = launcher.brain_graph(preset, **arguments)
    assert launch_ros_command(node, values) == launcher_command(graph.processes[0].argv)


def test_brain_launch_resolves_the_topics_as_ros_does():
    assert launcher.resolved_topic("camera/image_raw", "car1") == "/car1/camera/image_raw"
    assert launcher.resolved_topic("/F1ROS/cmd_vel", "car1") == "/F1ROS/cmd_vel"
    assert launcher.resolved_topic("~/stats", "/robots/f1/", "brain_node") == "/robots/f1/brain_node/stats"
    assert launcher.resolved_topic("cmd_vel") == "/cmd_vel"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"namespace": "car 1"}, "namespace='car 1' is not a valid ROS name"),
        ({"camera_topic": "camera//image"}, "camera_topic='camera//image' is not a valid ROS name"),
        ({"cmd_vel_topic": "1cmd"}, "cmd_vel_topic='1cmd' is not a valid ROS name"),
    ],
)
def test_bad_ros_names_are_refused_before_start(arguments, message):
    from pilotnet_brain.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        launcher.brain_graph("explicit", **arguments)
    assert "\n" not in str(error.value)


def test_a_remapping_the_preset_would_defeat_is_refused(tmp_path):
    from pilotnet_brain.errors import ConfigError

    preset = tmp_path / "preset.yaml"
    preset.write_text("brain_node:\n  ros__parameters:\n    brain: explicit\n    camera_topic: /front/image\n")
    launcher.brain_graph(preset)  # the preset's own topic: fine
    with pytest.raises(ConfigError, match="camera_topic='/cam' remaps /F1ROS/cameraL/image_raw, but .* /front/image"):
        launcher.brain_graph(preset, camera_topic="/cam")


def test_simulation_launch_gives_every_node_use_sim_time_as_the_launcher_does(monkeypatch, tmp_path):
    entities = run_launch_file("simulation.launch.py", monkeypatch)
    values = {a.name: config.launch_default(a) for a in config.SIMULATION_LAUNCH_ARGUMENTS} | {"use_sim_time": "true"}
    graph = launcher.simulation_graph(out_dir=tmp_path, record=True, use_sim_time=True, domain_id=50)
    from_launcher = {p.name: launcher_command(p.argv) for p in graph.processes}
    for node in of_type(entities, "Node"):
        name = node.kwargs["name"]
        assert launch_ros_command(node, values)["params"]["use_sim_time"] is True, name
        assert from_launcher[name]["params"]["use_sim_time"] is True, name
        assert from_launcher[name]["name"] == name


def test_simulation_launch_gives_conditions_and_seed_as_the_launcher_does(monkeypatch, tmp_path):
    # sim_node drives under them; metrics_node records the same (canonical) label as the run's condition.
    entities = run_launch_file("simulation.launch.py", monkeypatch)
    values = {a.name: config.launch_default(a) for a in config.SIMULATION_LAUNCH_ARGUMENTS}
    values |= {"conditions": "lighting=0.5,noise=0.25", "seed": "7"}
    graph = launcher.simulation_graph(out_dir=tmp_path, conditions="noise=mild,lighting=moderate", seed=7, domain_id=50)
    from_launcher = {p.name: launcher_command(p.argv)["params"] for p in graph.processes}
    from_launch_file = {n.kwargs["name"]: launch_ros_command(n, values)["params"] for n in of_type(entities, "Node")}
    expected = {
        "sim_node": {"conditions": "lighting=0.5,noise=0.25", "seed": 7},
        "metrics_node": {"conditions": "lighting=0.5,noise=0.25"},
    }
    for name, params in expected.items():
        for key, value in params.items():
            assert from_launch_file[name][key] == from_launcher[name][key] == value, (name, key)


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
