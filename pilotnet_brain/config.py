"""The parameters of the package's ROS 2 nodes, in one place: one schema per node, the one reader of ROS 2
parameter files, and validation with one-line errors.

Each `Parameter` has a name, a type (bool, int, float, str), a default, an allowed range (`min`/`max`)
or a set of `choices`, and a doc line. From the schemas come:

- the nodes' `declare_parameter` calls with their ParameterDescriptor (`ros/params.py`);
- validation of node overrides, parameter files, the launcher's and the CLI's values (`NodeSchema.validate`):
  an int is accepted for a float, anything else of the wrong type, NaN/inf and out-of-range values are a
  `ConfigError` naming the parameter, the value and what is allowed;
- `SimConfig`'s defaults (`sim/world.py`) and `sim_config_from_parameters` (`sim/settings.py`);
- the launch arguments of launch/simulation.launch.py and launch/brain.launch.py;
- config/simulation.yaml and README.md's parameter tables (generated: `python -m pilotnet_brain.config --help`).

No rclpy here (the bottom layer): `read_parameter_file` takes the parser of values as an argument.
`ros.params.load_node_parameters` (the launcher, the CLI's --config, brain presets) passes rclpy's
`parameter_dict_from_yaml_file` where rclpy imports; without rclpy, `parse_yaml_parameters` here reads the
file with PyYAML and applies the same sections in the same order (`node_section_keys`: `/**`, then the
node's own). The one difference: rclpy re-parses each value from its text, so `.nan`/`.inf` reach the
validation as the strings 'nan'/'inf' (refused as "not a float") where PyYAML gives floats (refused as
"not finite").
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from pilotnet_brain import interfaces as topics
from pilotnet_brain.errors import ConfigError

#: Parameters every rclpy node has: allowed in any file, never declared by the package.
BUILTIN_PARAMETERS = ("use_sim_time", "start_type_description_service")
TYPE_NAMES = {bool: "bool", int: "integer", float: "float", str: "string"}
#: README.md's generated section lies between these lines.
README_BEGIN, README_END = "<!-- parameters:begin -->", "<!-- parameters:end -->"
#: The brain preset used when none is given (relative to the package's config directory).
DEFAULT_BRAIN_CONFIG = "brains/explicit.yaml"


def show(value) -> str:
    """A value as it is written in a ROS 2 parameter file (true, 1.5, "" ...)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value and value.strip() == value and ":" not in value else f'"{value}"'
    return repr(value)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Parameter:
    """One node parameter. `min`/`max` bound numbers (inclusive unless `min_exclusive`); `choices` strings."""

    name: str
    type: type
    default: object
    doc: str
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple = ()

    def __post_init__(self):
        if self.type not in TYPE_NAMES:
            raise TypeError(f"parameter {self.name}: unsupported type {self.type!r}")
        self.check(self.default, "schema")  # a default outside its own range is a bug here

    def allowed(self) -> str:
        """What the parameter accepts, in words: 'a float > 0', 'one of ccw, cw', ..."""
        if self.choices:
            return "one of " + ", ".join(show(c) for c in self.choices)
        kind = {bool: "true or false", int: "an integer", float: "a float", str: "a string"}[self.type]
        if self.min is not None and self.max is not None:
            return f"{kind} in {'(' if self.min_exclusive else '['}{_number(self.min)}, {_number(self.max)}]"
        if self.min is not None:
            return f"{kind} {'>' if self.min_exclusive else '>='} {_number(self.min)}"
        if self.max is not None:
            return f"{kind} <= {_number(self.max)}"
        return "a finite float" if self.type is float else kind

    def check(self, value, where: str = ""):
        """The value in the parameter's type (an int becomes a float for a float parameter), or ConfigError."""
        problem, given = None, value
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            problem = "is not an integer" if self.type is int else f"is not a {TYPE_NAMES[self.type]}"
        elif self.type is float and not math.isfinite(value):
            problem = "is not finite"
        elif self.choices and value not in self.choices:
            problem = "is not allowed"
        elif self.min is not None and (value <= self.min if self.min_exclusive else value < self.min):
            problem = "is out of range"
        elif self.max is not None and value > self.max:
            problem = "is out of range"
        if problem:
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}{self.name}={show_value(given)} {problem} (allowed: {self.allowed()})")
        return value

    def description(self) -> str:
        """The ParameterDescriptor's / launch argument's description: the doc and what is allowed."""
        return f"{self.doc} [{self.allowed()}]"


def show_value(value) -> str:
    """A value in an error message: strings quoted, so '' and 'nan' are visible as strings."""
    return repr(value) if isinstance(value, str) else show(value)


@dataclass(frozen=True)
class NodeSchema:
    """The parameters of one node, in declaration order."""

    node: str
    doc: str
    parameters: tuple

    def __post_init__(self):
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.node}: duplicate parameter names")

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __contains__(self, name) -> bool:
        return any(p.name == name for p in self.parameters)

    @property
    def names(self) -> tuple:
        return tuple(p.name for p in self.parameters)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.parameters}

    def validate(self, values: Mapping, where: str | None = None) -> dict:
        """The given values checked and typed ({name: value}); unknown names and bad values raise ConfigError.

        ROS's own parameters (BUILTIN_PARAMETERS) are accepted and left out of the result.
        """
        where = where or self.node
        unknown = sorted(set(values) - set(self.names) - set(BUILTIN_PARAMETERS))
        if unknown:
            raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(self.names)}")
        return {name: self[name].check(value, where) for name, value in values.items() if name in self}

    def resolve(self, values: Mapping, where: str | None = None) -> dict:
        """Every parameter: the defaults, updated with the validated `values`."""
        return {**self.defaults(), **self.validate(values, where)}


# --- the schemas -----------------------------------------------------------------------------------
def _topic(name: str, default: str, what: str) -> Parameter:
    return Parameter(name, str, default, what)


def _seconds(name: str, default: float, doc: str) -> Parameter:
    return Parameter(name, float, default, doc, min=0.0)


CIRCUIT = Parameter(
    "circuit",
    str,
    "simple_circuit",
    "built-in circuit name, gen:SEED (a generated circuit) or path to a TUM-format CSV",
)
DIRECTION = Parameter("direction", str, "ccw", "driving direction", choices=("ccw", "cw"))
SCALE = Parameter(
    "scale", float, 1.0, "CSV circuits only: multiplies coordinates and widths", min=0.0, min_exclusive=True
)
CLOCK = Parameter(
    "clock",
    str,
    "lockstep",
    "lockstep: as fast as possible, each frame waits for its command; realtime: wall-clock paced",
    choices=("lockstep", "realtime"),
)

BRAIN_NODE = NodeSchema(
    "brain_node",
    "camera image in, geometry_msgs/Twist out, with any brain of the package (config/brains/*.yaml)",
    (
        Parameter(
            "brain", str, "explicit", "explicit: the expert driver; pilotnet: the CNN", choices=("explicit", "pilotnet")
        ),
        Parameter("backend", str, "torch_fp32", "pilotnet only: inference backend (runtime.registry.BACKEND_NAMES)"),
        Parameter("model_path", str, "", "pilotnet only: weights file; '' = the shipped model"),
        Parameter(
            "device",
            str,
            "cpu",
            "torch backends: cuda without a GPU refuses to start (exit 2)",
            choices=("cpu", "cuda"),
        ),
        Parameter(
            "threads",
            int,
            0,
            "PilotNet's inference threads (every backend); 0 = the backend's default (all cores)",
            min=0,
        ),
        _topic("camera_topic", topics.CAMERA_TOPIC, "camera images in (sensor_msgs/Image)"),
        _topic("cmd_vel_topic", topics.CMD_VEL_TOPIC, "commands out (geometry_msgs/Twist)"),
        _topic("stats_topic", topics.BRAIN_STATS_TOPIC, "per-frame timings out (interfaces.BRAIN_STATS_FIELDS)"),
        Parameter("max_v", float, 15.0, "linear speed limit of the commands (m/s)", min=0.0),
        Parameter("max_w", float, 3.0, "angular speed limit of the commands (rad/s)", min=0.0),
        Parameter(
            "camera_yaw_deg",
            float,
            0.0,
            "the camera's calibrated yaw on the car (deg, turned left +): pilotnet turns frames back by it, "
            "explicit projects with it",
            min=-20.0,
            max=20.0,
        ),
        Parameter(
            "estimate_camera_yaw",
            bool,
            True,
            "pilotnet only: estimate the camera's yaw while driving (road vanishing point on straights), "
            "starting from camera_yaw_deg",
        ),
        _seconds("watchdog_timeout", 0.5, "s without a fresh image -> zero command and one warning; 0 = no watchdog"),
    ),
)

#: sim_node's parameters that configure the simulator itself (SimConfig), as in config/simulation.yaml.
SIMULATOR_PARAMETERS = (
    CIRCUIT,
    DIRECTION,
    SCALE,
    CLOCK,
    Parameter("camera_rate", float, 30.0, "camera frames per simulated second (Hz)", min=0.0, min_exclusive=True),
    Parameter("physics_dt", float, 0.01, "physics step (s)", min=0.0, min_exclusive=True),
    Parameter("off_track_margin", float, 1.0, "m beyond the road edge that ends the run", min=0.0),
    _seconds(
        "timeout", 0.0, "simulated s before the run stops; 0 = BehaviorMetrics' time-out (length / 4 m/s for CSVs)"
    ),
    Parameter("latency", float, -1.0, "lockstep: command latency (s) after its frame; < 0 = the brain's measured time"),
    Parameter(
        "conditions",
        str,
        "none",
        "rendering and latency conditions, name=level comma separated (e.g. lighting=0.5,noise=moderate; "
        "names and levels: sim/conditions.py); none = clear",
    ),
    Parameter("seed", int, 0, "seeds everything random in the simulator (noise, shadows, latency spikes)", min=0),
)

SIM_NODE = NodeSchema(
    "sim_node",
    "the embedded simulator on Gazebo's F1 topics (config/simulation.yaml)",
    SIMULATOR_PARAMETERS
    + (
        _topic("camera_topic", topics.CAMERA_TOPIC, "camera images out"),
        Parameter(
            "camera_reliable",
            bool,
            False,
            "publish the camera reliably; lockstep: each frame waits until reliable subscribers (bag_recorder) have it",
        ),
        _topic("camera_info_topic", topics.CAMERA_INFO_TOPIC, "camera intrinsics out (CameraInfo), per frame"),
        _topic("cmd_vel_topic", topics.CMD_VEL_TOPIC, "commands in"),
        _topic("odom_topic", topics.ODOM_TOPIC, "odometry out, after every physics step"),
        _topic("status_topic", topics.EPISODE_STATUS_TOPIC, "episode status out (transient local)"),
        _topic("brain_stats_topic", topics.BRAIN_STATS_TOPIC_RESOLVED, "brain_node's stats in (lockstep: the answer)"),
        Parameter("frame_id", str, topics.CAMERA_FRAME_ID, "frame_id of the camera images"),
        Parameter(
            "command_timeout",
            float,
            2.0,
            "lockstep: longest wall wait (s) for a frame's command, then the last command stays",
            min=0.0,
            min_exclusive=True,
        ),
        Parameter("wait_for_brain", bool, True, "start once the brain subscribes to the camera and publishes commands"),
        Parameter("wait_for_metrics", bool, False, "start once odom_subscribers nodes listen to odometry and status"),
        Parameter("odom_subscribers", int, 1, "with wait_for_metrics: 2 = metrics_node + bag_recorder", min=1),
        _seconds("startup_timeout", 60.0, "wall s to wait for the other nodes, then start anyway"),
        Parameter("exit_on_end", bool, True, "exit (code 0) after the episode ends, so a launcher sees the end"),
        _seconds("linger", 1.0, "with exit_on_end: wall s between the end and the exit"),
    ),
)

METRICS_NODE = NodeSchema(
    "metrics_node",
    "scores one run from the graph's topics, writes the metrics JSON and exits",
    (
        CIRCUIT,
        DIRECTION,
        SCALE,
        Parameter(
            "conditions",
            str,
            "",
            "sim_node's conditions, recorded as the run's condition (canonical label); '' = not known (null)",
        ),
        Parameter("brain", str, "", "brain label in the metrics; '' = from brain_config, else 'unknown'"),
        Parameter("brain_config", str, "", "brain_node parameters YAML (gives the label)"),
        Parameter("output_dir", str, "runs/ros", "directory for <circuit>_<direction>_<brain>.json and summary.csv"),
        Parameter(
            "reference_spacing",
            float,
            1.0,
            "m between reference points of the position deviation",
            min=0.0,
            min_exclusive=True,
        ),
        _topic("odom_topic", topics.ODOM_TOPIC, "odometry in"),
        _topic("cmd_vel_topic", topics.CMD_VEL_TOPIC, "commands in (counted)"),
        _topic("brain_stats_topic", topics.BRAIN_STATS_TOPIC_RESOLVED, "brain timings in"),
        _topic("sim_stats_topic", topics.SIM_STATS_TOPIC_RESOLVED, "simulator stats in"),
        _topic("status_topic", topics.EPISODE_STATUS_TOPIC, "episode status in"),
        _seconds("settle_timeout", 2.0, "wall s to wait for the last odometry after the end"),
        Parameter("plot", bool, False, "also draw the trajectory (PNG)"),
        Parameter("exit_on_done", bool, True, "exit (code 0) once the metrics are written"),
    ),
)

BAG_RECORDER = NodeSchema(
    "bag_recorder",
    "records a run as a rosbag2 bag (MCAP or sqlite3) with its configuration and metrics",
    (
        Parameter("output", str, "", "bag directory to create (as ros2 bag record -o); '' = bag_path"),
        Parameter("bag_path", str, "", "bag directory when output is ''; both '' = runs/bags/run_<time>"),
        Parameter("storage", str, "mcap", "rosbag2 storage", choices=("mcap", "sqlite3")),
        Parameter("record_camera", bool, True, "record the camera images"),
        Parameter("camera_stride", int, 1, "keep every N-th camera image", min=1),
        Parameter("stop_on_episode_end", bool, True, "stop end_grace_s after the episode status says the run ended"),
        _seconds("end_grace_s", 1.0, "s recorded after the end of the episode"),
        Parameter("compute_metrics", bool, True, "recompute the metrics from the closed bag"),
        Parameter("circuit", str, "", "circuit in the metadata; '' = ask sim_node"),
        Parameter("direction", str, "", "direction in the metadata; '' = ask sim_node", choices=("", "ccw", "cw")),
        Parameter("scale", float, 0.0, "circuit scale in the metadata; 0 = ask sim_node", min=0.0),
        Parameter("brain", str, "", "brain label; '' = from brain_config, else ask metrics_node"),
        Parameter("clock", str, "", "clock in the metadata; '' = ask sim_node", choices=("", "lockstep", "realtime")),
        Parameter("reference_spacing_m", float, 0.0, "0 = ask metrics_node", min=0.0),
        Parameter("brain_config", str, "", "path or text of the brain preset (metadata; gives the brain label)"),
        Parameter("run_config_json", str, "", "a JSON object merged into the run's metadata"),
        Parameter("query_nodes", bool, True, "ask sim_node and metrics_node for what was not given"),
        _seconds(
            "gate_timeout_s",
            topics.DISCOVERY_GATE_TIMEOUT_S,
            "wall s to wait for the other topics' publishers before subscribing odometry and status",
        ),
    )
    + tuple(_topic(f"topic_{role}", topic, f"{role} topic") for role, topic in topics.DEFAULT_TOPICS.items()),
)

NODE_SCHEMAS = {s.node: s for s in (BRAIN_NODE, SIM_NODE, METRICS_NODE, BAG_RECORDER)}

#: ROS's own parameter, given to every node by both launch files.
USE_SIM_TIME = Parameter(
    "use_sim_time", bool, False, "every node's clock follows /clock (Gazebo's or sim_node's): watchdog, timers, logs"
)

#: Arguments of launch/simulation.launch.py (and of the launcher's run_simulation): each is the node
#: parameter it sets, under the launch argument's name.
SIMULATION_LAUNCH_ARGUMENTS = (
    CIRCUIT,
    DIRECTION,
    SCALE,
    CLOCK,
    Parameter("brain_config", str, DEFAULT_BRAIN_CONFIG, "brain_node parameters YAML (config/brains/*.yaml)"),
    Parameter("record", bool, False, "also record a rosbag2 bag (bag_recorder)"),
    replace(METRICS_NODE["output_dir"], name="out_dir"),
    SIM_NODE["timeout"],
    SIM_NODE["conditions"],  # to sim_node, and to metrics_node for the run's label
    SIM_NODE["seed"],
    USE_SIM_TIME,
)
#: Arguments of launch/brain.launch.py (and of the launcher's run_brain): the brain on a Gazebo car's
#: topics. camera_topic and cmd_vel_topic are remappings of brain_node's topics (a relative name resolves
#: inside the namespace), as ROS tools expect of a node started next to a simulator.
BRAIN_LAUNCH_ARGUMENTS = (
    *(a for a in SIMULATION_LAUNCH_ARGUMENTS if a.name == "brain_config"),
    Parameter("namespace", str, "", "ROS namespace of brain_node (and of its relative topic names); '' = none"),
    replace(BRAIN_NODE["camera_topic"], doc="camera images in, remapped (sensor_msgs/Image)"),
    replace(BRAIN_NODE["cmd_vel_topic"], doc="commands out, remapped (geometry_msgs/Twist)"),
    USE_SIM_TIME,
)


def launch_default(argument: Parameter) -> str:
    """A launch argument's default_value (launch_ros parses it back as YAML: "1.0" -> 1.0, "false" -> False)."""
    return argument.default if isinstance(argument.default, str) else show(argument.default)


# --- the one reader of ROS 2 parameter files --------------------------------------------------------
def node_section_keys(doc: Mapping, node_name: str) -> list:
    """The sections of a parameter file that apply to `node_name`, in the order rclpy applies them.

    rclpy.parameter.parameter_dict_from_yaml_file(use_wildcard=True, target_nodes=[node_name]): `/**`
    first, then `/<ns>/<node>` (or `<node>` / `/<node>` without a namespace), then `<ns>: <node>:`.
    Each entry is a path of keys into the document.
    """
    keys = [("/**",)] if "/**" in doc else []
    absolute = node_name if node_name.startswith("/") else "/" + node_name
    namespace, basename = absolute.rsplit("/", 1)
    if absolute in doc:
        keys.append((absolute,))
    if not namespace and basename in doc:
        keys.append((basename,))
    elif namespace and isinstance(doc.get(namespace), Mapping) and basename in doc[namespace]:
        keys.append((namespace, basename))
    return keys


def _flatten(params: Mapping, prefix: str = "") -> dict:
    """Nested mappings -> dotted names, as rclpy unpacks them."""
    out = {}
    for name, value in params.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def parse_yaml_parameters(path: Path, node_name: str) -> dict:
    """The values for `node_name` in a parameter file, read with PyYAML (the reader without rclpy)."""
    doc = _load_document(path)
    values = {}
    for keys in node_section_keys(doc, node_name):
        section = doc
        for key in keys:
            section = section[key]
        values.update(_flatten(section["ros__parameters"]))
    return values


def _load_document(path: Path) -> dict:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read parameter file {path}: {error}") from error
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a ROS 2 parameter file (expected '<node>: ros__parameters: ...')")
    return doc


ValuesParser = Callable[[Path, str], dict]


def read_parameter_file(path, schema: NodeSchema, node_name: str | None = None, parse: ValuesParser | None = None):
    """The validated values for the node in a ROS 2 parameter file (only those the file sets).

    `parse(path, node_name) -> {name: value}` reads the values (default: `parse_yaml_parameters`; the ROS
    code passes rclpy's reader). A file without a section for the node, a section without
    `ros__parameters`, unknown names and bad values raise ConfigError.
    """
    path = Path(path)
    node_name = node_name or schema.node
    doc = _load_document(path)
    sections = node_section_keys(doc, node_name)
    if not sections:
        found = ", ".join(map(str, doc)) or "none"
        raise ConfigError(f"{path}: no section for {node_name} (sections found: {found})")
    for keys in sections:
        section = doc
        for key in keys:
            section = section[key]
        if not isinstance(section, Mapping) or not isinstance(section.get("ros__parameters"), Mapping):
            raise ConfigError(f"{path}: expected '{'/'.join(keys)}: ros__parameters: {{name: value, ...}}'")
    values = (parse or parse_yaml_parameters)(path, node_name)
    return schema.validate(values, f"{path}: {node_name}")


# --- generated text: README tables, config/simulation.yaml ------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(parameters, first_column: str) -> list:
    lines = [f"| {first_column} | type | default | allowed | description |", "| --- | --- | --- | --- | --- |"]
    for p in parameters:
        default = f"`{show(p.default)}`" if p.default != "" else '`""`'
        lines.append(
            f"| `{p.name}` | {TYPE_NAMES[p.type]} | {_cell(default)} | {_cell(p.allowed())} | {_cell(p.doc)} |"
        )
    return lines


def parameters_markdown() -> str:
    """README.md's parameter section: a table per node and one per launch file (generated from the schemas)."""
    lines = [
        "Generated from `pilotnet_brain/config.py` (`python -m pilotnet_brain.config --readme README.md`). "
        "Unknown names, wrong types, NaN/inf and values outside the range are refused with one line naming the "
        "parameter (nodes: exit code 2); an integer is accepted for a float.",
    ]
    for schema in NODE_SCHEMAS.values():
        lines += ["", f"**`{schema.node}`**: {schema.doc}", ""] + _table(schema.parameters, "parameter")
    lines += ["", "**`simulation.launch.py`** arguments (also `pilotnet-brain launch simulation`):", ""]
    lines += _table(SIMULATION_LAUNCH_ARGUMENTS, "argument")
    lines += ["", "**`brain.launch.py`** arguments:", ""] + _table(BRAIN_LAUNCH_ARGUMENTS, "argument")
    return "\n".join(lines) + "\n"


def replace_readme_section(readme_text: str, section: str) -> str:
    """README text with the part between README_BEGIN and README_END replaced by `section`."""
    pattern = re.compile(re.escape(README_BEGIN) + r"\n.*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(readme_text):
        raise ConfigError(f"README has no '{README_BEGIN}' ... '{README_END}' section")
    return pattern.sub(lambda _: f"{README_BEGIN}\n{section}{README_END}", readme_text, count=1)


def simulation_yaml() -> str:
    """config/simulation.yaml: sim_node's simulator parameters at their defaults, with their docs."""
    lines = [
        "# Embedded simulator (stands in for Gazebo): sim_node's simulator parameters, at their defaults.",
        "# Generated from pilotnet_brain/config.py (python -m pilotnet_brain.config --simulation-yaml PATH).",
        "# sim_node reads it (launch/simulation.launch.py); `pilotnet-brain drive/record --config FILE` read",
        '# a file like it. All sim_node parameters: README.md, section "ROS 2 parameters".',
        f"{SIM_NODE.node}:",
        "  ros__parameters:",
    ]
    for p in SIMULATOR_PARAMETERS:
        value = show(p.default) if p.default != "" else '""'
        lines.append(f"    {p.name}: {value}".ljust(32) + f" # {p.description()}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pilotnet_brain.config", description="Write the text generated from the parameter schemas."
    )
    parser.add_argument("--readme", type=Path, help="replace the parameter section of this README.md")
    parser.add_argument("--simulation-yaml", type=Path, help="write config/simulation.yaml here")
    args = parser.parse_args(argv)
    if args.readme:
        args.readme.write_text(replace_readme_section(args.readme.read_text(), parameters_markdown()))
    if args.simulation_yaml:
        args.simulation_yaml.write_text(simulation_yaml())
    if not (args.readme or args.simulation_yaml):
        sys.stdout.write(parameters_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
