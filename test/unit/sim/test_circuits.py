"""Tests for pilotnet_brain.sim.circuits (and geometry, builtin_circuits, tum_csv): built-in circuits, CSV tracks, bad input."""

import math

import numpy as np
import pytest
from conftest import SHARED_TRACKS
from scipy.spatial import cKDTree

from pilotnet_brain.errors import CircuitError
from pilotnet_brain.sim.builtin_circuits import BUILTIN_CIRCUITS, CIRCUIT_SETS, TEST_CIRCUITS, TRAINING_CIRCUITS
from pilotnet_brain.sim.circuits import Circuit, circuit_names, describe_circuits, load_circuit, load_csv
from pilotnet_brain.sim.geometry import is_self_intersecting

# Lap lengths that keep lap times close to BehaviorMetrics' at ~9 m/s.
TARGET_LENGTHS_M = {
    "simple_circuit": 550.0,
    "nurburgring": 650.0,
    "montmelo": 900.0,
    "many_curves": 1000.0,
    "montreal": 1900.0,
    "sweepers": 890.0,
}
MIN_RADIUS_M = 12.0
# Points further apart than this along the track ...
SEPARATION_ALONG_M = 60.0
# ... must be at least this far apart in the plane (road bands never overlap).
SEPARATION_PLANE_M = 25.0

SHARED_CSVS = sorted(SHARED_TRACKS.glob("*.csv")) if SHARED_TRACKS.is_dir() else []

BOTH_DIRECTIONS = pytest.mark.parametrize("direction", ["ccw", "cw"])
EVERY_BUILTIN = pytest.mark.parametrize("name", BUILTIN_CIRCUITS)


def signed_area(points):
    x, y = points[:, 0], points[:, 1]
    return 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)


def closed_steps(points):
    return np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)


def circle(count, radius=50.0):
    angles = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def write_track(path, points, widths=(3.0, 3.0), header=True):
    lines = ["# x_m,y_m,w_tr_right_m,w_tr_left_m"] if header else []
    lines += [f"{float(x)!r},{float(y)!r},{widths[0]},{widths[1]}" for x, y in points]
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------
# Built-in circuits
# --------------------------------------------------------------------------


def test_names():
    assert circuit_names() == list(BUILTIN_CIRCUITS)
    assert set(BUILTIN_CIRCUITS) == set(TARGET_LENGTHS_M)


@EVERY_BUILTIN
@BOTH_DIRECTIONS
def test_builtin_loads_with_expected_shape(name, direction):
    circuit = load_circuit(name, direction=direction)
    assert isinstance(circuit, Circuit)
    assert circuit.name == name
    assert circuit.source == "builtin"
    assert circuit.direction == direction
    assert circuit.half_width_m == pytest.approx(3.5)
    points = circuit.centerline
    assert points.ndim == 2 and points.shape[1] == 2 and points.dtype == np.float64
    assert np.all(np.isfinite(points))
    # Implicit closure: the last point is one step before the first, not a copy of it.
    assert np.linalg.norm(points[-1] - points[0]) == pytest.approx(circuit.spacing_m, rel=1e-3)
    assert circuit.spacing_m == pytest.approx(0.5, rel=0.01)
    assert (signed_area(points) > 0) == (direction == "ccw")


@EVERY_BUILTIN
def test_builtin_length_near_target(name):
    target = TARGET_LENGTHS_M[name]
    assert load_circuit(name).length_m == pytest.approx(target, rel=0.10)


@EVERY_BUILTIN
@BOTH_DIRECTIONS
def test_builtin_min_radius(name, direction):
    assert load_circuit(name, direction=direction).min_radius_m() >= MIN_RADIUS_M


@EVERY_BUILTIN
@BOTH_DIRECTIONS
def test_builtin_not_self_intersecting(name, direction):
    assert not is_self_intersecting(load_circuit(name, direction=direction).centerline)


@EVERY_BUILTIN
def test_builtin_far_apart_sections_keep_their_distance(name):
    circuit = load_circuit(name)
    points = circuit.centerline
    count = len(points)
    close_pairs = cKDTree(points).query_pairs(SEPARATION_PLANE_M, output_type="ndarray")
    index_gap = np.abs(close_pairs[:, 0] - close_pairs[:, 1])
    along_track = np.minimum(index_gap, count - index_gap) * circuit.spacing_m
    offenders = close_pairs[along_track > SEPARATION_ALONG_M]
    assert len(offenders) == 0, f"{name}: {len(offenders)} pairs closer than {SEPARATION_PLANE_M} m"


@EVERY_BUILTIN
def test_builtin_curvature_is_smooth(name):
    circuit = load_circuit(name)
    curvature = circuit.curvature()
    # No kinks: the curvature changes by a small amount from step to step
    # (the sharpest designed transition ramps 1/12 m^-1 over several metres).
    step_change = np.abs(np.diff(np.concatenate([curvature, curvature[:1]])))
    assert step_change.max() < 0.01
    # Evenly spaced points.
    steps = closed_steps(circuit.centerline)
    assert steps.max() - steps.min() < 1e-3


@EVERY_BUILTIN
def test_cw_is_ccw_reversed_from_same_start(name):
    ccw = load_circuit(name, direction="ccw")
    cw = load_circuit(name, direction="cw")
    np.testing.assert_array_equal(cw.centerline[0], ccw.centerline[0])
    np.testing.assert_allclose(cw.centerline[1:], ccw.centerline[:0:-1])
    assert cw.length_m == pytest.approx(ccw.length_m)
    np.testing.assert_allclose(cw.curvature(), -np.concatenate([ccw.curvature()[:1], ccw.curvature()[:0:-1]]))


@EVERY_BUILTIN
@BOTH_DIRECTIONS
def test_start_pose_follows_tangent(name, direction):
    circuit = load_circuit(name, direction=direction)
    x, y, yaw = circuit.start_pose()
    assert (x, y) == pytest.approx(tuple(circuit.centerline[0]))
    tangent = circuit.tangents()[0]
    assert yaw == pytest.approx(math.atan2(tangent[1], tangent[0]))
    # The tangent points from point 0 towards point 1 (driving direction).
    assert np.dot(tangent, circuit.centerline[1] - circuit.centerline[0]) > 0
    np.testing.assert_allclose(np.linalg.norm(circuit.tangents(), axis=1), 1.0)


@EVERY_BUILTIN
@BOTH_DIRECTIONS
def test_reference_points_evenly_spaced(name, direction):
    circuit = load_circuit(name, direction=direction)
    reference = circuit.reference_points(2.0)
    np.testing.assert_allclose(reference[0], circuit.centerline[0], atol=1e-9)
    steps = closed_steps(reference)
    assert steps.mean() == pytest.approx(2.0, rel=0.01)
    assert steps.max() - steps.min() < 0.01
    assert steps.sum() == pytest.approx(circuit.length_m, rel=1e-3)
    # Driving order: the second reference point lies ahead along the tangent.
    assert np.dot(reference[1] - reference[0], circuit.tangents()[0]) > 0


def test_curvature_sign_and_value_on_a_circle():
    for direction, sign in (("ccw", 1.0), ("cw", -1.0)):
        points = circle(400, radius=30.0)
        if direction == "cw":
            points = points[::-1]
        circuit = Circuit("ring", points, 3.5, direction, 0.47, "test")
        np.testing.assert_allclose(circuit.curvature(), sign / 30.0, rtol=1e-6)


def test_builtin_scale_multiplies_geometry():
    base = load_circuit("simple_circuit")
    doubled = load_circuit("simple_circuit", scale=2.0)
    assert doubled.length_m == pytest.approx(2.0 * base.length_m, rel=1e-3)
    assert doubled.half_width_m == pytest.approx(7.0)
    assert doubled.spacing_m == pytest.approx(0.5, rel=0.01)


def test_describe_circuits():
    rows = describe_circuits()
    assert [row["name"] for row in rows] == list(BUILTIN_CIRCUITS)
    for row in rows:
        assert row["length_m"] == pytest.approx(TARGET_LENGTHS_M[row["name"]], rel=0.10)
        assert row["min_radius_m"] >= MIN_RADIUS_M
        assert row["half_width_m"] == pytest.approx(3.5)


def test_training_and_test_circuits_are_disjoint_built_in_sets():
    assert set(TRAINING_CIRCUITS) | set(TEST_CIRCUITS) <= set(BUILTIN_CIRCUITS)
    assert not set(TRAINING_CIRCUITS) & set(TEST_CIRCUITS)
    built_in_sets = {name: CIRCUIT_SETS[name] for name in ("all", "training", "test")}
    assert built_in_sets == {"all": BUILTIN_CIRCUITS, "training": TRAINING_CIRCUITS, "test": TEST_CIRCUITS}


@pytest.mark.parametrize("name", ["training", "test"])
def test_cli_prints_a_circuit_set_as_the_makefile_reads_it(name, capsys):
    from pilotnet_brain.cli.main import main

    assert main(["circuits", "--set", name, "--names"]) == 0
    assert capsys.readouterr().out == ",".join(CIRCUIT_SETS[name]) + "\n"
    assert main(["circuits", "--set", name]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in table[1 : 1 + len(CIRCUIT_SETS[name])]] == list(CIRCUIT_SETS[name])
    with pytest.raises(SystemExit):
        main(["circuits", "--set", "validation"])


def test_centerline_is_read_only():
    circuit = load_circuit("montreal")
    with pytest.raises(ValueError):
        circuit.centerline[0, 0] = 1.0


# --------------------------------------------------------------------------
# Bad names and parameters
# --------------------------------------------------------------------------


def test_unknown_name_lists_valid_names():
    with pytest.raises(CircuitError) as error:
        load_circuit("monza")
    for name in BUILTIN_CIRCUITS:
        assert name in str(error.value)
    assert "monza" in str(error.value)


@pytest.mark.parametrize("direction", ["clockwise", "CW", "", None])
def test_bad_direction(direction):
    with pytest.raises(CircuitError, match="direction"):
        load_circuit("simple_circuit", direction=direction)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf"), "big"])
def test_bad_scale(scale, tmp_path):
    with pytest.raises(CircuitError, match="scale"):
        load_circuit("simple_circuit", scale=scale)
    track = write_track(tmp_path / "ring.csv", circle(40))
    with pytest.raises(CircuitError, match="scale"):
        load_csv(track, scale=scale)


def test_bad_spacing():
    with pytest.raises(CircuitError, match="spacing_m"):
        load_circuit("simple_circuit", spacing_m=0.0)
    with pytest.raises(CircuitError, match="spacing_m"):
        load_circuit("simple_circuit").reference_points(-1.0)


# --------------------------------------------------------------------------
# CSV tracks
# --------------------------------------------------------------------------


def test_csv_round_trip(tmp_path):
    track = write_track(tmp_path / "ring.csv", circle(60, radius=50.0), widths=(4.0, 6.0))
    ccw = load_circuit(str(track))
    assert ccw.name == "ring"
    assert ccw.source == str(track)
    assert ccw.half_width_m == pytest.approx(5.0)
    assert ccw.length_m == pytest.approx(2.0 * np.pi * 50.0, rel=1e-3)
    np.testing.assert_allclose(ccw.centerline[0], [50.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(1.0 / ccw.curvature(), 50.0, rtol=1e-3)

    cw = load_csv(track, direction="cw", scale=0.5)
    assert cw.half_width_m == pytest.approx(2.5)
    assert cw.length_m == pytest.approx(np.pi * 50.0, rel=1e-3)
    assert signed_area(cw.centerline) < 0


def test_csv_clockwise_file_is_normalised(tmp_path):
    track = write_track(tmp_path / "ring.csv", circle(60)[::-1])
    circuit = load_csv(track)
    assert signed_area(circuit.centerline) > 0
    np.testing.assert_allclose(circuit.centerline[0], circle(60)[::-1][0], atol=1e-9)


def test_csv_duplicates_and_repeated_first_point_are_dropped(tmp_path):
    points = circle(40)
    doubled = np.repeat(points, 2, axis=0)
    explicit_closure = np.vstack([doubled, points[:1]])
    reference = load_csv(write_track(tmp_path / "clean.csv", points))
    circuit = load_csv(write_track(tmp_path / "dupes.csv", explicit_closure))
    np.testing.assert_allclose(circuit.centerline, reference.centerline, atol=1e-9)


def test_csv_without_header(tmp_path):
    track = write_track(tmp_path / "bare.csv", circle(30), header=False)
    assert load_csv(track).length_m > 0


@pytest.mark.skipif(not SHARED_CSVS, reason="shared eval tracks not present")
@pytest.mark.parametrize("path", SHARED_CSVS, ids=lambda p: p.stem)
def test_shared_tracks(path):
    circuit = load_circuit(str(path))
    assert circuit.name == path.stem
    assert 4200.0 <= circuit.length_m <= 5300.0
    assert 4.0 <= circuit.half_width_m <= 7.0
    assert not is_self_intersecting(circuit.centerline)
    half = load_csv(path, scale=0.5)
    assert half.length_m == pytest.approx(0.5 * circuit.length_m, rel=1e-3)
    assert half.half_width_m == pytest.approx(0.5 * circuit.half_width_m)


# --------------------------------------------------------------------------
# Bad CSV files
# --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(CircuitError, match="does not exist") as error:
        load_circuit(str(missing))
    assert str(missing) in str(error.value)


def assert_bad_file(path, *fragments):
    with pytest.raises(CircuitError) as error:
        load_csv(path)
    message = str(error.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_wrong_column_count(tmp_path):
    path = tmp_path / "three.csv"
    write_track(path, circle(20))
    lines = path.read_text().splitlines()
    lines[5] = "1.0,2.0,3.0"
    path.write_text("\n".join(lines))
    assert_bad_file(path, "line 6", "4 comma-separated columns", "got 3")


def test_non_numeric_value(tmp_path):
    path = tmp_path / "text.csv"
    write_track(path, circle(20))
    lines = path.read_text().splitlines()
    lines[3] = "1.0,two,3.0,3.0"
    path.write_text("\n".join(lines))
    assert_bad_file(path, "line 4", "non-numeric")


def test_header_without_hash(tmp_path):
    path = write_track(tmp_path / "header.csv", circle(20), header=False)
    path.write_text("x_m,y_m,w_tr_right_m,w_tr_left_m\n" + path.read_text())
    assert_bad_file(path, "line 1", "must start with '#'")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_value(tmp_path, bad):
    path = tmp_path / "nan.csv"
    write_track(path, circle(20))
    lines = path.read_text().splitlines()
    lines[7] = f"1.0,{bad},3.0,3.0"
    path.write_text("\n".join(lines))
    assert_bad_file(path, "line 8", "NaN or infinite")


@pytest.mark.parametrize("widths", [(0.0, 3.0), (3.0, -1.0)])
def test_non_positive_width(tmp_path, widths):
    path = write_track(tmp_path / "width.csv", circle(20), widths=widths)
    assert_bad_file(path, "widths must be positive")


def test_too_few_points(tmp_path):
    path = write_track(tmp_path / "few.csv", circle(9))
    assert_bad_file(path, "9 distinct points", "at least 10")
    # Duplicates do not count towards the minimum.
    path = write_track(tmp_path / "padded.csv", np.repeat(circle(9), 3, axis=0))
    assert_bad_file(path, "9 distinct points")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n")
    assert_bad_file(path, "no data rows")


def test_open_path(tmp_path):
    # Three quarters of a circle: the closing gap is ~70 m, steps ~4 m.
    angles = np.linspace(0.0, 1.5 * np.pi, 60)
    path = write_track(tmp_path / "open.csv", 50.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1))
    assert_bad_file(path, "not a closed loop")


def test_small_closing_gap_is_accepted(tmp_path):
    # A gap of a few steps (one missing point) is still a lap.
    path = write_track(tmp_path / "gap.csv", circle(60)[:-1])
    assert load_csv(path).length_m == pytest.approx(2.0 * np.pi * 50.0, rel=0.01)


def test_self_intersecting_file(tmp_path):
    # A figure eight crosses itself at the origin.
    t = np.linspace(0.0, 2.0 * np.pi, 80, endpoint=False)
    eight = np.stack([100.0 * np.sin(t), 50.0 * np.sin(2.0 * t)], axis=1)
    path = write_track(tmp_path / "eight.csv", eight)
    assert_bad_file(path, "crosses itself")


# --------------------------------------------------------------------------
# is_self_intersecting
# --------------------------------------------------------------------------


def test_is_self_intersecting_simple_shapes():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    bow_tie = np.array([[0, 0], [1, 1], [1, 0], [0, 1]], dtype=float)
    touching = np.array([[0, 0], [2, 0], [2, 2], [1, 0.0], [0, 2]], dtype=float)  # vertex on an edge
    folded = np.array([[0, 0], [2, 0], [1, 0], [1, 1]], dtype=float)  # doubles back on itself
    assert not is_self_intersecting(square)
    assert is_self_intersecting(bow_tie)
    assert is_self_intersecting(touching)
    assert is_self_intersecting(folded)
    assert not is_self_intersecting(circle(1500))


def test_is_self_intersecting_matches_brute_force():
    rng = np.random.default_rng(7)

    def brute_force(points):
        count = len(points)

        def cross(o, a, b):
            return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

        for i in range(count):
            for j in range(i + 2, count):
                if i == 0 and j == count - 1:
                    continue
                p1, p2 = points[i], points[(i + 1) % count]
                p3, p4 = points[j], points[(j + 1) % count]
                if cross(p3, p4, p1) * cross(p3, p4, p2) < 0 and cross(p1, p2, p3) * cross(p1, p2, p4) < 0:
                    return True
        return False

    for _ in range(40):
        # Star-shaped polygons with random radii never cross; jittered angles sometimes do.
        count = int(rng.integers(5, 30))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count)) + rng.normal(0, 0.1, count)
        radii = rng.uniform(1.0, 10.0, count)
        points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
        assert is_self_intersecting(points) == brute_force(points)


def test_is_self_intersecting_is_fast():
    import time

    points = circle(5000, radius=2000.0) + np.random.default_rng(0).normal(0, 0.01, (5000, 2))
    started = time.perf_counter()
    assert not is_self_intersecting(points)
    assert time.perf_counter() - started < 1.0


def test_is_self_intersecting_rejects_bad_shape():
    with pytest.raises(CircuitError):
        is_self_intersecting(np.zeros((5, 3)))
