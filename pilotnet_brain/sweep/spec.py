"""What a sweep runs: the SweepSpec from a YAML file and the command line, checked with one-line errors,
and the runs it expands to (every brain x circuit x direction x condition x repeat).

A sweep file holds the options under their names with `_` for `-` (`latency_ms: 2`); lists are YAML lists
or comma-separated strings, except `conditions`: each condition set (`lighting=0.5,noise=moderate`, see
sim/conditions.py) has commas of its own, so it is a YAML list of sets or a `;`-separated string. Where the file and the command line both give a value, the file wins; a key
the file does not know is an error. Paths (brain files, CSV tracks, out) are relative to the current
directory, as on the command line.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from pilotnet_brain.bench.closed_loop import UnknownPresetError, available_presets, preset_path
from pilotnet_brain.brains.from_parameters import brain_parameters_from_file
from pilotnet_brain.brains.pilotnet import default_model
from pilotnet_brain.config import CLOCK, SCALE, SIM_NODE, SIMULATOR_PARAMETERS, read_parameter_file
from pilotnet_brain.errors import CircuitError, ConfigError
from pilotnet_brain.resources import config_path
from pilotnet_brain.sim.builtin_circuits import TEST_CIRCUITS
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.conditions import CLEAR, parse_conditions

MODES = ("inprocess", "ros")
DIRECTIONS = SIM_NODE["direction"].choices
#: Separates the condition sets of --conditions (a set's own items are comma separated).
CONDITION_SET_SEPARATOR = ";"
DEFAULT_MAX_RETRIES = 3
DEFAULT_OUT = "runs/sweep"
#: Simulator parameters a sweep sets per run (the circuit's, the condition set), not from config/simulation.yaml.
#: `seed` is per run too: config/simulation.yaml's plus the repeat number (run_simulator_parameters).
PER_RUN_PARAMETERS = ("circuit", "direction", "scale", "conditions")
#: A model file larger than this is identified by size and modification time, not by its SHA-256.
HASHED_MODEL_MAX_BYTES = 1 << 30
#: `auto`, `host:port` (the head's GCS address) or `ray://host:port` (Ray Client).
ADDRESS_PATTERN = re.compile(r"(?:ray://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")
ADDRESS_FORMS = "auto, host:port or ray://host:port"


@dataclass
class SweepSpec:
    """A sweep's settings, as given (names, paths); `validate_spec` checks them, `resolve_*` read what they name."""

    brains: list = field(default_factory=list)
    circuits: list = field(default_factory=lambda: list(TEST_CIRCUITS))
    directions: list = field(default_factory=lambda: ["ccw"])
    repeats: int = 1
    conditions: list = field(default_factory=lambda: [CLEAR])  # canonical labels (Conditions.label)
    mode: str = "inprocess"
    clock: str = CLOCK.default
    latency_ms: float | None = None  # None (or < 0): the brain's measured time; fixed: reproducible runs
    timeout: float = 0.0  # simulated s per run; 0: the circuit's time-out
    scale: float = SCALE.default
    record: bool = False  # ros mode: a rosbag2 bag per run
    workers: int | None = None  # None: this machine's cores (local), the cluster's CPUs (--address)
    address: str | None = None  # None: an embedded local Ray instance
    max_retries: int = DEFAULT_MAX_RETRIES
    out: str = DEFAULT_OUT
    #: Where each given setting came from ("--brains", "sweep.yaml: brains"), for error messages.
    sources: dict = field(default_factory=dict, compare=False, repr=False)

    def where(self, key: str) -> str:
        return self.sources.get(key, key)


SPEC_KEYS = tuple(f.name for f in fields(SweepSpec) if f.name != "sources")


# --- reading and merging ---------------------------------------------------------------------------
def load_sweep_file(path) -> dict:
    """The settings of a sweep YAML file ({key: value}); unreadable files and unknown keys raise ConfigError."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read sweep file {path}: {getattr(error, 'strerror', None) or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping of settings (brains: ..., circuits: ...)")
    unknown = [str(k) for k in doc if k not in SPEC_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(SPEC_KEYS)}")
    return doc


def sweep_spec(file=None, options: dict | None = None) -> SweepSpec:
    """The SweepSpec of a sweep file and command-line options ({key: value}, None = not given), checked.

    The file wins where both give a key; what neither gives takes SweepSpec's default."""
    given = {k: v for k, v in (options or {}).items() if v is not None}
    sources = dict.fromkeys(given, "--{}")
    if file is not None:
        from_file = load_sweep_file(file)
        given.update(from_file)
        sources.update(dict.fromkeys(from_file, f"{file}: {{}}"))
    values, wheres = {}, {}
    for key, value in given.items():
        wheres[key] = sources[key].format(key.replace("_", "-") if sources[key] == "--{}" else key)
        values[key] = _check_value(key, value, wheres[key])
    spec = SweepSpec(**values, sources=wheres)
    validate_spec(spec)
    return spec


def _names(value, where: str) -> list:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        items = [str(v).strip() for v in value if str(v).strip()]
    else:
        raise ConfigError(f"{where}: expected a list of names or a comma-separated string, got {_show(value)}")
    if not items:
        raise ConfigError(f"{where}: names nothing (give one or more)")
    return items


def _integer(value, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {_show(value)}")
    if value < minimum:
        raise ConfigError(f"{where}: {value} is out of range (allowed: an integer >= {minimum})")
    return value


def _choice(value, where: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{where}: {_show(value)} is not allowed (one of {', '.join(choices)})")
    return value


def _parameter(parameter, value, where: str):
    try:
        return parameter.check(value)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def _show(value) -> str:
    return f"{type(value).__name__} {value!r}"


def _check_value(key: str, value, where: str):
    """One setting in its type, or ConfigError naming `where` (the file's key or the option)."""
    if key in ("brains", "circuits"):
        return _names(value, where)
    if key == "conditions":
        return _condition_sets(value, where)
    if key == "directions":
        names = _names(value, where)
        if names == ["both"]:
            return list(DIRECTIONS)
        for name in names:
            _choice(name, where, DIRECTIONS)
        return names
    if key == "repeats":
        return _integer(value, where, 1)
    if key == "workers":
        return _integer(value, where, 1)
    if key == "max_retries":
        return _integer(value, where, 0)
    if key == "mode":
        return _choice(value, where, MODES)
    if key == "clock":
        return _choice(value, where, CLOCK.choices)
    if key == "latency_ms":
        ms = _parameter(SIM_NODE["latency"], value, where)
        return ms if ms >= 0 else None
    if key == "timeout":
        return _parameter(SIM_NODE["timeout"], value, where)
    if key == "scale":
        return _parameter(SCALE, value, where)
    if key == "record":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if key == "address":
        return check_address(value, where)
    if key == "out":
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: expected a directory path, got {_show(value)}")
        return value
    raise ConfigError(f"{where}: unknown setting")  # SPEC_KEYS and this function list the same keys


def check_address(value, where: str = "--address") -> str:
    """A Ray cluster address: `auto`, `host:port` or `ray://host:port` (port 1..65535), else ConfigError."""
    if isinstance(value, str) and value == "auto":
        return value
    match = ADDRESS_PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ConfigError(f"{where}: {value!r} is not a Ray address ({ADDRESS_FORMS})")
    return value


def _condition_sets(value, where: str) -> list:
    """Condition sets from a `;`-separated string or a list of strings, as canonical labels."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(CONDITION_SET_SEPARATOR) if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        raise ConfigError(
            f"{where}: expected a list of condition sets or a '{CONDITION_SET_SEPARATOR}'-separated string, "
            f"got {_show(value)}"
        )
    if not items:
        raise ConfigError(f"{where}: names no condition set (give one or more, e.g. none;lighting=0.5,noise=moderate)")
    try:
        return validate_conditions(items)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def validate_conditions(sets: list) -> list:
    """The canonical labels (sim.conditions.Conditions.label) of condition sets, so that the config hash
    does not depend on how a set is spelt ('lighting=moderate' is 'lighting=0.5'); ConfigError (one line)
    naming a set parse_conditions refuses."""
    labels = []
    for text in sets:
        try:
            labels.append(parse_conditions(text).label)
        except ValueError as error:
            several = f" (several sets: separate them with '{CONDITION_SET_SEPARATOR}')" if "," in text else ""
            raise ConfigError(f"condition set {text!r}: {error}{several}") from None
    return labels


def validate_spec(spec: SweepSpec) -> None:
    """What no single value shows: brains given, nothing twice, conditions known, record only with ros."""
    if not spec.brains:
        raise ConfigError("no brains given (--brains, or 'brains:' in the sweep file)")
    try:
        spec.conditions = validate_conditions(spec.conditions)  # canonical, so spellings of one set are one
    except ConfigError as error:
        raise ConfigError(f"{spec.where('conditions')}: {error}") from None
    for key in ("brains", "circuits", "directions", "conditions"):
        values = getattr(spec, key)
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(f"{spec.where(key)}: {', '.join(map(repr, repeated))} given more than once")
    if spec.record and spec.mode != "ros":
        raise ConfigError(f"{spec.where('record')}: a rosbag2 bag is recorded only in mode ros")


# --- what the names name ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BrainEntry:
    """A brain of the sweep: its name, its brain_node parameter file (path and text) and parameters."""

    name: str
    path: Path
    text: str
    params: dict  # every brain_node parameter; model_path absolute (workers need not share our cwd)
    model_sha256: str | None  # of the model file it runs (None: no model)


@dataclass(frozen=True)
class CircuitEntry:
    """A circuit of the sweep: `spec` as given, `name` the run's label; a CSV track's text travels with
    the task, so workers on other machines need not have the file."""

    spec: str
    name: str
    csv_name: str | None = None
    csv_text: str | None = None

    def materialize(self, directory: Path) -> str:
        """What load_circuit takes on the worker: the name, or the CSV written into `directory`."""
        if self.csv_text is None:
            return self.spec
        path = Path(directory) / self.csv_name
        path.write_text(self.csv_text, encoding="utf-8")
        return str(path)


def is_parameter_file(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or Path(text).is_file()


def resolve_brains(names: list) -> list:
    """BrainEntry per name: a preset (config/brains/<name>.yaml) or a brain_node parameter file."""
    entries = []
    for name in names:
        if is_parameter_file(name):
            path = Path(name)
            if not path.is_file():
                raise ConfigError(f"brain file {name} not found (a preset name or a brain_node parameters YAML)")
            label = path.stem
        else:
            try:
                path = preset_path(name)
            except UnknownPresetError:
                raise ConfigError(
                    f"unknown brain {name!r}: not a preset ({', '.join(available_presets())}) nor a YAML file"
                ) from None
            label = name
        params = brain_parameters_from_file(path)
        model_sha = None
        if params["brain"] == "pilotnet":
            model = Path(params["model_path"]).resolve() if params["model_path"] else default_model(params["backend"])
            if not (model.is_file() or model.is_dir()):  # a SavedModel (tf_fp32) is a directory
                raise ConfigError(f"brain {label}: model file {model} not found ({path})")
            params = {**params, "model_path": str(model)}
            model_sha = model_fingerprint(model)
        entries.append(BrainEntry(label, path.resolve(), path.read_text(encoding="utf-8"), params, model_sha))
    labels = [e.name for e in entries]
    twice = sorted({n for n in labels if labels.count(n) > 1})
    if twice:
        raise ConfigError(f"brains: two brains are named {', '.join(map(repr, twice))} (rename a file)")
    return entries


def model_fingerprint(path: Path) -> str:
    """SHA-256 of a model file, or of a model directory's files (a SavedModel: names and contents); size and mtime
    for a file over HASHED_MODEL_MAX_BYTES: hashing it costs."""
    if path.is_dir():
        digest = hashlib.sha256()
        for member in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{member.relative_to(path).as_posix()}\0{model_fingerprint(member)}\0".encode())
        return digest.hexdigest()
    stat = path.stat()
    if stat.st_size > HASHED_MODEL_MAX_BYTES:
        return f"size={stat.st_size},mtime_ns={stat.st_mtime_ns}"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_circuits(specs: list, directions: list, scale: float) -> list:
    """CircuitEntry per circuit, each loaded once per direction here so that a bad one (unknown name,
    undrivable track) is refused before anything runs."""
    entries = []
    for spec in specs:
        is_csv = spec.lower().endswith(".csv") or Path(spec).is_file()
        if is_csv:
            path = Path(spec)
            if not path.is_file():
                raise CircuitError(f"circuit file {spec} not found")
            try:
                entry = CircuitEntry(spec, path.stem, path.name, path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as error:
                raise CircuitError(f"circuit file {spec}: cannot read it: {error}") from None
        else:
            entry = CircuitEntry(spec, spec)
        for direction in directions:
            load_circuit(spec, direction=direction, scale=scale)
        entries.append(entry)
    names = [e.name for e in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"circuits: two circuits are named {', '.join(map(repr, twice))}")
    return entries


def simulator_parameters(spec: SweepSpec) -> dict:
    """The simulator's parameters for every run (config/simulation.yaml, then the sweep's clock, latency
    and time-out), all of them: the config hash covers each."""
    values = read_parameter_file(config_path("simulation.yaml"), SIM_NODE)
    values.update(clock=spec.clock, timeout=float(spec.timeout))
    values["latency"] = spec.latency_ms / 1000.0 if spec.latency_ms is not None else SIM_NODE["latency"].default
    resolved = SIM_NODE.resolve(values, "sweep: simulator")
    return {p.name: resolved[p.name] for p in SIMULATOR_PARAMETERS if p.name not in PER_RUN_PARAMETERS}


def run_simulator_parameters(base: dict, condition: str, repeat: int) -> dict:
    """One run's simulator parameters: the sweep's (`simulator_parameters`), its condition set (a canonical
    label) and its seed, config/simulation.yaml's plus the repeat number, so that repeats differ where a
    condition is random (noise, shadows, latency spikes) and each run is reproducible."""
    return {**base, "conditions": condition, "seed": base["seed"] + repeat}


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity)."""
    return len(os.sched_getaffinity(0))
