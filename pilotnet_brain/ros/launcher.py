"""Start the ROS graph of launch/simulation.launch.py (or brain.launch.py) without `ros2 launch`.

`ros2 launch` (packages `launch`, `launch_ros`) is not pip-installable, so this module starts the SAME
nodes from the SAME parameters files as separate processes, passing `--ros-args -r __node:=<name>
--params-file <yaml> -p name:=value` exactly as launch_ros does; the nodes talk over DDS.

- Every process loads the Fast DDS profile config/fastdds.xml (FASTDDS_DEFAULT_PROFILES_FILE, replacing
  the caller's and any FASTDDS_BUILTIN_TRANSPORTS): frames over shared memory, UDP discovery re-announced
  every 0.5 s. The built-in DEFAULT transports lose most best-effort 640x480 frames; LARGE_DATA's TCP
  discovery leaves a late node unseen for seconds (`pilotnet-brain graph-benchmark` compares them).
  ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST keeps the graph on this host and works with the profile.
- A private ROS_DOMAIN_ID per run (random in 1..101, ROS 2's safe range) unless the caller's
  environment sets one, so parallel runs do not cross-talk.
- Waits for metrics_node to write the run's JSON and exit, then shuts everything down: SIGINT to each
  process group, SIGTERM after `sigint_timeout`, SIGKILL after `sigterm_timeout`. Children die with the
  launcher (PR_SET_PDEATHSIG) even if it is killed; Ctrl-C / SIGTERM of the launcher tears down cleanly.
- A node that fails to start (bad YAML, cuda without GPU, unknown circuit) fails the run with its log.
- record=True adds bag_recorder, supervised like the nodes: an output directory that already holds the
  run's bag is refused before anything starts; sim_node starts the episode only once the recorder listens
  and publishes the camera reliably; the teardown waits for the recorder to close its bag; a recorder
  that dies, or stops before the episode's end, fails the run (LaunchError: the bag is incomplete).
- Every node's output goes to its log file (<out>/logs/<node>.log) and, for `pilotnet-brain launch`, also
  to the terminal, each line prefixed with `[<node>]` (a reader thread per process). The launcher first
  prints the ROS_DOMAIN_ID and transport variables of the graph and how to attach a tool to it.

Python API for benchmarks: `run_simulation(...) -> {"metrics", "metrics_path", "bag_path", ...}`.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pilotnet_brain import interfaces as topics
from pilotnet_brain.bags.writer import read_side_file
from pilotnet_brain.config import (
    BAG_RECORDER,
    BRAIN_LAUNCH_ARGUMENTS,
    BRAIN_NODE,
    DEFAULT_BRAIN_CONFIG,
    METRICS_NODE,
    SIM_NODE,
    SIMULATION_LAUNCH_ARGUMENTS,
)
from pilotnet_brain.errors import ConfigError
from pilotnet_brain.evaluation.drive import run_slug
from pilotnet_brain.resources import config_path
from pilotnet_brain.ros.environment import connection_lines, environment_with_transports, ros_environment
from pilotnet_brain.ros.params import brain_label, load_brain_parameters, load_node_parameters
from pilotnet_brain.ros.processes import SIGINT_GRACE_S, ProcessGroup, SigtermAsInterrupt, announce, tail_log
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.conditions import parse_conditions
from pilotnet_brain.sim.world import default_timeout_s

PACKAGE = "pilotnet_brain"
#: executable (console script, as named in setup.py and the launch files) -> module run with `python -m`.
NODE_MODULES = {
    "sim_node": "pilotnet_brain.ros.sim_node",
    "brain_node": "pilotnet_brain.ros.brain_node",
    "metrics_node": "pilotnet_brain.ros.metrics_node",
}
#: The rosbag2 recorder is another node of the package (ros/bag_recorder.py); started only with record=True.
RECORDER_EXECUTABLE = "bag_recorder"
RECORDER_MODULE = "pilotnet_brain.ros.bag_recorder"
#: Launch arguments of launch/simulation.launch.py (the launcher's run_simulation takes the same), from
#: config.SIMULATION_LAUNCH_ARGUMENTS, as the launch files declare them.
SIMULATION_LAUNCH_ARGS = tuple(a.name for a in SIMULATION_LAUNCH_ARGUMENTS)
BRAIN_LAUNCH_ARGS = tuple(a.name for a in BRAIN_LAUNCH_ARGUMENTS)
_LAUNCH_DEFAULTS = {a.name: a.default for a in SIMULATION_LAUNCH_ARGUMENTS}
_BRAIN_LAUNCH_DEFAULTS = {a.name: a.default for a in BRAIN_LAUNCH_ARGUMENTS}
SIM_CONFIG_FILE = "simulation.yaml"
#: Wall s the launcher waits, after metrics_node is done, for an awaited process (bag_recorder closing
#: its bag) to exit by itself before it tears the graph down.
AWAIT_EXIT_S = 30.0


class LaunchError(RuntimeError):
    """A node failed, or the run did not produce its metrics in time (the message has the log tail)."""


@dataclass
class ProcessSpec:
    name: str
    argv: list
    log: Path | None = None
    required: bool = True  # a non-zero exit of a required process fails the run
    awaited: bool = False  # the run waits for it to exit by itself before the teardown (bag_recorder)
    failure: str = ""  # what its failure means, for the error message


@dataclass
class Graph:
    processes: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    metrics_dir: Path | None = None
    bag_path: Path | None = None


def resolve_brain_config(spec) -> Path:
    """A brain YAML from a path, or a name in config/brains ('explicit', 'pilotnet_fp32.yaml')."""

    p = Path(spec)
    if p.is_file():
        return p.resolve()
    name = p.name if p.suffix else p.name + ".yaml"
    try:
        return config_path(f"brains/{name}").resolve()
    except (FileNotFoundError, ValueError):
        raise FileNotFoundError(f"brain config {spec!r} not found (a path, or one of config/brains/*.yaml)") from None


def _param(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def ros_args(node_name: str, params_files=(), params: dict | None = None, namespace: str = "", remappings=()) -> list:
    """`--ros-args` as launch_ros builds them for Node(name=..., namespace=..., parameters=[files..., {dict}],
    remappings=[(from, to), ...]): node name, namespace, parameters, then the remapping rules."""
    argv = ["--ros-args", "-r", f"__node:={node_name}"]
    if namespace:
        argv += ["-r", f"__ns:={absolute_namespace(namespace)}"]
    for f in params_files:
        argv += ["--params-file", str(f)]
    for k, v in (params or {}).items():
        argv += ["-p", f"{k}:={_param(v)}"]
    for source, target in remappings:
        argv += ["-r", f"{source}:={target}"]
    return argv


def absolute_namespace(namespace: str) -> str:
    """A namespace as launch_ros passes it: from the root, no trailing '/' ('car1/' -> '/car1')."""
    namespace = namespace.rstrip("/") or "/"
    return namespace if namespace.startswith("/") else "/" + namespace


def resolved_topic(topic: str, namespace: str = "", node_name: str = "") -> str:
    """The full name a node's topic has under a namespace (ROS name resolution: '~' is the node's name)."""
    if topic.startswith("/"):
        return topic
    base = absolute_namespace(namespace).rstrip("/") if namespace else ""
    if topic.startswith("~"):
        return f"{base}/{node_name}{topic[1:]}"
    return f"{base}/{topic}"


def check_ros_names(namespace: str, topics_by_argument: dict) -> None:
    """A namespace and topic names ROS accepts, or one ConfigError line naming the launch argument."""
    try:
        from rclpy.validate_full_topic_name import validate_full_topic_name  # noqa: PLC0415 - optional ROS
        from rclpy.validate_namespace import validate_namespace  # noqa: PLC0415 - optional ROS dependency
    except ImportError:
        return  # no ROS here: the node could not start anyway
    checks = [("namespace", namespace, validate_namespace, absolute_namespace(namespace))] if namespace else []
    checks += [
        (argument, topic, validate_full_topic_name, resolved_topic(topic, namespace))
        for argument, topic in topics_by_argument.items()
    ]
    for argument, given, validate, full in checks:
        try:
            validate(full)
        except Exception as error:  # rclpy's Invalid*Exception: a message, then the name with a caret
            reason = str(error).splitlines()[0].rstrip(":")
            raise ConfigError(f"launch brain: {argument}={given!r} is not a valid ROS name ({reason})") from None


def node_command(executable: str) -> list:
    """How to run a node: `python -m <module>` (the console script runs the same main())."""
    if executable in NODE_MODULES:
        return [sys.executable, "-m", NODE_MODULES[executable]]
    if executable == RECORDER_EXECUTABLE:
        for d in (Path(sys.executable).parent, Path(sys.prefix) / "lib" / PACKAGE):
            if (d / executable).is_file():
                return [str(d / executable)]
        if shutil.which(executable):
            return [shutil.which(executable)]
        if importlib.util.find_spec(RECORDER_MODULE) is not None:
            return [sys.executable, "-m", RECORDER_MODULE]
        raise LaunchError(
            f"record=True needs the '{RECORDER_EXECUTABLE}' node, which is not installed "
            f"(no executable {executable!r}, no module {RECORDER_MODULE})"
        )
    raise ValueError(f"unknown executable {executable!r}")


def simulation_graph(
    circuit: str = _LAUNCH_DEFAULTS["circuit"],
    direction: str = _LAUNCH_DEFAULTS["direction"],
    brain_config=_LAUNCH_DEFAULTS["brain_config"],
    clock: str | None = None,
    record: bool = _LAUNCH_DEFAULTS["record"],
    out_dir=_LAUNCH_DEFAULTS["out_dir"],
    scale: float = _LAUNCH_DEFAULTS["scale"],
    timeout: float | None = None,
    sim_config=None,
    domain_id: int | None = None,
    transports: str = "profile",
    use_sim_time: bool = _LAUNCH_DEFAULTS["use_sim_time"],
    latency: float | None = None,
    conditions: str = _LAUNCH_DEFAULTS["conditions"],
    seed: int = _LAUNCH_DEFAULTS["seed"],
) -> Graph:
    """The processes of launch/simulation.launch.py, with their arguments (nothing is started).

    Every parameter file and value is checked against the nodes' schemas first (ConfigError).
    use_sim_time: every node's clock follows sim_node's /clock (the launch argument of the same name).
    latency: lockstep command latency (s) of sim_node (None: config/simulation.yaml's; a fixed one makes
    the run reproducible).
    conditions, seed: sim_node's (sim/conditions.py label, e.g. "lighting=0.5,noise=0.5"), as the launch
    arguments of the same names; metrics_node records the conditions as the run's condition.
    """

    out_dir = Path(out_dir).resolve()
    brain_yaml = resolve_brain_config(brain_config)
    brain_params = load_brain_parameters(brain_yaml)  # unknown names, bad values: ConfigError, before any start
    sim_yaml = Path(sim_config).resolve() if sim_config else config_path(SIM_CONFIG_FILE).resolve()
    load_node_parameters(sim_yaml, SIM_NODE)

    sim_params = {
        "circuit": str(circuit),
        "direction": direction,
        "scale": scale,
        "wait_for_metrics": True,
        "odom_subscribers": 2 if record else 1,
        "camera_reliable": bool(record),  # the recorder gets every frame
        "conditions": conditions,
        "seed": seed,
    }
    if clock:
        sim_params["clock"] = clock
    if timeout:
        sim_params["timeout"] = timeout
    if latency is not None:
        sim_params["latency"] = latency
    sim_params = SIM_NODE.validate(sim_params, "launch simulation: sim_node")
    try:  # refused before anything starts; the canonical label goes to sim_node and metrics_node alike
        sim_params["conditions"] = parse_conditions(sim_params["conditions"]).label
    except ValueError as error:
        raise ConfigError(f"launch simulation: conditions={conditions!r}: {error}") from None
    clock_param = {"use_sim_time": bool(use_sim_time)}  # ROS's own parameter, given to every node
    c = load_circuit(circuit, direction=direction, scale=sim_params["scale"])  # unknown circuit: error before start
    logs = out_dir / "logs"
    graph = Graph(env=ros_environment(domain_id, transports), metrics_dir=out_dir)
    graph.processes = [
        ProcessSpec(
            "metrics_node",
            node_command("metrics_node")
            + ros_args(
                "metrics_node",
                (),
                METRICS_NODE.validate(
                    {
                        "circuit": str(circuit),
                        "direction": direction,
                        "scale": scale,
                        "conditions": sim_params["conditions"],
                        "brain_config": str(brain_yaml),
                        "output_dir": str(out_dir),
                    },
                    "launch simulation: metrics_node",
                )
                | clock_param,
            ),
            logs / "metrics_node.log",
        ),
        ProcessSpec(
            "brain_node",
            node_command("brain_node") + ros_args("brain_node", [brain_yaml], clock_param),
            logs / "brain_node.log",
        ),
        ProcessSpec(
            "sim_node",
            node_command("sim_node") + ros_args("sim_node", [sim_yaml], sim_params | clock_param),
            logs / "sim_node.log",
        ),
    ]
    if record:
        graph.bag_path = out_dir / (run_slug(c.name, direction, brain_label(brain_params)) + "_bag")
        if graph.bag_path.exists():  # the recorder would refuse it, after the other nodes had started
            raise LaunchError(
                f"{out_dir} already holds this run's bag {graph.bag_path.name} (a bag is never overwritten): "
                "use another output directory or remove that bag"
            )
        graph.processes.insert(
            0,
            ProcessSpec(
                RECORDER_EXECUTABLE,
                node_command(RECORDER_EXECUTABLE)
                + ros_args(
                    RECORDER_EXECUTABLE,
                    (),
                    recorder_parameters(
                        graph.bag_path, circuit, direction, scale, brain_label(brain_params), clock or "", brain_yaml
                    )
                    | clock_param,
                ),
                logs / f"{RECORDER_EXECUTABLE}.log",
                awaited=True,  # it closes the bag after the episode's end, and is not cut short
                failure=f"the run is not recorded completely (bag {graph.bag_path})",
            ),
        )
    return graph


def check_recording(graph: Graph, codes: dict) -> None:
    """After a recorded run: the recorder closed the bag cleanly, having seen the episode's end (else LaunchError)."""
    log = next(s.log for s in graph.processes if s.name == RECORDER_EXECUTABLE)
    code = codes.get(RECORDER_EXECUTABLE)
    if code != 0:
        problem = f"{RECORDER_EXECUTABLE} exited with code {code}"
    else:
        side = read_side_file(graph.bag_path) if graph.bag_path.is_dir() else None
        if side is not None and side.get("episode_end") in topics.END_STATES:
            return
        problem = f"{RECORDER_EXECUTABLE} stopped before the episode ended"
    raise LaunchError(f"{problem}: the bag {graph.bag_path} is incomplete; its log ({log}):\n{tail_log(log)}")


def recorder_parameters(bag_path, circuit, direction, scale, brain, clock, brain_config) -> dict:
    """Parameters of the bag_recorder node (pilotnet_brain/ros/bag_recorder.py) for one run."""
    params = {
        "bag_path": str(bag_path),
        "circuit": str(circuit),
        "direction": direction,
        "scale": scale,
        "brain": brain,
        "brain_config": str(brain_config),
    }
    if clock:
        params["clock"] = clock
    return BAG_RECORDER.validate(params, "launch simulation: bag_recorder")


def run_graph(graph: Graph, timeout: float, done=None, sigint_timeout: float = SIGINT_GRACE_S, echo=None) -> dict:
    """Start the graph's processes, wait until done() or metrics_node exits, tear down. Returns exit codes.

    echo: a stream (the terminal) that also gets every node's output, prefixed with its name.
    """
    group = ProcessGroup(graph.env, echo=echo)
    codes = {}
    finished_at = None  # when metrics_node exited
    try:
        with SigtermAsInterrupt():
            for spec in graph.processes:
                group.start(spec)
            deadline = time.monotonic() + timeout
            while True:
                for spec, p, _ in group.procs:
                    rc = p.poll()
                    if rc is not None and rc != 0 and spec.required:
                        group.wait_output(spec.name)  # its last words (the reason) are in the log now
                        failure = f": {spec.failure}" if spec.failure else ""
                        raise LaunchError(
                            f"{spec.name} exited with code {rc}{failure}; its log ({spec.log}):\n{tail_log(spec.log)}"
                        )
                metrics = next((p for s, p, _ in group.procs if s.name == "metrics_node"), None)
                if done is not None and done():
                    break
                if metrics is not None and metrics.poll() == 0:
                    finished_at = finished_at or time.monotonic()
                    awaited = [p for s, p, _ in group.procs if s.awaited and p.poll() is None]
                    if not awaited or time.monotonic() > finished_at + AWAIT_EXIT_S:
                        break
                if time.monotonic() > deadline:
                    logs = "\n".join(f"  {s.name}:\n{tail_log(s.log, 6)}" for s, _, _ in group.procs)
                    raise LaunchError(f"no result within {timeout:.0f} s; logs:\n{logs}")
                time.sleep(0.1)
    finally:
        codes = group.shutdown(sigint_timeout=sigint_timeout)
    return codes


def run_simulation(
    circuit: str = _LAUNCH_DEFAULTS["circuit"],
    direction: str = _LAUNCH_DEFAULTS["direction"],
    brain_config=_LAUNCH_DEFAULTS["brain_config"],
    clock: str | None = None,
    record: bool = _LAUNCH_DEFAULTS["record"],
    out_dir=_LAUNCH_DEFAULTS["out_dir"],
    timeout: float | None = None,
    scale: float = _LAUNCH_DEFAULTS["scale"],
    wall_timeout: float | None = None,
    domain_id: int | None = None,
    transports: str = "profile",
    use_sim_time: bool = _LAUNCH_DEFAULTS["use_sim_time"],
    echo=None,
    latency: float | None = None,
    conditions: str = _LAUNCH_DEFAULTS["conditions"],
    seed: int = _LAUNCH_DEFAULTS["seed"],
) -> dict:
    """One closed-loop run of the ROS graph: sim_node + brain_node + metrics_node (+ bag_recorder).

    timeout: simulated seconds before the episode is stopped (default: the circuit's time-out);
    wall_timeout: wall seconds before the launcher gives up (default: generous, from the sim time-out).
    transports: the DDS set-up, one of TRANSPORTS ("profile": config/fastdds.xml).
    use_sim_time: every node's clock follows sim_node's /clock.
    domain_id: the graph's ROS_DOMAIN_ID (None: the caller's, else a random private one); runs at the
    same time on one host need distinct ones.
    latency: lockstep command latency (s) (None: config/simulation.yaml's; fixed: reproducible runs).
    conditions, seed: the simulator's conditions (sim/conditions.py label) and seed.
    echo: a stream (the terminal) for the domain, how to attach a tool, and every node's output
    (`pilotnet-brain launch simulation`); None: the logs only (benchmarks).
    Returns {"metrics": dict, "metrics_path": Path, "bag_path": Path | None, "out_dir", "logs",
    "domain_id", "exit_codes", "wall_s"}. Raises LaunchError when a node fails or nothing comes out.
    """

    graph = simulation_graph(
        circuit,
        direction,
        brain_config,
        clock,
        record,
        out_dir,
        scale,
        timeout,
        domain_id=domain_id,
        transports=transports,
        use_sim_time=use_sim_time,
        latency=latency,
        conditions=conditions,
        seed=seed,
    )
    announce(connection_lines(graph.env, topics.CMD_VEL_TOPIC), echo)
    if wall_timeout is None:
        sim_s = timeout or default_timeout_s(load_circuit(circuit, direction=direction, scale=scale))
        wall_timeout = 60.0 + 3.0 * sim_s  # realtime runs take sim_s; lockstep is faster
    before = {p: p.stat().st_mtime for p in graph.metrics_dir.glob("*.json")} if graph.metrics_dir.exists() else {}
    t0 = time.monotonic()
    codes = run_graph(graph, wall_timeout, echo=echo)
    new = [p for p in graph.metrics_dir.glob("*.json") if before.get(p) != p.stat().st_mtime]
    if not new:
        raise LaunchError(
            f"metrics_node wrote no metrics JSON in {graph.metrics_dir}; logs in {graph.metrics_dir / 'logs'}"
        )
    path = max(new, key=lambda p: p.stat().st_mtime)
    if record:
        check_recording(graph, codes)
    return {
        "metrics": json.loads(path.read_text()),
        "metrics_path": path,
        "bag_path": graph.bag_path,
        "out_dir": graph.metrics_dir,
        "logs": graph.metrics_dir / "logs",
        "domain_id": int(graph.env["ROS_DOMAIN_ID"]),
        "exit_codes": codes,
        "wall_s": time.monotonic() - t0,
    }


def brain_graph(
    brain_config=DEFAULT_BRAIN_CONFIG,
    domain_id: int | None = None,
    namespace: str = _BRAIN_LAUNCH_DEFAULTS["namespace"],
    camera_topic: str = _BRAIN_LAUNCH_DEFAULTS["camera_topic"],
    cmd_vel_topic: str = _BRAIN_LAUNCH_DEFAULTS["cmd_vel_topic"],
    use_sim_time: bool = _BRAIN_LAUNCH_DEFAULTS["use_sim_time"],
    log_dir=None,
) -> Graph:
    """launch/brain.launch.py: the brain alone on a Gazebo car's topics (nothing is started).

    camera_topic / cmd_vel_topic remap the F1 topics of interfaces.py, as the launch file does; relative
    names resolve inside `namespace`. The node's output goes to <log_dir>/brain_node.log when log_dir is given.
    """

    yaml_path = resolve_brain_config(brain_config)
    params = load_brain_parameters(yaml_path)
    check_ros_names(namespace, {"camera_topic": camera_topic, "cmd_vel_topic": cmd_vel_topic})
    remappings = [(topics.CAMERA_TOPIC, camera_topic), (topics.CMD_VEL_TOPIC, cmd_vel_topic)]
    for (source, target), name in zip(remappings, ("camera_topic", "cmd_vel_topic")):
        if params[name] != source and target != source:  # the remapping would silently not apply
            raise ConfigError(
                f"launch brain: {name}={target!r} remaps {source}, but {yaml_path} sets {name}: {params[name]}; "
                f"set the topic in one place"
            )
    env = ros_environment(domain_id) if domain_id is not None else environment_with_transports()
    argv = ros_args(
        BRAIN_NODE.node,
        [yaml_path],
        {"use_sim_time": bool(use_sim_time)},
        namespace=namespace,
        remappings=remappings,
    )
    log = Path(log_dir) / f"{BRAIN_NODE.node}.log" if log_dir is not None else None
    return Graph(processes=[ProcessSpec(BRAIN_NODE.node, node_command(BRAIN_NODE.node) + argv, log)], env=env)


def run_brain(
    brain_config=DEFAULT_BRAIN_CONFIG,
    namespace: str = _BRAIN_LAUNCH_DEFAULTS["namespace"],
    camera_topic: str = _BRAIN_LAUNCH_DEFAULTS["camera_topic"],
    cmd_vel_topic: str = _BRAIN_LAUNCH_DEFAULTS["cmd_vel_topic"],
    use_sim_time: bool = _BRAIN_LAUNCH_DEFAULTS["use_sim_time"],
    out_dir=_LAUNCH_DEFAULTS["out_dir"],
    echo=None,
) -> int:
    """Run brain_node alone until Ctrl-C (uses the caller's ROS_DOMAIN_ID: it must meet Gazebo).

    The node's output goes to <out_dir>/logs/brain_node.log and to `echo` (the terminal), each line
    prefixed [brain_node]; before that, the domain and how to attach a tool. `echo`: that terminal stream
    (default: sys.stderr at call time). Returns the node's exit code (2: it could not start, its one-line
    reason printed).
    """
    echo = sys.stderr if echo is None else echo
    graph = brain_graph(
        brain_config,
        namespace=namespace,
        camera_topic=camera_topic,
        cmd_vel_topic=cmd_vel_topic,
        use_sim_time=use_sim_time,
        log_dir=Path(out_dir) / "logs",
    )
    spec = graph.processes[0]
    announce(connection_lines(graph.env, resolved_topic(cmd_vel_topic, namespace)) + [f"log: {spec.log}"], echo)
    group = ProcessGroup(graph.env, echo=echo)
    try:
        with SigtermAsInterrupt():
            proc = group.start(spec)
            while proc.poll() is None:
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        codes = group.shutdown()
    rc = codes.get(spec.name, 0)
    if rc != 0:
        announce([f"{spec.name} exited with code {rc} (log: {spec.log})"], echo)
    return rc
