"""What every command group shares: option types that check values when the command line is parsed,
output locations checked before any work, the simulator options and the settings they give.

Option values follow the config files' rules: an option that sets a node parameter gets its type from
the parameter's spec in `config.py` (`parameter_type`), the others from the small typed helpers here
(`positive_int`, `finite_float(min=...)`, `non_empty_list`, ...). A bad value is one line
(`pilotnet-brain <command>: error: argument --x: ...`, exit code 2) before anything runs.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pilotnet_brain.config import SIM_NODE, Parameter
from pilotnet_brain.errors import CircuitError, ConfigError
from pilotnet_brain.resources import config_path
from pilotnet_brain.ros.params import load_node_parameters
from pilotnet_brain.sim.builtin_circuits import BUILTIN_CIRCUITS, generated_seed
from pilotnet_brain.sim.circuits import GENERATED_SEEDS_HINT
from pilotnet_brain.sim.conditions import CONDITION_NAMES, LEVEL_NAMES, Conditions, parse_conditions
from pilotnet_brain.sim.settings import sim_config_from_parameters
from pilotnet_brain.sim.world import SimConfig

DIRECTIONS = SIM_NODE["direction"].choices


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, `<prog>: error: <message>`, with exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


# --- numbers -----------------------------------------------------------------------------------------
def _parse_number(text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def _bound(value, exclusive: bool, opening: bool) -> str:
    bracket = ("(" if exclusive else "[") if opening else (")" if exclusive else "]")
    return f"{bracket}{value:g}" if opening else f"{value:g}{bracket}"


def number_type(
    kind: type,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
) -> Callable[[str], int | float]:
    """An argparse type for a finite `kind` (int or float) within the bounds (inclusive unless *_exclusive)."""
    noun = "an integer" if kind is int else "a float"
    if min is not None and max is not None:
        allowed = f"{noun} in {_bound(min, min_exclusive, True)}, {_bound(max, max_exclusive, False)}"
    elif min is not None:
        allowed = f"{noun} {'>' if min_exclusive else '>='} {min:g}"
    elif max is not None:
        allowed = f"{noun} {'<' if max_exclusive else '<='} {max:g}"
    else:
        allowed = f"a finite {'integer' if kind is int else 'float'}"

    def parse(text: str):
        value = _parse_number(text, kind)
        if not math.isfinite(value):
            problem = "is not finite"
        elif min is not None and (value <= min if min_exclusive else value < min):
            problem = "is out of range"
        elif max is not None and (value >= max if max_exclusive else value > max):
            problem = "is out of range"
        else:
            return value
        raise argparse.ArgumentTypeError(f"{text} {problem} (allowed: {allowed})")

    parse.__name__ = kind.__name__
    return parse


def finite_float(
    min: float | None = None, max: float | None = None, min_exclusive: bool = False, max_exclusive: bool = False
) -> Callable[[str], float]:
    """An argparse type for a finite float within the bounds: `finite_float(min=0.0, min_exclusive=True)`."""
    return number_type(float, min, max, min_exclusive, max_exclusive)


positive_int = number_type(int, min=1)
non_negative_int = number_type(int, min=0)


def parameter_type(parameter: Parameter, scale: float = 1.0) -> Callable[[str], object]:
    """An argparse type checked by a node parameter's spec (type, finiteness, range, choices), so the option
    accepts exactly what the config files accept. `scale` converts the option's unit to the parameter's
    (--latency-ms: 1e-3); the option's value is returned in its own unit."""

    def parse(text: str):
        value = text if parameter.type is str else _parse_number(text, parameter.type)
        try:
            parameter.check(value * scale if scale != 1.0 else value)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return value

    parse.__name__ = parameter.name
    return parse


# --- lists and names ---------------------------------------------------------------------------------
def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def non_empty_list(text: str) -> list[str]:
    """A comma-separated list with at least one item."""
    items = split_list(text)
    if not items:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing (give one or more names, comma separated)")
    return items


def choice_list(choices: Sequence[str], what: str) -> Callable[[str], list[str]]:
    """An argparse type for a non-empty comma-separated list of `choices`."""

    def parse(text: str) -> list[str]:
        items = non_empty_list(text)
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(map(repr, unknown))}; choose from {', '.join(choices)}"
            )
        return items

    parse.__name__ = what
    return parse


def directions(value: str) -> list[str]:
    """ccw, cw, a comma-separated list of them, or both."""
    return list(DIRECTIONS) if value.strip() == "both" else choice_list(DIRECTIONS, "direction(s)")(value)


def check_circuit(spec: str) -> str:
    """`spec` if it is a built-in circuit name, a generated circuit's `gen:SEED` or an existing track file,
    else CircuitError listing the names (or saying what is wrong with the seed)."""
    if spec in BUILTIN_CIRCUITS or generated_seed(spec) is not None or Path(spec).is_file():
        return spec
    if spec.lower().endswith(".csv"):
        raise CircuitError(f"circuit file {spec} not found")
    raise CircuitError(
        f"unknown circuit {spec!r}: valid names are {', '.join(BUILTIN_CIRCUITS)}, {GENERATED_SEEDS_HINT} "
        "(or the path of a .csv track file)"
    )


def circuit_name(text: str) -> str:
    """An argparse type: one built-in circuit name, gen:SEED or CSV path."""
    try:
        return check_circuit(text)
    except CircuitError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def circuit_list(text: str) -> list[str]:
    """An argparse type: built-in circuit names, gen:SEED or CSV paths, comma separated (at least one)."""
    return [circuit_name(name) for name in non_empty_list(text)]


def condition_set(text: str) -> Conditions:
    """An argparse type: simulator conditions, `name=level,...` (sim.conditions.parse_conditions) or none."""
    try:
        return parse_conditions(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


CONDITION_HELP = (
    f"simulator conditions, name=level comma separated, level in [0, 1] or {', '.join(LEVEL_NAMES)} "
    f"(e.g. lighting=0.5,noise=moderate; none = clear); names: {', '.join(CONDITION_NAMES)}"
)


# --- files -------------------------------------------------------------------------------------------
def existing_file(text: str) -> str:
    """An argparse type: the path of an existing file."""
    path = Path(text)
    if not text or not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a file")
    return text


def existing_dir(text: str) -> str:
    """An argparse type: the path of an existing directory."""
    path = Path(text)
    if not text or not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r}: no such directory")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a directory")
    return text


def output_location_problem(path: str | os.PathLike, directory: bool) -> str | None:
    """Why results cannot be written at `path` (a directory to fill, or a file), or None if they can.

    Checked before any work: the path (or a parent) must not be a file where a directory is needed,
    nor a directory where a file is, and the nearest existing directory must take a new file (this
    finds read-only directories and file systems)."""
    if not os.fspath(path).strip():
        return "empty path"
    path = Path(path)
    if path.exists():
        if directory and not path.is_dir():
            return "exists and is not a directory"
        if not directory and path.is_dir():
            return "is a directory, not a file"
    parent = path if directory and path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, not a directory"
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        return f"cannot write in {parent}: {error.strerror or error}"
    return None


def output_dir(text: str) -> str:
    """An argparse type: a directory results can be written to (existing or to be created)."""
    problem = output_location_problem(text, directory=True)
    if problem:
        raise argparse.ArgumentTypeError(f"{text}: {problem}" if text else problem)
    return text


def output_file(text: str) -> str:
    """An argparse type: a file path results can be written to (the directory may not exist yet)."""
    problem = output_location_problem(text, directory=False)
    if problem:
        raise argparse.ArgumentTypeError(f"{text}: {problem}" if text else problem)
    return text


# --- the simulator -----------------------------------------------------------------------------------
def add_sim_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=existing_file,
        help="ROS 2 parameters YAML for the simulator (default: config/simulation.yaml); its circuit, "
        "direction and scale apply when the options are not given",
    )
    p.add_argument("--clock", choices=SIM_NODE["clock"].choices, help="simulation clock (default from config)")
    p.add_argument("--camera-rate", type=parameter_type(SIM_NODE["camera_rate"]), help="camera frames per second")
    p.add_argument(
        "--latency-ms",
        type=parameter_type(SIM_NODE["latency"], scale=1e-3),
        help="lockstep: fixed command latency in ms (default: the brain's measured time per frame)",
    )
    p.add_argument(
        "--timeout",
        type=parameter_type(SIM_NODE["timeout"]),
        help="simulated seconds before a run is stopped (0: the circuit's time-out)",
    )
    p.add_argument("--condition", type=condition_set, help=CONDITION_HELP + " (default from config: none)")


@dataclass(frozen=True)
class SimSettings:
    """What a simulator command runs: the SimConfig, the circuits, the directions and the circuits' scale."""

    config: SimConfig
    circuits: list
    directions: list
    scale: float


def sim_settings_from_args(
    args,
    circuits: list | None,
    directions: list | None,
    scale: float | None,
    default_circuits: Sequence[str],
    default_directions: Sequence[str],
) -> SimSettings:
    """The SimConfig from the --config file (sim_node's parameters, checked by config.SIM_NODE) and the
    options; the circuits, directions and scale from the options, else from a --config file that sets
    them, else the command's defaults. The command line wins; a circuit the file names must exist."""
    params = load_node_parameters(args.config or config_path("simulation.yaml"), SIM_NODE)
    options = {
        "clock": args.clock,
        "camera_rate": args.camera_rate,
        "timeout": args.timeout,
        "conditions": args.condition.label if args.condition is not None else None,
        "seed": getattr(args, "seed", None),  # the command's --seed, where it has one
    }
    if args.latency_ms is not None:
        options["latency"] = args.latency_ms / 1000.0
    chosen = dict(params if args.config else {})  # the default file holds sim_node's defaults, not the command's
    params.update({name: value for name, value in options.items() if value is not None})
    config = sim_config_from_parameters(params, "simulator settings")
    if circuits is None and "circuit" in chosen:
        try:
            circuits = [check_circuit(chosen["circuit"])]
        except CircuitError as error:
            raise ConfigError(f"{args.config}: {SIM_NODE.node}: circuit: {error}") from None
    if directions is None and "direction" in chosen:
        directions = [chosen["direction"]]
    if scale is None:
        scale = chosen.get("scale", SIM_NODE["scale"].default)
    return SimSettings(config, list(circuits or default_circuits), list(directions or default_directions), float(scale))
