"""Figures for recorded runs: trajectory over the circuit, speed and commands over time, runs compared.

matplotlib is imported inside the functions (it is slow to import and not
needed to compute metrics) and drawn on an explicit Agg canvas, so these
functions neither need a display nor change the pyplot backend or global
state that other code in the same process may rely on. Other figures of the
package use the same two steps: :func:`new_figure`, then :func:`save_png`.
"""

from __future__ import annotations

import io
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from pilotnet_brain.evaluation.metrics import point_to_polyline_distance
from pilotnet_brain.jsonio import write_bytes_atomic
from pilotnet_brain.sim.record import RunRecord


def new_figure(figsize):
    """A Figure on its own Agg canvas, outside pyplot's figure manager."""

    fig = Figure(figsize=figsize, dpi=120)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path, dpi=None) -> str:
    """Save the figure as a PNG, atomically (creating the directory); return the path."""
    path = os.fspath(path)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi)
    write_bytes_atomic(png.getvalue(), path)
    return path


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _road_edges(center: np.ndarray, half_width_m: float):
    """Left and right road edges: the closed center line offset along its normals."""
    ahead = np.roll(center, -1, axis=0) - np.roll(center, 1, axis=0)  # central difference, closed loop
    norm = np.hypot(*ahead.T)
    norm[norm == 0] = 1.0
    normal = np.stack([-ahead[:, 1], ahead[:, 0]], axis=1) / norm[:, None]
    return center + half_width_m * normal, center - half_width_m * normal


def _closed(line: np.ndarray) -> np.ndarray:
    return np.vstack([line, line[:1]])


def plot_trajectory(record: RunRecord, metrics: dict, path, circuit_xy=None, half_width_m=None) -> str:
    """Draw one run over its circuit and save it as a PNG; return the path.

    Shows the circuit center line (``circuit_xy``, else the run's reference)
    and, with ``half_width_m``, the road edges; the driven path coloured by
    each odometry sample's distance (m) to the reference line (closed
    polyline, point-to-segment); the start; where the car left the track (the
    last sample, if the run ended off track); and a title with circuit,
    direction, brain, completed % and deviation MAE.
    """

    reference = np.asarray(record.reference, dtype=float).reshape(-1, 2)
    center = reference if circuit_xy is None else np.asarray(circuit_xy, dtype=float).reshape(-1, 2)
    xy = np.asarray(record.xy, dtype=float).reshape(-1, 2)

    fig = new_figure((8, 7))
    ax = fig.add_subplot(1, 1, 1)
    if len(center):
        loop = _closed(center)
        ax.plot(loop[:, 0], loop[:, 1], "--", color="0.55", lw=1, label="center line")
        if half_width_m:
            for edge in _road_edges(center, float(half_width_m)):
                edge = _closed(edge)
                ax.plot(edge[:, 0], edge[:, 1], "-", color="0.3", lw=1)

    if len(xy) >= 2 and len(reference):
        deviation = point_to_polyline_distance(xy, _closed(reference))
        segments = np.stack([xy[:-1], xy[1:]], axis=1)
        # Colour each step by its mean endpoint deviation.
        lc = LineCollection(segments, cmap="viridis", linewidths=2.5)
        lc.set_array(0.5 * (deviation[:-1] + deviation[1:]))
        lc.set_clim(0.0, max(float(deviation.max()), 0.01))  # from 0 m, so runs read alike
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, label="distance to reference line (m)")
    elif len(xy):
        ax.plot(xy[:, 0], xy[:, 1], ".", color="tab:blue")

    if len(xy):
        ax.plot(*xy[0], marker="o", ms=9, color="tab:green", ls="", label="start")
        if record.end_reason == "off_track" or (record.off_track_events and record.end_reason != "lap_completed"):
            ax.plot(*xy[-1], marker="X", ms=12, color="tab:red", ls="", label="off track")

    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(
        f"{record.circuit} ({record.direction}) - {record.brain}\n"
        f"completed {_fmt(metrics.get('completed_pct'), '.1f')} %, "
        f"MAE {_fmt(metrics.get('position_deviation_mae_m'), '.3f')} m"
    )
    fig.tight_layout()
    return save_png(fig, path)


def plot_runs_bar(rows: list[dict], path) -> str:
    """Bar charts comparing runs (one bar per row of metrics): average speed,
    deviation MAE and completed %.  Missing values (None) are drawn as empty
    bars labelled "-".  Saves a PNG and returns the path."""
    panels = (
        ("average_speed_mps", "Average speed (m/s)"),
        ("position_deviation_mae_m", "Deviation MAE (m)"),
        ("completed_pct", "Completed (%)"),
    )
    labels = [f"{r.get('brain', '?')}\n{r.get('circuit', '')} {r.get('direction', '')}".strip() for r in rows]
    fig = new_figure((max(6.0, 1.2 * len(rows) + 3.0), 9))
    x = np.arange(len(rows))
    for i, (key, title) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        values = [r.get(key) for r in rows]
        heights = [0.0 if v is None else float(v) for v in values]
        bars = ax.bar(x, heights, color="tab:blue")
        for bar, v in zip(bars, values):
            ax.annotate(
                "-" if v is None else f"{v:.2f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels(labels if i == len(panels) - 1 else [""] * len(rows), fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        if key == "completed_pct":
            ax.set_ylim(0, 110)
    fig.tight_layout()
    return save_png(fig, path)


def plot_speed_and_commands(t, speed, command_t, commands, title: str, path) -> str:
    """Odometry speed and the commands (v above, w below) over simulated time, from the first
    odometry sample; one PNG. ``commands`` is (N, 2): linear v, angular w."""
    t = np.asarray(t, dtype=float).reshape(-1)
    command_t = np.asarray(command_t, dtype=float).reshape(-1)
    commands = np.asarray(commands, dtype=float).reshape(-1, 2)
    fig = new_figure((9, 6))
    ax1 = fig.add_subplot(2, 1, 1)
    t0 = t[0] if len(t) else 0.0
    if len(t):
        ax1.plot(t - t0, speed, color="tab:blue", lw=1.2, label="odometry speed")
    if len(command_t):
        ax1.step(command_t - t0, commands[:, 0], where="post", color="tab:orange", lw=1, label="command v")
    ax1.set_ylabel("m/s")
    ax1.grid(True, alpha=0.3)
    ax1.legend(loc="best", fontsize=8)
    ax1.set_title(title)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    if len(command_t):
        ax2.step(command_t - t0, commands[:, 1], where="post", color="tab:green", lw=1, label="command w")
    ax2.set_ylabel("rad/s")
    ax2.set_xlabel("simulated time (s)")
    ax2.grid(True, alpha=0.3)
    ax2.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
