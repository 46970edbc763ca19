"""Benchmarks that print tables (speed goals are measured here, never asserted in unit tests)."""

from __future__ import annotations

import platform
import time

import cv2
import numpy as np

from pilotnet_brain.brains.explicit import ExplicitBrain
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.conditions import Conditions
from pilotnet_brain.sim.world import SimConfig, World, run_episode

#: The car's motion while frames are timed (motion blur depends on it): a fast corner.
BENCH_SPEED_MPS, BENCH_YAW_RATE_RPS = 10.0, 0.5


def _percentile_ms(samples_s: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples_s) * 1e3, q))


def simulator_benchmark(frames: int = 500, circuit: str = "montreal", conditions: Conditions | None = None) -> str:
    """Render time per 640x480 frame on one core, and a lock-step expert lap's speed-up over real time,
    under `conditions` (sim.conditions; default clear)."""
    conditions = conditions or Conditions()
    threads_before = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the goal is per core
    try:
        c = load_circuit(circuit)
        world = World(c, SimConfig(conditions=conditions))
        # Poses spread over the whole lap, on and slightly off the line.
        idx = np.linspace(0, len(c.centerline) - 1, frames).astype(int)
        tangents = c.tangents()
        rng = np.random.default_rng(0)
        frame = np.empty((480, 640, 3), np.uint8)
        times = []
        for k, i in enumerate(idx):
            x, y = c.centerline[i]
            yaw = float(np.arctan2(tangents[i, 1], tangents[i, 0])) + rng.normal(0, 0.05)
            t0 = time.perf_counter()
            world.renderer.render(float(x), float(y), yaw, frame, BENCH_SPEED_MPS, BENCH_YAW_RATE_RPS)
            if k:  # first frame warms caches
                times.append(time.perf_counter() - t0)

        brain = ExplicitBrain()
        brain_times = []
        for k, i in enumerate(idx[:200]):
            x, y = c.centerline[i]
            world.renderer.render(float(x), float(y), float(np.arctan2(tangents[i, 1], tangents[i, 0])), frame)
            t0 = time.perf_counter()
            brain.step(frame, k / 30)
            brain_times.append(time.perf_counter() - t0)

        log = run_episode(world, ExplicitBrain())
        rec = log.record
        sim_s = float(rec.t[-1] - rec.t[0])
        speedup = sim_s / rec.wall_time_s
    finally:
        cv2.setNumThreads(threads_before)

    lines = [
        f"# Simulator benchmark ({platform.processor() or platform.machine()}, OpenCV {cv2.__version__}, 1 thread)",
        "",
        f"Conditions: {conditions.label} (frames timed at {BENCH_SPEED_MPS:g} m/s, {BENCH_YAW_RATE_RPS:g} rad/s)",
        "",
        "| measurement | value |",
        "| --- | --- |",
        f"| render 640x480 frame, mean | {np.mean(times) * 1e3:.3f} ms |",
        f"| render 640x480 frame, p50 / p99 | {_percentile_ms(times, 50):.3f} / {_percentile_ms(times, 99):.3f} ms |",
        f"| render frames per second (1 core) | {1 / np.mean(times):.0f} |",
        f"| explicit brain step, mean | {np.mean(brain_times) * 1e3:.3f} ms |",
        f"| lock-step lap of {circuit}: end | {rec.end_reason} |",
        f"| lock-step lap of {circuit}: simulated time | {sim_s:.1f} s ({rec.frame_count} frames) |",
        f"| lock-step lap of {circuit}: wall time | {rec.wall_time_s:.2f} s |",
        f"| lock-step speed-up over real time | {speedup:.1f}x |",
        "",
        f"Goals: render <= 3 ms per frame on one core: {'met' if np.mean(times) * 1e3 <= 3 else 'NOT met'}; "
        f"lock-step montreal lap >= 20x real time: {'met' if speedup >= 20 else 'NOT met'}"
        + ("" if circuit == "montreal" else " (goal is stated for montreal)"),
    ]
    return "\n".join(lines)
