"""A sweep's results on disk, keyed by a hash of each run's full configuration.

    OUT/runs/<config_hash>/config.json    the run's configuration (what the hash covers)
    OUT/runs/<config_hash>/metrics.json   the run object (metrics + brain, circuit, ..., host, worker), written last
    OUT/runs/<config_hash>/trajectory.png in-process runs; ros/ the graph's logs (and bag) where OUT is reachable
    OUT/running/<config_hash>.pid         the worker process of a run in progress (where OUT is reachable)
    OUT/sweep.json                        the list of the sweep's finished run objects, rewritten after each run

Every file is written atomically (jsonio), so a killed sweep leaves whole files only. A run is finished when
its metrics.json exists without an `error`: a rerun of the same sweep skips it (a failed run runs again).
The configuration covers the brain file's text, the model's SHA-256, the circuit (name, or the CSV's content),
direction, condition, repeat, mode, simulator parameters (clock, latency, time-out, ...), scale, recording
and the package (version and a digest of its source), so a changed input is never served from an old result.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import secrets
import shutil
from functools import lru_cache
from pathlib import Path

from pilotnet_brain.errors import ConfigError
from pilotnet_brain.jsonio import dumps_strict, write_bytes_atomic, write_json_atomic, write_text_atomic

PACKAGE = "pilotnet_brain"
RUNS_DIR = "runs"
RUNNING_DIR = "running"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"
SWEEP_FILE = "sweep.json"
#: A file with a token new to each sweep process: a task that reads the same token through its OUT path
#: writes there directly (same machine, or shared storage); elsewhere its files come back with its result.
TOKEN_FILE = ".sweep_token"
#: Held (flock) by the sweep writing in the directory.
LOCK_FILE = ".sweep_lock"
HASH_LENGTH = 16


@lru_cache(maxsize=1)
def package_fingerprint() -> dict:
    """The package's version and a SHA-256 of its Python source (an edited checkout keeps its version)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"version": version, "source_sha256": digest.hexdigest()}


def config_hash(configuration: dict) -> str:
    """A short, stable hash of a run's configuration (canonical JSON: sorted keys, no spaces)."""
    text = json.dumps(configuration, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_LENGTH]


class RunStore:
    """The results of the runs under one output directory (written by the sweep's driver only)."""

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir).resolve()
        self.token = secrets.token_hex(16)
        self._lock = None

    def open(self) -> None:
        """Create the directory and hold it (one sweep at a time writes there: ConfigError otherwise), hand
        out this sweep's token, drop the pid files a killed sweep left."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.out_dir / LOCK_FILE, "a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise ConfigError(f"{self.out_dir}: another sweep is writing its results there") from None
        write_text_atomic(self.token, self.out_dir / TOKEN_FILE)
        shutil.rmtree(self.out_dir / RUNNING_DIR, ignore_errors=True)

    def close(self) -> None:
        """Drop the directory of pid files (no run is in progress any more) and let go of the directory."""
        try:
            (self.out_dir / RUNNING_DIR).rmdir()
        except OSError:  # not empty (a cancelled run's worker still ending), or already gone
            pass
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def run_dir(self, run_hash: str) -> Path:
        return self.out_dir / RUNS_DIR / run_hash

    def finished(self, run_hash: str) -> dict | None:
        """The run object of a finished run (None: not run, failed, or an unreadable file)."""
        try:
            row = json.loads((self.run_dir(run_hash) / METRICS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return row if isinstance(row, dict) and not row.get("error") else None

    def forget(self, run_hash: str) -> None:
        """Drop a run's results (it runs again)."""
        shutil.rmtree(self.run_dir(run_hash), ignore_errors=True)

    def save(self, run_hash: str, configuration: dict, row: dict, files: dict) -> Path:
        """The run's files, its configuration, then its run object (metrics.json, last: it marks the run done)."""
        run_dir = self.run_dir(run_hash)
        for name, data in files.items():
            write_bytes_atomic(data, run_dir / Path(name).name)
        write_json_atomic(configuration, run_dir / CONFIG_FILE)
        return write_json_atomic(row, run_dir / METRICS_FILE)

    def write_sweep(self, rows: list) -> Path:
        """OUT/sweep.json: the list of run objects (strict JSON)."""
        return write_json_atomic(list(rows), self.out_dir / SWEEP_FILE)

    def running_file(self, run_hash: str) -> Path:
        return self.out_dir / RUNNING_DIR / f"{run_hash}.pid"


def same_token(out_dir, token: str) -> bool:
    """True where `out_dir` is this sweep's output directory as the driver sees it (same host or shared storage)."""
    try:
        return (Path(out_dir) / TOKEN_FILE).read_text(encoding="utf-8") == token
    except (OSError, UnicodeDecodeError):
        return False


def canonical(value) -> object:
    """A configuration as the hash sees it (strict JSON types)."""
    return json.loads(dumps_strict(value, indent=None))
