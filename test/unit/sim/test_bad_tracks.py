"""Bad track files through the CLI (`pilotnet-brain drive --circuit FILE`): each is refused with exit code 2,
one error line naming the file and the fault, no traceback and nothing written. Plus: what the checks
accept still loads bit-identically (the built-ins and the shared real tracks).

To add a case, append a ``Case`` to CASES: an id, what to write into the file (text or bytes), the
fragments the error line must contain, and optionally extra CLI options.
"""

import math
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import SHARED_TRACKS, assert_clean_failure, run_cli

from pilotnet_brain.sim.builtin_circuits import BUILTIN_CIRCUITS, builtin_spec
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.geometry import is_self_intersecting, resample_closed_loop, reverse_keeping_start, signed_area
from pilotnet_brain.sim.track_spec import spec_control_points
from pilotnet_brain.sim.tum_csv import MAX_TRACK_FILE_BYTES, read_tum_track

HEADER = "# x_m,y_m,w_tr_right_m,w_tr_left_m"
SHARED_CSVS = sorted(SHARED_TRACKS.glob("*.csv")) if SHARED_TRACKS.is_dir() else []


def ring(count=60, radius=50.0, rx=None, ry=None):
    """Points of a counter-clockwise ellipse (a circle by default), point 0 on the +x axis."""
    a = np.linspace(0.0, 2.0 * math.pi, count, endpoint=False)
    return np.column_stack([(rx or radius) * np.cos(a), (ry or radius) * np.sin(a)])


def track_text(points, widths=(3.0, 3.0), header=True, sep=","):
    lines = [HEADER] if header else []
    lines += [sep.join(f"{v!r}" for v in (float(x), float(y), *map(float, widths))) for x, y in points]
    return "\n".join(lines) + "\n"


def with_line(index, line, points=None):
    """A valid ring whose data row ``index`` (0-based) is replaced by ``line``."""
    rows = track_text(ring() if points is None else points).splitlines()
    rows[index + 1] = line
    return "\n".join(rows) + "\n"


def densify(corners, step):
    """The polygon through ``corners`` with extra points at most ``step`` apart."""
    corners = np.asarray(corners, float)
    out = []
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        pieces = max(int(math.ceil(np.hypot(*(b - a)) / step)), 1)
        out += [a + (b - a) * i / pieces for i in range(pieces)]
    return np.asarray(out)


#: An S-shaped loop with two legs 3 m apart: its control polygon is simple, the spline through it
#: (the center line that is driven) crosses itself where it swings round the end of the slot.
SMOOTHING_CROSSES = densify([[0, 0], [50, 0], [50, 10], [10, 10], [10, 13], [50, 13], [50, 30], [0, 30]], 20.0)

_T = np.linspace(0.0, 2.0 * math.pi, 80, endpoint=False)
FIGURE_EIGHT = np.column_stack([100.0 * np.sin(_T), 50.0 * np.sin(2.0 * _T)])

#: A 100 m straight stadium whose ends have a 3 m radius: narrower than the 3.5 m half width.
TIGHT_STADIUM = np.vstack(
    [
        np.column_stack([np.linspace(0, 100, 40, endpoint=False), np.full(40, -3.0)]),
        np.column_stack(
            [
                100 + 3 * np.sin(np.linspace(0, math.pi, 12, endpoint=False)),
                -3 * np.cos(np.linspace(0, math.pi, 12, endpoint=False)),
            ]
        ),
        np.column_stack([np.linspace(100, 0, 40, endpoint=False), np.full(40, 3.0)]),
        np.column_stack(
            [
                -3 * np.sin(np.linspace(0, math.pi, 12, endpoint=False)),
                3 * np.cos(np.linspace(0, math.pi, 12, endpoint=False)),
            ]
        ),
    ]
)


@dataclass(frozen=True)
class Case:
    id: str
    content: object  # str (written as UTF-8) or bytes
    fragments: tuple = ()
    options: tuple = ()


CASES = [
    # --- not a track file at all
    Case("empty_file", "", ("no data rows",)),
    Case("header_only", HEADER + "\n", ("no data rows",)),
    Case("blank_lines", "\n\n   \n", ("no data rows",)),
    Case("comments_only", "# a\n# b\n", ("no data rows",)),
    Case("binary_garbage", bytes(range(256)) * 8, ("could not be read",)),
    Case("png_image", b"\x89PNG\r\n\x1a\n" + b"\x00\xff" * 500, ("could not be read",)),
    Case("utf16_text", track_text(ring()).encode("utf-16"), ("could not be read",)),
    Case("prose", "this is not a track\n", ("4 comma-separated columns", "got 1")),
    # --- columns and delimiters
    Case("semicolon_delimiter", track_text(ring(), sep=";"), ("line 2", "got 1")),
    Case("tab_delimiter", track_text(ring(), sep="\t"), ("line 2", "got 1")),
    Case("space_delimiter", track_text(ring(), sep=" "), ("line 2", "got 1")),
    Case("three_columns", with_line(5, "1.0,2.0,3.0"), ("line 7", "got 3")),
    Case("five_columns", with_line(5, "1.0,2.0,3.0,3.0,9"), ("line 7", "got 5")),
    Case("thousands_separator", with_line(3, "1,234.5,2.0,3.0,3.0"), ("line 5", "got 5")),
    Case(
        "header_without_hash",
        "x_m,y_m,w_tr_right_m,w_tr_left_m\n" + track_text(ring(), header=False),
        ("line 1", "'#'"),
    ),
    Case("word_in_number", with_line(4, "1.0,two,3.0,3.0"), ("line 6", "non-numeric")),
    Case("empty_fields", with_line(4, ",,,"), ("line 6", "non-numeric")),
    # --- non-finite numbers
    Case("nan_x", with_line(7, "nan,1.0,3.0,3.0"), ("line 9", "NaN or infinite")),
    Case("inf_y", with_line(7, "1.0,inf,3.0,3.0"), ("line 9", "NaN or infinite")),
    Case("minus_inf_width", with_line(7, "1.0,1.0,-inf,3.0"), ("line 9", "NaN or infinite")),
    Case("nan_width", with_line(7, "1.0,1.0,3.0,nan"), ("line 9", "NaN or infinite")),
    Case("overflowing_number", with_line(7, "1e400,1.0,3.0,3.0"), ("line 9", "NaN or infinite")),
    # --- widths
    Case("zero_width", track_text(ring(), widths=(0.0, 3.0)), ("widths must be positive",)),
    Case("negative_width", track_text(ring(), widths=(3.0, -1.0)), ("widths must be positive",)),
    Case("one_negative_row", with_line(10, "50.0,1.0,-2.0,3.0"), ("line 12", "widths must be positive")),
    Case("road_too_narrow", track_text(ring(), widths=(0.2, 0.2)), ("too narrow", "half width 0.2 m")),
    # --- points
    Case("too_few_points", track_text(ring(9)), ("9 distinct points", "at least 10")),
    Case("one_point_repeated", track_text(np.repeat([[5.0, 5.0]], 30, axis=0)), ("1 distinct points",)),
    Case("few_points_padded_by_duplicates", track_text(np.repeat(ring(9), 3, axis=0)), ("9 distinct points",)),
    Case(
        "near_duplicate_points",
        track_text(np.insert(ring(), 5, ring()[5] + [0.004, 0.0], axis=0)),
        ("lines 7 and 8", "closer than 0.01 m"),
    ),
    Case("open_path", track_text(ring(60)[:45]), ("not a closed loop",)),
    Case("straight_line", track_text(np.column_stack([np.arange(30.0) * 5, np.zeros(30)])), ("not a closed loop",)),
    # --- shapes that cannot be driven
    Case("figure_eight", track_text(FIGURE_EIGHT), ("crosses itself",)),
    Case("scrambled_ring", track_text(ring(40)[np.random.default_rng(1).permutation(40)]), ("crosses itself",)),
    Case(
        "out_and_back",
        track_text(
            np.vstack(
                [
                    np.column_stack([np.arange(20.0) * 5, np.zeros(20)]),
                    np.column_stack([np.arange(20.0, 0, -1) * 5 - 2.5, np.zeros(20)]),
                ]
            )
        ),
        ("crosses itself",),
    ),
    Case(
        "crosses_only_once_smoothed", track_text(SMOOTHING_CROSSES, widths=(1.0, 1.0)), ("crosses itself", "smoothed")
    ),
    Case(
        "ellipse_smaller_than_road",
        track_text(ring(40, rx=3.95, ry=1.975), widths=(3.5, 3.5)),
        ("too small", "at least 50 m"),
    ),
    Case("circle_of_5m", track_text(ring(40, radius=5.0), widths=(1.0, 1.0)), ("too small",)),
    Case("road_wider_than_ring", track_text(ring(60, radius=50.0), widths=(60.0, 60.0)), ("too tight", "half width")),
    Case("hairpins_tighter_than_road", track_text(TIGHT_STADIUM, widths=(3.5, 3.5)), ("too tight", "radius of")),
    Case("spike", track_text(ring() * np.where(np.arange(60) == 10, 1.2, 1.0)[:, None]), ("too tight", "radius of")),
    Case("coordinates_of_1e9", track_text(ring(60, radius=1e9)), ("too large", "cells")),
    Case("coordinates_of_1e300", track_text(ring(60, radius=1e300)), ("line 2", "coordinate beyond 1e+15 m")),
    Case("scaled_to_1e9", track_text(ring()), ("too large", "at scale 1e+09"), ("--scale", "1e9")),
    Case("scaled_to_a_toy", track_text(ring()), ("at scale 0.01",), ("--scale", "0.01")),
]


def write_case(case, path):
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_text(case.content, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_track_is_refused_in_one_line(case, tmp_path, capsys):
    track = write_case(case, tmp_path / f"{case.id}.csv")
    out = tmp_path / "out"
    argv = ["drive", "--brain", "explicit", "--circuit", track, "--latency-ms", "2", "--quiet", "--out", out]
    rc, stdout, stderr = run_cli([*argv, *case.options], capsys)
    assert_clean_failure(rc, stdout, stderr, str(track), *case.fragments, out_dir=out)
    assert not out.exists() or not any(out.iterdir()), f"output written for a refused track: {list(out.iterdir())}"


def test_too_large_file_is_refused_before_reading(tmp_path, capsys):
    track = tmp_path / "huge.csv"
    with open(track, "wb") as f:
        f.truncate(MAX_TRACK_FILE_BYTES + 1)  # sparse: nothing is really written
    rc, stdout, stderr = run_cli(["drive", "--circuit", track, "--quiet"], capsys)
    assert_clean_failure(rc, stdout, stderr, str(track), "MB")


def test_a_directory_is_not_a_track(tmp_path, capsys):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    rc, stdout, stderr = run_cli(["drive", "--circuit", folder, "--quiet"], capsys)
    assert_clean_failure(rc, stdout, stderr, str(folder))


def test_smoothing_case_is_only_caught_on_the_smoothed_line():
    """The control points are a simple polygon: only the check on the driven (smoothed) line sees the crossing."""
    assert not is_self_intersecting(SMOOTHING_CROSSES)
    assert is_self_intersecting(resample_closed_loop(SMOOTHING_CROSSES, 0.5)[0])


def test_good_track_still_drives(tmp_path, capsys):
    """The same writer and CLI call accept a sound track: the refusals above are the content's fault."""
    track = tmp_path / "ring.csv"
    track.write_text(track_text(ring(60, radius=60.0), widths=(3.5, 3.5)))
    rc, stdout, stderr = run_cli(["drive", "--circuit", track, "--latency-ms", "2", "--quiet", "--json"], capsys)
    assert rc == 0, stderr
    assert '"end_reason": "lap_completed"' in stdout


# --- what is accepted loads exactly as before the checks: validation never alters the line


def unchecked_builtin(name):
    points = spec_control_points(name, builtin_spec(name))
    if signed_area(points) < 0.0:
        points = reverse_keeping_start(points)
    return resample_closed_loop(points, 0.5)


def unchecked_csv(path):
    points = read_tum_track(path).points
    if signed_area(points) < 0.0:
        points = reverse_keeping_start(points)
    return resample_closed_loop(points, 0.5)


@pytest.mark.parametrize("name", BUILTIN_CIRCUITS)
def test_builtins_load_bit_identically(name):
    expected, spacing = unchecked_builtin(name)
    for direction in ("ccw", "cw"):
        circuit = load_circuit(name, direction=direction)
        ccw = circuit.centerline if direction == "ccw" else reverse_keeping_start(circuit.centerline)
        assert np.array_equal(ccw, expected)
        assert circuit.spacing_m == spacing


@pytest.mark.skipif(not SHARED_CSVS, reason="shared eval tracks not present")
@pytest.mark.parametrize("path", SHARED_CSVS, ids=lambda p: p.stem)
def test_shared_tracks_load_bit_identically(path):
    expected, spacing = unchecked_csv(path)
    for direction in ("ccw", "cw"):
        circuit = load_circuit(str(path), direction=direction)
        ccw = circuit.centerline if direction == "ccw" else reverse_keeping_start(circuit.centerline)
        assert np.array_equal(ccw, expected)
        assert circuit.spacing_m == spacing
