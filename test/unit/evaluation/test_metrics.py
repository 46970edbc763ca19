"""Tests for pilotnet_brain.evaluation.metrics and pilotnet_brain.evaluation.plots on hand-made runs with known answers."""

import csv
import io
import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from pilotnet_brain.evaluation import metrics as M
from pilotnet_brain.evaluation.metrics import METRIC_KEYS
from pilotnet_brain.sim.record import RunRecord

SPACING = 0.5  # reference spacing, m


# --------------------------------------------------------------------------- builders


def circle_reference(radius, spacing=SPACING):
    """Counter-clockwise circle center line, point 0 at angle 0."""
    n = int(round(2 * math.pi * radius / spacing))
    a = 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def circle_drive(radius, speed, duration, dt, clockwise=False, t0=0.0):
    """Car on a circle of ``radius`` from angle 0 at constant ``speed``; returns (t, xy)."""
    t = t0 + np.arange(0.0, duration + 1e-9, dt)
    a = (speed / radius) * (t - t0) * (-1 if clockwise else 1)
    return t, np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def expected_deviation_ahead(reference, radius, order, end_angle):
    """Deviation of the reached checkpoints ``order`` of a ccw circle reference when the
    car drove the circle from angle 0 to ``end_angle`` and stopped: zero up to the car's
    end, then the chord to the car's final position (checkpoints up to 5 m ahead count)."""
    phi = np.mod(np.arctan2(reference[order, 1], reference[order, 0]), 2 * math.pi)
    phi[np.asarray(order) == 0] = 2 * math.pi  # the start point closes the lap
    ahead = np.clip(phi - end_angle, 0.0, None)
    return 2 * radius * np.sin(ahead / 2)


def make_record(t, xy, reference, **kw):
    fields = dict(
        circuit="circle",
        direction="ccw",
        brain="test",
        t=np.asarray(t, float),
        xy=np.asarray(xy, float),
        reference=reference,
        reference_spacing_m=SPACING,
        iteration_wall_s=np.full(100, 0.02),
        inference_s=np.full(100, 0.004),
        frame_count=600,
        off_track_events=0,
        wall_time_s=20.0,
        end_reason="lap_completed",
    )
    fields.update(kw)
    return RunRecord(**fields)


def assert_json_clean(metrics):
    """All METRIC_KEYS present, in order, no NaN/inf, plain JSON types."""
    assert tuple(metrics)[: len(METRIC_KEYS)] == METRIC_KEYS
    for key, value in metrics.items():
        assert value is None or isinstance(value, (str, int, float)), (key, type(value))
        if isinstance(value, float):
            assert math.isfinite(value), key
    json.dumps(metrics, allow_nan=False)


def brute_force_polyline_distance(points, line):
    a, b = line[:-1], line[1:]
    ab = b - a
    out = []
    for p in points:
        ll = np.einsum("ij,ij->i", ab, ab)
        s = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.where(ll > 0, ll, 1), 0, 1)
        out.append(np.hypot(*(a + s[:, None] * ab - p).T).min())
    return np.array(out)


# --------------------------------------------------------------------------- distance and speed


def test_straight_line_distance_and_speed():
    t = np.linspace(0.0, 10.0, 101)
    xy = np.stack([3.0 * t, 4.0 * t], axis=1)  # 5 m/s along a 3-4-5 diagonal
    assert M.completed_distance(xy) == pytest.approx(50.0, abs=1e-9)
    assert M.average_speed(xy, t) == pytest.approx(5.0, abs=1e-9)


def test_average_speed_not_truncated_but_bm_figure_offered():
    t = np.linspace(0.6, 10.4, 50)  # 9.8 s elapsed; BehaviorMetrics sees 10 - 0 = 10 s
    xy = np.stack([np.linspace(0.0, 30.0, 50), np.zeros(50)], axis=1)
    assert M.average_speed(xy, t) == pytest.approx(30.0 / 9.8)
    assert M.average_speed(xy, t, truncate_clock=True) == pytest.approx(3.0)
    m = M.compute_metrics(make_record(t, xy, circle_reference(20.0)))
    assert m["average_speed_mps"] == pytest.approx(30.0 / 9.8)
    assert m["average_speed_bm_mps"] == pytest.approx(3.0)
    assert m["sim_time_s"] == pytest.approx(9.8)


# --------------------------------------------------------------------------- full laps


def test_full_circle_lap():
    radius, speed = 20.0, 4.0
    lap = 2 * math.pi * radius / speed
    t, xy = circle_drive(radius, speed, lap + 1.0, dt=0.07, t0=3.0)  # dt does not divide the lap: interpolation
    ref = circle_reference(radius)
    reached, order, samples = M.checkpoint_progress(xy, ref)
    assert reached == len(ref)
    assert order[-1] == 0 and order[0] == 1  # forward, ends at the start point
    assert samples == sorted(samples)
    assert M.percentage_completed(xy, ref) == pytest.approx(100.0)
    assert M.lap_time(xy, t, ref) == pytest.approx(lap, abs=0.01)
    m = M.compute_metrics(make_record(t, xy, ref))
    assert_json_clean(m)
    assert m["completed_pct"] == pytest.approx(100.0)
    assert m["lap_time_s"] == pytest.approx(lap, abs=0.01)
    assert m["position_deviation_mae_m"] < 1e-3
    assert m["position_deviation_score"] == pytest.approx(1.0, abs=0.01)
    assert m["checkpoints_reached"] == m["checkpoints_total"] == len(ref)


def test_reverse_direction_uses_best_direction():
    radius, speed = 20.0, 5.0
    lap = 2 * math.pi * radius / speed
    t, xy = circle_drive(radius, speed, lap + 0.5, dt=0.05, clockwise=True)
    ref = circle_reference(radius)  # counter-clockwise order
    reached, order, _ = M.checkpoint_progress(xy, ref)
    assert reached == len(ref)
    assert order[0] == len(ref) - 1 and order[-1] == 0  # walked backwards through the reference
    assert M.lap_time(xy, t, ref) == pytest.approx(lap, abs=0.01)


def test_coarse_samples_pass_several_checkpoints_at_once():
    radius = 30.0
    t, xy = circle_drive(radius, 8.0, 2 * math.pi * radius / 8.0 + 1.0, dt=1.0)  # 8 m between samples
    ref = circle_reference(radius)
    reached, _, samples = M.checkpoint_progress(xy, ref)
    assert reached == len(ref)
    assert len(set(samples)) < reached


def test_constant_lateral_offset_point_to_segment():
    radius, offset, step = 500.0, 1.5, 2.0  # large radius: chord sag of a 2 m step < 1 mm
    ref = circle_reference(radius)
    n = int(2 * math.pi * (radius + offset) / step)
    a = 2 * math.pi * np.arange(n + 2) / n
    xy = (radius + offset) * np.stack([np.cos(a), np.sin(a)], axis=1)
    t = np.arange(len(xy)) * 0.2
    d = M.position_deviation(ref, xy)
    # Distance to the nearest *sample* would be up to sqrt(1.5**2 + 1**2) = 1.80 m.
    assert np.abs(d - offset).max() < 1e-3
    m = M.compute_metrics(make_record(t, xy, ref))
    assert m["completed_pct"] == pytest.approx(100.0)
    assert m["position_deviation_mae_m"] == pytest.approx(offset, abs=1e-3)
    assert m["position_deviation_total_m"] == pytest.approx(offset * len(ref), rel=1e-3)


def test_bm_score_known_case():
    # Square circuit, corners as the reference; the car cuts the (20, 20) corner
    # along (20, 19)-(19, 20), which passes sqrt(0.5) m from it.
    ref = np.array([[0, 0], [20, 0], [20, 20], [0, 20]], float)
    corners = np.array([[0, 0], [20, 0], [20, 19], [19, 20], [0, 20], [0, 0]], float)
    xy = np.vstack([np.linspace(p, q, 41)[:-1] for p, q in zip(corners[:-1], corners[1:])] + [corners[-1:]])
    t = np.arange(len(xy)) * 0.1
    m = M.compute_metrics(make_record(t, xy, ref))
    d = math.sqrt(0.5)
    assert m["completed_pct"] == pytest.approx(100.0)
    assert m["position_deviation_mae_m"] == pytest.approx(d / 4, rel=1e-9)
    assert m["position_deviation_total_m"] == pytest.approx(d, rel=1e-9)
    assert m["position_deviation_score"] == pytest.approx((3 + 1000**d) / 4, rel=1e-9)


# --------------------------------------------------------------------------- incomplete runs


def test_half_lap():
    radius = 20.0
    circumference = 2 * math.pi * radius
    t, xy = circle_drive(radius, 4.0, circumference / 2 / 4.0, dt=0.05)
    ref = circle_reference(radius)
    pct = M.percentage_completed(xy, ref)
    # Checkpoints within the 5 m radius ahead of the car count as reached too.
    assert 49.5 <= pct <= 50.0 + 100 * 5.0 / circumference + 0.5
    assert M.lap_time(xy, t, ref) is None
    m = M.compute_metrics(make_record(t, xy, ref, end_reason="timeout"))
    assert m["lap_time_s"] is None
    # Deviation is over the reached checkpoints, including those up to 5 m ahead of the car's end.
    _, order, _ = M.checkpoint_progress(xy, ref)
    end_angle = math.atan2(xy[-1, 1], xy[-1, 0]) % (2 * math.pi)
    expected = expected_deviation_ahead(ref, radius, order, end_angle)
    assert m["position_deviation_mae_m"] == pytest.approx(expected.mean(), abs=1e-3)
    assert m["position_deviation_mae_m"] > 0.05
    assert m["distance_pct_of_lap"] == pytest.approx(50.0, abs=0.1)


def test_run_ending_off_track_has_no_nan():
    radius = 20.0
    t1, arc = circle_drive(radius, 4.0, 8.0, dt=0.05)
    # Leave the circle radially outwards and stop 30 m away.
    out = arc[-1] * np.linspace(1.0, 2.5, 60)[1:, None]
    xy = np.vstack([arc, out])
    t = np.concatenate([t1, t1[-1] + 0.05 * np.arange(1, 60)])
    m = M.compute_metrics(make_record(t, xy, circle_reference(radius), off_track_events=1, end_reason="off_track"))
    assert_json_clean(m)
    assert m["lap_time_s"] is None
    assert 0.0 < m["completed_pct"] < 40.0
    assert m["position_deviation_mae_m"] is not None  # the reached points are scored
    assert 0.0 < m["position_deviation_mae_m"] < 5.0
    assert m["off_track_events"] == 1
    assert m["end_reason"] == "off_track"


@pytest.mark.parametrize("n_samples", [0, 1])
def test_empty_and_single_sample_runs(n_samples):
    ref = circle_reference(20.0)
    xy = np.array([[20.0, 0.0]])[:n_samples].reshape(-1, 2)
    t = np.zeros(n_samples)
    rec = make_record(
        t,
        xy,
        ref,
        iteration_wall_s=np.array([]),
        inference_s=np.array([]),
        frame_count=0,
        wall_time_s=0.0,
        end_reason="timeout",
    )
    m = M.compute_metrics(rec)
    assert_json_clean(m)
    assert m["completed_distance_m"] == 0.0
    assert m["average_speed_mps"] == 0.0
    assert m["average_speed_bm_mps"] is None
    assert m["lap_time_s"] is None
    assert m["sim_time_s"] == 0.0
    assert m["brain_iteration_frequency_hz"] is None
    assert m["mean_inference_time_ms"] is None
    assert m["frame_rate_hz"] is None
    if n_samples == 0:
        assert m["completed_pct"] == 0.0
        assert m["position_deviation_mae_m"] is None
        assert m["position_deviation_total_m"] is None
        assert m["position_deviation_score"] is None
    else:
        # A car standing at the start has reached only the checkpoints within 5 m ahead.
        assert m["completed_pct"] == pytest.approx(100 * 10 / len(ref))
        _, order, _ = M.checkpoint_progress(xy, ref)
        expected = expected_deviation_ahead(ref, 20.0, order, 0.0)
        assert m["position_deviation_mae_m"] == pytest.approx(expected.mean(), abs=1e-9)


def test_no_checkpoint_reached_gives_none_not_nan():
    ref = circle_reference(20.0)
    xy = np.array([[500.0, 500.0], [501.0, 500.0]])  # nowhere near the circuit
    m = M.compute_metrics(make_record([0.0, 1.0], xy, ref))
    assert_json_clean(m)
    assert m["completed_pct"] == 0.0
    assert m["position_deviation_mae_m"] is None
    assert m["position_deviation_score"] is None


# --------------------------------------------------------------------------- timing metrics


def test_mean_inference_time_drops_first_and_last_ten():
    x = np.concatenate([np.full(10, 1.0), np.full(30, 0.002), np.full(10, 1.0)])
    assert M.mean_inference_time_ms(x) == pytest.approx(2.0)
    x21 = np.concatenate([np.full(10, 1.0), [0.005], np.full(10, 1.0)])
    assert M.mean_inference_time_ms(x21) == pytest.approx(5.0)
    x20 = np.concatenate([np.full(10, 0.001), np.full(10, 0.003)])  # too few: all used
    assert M.mean_inference_time_ms(x20) == pytest.approx(2.0)
    assert M.mean_inference_time_ms([]) is None


def test_timing_metrics_in_compute_metrics():
    ref = circle_reference(20.0)
    t, xy = circle_drive(20.0, 4.0, 5.0, dt=0.1)
    m = M.compute_metrics(
        make_record(
            t,
            xy,
            ref,
            iteration_wall_s=np.array([0.01, 0.03]),
            inference_s=np.full(5, 0.004),
            frame_count=300,
            wall_time_s=12.0,
        )
    )
    assert m["brain_iteration_frequency_hz"] == pytest.approx(50.0)
    assert m["mean_inference_time_ms"] == pytest.approx(4.0)
    assert m["frame_rate_hz"] == pytest.approx(25.0)
    assert m["wall_time_s"] == 12.0


# --------------------------------------------------------------------------- position deviation


def test_polyline_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    steps = rng.normal(scale=0.3, size=(400, 2))
    steps[[50, 200]] = [[15.0, -8.0], [-20.0, 5.0]]  # two long jumps (odometry gaps)
    steps[100:130] = 0.0  # standing still: coincident samples
    line = np.cumsum(steps, axis=0)
    points = rng.uniform(line.min(axis=0) - 5, line.max(axis=0) + 5, size=(500, 2))
    np.testing.assert_allclose(
        M.point_to_polyline_distance(points, line), brute_force_polyline_distance(points, line), atol=1e-9
    )


def test_position_deviation_performance():
    ref = circle_reference(400.0)[:5000]
    a = np.linspace(0.0, 2 * math.pi, 30000)
    r = 400.0 + 2.0 * np.sin(7 * a)
    path = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    start = time.perf_counter()
    d = M.position_deviation(ref, path)
    elapsed = time.perf_counter() - start
    assert d.shape == (5000,)
    assert d.max() <= 2.0 + 1e-4  # chords of the wavy path cut slightly inside it
    assert elapsed < 2.0, f"position_deviation took {elapsed:.2f} s"


def test_importing_metrics_does_not_import_matplotlib():
    code = "import sys, pilotnet_brain.evaluation.metrics; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- writers


def _two_rows():
    ref = circle_reference(20.0)
    t, xy = circle_drive(20.0, 4.0, 2 * math.pi * 20.0 / 4.0 + 1.0, dt=0.05)
    full = M.compute_metrics(make_record(t, xy, ref))
    empty = M.compute_metrics(
        make_record(
            np.zeros(0),
            np.zeros((0, 2)),
            ref,
            brain="other",
            direction="cw",
            iteration_wall_s=[],
            inference_s=[],
            wall_time_s=0.0,
        )
    )
    return full, empty


def test_json_round_trip(tmp_path):
    full, _ = _two_rows()
    path = tmp_path / "sub" / "metrics.json"
    M.write_metrics_json(full, path)
    loaded = json.loads(path.read_text())
    assert loaded == full
    assert all(key in loaded for key in METRIC_KEYS)


def test_tables(tmp_path):
    full, empty = _two_rows()
    md = M.metrics_table([full, empty], "markdown")
    lines = md.strip().splitlines()
    assert len(lines) == 4
    assert "Avg speed (m/s)" in lines[0] and "Deviation MAE (m)" in lines[0]
    assert lines[0].count("|") == lines[2].count("|") == len(M.TABLE_COLUMNS) + 1
    assert "| - |" in lines[3]  # None shown as "-"
    assert "nan" not in md.lower() and "None" not in md
    assert f"{full['average_speed_mps']:.2f}" in lines[2]

    rows = list(csv.reader(io.StringIO(M.metrics_table([full, empty], "csv"))))
    assert len(rows) == 3 and len(rows[0]) == len(M.TABLE_COLUMNS)
    col = rows[0].index("Lap time (s)")
    assert float(rows[1][col]) == pytest.approx(full["lap_time_s"], abs=0.005)
    assert rows[2][col] == ""  # None left empty in CSV

    with pytest.raises(ValueError):
        M.metrics_table([full], "html")

    md_path, csv_path = M.write_table([full, empty], tmp_path / "out" / "summary")
    assert md_path.endswith("summary.md") and csv_path.endswith("summary.csv")
    assert open(md_path).read() == md
    assert open(csv_path).read().startswith("Circuit,Direction,Brain")


# --------------------------------------------------------------------------- plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_written(tmp_path):
    plots = pytest.importorskip("pilotnet_brain.evaluation.plots")
    ref = circle_reference(20.0)
    t1, arc = circle_drive(20.5, 4.0, 20.0, dt=0.1)
    xy = np.vstack([arc, arc[-1] * np.linspace(1.0, 1.5, 20)[1:, None]])
    t = np.concatenate([t1, t1[-1] + 0.1 * np.arange(1, 20)])
    rec = make_record(t, xy, ref, off_track_events=1, end_reason="off_track")
    m = M.compute_metrics(rec)
    path = plots.plot_trajectory(rec, m, tmp_path / "traj.png", circuit_xy=ref, half_width_m=3.0)
    data = open(path, "rb").read()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000

    full, empty = _two_rows()
    bar = plots.plot_runs_bar([full, empty, m], tmp_path / "bars" / "runs.png")
    data = open(bar, "rb").read()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
