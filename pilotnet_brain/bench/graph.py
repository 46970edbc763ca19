"""graph-benchmark: start the ROS 2 graph fresh, many times, and measure how it comes up.

Each start is one short lock-step run through ``ros.launcher.run_simulation`` (new processes, a new
private ROS_DOMAIN_ID), and gives:

- ``discovery_s``: from the last node of the graph being up (its first log line, written once its
  node, hence its DDS participant and topics, exist) until sim_node sees brain_node and metrics_node
  (sim_node logs "start-up: graph matched X s after the node was created"); DDS discovery alone;
- ``sim_wait_s``: that X: how long sim_node waited for its peers, their process start-up included;
- ``camera_to_command_ms``: sim_node's mean time from publishing a frame to the brain's answer
  (``inference_ms``: the brain's mean inference time, part of it); ``camera_to_command_frame_p50_ms`` /
  ``_frame_p99_ms``: the median and 99th percentile of the same times, frame by frame. The mean carries
  each start's first frame, which waits for the new shared-memory connection (10-15 ms here);
- ``lost_frames``: frames whose command never came within sim_node's lock-step wait;
- ``frames_resent``: frames sim_node published again because the brain had not answered after
  ``RESEND_AFTER_S`` (the best-effort camera topic lost the first copy; the start goes on);
- ``stall``: the start did not run cleanly: no metrics, the graph never matched, metrics_node never
  heard brain_node (no brain stats), or a frame was lost.

Per transport set-up and brain preset, the table shows stalls, discovery p50/p99/max and the
camera-to-command p50/p99 over the starts of each start's mean, and the median over the starts of each
start's per-frame median and 99th percentile (``ros.environment.TRANSPORTS`` names the set-ups: the shipped
Fast DDS profile and the built-in alternatives it replaces).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pilotnet_brain.bench.closed_loop import resolve_presets
from pilotnet_brain.jsonio import write_json_atomic
from pilotnet_brain.ros.environment import TRANSPORTS, private_domain_id
from pilotnet_brain.ros.launcher import LaunchError, run_simulation

__all__ = ["GRAPH_MATCHED", "format_table", "run_graph_benchmark", "summarize_starts", "write_result"]

#: sim_node's log line when it sees all its peers (ros/sim_node.py SimNode.wait_for_graph).
GRAPH_MATCHED = re.compile(r"start-up: graph matched ([0-9.]+) s after the node was created")
#: sim_node's end-of-episode count of lock-step frames published again for want of an answer.
FRAMES_RESENT = re.compile(r"(\d+) frame\(s\) re-sent")
#: The lap every start drives: short, so a start costs little more than the graph's start-up.
CIRCUIT = "simple_circuit"


#: A ROS log line in the default console format: "[INFO] [1796304758.452483217] [sim_node]: ...".
LOG_LINE = re.compile(r"^\[\w+\] \[(\d+\.\d+)\] \[[^\]]+\]: (.*)$", re.MULTILINE)


def _log_lines(log: Path) -> list[tuple[float, str]]:
    """(wall time, message) of every ROS log line of a node's log (other output is skipped)."""
    if not log.is_file():
        return []
    return [(float(t), message) for t, message in LOG_LINE.findall(log.read_text(errors="replace"))]


def frames_resent(logs: Path) -> int | None:
    """Frames sim_node published again (lost on the best-effort camera topic), from its log."""
    for _, message in _log_lines(logs / "sim_node.log"):
        found = FRAMES_RESENT.search(message)
        if found:
            return int(found.group(1))
    return None


def graph_timings(logs: Path) -> tuple[float | None, float | None]:
    """(discovery_s, sim_wait_s) of one start from its node logs; (None, None) if the graph never matched."""
    for t, message in _log_lines(logs / "sim_node.log"):
        found = GRAPH_MATCHED.search(message)
        if found:
            node_up = [lines[0][0] for lines in map(_log_lines, sorted(logs.glob("*.log"))) if lines]
            return max(0.0, t - max(node_up)), float(found.group(1))
    return None, None


def one_start(
    brain: str,
    brain_yaml: Path,
    transports: str,
    out_dir: Path,
    sim_seconds: float,
    wall_timeout: float,
    run_fn: Callable = run_simulation,
) -> dict:
    """Start the graph once and measure it (see the module docstring); never raises LaunchError."""
    row = {
        "transports": transports,
        "brain": brain,
        "discovery_s": None,
        "sim_wait_s": None,
        "camera_to_command_ms": None,
        "camera_to_command_frame_p50_ms": None,
        "camera_to_command_frame_p99_ms": None,
        "inference_ms": None,
        "lost_frames": None,
        "frames_resent": None,
        "error": None,
    }
    try:
        result = run_fn(
            CIRCUIT,
            "ccw",
            brain_yaml,
            clock="lockstep",
            out_dir=out_dir,
            timeout=sim_seconds,
            wall_timeout=wall_timeout,
            domain_id=private_domain_id(),
            transports=transports,
        )
    except LaunchError as error:
        row["error"] = str(error)
    else:
        metrics = result["metrics"]
        # sim_node reports 0 when no frame was answered at all
        row["camera_to_command_ms"] = metrics.get("camera_to_command_latency_ms") or None
        row["camera_to_command_frame_p50_ms"] = metrics.get("camera_to_command_latency_p50_ms") or None
        row["camera_to_command_frame_p99_ms"] = metrics.get("camera_to_command_latency_p99_ms") or None
        row["inference_ms"] = metrics.get("mean_inference_time_ms")
        row["lost_frames"] = int(metrics.get("lockstep_timeouts") or 0)
        if metrics.get("mean_inference_time_ms") is None:
            row["error"] = "metrics_node received no brain stats (no frame answered, or brain_node never matched)"
        row["wall_s"] = result["wall_s"]
    row["discovery_s"], row["sim_wait_s"] = graph_timings(out_dir / "logs")
    row["frames_resent"] = frames_resent(out_dir / "logs")
    if row["error"] is None and row["discovery_s"] is None:
        row["error"] = "sim_node never logged that the graph matched"
    row["stall"] = row["error"] is not None or bool(row["lost_frames"])
    return row


def _node_failed(row: dict) -> bool:
    """brain_node exited with an error (bad preset, missing model): a set-up problem, not a stall."""
    return bool(row["error"]) and row["error"].startswith("brain_node exited with code ")


def run_graph_benchmark(
    brains: Sequence[str],
    transports: Sequence[str] = ("profile",),
    starts: int = 50,
    sim_seconds: float = 2.0,
    wall_timeout: float = 90.0,
    log: Callable[[str], None] | None = None,
    run_fn: Callable = run_simulation,
    stall_logs: Path | None = None,
) -> list[dict]:
    """``starts`` fresh starts of the graph for every (transports, brain); one row per start.

    A pair whose first start fails because brain_node exited is not started again (its row says why).
    The node logs of a stalled start are kept under ``stall_logs`` (row ``logs``), the others deleted.
    """
    if starts < 1:
        raise ValueError(f"--starts must be at least 1, not {starts}")
    unknown = [t for t in transports if t not in TRANSPORTS]
    if unknown:
        raise ValueError(f"unknown transports {', '.join(map(repr, unknown))}; one of {', '.join(TRANSPORTS)}")
    presets = resolve_presets(brains)  # unknown names: UnknownPresetError (a ValueError) before any start
    rows = []
    work = Path(tempfile.mkdtemp(prefix="graph-benchmark-"))
    try:
        for transport in transports:
            for brain, brain_yaml in presets:
                for i in range(starts):
                    name = f"{transport}-{brain}-{i}"
                    row = one_start(brain, brain_yaml, transport, work / name, sim_seconds, wall_timeout, run_fn)
                    rows.append(row)
                    if row["stall"] and stall_logs is not None and (work / name / "logs").is_dir():
                        kept = shutil.copytree(work / name / "logs", Path(stall_logs) / name, dirs_exist_ok=True)
                        row["logs"] = str(kept)
                    if log is not None:
                        log(_progress_line(row, i + 1, starts))
                    if i == 0 and _node_failed(row):
                        break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _number(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _progress_line(row: dict, i: int, n: int) -> str:
    head = f"{row['transports']} {row['brain']} start {i}/{n}:"
    if row["error"]:
        return f"{head} STALL: {row['error'].splitlines()[0][:200]}"
    return (
        f"{head} discovery {_number(row['discovery_s'], '.2f')} s, "
        f"camera->command {_number(row['camera_to_command_ms'], '.2f')} ms, "
        f"{row['lost_frames']} lost frame(s){' STALL' if row['stall'] else ''}"
    )


def _percentile(values: list, q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize_starts(rows: list[dict]) -> list[dict]:
    """One row per (transports, brain): starts, stalls, discovery and latency percentiles."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["transports"], row["brain"]), []).append(row)
    out = []
    for (transport, brain), runs in groups.items():
        discovery = [r["discovery_s"] for r in runs if r["discovery_s"] is not None]
        latency = [r["camera_to_command_ms"] for r in runs if r["camera_to_command_ms"] is not None]
        frame_p50, frame_p99 = (
            [r[key] for r in runs if r.get(key) is not None]
            for key in ("camera_to_command_frame_p50_ms", "camera_to_command_frame_p99_ms")
        )
        # over the starts that produced metrics (one that timed out lost an unknown number)
        lost = [r["lost_frames"] for r in runs if r["lost_frames"] is not None]
        resent = [r["frames_resent"] for r in runs if r.get("frames_resent") is not None]
        out.append(
            {
                "transports": transport,
                "brain": brain,
                "starts": len(runs),
                "stalls": sum(r["stall"] for r in runs),
                "lost_frames": sum(lost) if lost else None,
                "frames_resent": sum(resent) if resent else None,
                "discovery_p50_s": _percentile(discovery, 50),
                "discovery_p99_s": _percentile(discovery, 99),
                "discovery_max_s": max(discovery) if discovery else None,
                "sim_wait_p99_s": _percentile([r["sim_wait_s"] for r in runs if r["sim_wait_s"] is not None], 99),
                "camera_to_command_p50_ms": _percentile(latency, 50),
                "camera_to_command_p99_ms": _percentile(latency, 99),
                "camera_to_command_frame_p50_ms": _percentile(frame_p50, 50),
                "camera_to_command_frame_p99_ms": _percentile(frame_p99, 50),
                "inference_p50_ms": _percentile([r["inference_ms"] for r in runs if r["inference_ms"] is not None], 50),
                "error": next((r["error"].splitlines()[0] for r in runs if _node_failed(r)), None),
            }
        )
    return out


#: (key, header, format) of the table's columns.
COLUMNS = (
    ("transports", "Transports", "{}"),
    ("brain", "Brain", "{}"),
    ("starts", "Starts", "{}"),
    ("stalls", "Stalls", "{}"),
    ("lost_frames", "Lost frames", "{}"),
    ("frames_resent", "Frames re-sent", "{}"),
    ("discovery_p50_s", "Discovery p50 (s)", "{:.2f}"),
    ("discovery_p99_s", "Discovery p99 (s)", "{:.2f}"),
    ("discovery_max_s", "Discovery max (s)", "{:.2f}"),
    ("sim_wait_p99_s", "sim_node start-up wait p99 (s)", "{:.2f}"),
    ("camera_to_command_p50_ms", "Camera->command p50 (ms)", "{:.2f}"),
    ("camera_to_command_p99_ms", "Camera->command p99 (ms)", "{:.2f}"),
    ("camera_to_command_frame_p50_ms", "per frame: p50 (ms)", "{:.2f}"),
    ("camera_to_command_frame_p99_ms", "per frame: p99 (ms)", "{:.2f}"),
    ("inference_p50_ms", "of which inference p50 (ms)", "{:.2f}"),
)


def format_table(summary: list[dict]) -> str:
    """The summary as a Markdown table (a pair that could not start says so under the table)."""
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in summary:
        cells = ["-" if row[k] is None else fmt.format(row[k]) for k, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        f"{row['transports']} {row['brain']}: not started again: {row['error']}" for row in summary if row["error"]
    ]
    return "\n".join(lines)


def write_result(rows: list[dict], settings: dict, path) -> Path:
    """The per-start rows, the summary and the settings, as JSON written atomically."""
    return write_json_atomic({"settings": settings, "summary": summarize_starts(rows), "starts": rows}, path)


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
