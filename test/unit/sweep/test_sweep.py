"""`pilotnet-brain sweep` on a real embedded Ray instance: parallel runs equal sequential ones, a killed
worker's run is retried, a rerun resumes, SIGTERM leaves finished runs and no Ray processes, bad settings
are one line.

The runs are short (the explicit brain, 3-40 simulated seconds) with a fixed latency, so they are
reproducible to the bit whatever runs them."""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import assert_clean_failure, run_cli

from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL
from pilotnet_brain.cli.main import main
from pilotnet_brain.sweep import engine
from pilotnet_brain.sweep.runs import LOCK_DIR_VARIABLE, claimed_slot, pinned_to_free_core
from pilotnet_brain.sweep.spec import sweep_spec


def sweep_argv(circuits="simple_circuit,nurburgring", timeout_s=3, workers=None) -> list:
    """`pilotnet-brain sweep` of the explicit brain, both directions, a fixed 2 ms latency."""
    argv = ["sweep", "--brains", "explicit", "--circuits", circuits, "--directions", "ccw,cw"]
    argv += ["--timeout", str(timeout_s), "--latency-ms", "2", "--quiet"]
    return argv + (["--workers", str(workers)] if workers else [])


SHORT_SWEEP = sweep_argv()
#: Keys that depend on the machine, the process or the wall clock, not on the run's configuration.
WALL_CLOCK_KEYS = {
    "wall_time_s",
    "brain_iteration_frequency_hz",
    "mean_inference_time_ms",
    "frame_rate_hz",
    "run_wall_s",
    "worker",
    "host",
    "node_id",
    "core",
}


@pytest.fixture(scope="module", autouse=True)
def own_core_locks(tmp_path_factory):
    """These sweeps claim cores among themselves only: a sweep running elsewhere on the machine holds the
    machine-wide core locks and would leave the runs here unpinned (correctly, but not what is tested)."""
    before = os.environ.get(LOCK_DIR_VARIABLE)
    os.environ[LOCK_DIR_VARIABLE] = str(tmp_path_factory.mktemp("core_locks"))  # Ray's workers inherit it
    yield
    if before is None:
        del os.environ[LOCK_DIR_VARIABLE]
    else:
        os.environ[LOCK_DIR_VARIABLE] = before


def _sweep_in_process(argv) -> tuple:
    """(exit code, stderr, wall s) of `pilotnet-brain ARGV` run in this process."""
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, err.getvalue(), time.perf_counter() - t0


def _runs(out: Path) -> list:
    runs = json.loads((out / "sweep.json").read_text())
    assert isinstance(runs, list)
    return runs


def _without_wall_clock(run: dict) -> dict:
    return {k: v for k, v in run.items() if k not in WALL_CLOCK_KEYS}


@pytest.fixture(scope="module")
def two_worker_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "two_workers"
    rc, err, wall_s = _sweep_in_process([*SHORT_SWEEP, "--workers", "2", "--out", out])
    assert rc == 0, err
    return out, wall_s


def test_two_workers_give_the_runs_of_one(two_worker_sweep, tmp_path):
    out, _ = two_worker_sweep
    rc, err, _ = _sweep_in_process([*SHORT_SWEEP, "--workers", "1", "--out", tmp_path])
    assert rc == 0, err
    parallel, sequential = _runs(out), _runs(tmp_path)
    assert len(parallel) == len(sequential) == 4
    assert [r["config_hash"] for r in parallel] == [r["config_hash"] for r in sequential]  # workers: not config
    assert [_without_wall_clock(r) for r in parallel] == [_without_wall_clock(r) for r in sequential]
    assert {(r["circuit"], r["direction"]) for r in parallel} == {
        (c, d) for c in ("simple_circuit", "nurburgring") for d in ("ccw", "cw")
    }
    assert all(r["completed_pct"] > 0 and not r.get("error") for r in parallel)
    # Two at once: each on a core of its own (where there are two); one at a time: not pinned.
    if len(os.sched_getaffinity(0)) >= 2:
        assert {r["core"] is not None for r in parallel} == {True}
    assert {r["core"] for r in sequential} == {None}
    for run in parallel:  # the run object, its configuration and trajectory, atomically written
        run_dir = out / run["run_dir"]
        assert json.loads((run_dir / "metrics.json").read_text()) == run
        assert json.loads((run_dir / "config.json").read_text())["direction"] == run["direction"]
        assert (run_dir / "trajectory.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "running").exists()
    for name in ("sweep.csv", "summary.md", "summary.csv", "report.html"):
        assert (out / name).stat().st_size > 0


def test_a_rerun_skips_finished_runs(two_worker_sweep, tmp_path, monkeypatch):
    first, first_wall_s = two_worker_sweep
    out = tmp_path / "copy"
    shutil.copytree(first, out)
    before = (out / "sweep.json").read_bytes()
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.json")}

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started although every run had finished")

    with monkeypatch.context() as patch:
        patch.setattr(engine.ray, "init", no_ray)
        rc, err, wall_s = _sweep_in_process([*SHORT_SWEEP, "--workers", "2", "--out", out])
    assert rc == 0, err
    assert "all 4 runs already finished" in err
    assert (out / "sweep.json").read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/metrics.json")} == mtimes
    assert wall_s < first_wall_s / 3, (wall_s, first_wall_s)

    # One run lost: only it runs again, the same as before.
    lost = _runs(out)[2]
    shutil.rmtree(out / lost["run_dir"])
    rc, err, _ = _sweep_in_process([*SHORT_SWEEP, "--workers", "2", "--out", out])
    assert rc == 0, err
    assert "3 of 4 runs already finished" in err
    runs = _runs(out)
    assert [r["config_hash"] for r in runs] == [r["config_hash"] for r in json.loads(before)]
    assert _without_wall_clock(runs[2]) == _without_wall_clock(lost)
    assert runs[:2] + runs[3:] == json.loads(before)[:2] + json.loads(before)[3:]


def _sweep_process(argv, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pilotnet_brain.cli.main", *map(str, argv), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(condition, timeout_s: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"no {what} within {timeout_s} s (exit {proc.returncode}): {err[-2000:]}")


def _running_pid(out: Path):
    for path in (out / "running").glob("*.pid"):
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return path.stem, int(text)
    return None


def test_a_killed_worker_is_retried_and_a_failing_run_stops_nothing(tmp_path):
    # The explicit brain's runs start first (two workers); a worker running one is killed: it runs again.
    # A brain whose model is not what its backend reads fails in the worker: recorded once, exit code 1.
    broken = tmp_path / "broken_brain.yaml"
    model = SHIPPED_MODEL  # FP32 weights, without the metadata an ONNX model carries
    broken.write_text(
        f"brain_node:\n  ros__parameters:\n    brain: pilotnet\n    backend: onnx_fp32\n    model_path: {model}\n"
    )
    argv = sweep_argv("simple_circuit", timeout_s=40, workers=2)
    argv[argv.index("explicit")] = f"explicit,{broken}"
    out = tmp_path / "out"
    proc = _sweep_process(argv, out)
    run_hash, pid = _wait_for(lambda: _running_pid(out), 120, "running run", proc)
    os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err[-3000:]
    runs = _runs(out)
    assert [(r["brain"], r["direction"]) for r in runs] == [
        (brain, direction) for brain in ("explicit", "broken_brain") for direction in ("ccw", "cw")
    ]
    killed = next(r for r in runs if r["config_hash"] == run_hash)
    assert killed["brain"] == "explicit" and killed["worker"] != pid  # run again by another worker process
    assert not list(Path(tempfile.gettempdir()).glob(f"pilotnet_sweep_{pid}_*"))  # its scratch dir: removed
    assert all(r["completed_pct"] > 0 and not r.get("error") for r in runs[:2]), runs[:2]
    for run in runs[2:]:
        assert run["completed_pct"] == 0.0 and run["error"].startswith("ModelFileError"), run
        assert json.loads((out / run["run_dir"] / "metrics.json").read_text())["error"] == run["error"]


def _descendants(root: int) -> set:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = {root}
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found - {root}
        found |= more


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _processes_mentioning(text: str) -> list:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and _alive(int(entry)):
                found.append(f"{entry}: {cmdline[:200]}")
    return found


def test_sigterm_keeps_finished_runs_and_leaves_no_ray_process(tmp_path):
    proc = _sweep_process(sweep_argv(timeout_s=20, workers=1), tmp_path)
    _wait_for(
        lambda: list(tmp_path.glob("runs/*/metrics.json")) and _running_pid(tmp_path),
        150,
        "finished run followed by a running one",
        proc,
    )
    ray_processes = _descendants(proc.pid)  # gcs_server, raylet, the workers, ...
    assert len(ray_processes) >= 3
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode not in (0, None), err[-2000:]
    assert "interrupted" in err
    finished = sorted(p.parent.name for p in tmp_path.glob("runs/*/metrics.json"))
    assert finished and len(finished) < 4
    assert sorted(r["config_hash"] for r in _runs(tmp_path)) == finished
    time.sleep(0.5)
    assert [pid for pid in ray_processes if _alive(pid)] == []
    session = next(line for line in err.splitlines() if "session " in line).split("session ")[1].split(")")[0]
    assert Path(session).is_dir() and _processes_mentioning(session) == []


# --- bad settings: one line, exit code 2, before Ray starts -------------------------------------------
def _sweep_file(tmp_path, settings) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(settings if isinstance(settings, str) else yaml.safe_dump(settings))
    return path


BAD_OPTIONS = [
    (["--brains", "no_such_brain"], ["no_such_brain"]),
    (["--brains", "explicit", "--circuits", "no_such_circuit"], ["no_such_circuit"]),
    (["--brains", "explicit", "--repeats", "0"], ["--repeats"]),
    (["--brains", "explicit", "--workers", "0"], ["--workers"]),
    (["--brains", "explicit", "--address", "localhost"], ["--address", "localhost"]),
    (["--brains", "explicit", "--address", "http://head:6379"], ["--address"]),
    (["--brains", "explicit", "--address", "127.0.0.1:1"], ["--address", "no Ray cluster answers"]),
    (["--brains", "explicit", "--conditions", "fog"], ["fog"]),
    (["--brains", "explicit", "--record"], ["record"]),
]


@pytest.mark.parametrize("options,names", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_bad_options_are_one_line(options, names, tmp_path, capsys):
    rc, out, err = run_cli(["sweep", *options, "--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert_clean_failure(rc, out, err, *names)
    assert not (tmp_path / "out").exists()


BAD_FILES = [
    ({"brains": "explicit", "speed": 3}, ["unknown key", "speed"]),
    ({"brains": "explicit", "repeats": "two"}, ["repeats", "integer"]),
    ({"brains": "explicit", "directions": 5}, ["directions"]),
    ({"brains": ["no_such_brain"]}, ["no_such_brain"]),
    ({"brains": "explicit", "circuits": ["no_such_circuit"]}, ["no_such_circuit"]),
    ({"brains": "explicit", "repeats": 0}, ["repeats"]),
    ({"brains": "explicit", "workers": 0}, ["workers"]),
    ({"brains": "explicit", "address": "head"}, ["address", "head"]),
    ({"brains": "explicit", "mode": "gazebo"}, ["mode", "gazebo"]),
    ({"brains": "explicit", "latency_ms": "fast"}, ["latency_ms"]),
    ({"circuits": "simple_circuit"}, ["no brains"]),
    ("brains: [explicit", ["not valid YAML"]),
    ("- explicit\n", ["mapping"]),
]


@pytest.mark.parametrize("settings,names", BAD_FILES, ids=[str(s)[:40] for s, _ in BAD_FILES])
def test_bad_sweep_files_are_one_line(settings, names, tmp_path, capsys):
    path = _sweep_file(tmp_path, settings)
    rc, out, err = run_cli(["sweep", "--file", path, "--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert_clean_failure(rc, out, err, str(path) if "no brains" not in names else "brains", *names)
    assert not (tmp_path / "out").exists()


def test_unwritable_out_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    rc, out, err = run_cli([*SHORT_SWEEP, "--out", blocker / "out"], capsys)
    assert rc == 2
    assert_clean_failure(rc, out, err, "--out", str(blocker))
    path = _sweep_file(tmp_path, {"brains": "explicit", "out": str(blocker / "out")})
    rc, out, err = run_cli(["sweep", "--file", path], capsys)
    assert rc == 2
    assert_clean_failure(rc, out, err, "out", str(blocker))


def test_a_bad_brain_file_is_one_line(tmp_path, capsys):
    brain = tmp_path / "my_brain.yaml"
    brain.write_text("brain_node:\n  ros__parameters:\n    brain: explicit\n    max_speed: 3.0\n")
    rc, out, err = run_cli(["sweep", "--brains", brain, "--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert_clean_failure(rc, out, err, str(brain), "max_speed")


def test_the_file_wins_over_the_options(tmp_path):
    path = _sweep_file(tmp_path, {"brains": ["explicit"], "repeats": 2, "directions": "both", "latency_ms": 2})
    spec = sweep_spec(path, {"brains": ["pilotnet_fp32"], "repeats": 5, "workers": 3, "latency_ms": None})
    assert (spec.brains, spec.repeats, spec.directions, spec.workers) == (["explicit"], 2, ["ccw", "cw"], 3)
    assert spec.latency_ms == 2 and spec.conditions == ["none"] and spec.mode == "inprocess"


def test_a_core_is_claimed_by_one_run_at_a_time():
    cores = sorted(os.sched_getaffinity(0))
    with pinned_to_free_core(True) as core:
        assert core in cores and os.sched_getaffinity(0) == {core}
        with claimed_slot("core", [core]) as again:
            assert again is None  # held by the run above
    assert sorted(os.sched_getaffinity(0)) == cores
    with claimed_slot("core", cores) as first, claimed_slot("core", cores) as second:
        assert first != second or len(cores) == 1
    with pinned_to_free_core(False) as core:
        assert core is None and sorted(os.sched_getaffinity(0)) == cores


def test_a_brain_whose_model_is_a_directory_is_accepted_and_fingerprinted_by_its_files(tmp_path):
    # tf_fp32 reads a SavedModel, a directory: the sweep takes it, and its identity follows the files in it.
    from pilotnet_brain.errors import ConfigError
    from pilotnet_brain.sweep.spec import model_fingerprint, resolve_brains

    saved = tmp_path / "pilotnet_savedmodel"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "variables.index").write_bytes(b"index")
    brain = tmp_path / "tf_brain.yaml"
    brain.write_text(
        f"brain_node:\n  ros__parameters:\n    brain: pilotnet\n    backend: tf_fp32\n    model_path: {saved}\n"
    )
    (entry,) = resolve_brains([str(brain)])
    assert entry.model_sha256 == model_fingerprint(saved)
    (saved / "variables" / "variables.index").write_bytes(b"changed")
    assert model_fingerprint(saved) != entry.model_sha256
    missing = tmp_path / "missing_brain.yaml"
    missing.write_text(brain.read_text().replace(str(saved), str(tmp_path / "nowhere")))
    with pytest.raises(ConfigError, match="model file .*nowhere not found"):
        resolve_brains([str(missing)])
