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

Python API for benchmarks: `run_simulation(...) -> {"metrics", "metrics_path", "bag_path", ...}`.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pilotnet_brain import interfaces as topics
from pilotnet_brain.config import (
    BAG_RECORDER,
    BRAIN_LAUNCH_ARGUMENTS,
    DEFAULT_BRAIN_CONFIG,
    METRICS_NODE,
    SIM_NODE,
    SIMULATION_LAUNCH_ARGUMENTS,
)
from pilotnet_brain.evaluation.drive import run_slug
from pilotnet_brain.resources import config_path
from pilotnet_brain.ros.params import brain_label, load_brain_parameters, load_node_parameters
from pilotnet_brain.sim.circuits import load_circuit
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
SIM_CONFIG_FILE = "simulation.yaml"


class LaunchError(RuntimeError):
    """A node failed, or the run did not produce its metrics in time (the message has the log tail)."""


@dataclass
class ProcessSpec:
    name: str
    argv: list
    log: Path | None = None
    required: bool = True  # a non-zero exit of a required process fails the run


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


def ros_args(node_name: str, params_files=(), params: dict | None = None) -> list:
    """`--ros-args` as launch_ros builds them for Node(name=..., parameters=[files..., {dict}])."""
    argv = ["--ros-args", "-r", f"__node:={node_name}"]
    for f in params_files:
        argv += ["--params-file", str(f)]
    for k, v in (params or {}).items():
        argv += ["-p", f"{k}:={_param(v)}"]
    return argv


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


# ROS 2's safe domain IDs on Linux are 0..101: higher ones put DDS ports into the kernel's ephemeral
# port range (32768-60999), where any outgoing socket may hold a port a participant needs ("About
# Domain ID", docs.ros.org). 0 is everyone's default, so private runs use 1..101.
PRIVATE_DOMAIN_IDS = range(1, 102)


def private_domain_id() -> int:
    return random.SystemRandom().choice(PRIVATE_DOMAIN_IDS)


#: Fast DDS built-in transport set-ups the graph can be given instead of the profile (graph-benchmark
#: measures them): name -> FASTDDS_BUILTIN_TRANSPORTS.
BUILTIN_TRANSPORTS = {"default": "DEFAULT", "large_data": "LARGE_DATA", "udp": "UDPv4"}
#: "profile" (config/fastdds.xml) is what every run uses unless told otherwise.
TRANSPORTS = ("profile", *BUILTIN_TRANSPORTS)


def fastdds_environment(transports: str = "profile") -> dict:
    """The variables that give a node's DDS participant its transports (one of TRANSPORTS)."""
    if transports == "profile":
        return {topics.FASTDDS_PROFILE_VARIABLE: str(config_path(topics.FASTDDS_PROFILE_FILE).resolve())}
    if transports in BUILTIN_TRANSPORTS:
        return {"FASTDDS_BUILTIN_TRANSPORTS": BUILTIN_TRANSPORTS[transports]}
    raise ValueError(f"unknown transports {transports!r} (one of {', '.join(TRANSPORTS)})")


def environment_with_transports(transports: str = "profile") -> dict:
    """os.environ with the caller's Fast DDS transport variables replaced by those of `transports`."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("FASTDDS_BUILTIN_TRANSPORTS", topics.FASTDDS_PROFILE_VARIABLE)
    }
    env.update(fastdds_environment(transports))
    return env


def ros_environment(domain_id: int | None = None, transports: str = "profile") -> dict:
    env = environment_with_transports(transports)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    elif "ROS_DOMAIN_ID" not in env:
        env["ROS_DOMAIN_ID"] = str(private_domain_id())
    return env


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
) -> Graph:
    """The processes of launch/simulation.launch.py, with their arguments (nothing is started).

    Every parameter file and value is checked against the nodes' schemas first (ConfigError).
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
    }
    if clock:
        sim_params["clock"] = clock
    if timeout:
        sim_params["timeout"] = timeout
    sim_params = SIM_NODE.validate(sim_params, "launch simulation: sim_node")
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
                        "brain_config": str(brain_yaml),
                        "output_dir": str(out_dir),
                    },
                    "launch simulation: metrics_node",
                ),
            ),
            logs / "metrics_node.log",
        ),
        ProcessSpec(
            "brain_node", node_command("brain_node") + ros_args("brain_node", [brain_yaml]), logs / "brain_node.log"
        ),
        ProcessSpec(
            "sim_node", node_command("sim_node") + ros_args("sim_node", [sim_yaml], sim_params), logs / "sim_node.log"
        ),
    ]
    if record:
        graph.bag_path = out_dir / (run_slug(c.name, direction, brain_label(brain_params)) + "_bag")
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
                    ),
                ),
                logs / f"{RECORDER_EXECUTABLE}.log",
                required=False,
            ),
        )
    return graph


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


# --- processes -------------------------------------------------------------------------------------
def _die_with_parent():
    """In the child before exec: get SIGTERM when the launcher dies (Linux), so nothing is orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ProcessGroup:
    """Started processes, each in its own session (so Ctrl-C reaches only the launcher)."""

    def __init__(self, env: dict):
        self.env = env
        self.procs: list[tuple[ProcessSpec, subprocess.Popen, object]] = []

    def start(self, spec: ProcessSpec) -> subprocess.Popen:
        log = None
        if spec.log is not None:
            spec.log.parent.mkdir(parents=True, exist_ok=True)
            log = open(spec.log, "wb")
        proc = subprocess.Popen(
            spec.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.procs.append((spec, proc, log))
        return proc

    def _signal(self, proc, sig):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def shutdown(self, sigint_timeout: float = 5.0, sigterm_timeout: float = 3.0) -> dict:
        """SIGINT all, then SIGTERM, then SIGKILL the survivors; returns {name: exit code}."""
        for sig, wait in ((signal.SIGINT, sigint_timeout), (signal.SIGTERM, sigterm_timeout), (signal.SIGKILL, 5.0)):
            alive = [p for _, p, _ in self.procs if p.poll() is None]
            if not alive:
                break
            for p in alive:
                self._signal(p, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(p.poll() is None for p in alive):
                time.sleep(0.05)
        for _, p, _ in self.procs:  # whole process groups: anything a node forked goes too
            if p.poll() is not None:
                self._signal(p, signal.SIGKILL)
        codes = {}
        for spec, p, log in self.procs:
            codes[spec.name] = p.wait()
            if log is not None:
                log.close()
        return codes


def _tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join("    " + line for line in text)


class _SigtermAsInterrupt:
    """While active (main thread only), SIGTERM to the launcher raises KeyboardInterrupt."""

    def __enter__(self):
        self.old = None
        if threading_is_main():
            self.old = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


def threading_is_main() -> bool:

    return threading.current_thread() is threading.main_thread()


def run_graph(graph: Graph, timeout: float, done=None, sigint_timeout: float = 5.0) -> dict:
    """Start the graph's processes, wait until done() or metrics_node exits, tear down. Returns exit codes."""
    group = ProcessGroup(graph.env)
    codes = {}
    try:
        with _SigtermAsInterrupt():
            for spec in graph.processes:
                group.start(spec)
            deadline = time.monotonic() + timeout
            while True:
                for spec, p, _ in group.procs:
                    rc = p.poll()
                    if rc is not None and rc != 0 and spec.required:
                        raise LaunchError(
                            f"{spec.name} exited with code {rc}; its log ({spec.log}):\n{_tail(spec.log)}"
                        )
                metrics = next((p for s, p, _ in group.procs if s.name == "metrics_node"), None)
                if done is not None and done():
                    break
                if metrics is not None and metrics.poll() == 0:
                    break
                if time.monotonic() > deadline:
                    logs = "\n".join(f"  {s.name}:\n{_tail(s.log, 6)}" for s, _, _ in group.procs)
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
) -> dict:
    """One closed-loop run of the ROS graph: sim_node + brain_node + metrics_node (+ bag_recorder).

    timeout: simulated seconds before the episode is stopped (default: the circuit's time-out);
    wall_timeout: wall seconds before the launcher gives up (default: generous, from the sim time-out).
    transports: the DDS set-up, one of TRANSPORTS ("profile": config/fastdds.xml).
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
    )
    if wall_timeout is None:
        sim_s = timeout or default_timeout_s(load_circuit(circuit, direction=direction, scale=scale))
        wall_timeout = 60.0 + 3.0 * sim_s  # realtime runs take sim_s; lockstep is faster
    before = {p: p.stat().st_mtime for p in graph.metrics_dir.glob("*.json")} if graph.metrics_dir.exists() else {}
    t0 = time.monotonic()
    codes = run_graph(graph, wall_timeout)
    new = [p for p in graph.metrics_dir.glob("*.json") if before.get(p) != p.stat().st_mtime]
    if not new:
        raise LaunchError(
            f"metrics_node wrote no metrics JSON in {graph.metrics_dir}; logs in {graph.metrics_dir / 'logs'}"
        )
    path = max(new, key=lambda p: p.stat().st_mtime)
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


def brain_graph(brain_config=DEFAULT_BRAIN_CONFIG, domain_id: int | None = None) -> Graph:
    """launch/brain.launch.py: the brain alone, for a real Gazebo world (logs to the terminal)."""

    yaml_path = resolve_brain_config(brain_config)
    load_brain_parameters(yaml_path)
    env = ros_environment(domain_id) if domain_id is not None else environment_with_transports()
    return Graph(
        processes=[ProcessSpec("brain_node", node_command("brain_node") + ros_args("brain_node", [yaml_path]), None)],
        env=env,
    )


def run_brain(brain_config=DEFAULT_BRAIN_CONFIG) -> int:
    """Run brain_node alone until Ctrl-C (uses the caller's ROS_DOMAIN_ID: it must meet Gazebo)."""
    graph = brain_graph(brain_config)
    group = ProcessGroup(graph.env)
    try:
        with _SigtermAsInterrupt():
            proc = group.start(graph.processes[0])
            while proc.poll() is None:
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        codes = group.shutdown()
    return codes.get("brain_node", 0)
