"""sweep.report: sweep.csv, the pooled summary (Markdown + CSV) and the self-contained HTML report."""

import csv
import errno
import html
import math
import os
import statistics

import pytest

from pilotnet_brain import jsonio
from pilotnet_brain.bench.closed_loop import SUMMARY_COLUMNS
from pilotnet_brain.evaluation.metrics import METRIC_KEYS
from pilotnet_brain.evaluation.plots import new_figure, save_png
from pilotnet_brain.sweep.report import (
    IDENTITY_COLUMNS,
    POOLING_NOTE,
    RUNS_HEADER,
    worst_runs,
    write_sweep_outputs,
)

OUTPUT_NAMES = ["sweep.csv", "summary.md", "summary.csv", "report.html"]
SUMMARY_METRICS = [(key, header, decimals) for key, header, decimals in SUMMARY_COLUMNS if key != "method"]
ODD_BRAIN = "tiny<b>&co"  # must come out escaped in the HTML
FAILURE = "RuntimeError: brain crashed <script>alert(1)</script>"


def make_run(brain, circuit, direction, repeat, index, condition="nominal", **overrides):
    """A run dict as the sweep engine returns it: compute_metrics' keys plus the sweep's own."""
    run = {
        "circuit": circuit,
        "direction": direction,
        "brain": brain,
        "completed_pct": 100.0,
        "completed_distance_m": 400.0 + index,
        "average_speed_mps": 10.0 + 0.13 * index,
        "lap_time_s": 40.0 - 0.2 * index,
        "position_deviation_mae_m": 0.05 + 0.007 * index,
        "position_deviation_total_m": 20.0 + index,
        "position_deviation_score": 1.5 + 0.05 * index,
        "off_track_events": 0,
        "brain_iteration_frequency_hz": 500.0 + 11.0 * index,
        "mean_inference_time_ms": 1.0 + 0.03 * index,
        "frame_rate_hz": 30.0,
        "sim_time_s": 40.0,
        "wall_time_s": 12.0,
        "end_reason": "lap_completed",
        "condition": condition,
        "repeat": repeat,
        "worker": f"worker-{index % 2}",
        "host": "node-a",
        "node_id": f"n{index % 3}",
        "config_hash": "abc123",
        "run_wall_s": 13.0 + index,
    }
    run.update(overrides)
    return run


@pytest.fixture
def runs():
    out = []
    index = 0
    for brain in ("explicit", "pilotnet_fp32"):
        for circuit in ("simple_circuit", "montreal"):
            for direction in ("ccw", "cw"):
                for repeat in (0, 1):
                    out.append(make_run(brain, circuit, direction, repeat, index))
                    index += 1
    # Missing and non-finite figures: left out of their means, never written as NaN.
    out[1]["mean_inference_time_ms"] = None
    out[2]["position_deviation_score"] = float("nan")
    # An incomplete run (a worst one) and a failed one (the worst, with a saved trajectory).
    out[5].update(completed_pct=60.0, lap_time_s=None, end_reason="off_track")
    out.append(
        make_run(
            "pilotnet_fp32",
            "montreal",
            "ccw",
            2,
            index,
            completed_pct=None,
            average_speed_mps=3.0,
            position_deviation_mae_m=9.9,
            error=FAILURE,
            run_dir="runs/failed_run",
        )
    )
    # A brain with a single run in another condition: no standard deviation.
    out.append(make_run(ODD_BRAIN, "simple_circuit", "ccw", 0, index + 1, condition="rain"))
    return out


def write_png(path):
    fig = new_figure((2, 2))
    fig.add_subplot(1, 1, 1).plot([0, 1], [0, 1])
    save_png(fig, path)


def expected_summary(runs):
    """Mean and stdev per brain x circuit x condition, straight from the fixture values."""
    groups = {}
    for run in runs:
        groups.setdefault((run["brain"], run["circuit"], run["condition"]), []).append(run)
    expected = {}
    for key, members in groups.items():
        row = {"runs": len(members), "failed": sum(1 for r in members if r.get("error"))}
        for metric, _, _ in SUMMARY_METRICS:
            if metric == "completed_pct":
                values = [0.0 if r.get("error") else r[metric] for r in members]
            else:
                values = [
                    r[metric]
                    for r in members
                    if not r.get("error") and r.get(metric) is not None and math.isfinite(r[metric])
                ]
            row[metric] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None)
        expected[key] = row
    return expected


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_file_is_written(runs, tmp_path):
    write_png(tmp_path / "runs" / "failed_run" / "trajectory.png")
    paths = write_sweep_outputs(runs, tmp_path)
    assert paths == [tmp_path / name for name in OUTPUT_NAMES]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert not list(tmp_path.glob(".*.tmp"))


def test_sweep_csv_has_one_row_per_run_in_a_stable_column_order(runs, tmp_path):
    write_sweep_outputs(runs, tmp_path)
    text = (tmp_path / "sweep.csv").read_text()
    rows = read_csv(tmp_path / "sweep.csv")
    assert len(rows) == len(runs)
    header = list(rows[0])
    assert header[: len(IDENTITY_COLUMNS)] == list(IDENTITY_COLUMNS)
    metrics = [k for k in METRIC_KEYS if k not in IDENTITY_COLUMNS]
    assert header[len(IDENTITY_COLUMNS) : len(IDENTITY_COLUMNS) + len(metrics)] == metrics
    every_key = {k for run in runs for k in run}
    assert set(header) == every_key
    assert "nan" not in text.lower()
    assert rows[2]["position_deviation_score"] == ""  # NaN written as missing
    assert rows[1]["mean_inference_time_ms"] == ""
    failed = next(r for r in rows if r["error"])
    assert failed["error"] == FAILURE
    assert float(rows[3]["average_speed_mps"]) == runs[3]["average_speed_mps"]  # full precision


def test_summary_csv_means_and_stds_pool_directions_and_repeats(runs, tmp_path):
    write_sweep_outputs(runs, tmp_path)
    rows = read_csv(tmp_path / "summary.csv")
    expected = expected_summary(runs)
    assert len(rows) == len(expected) == 5
    for row in rows:
        want = expected[(row["Brain"], row["Circuit"], row["Condition"])]
        assert int(row[RUNS_HEADER]) == want["runs"]
        assert int(row["Failed"]) == want["failed"]
        for metric, header, _ in SUMMARY_METRICS:
            mean, std = want[metric]
            assert float(row[f"{header} mean"]) == pytest.approx(mean, rel=1e-12), (row["Brain"], metric)
            if std is None:
                assert row[f"{header} std"] == ""
            else:
                assert float(row[f"{header} std"]) == pytest.approx(std, rel=1e-12), (row["Brain"], metric)
    failed_group = next(r for r in rows if r["Brain"] == "pilotnet_fp32" and r["Circuit"] == "montreal")
    assert failed_group["Failed"] == "1" and failed_group[RUNS_HEADER] == "5"
    assert failed_group["Directions"] == "ccw cw"
    # The failed run's 0 % pulls completion down; its 3 m/s speed is left out.
    assert float(failed_group["Completed % mean"]) == pytest.approx(400.0 / 5)
    speeds = [r["average_speed_mps"] for r in runs[12:16]]
    assert float(failed_group["Average speed mean"]) == pytest.approx(statistics.mean(speeds))


def test_summary_markdown_shows_mean_plus_minus_std(runs, tmp_path):
    write_sweep_outputs(runs, tmp_path)
    text = (tmp_path / "summary.md").read_text()
    assert POOLING_NOTE in text and "directions and repeats pooled" in text
    expected = expected_summary(runs)
    lines = {tuple(c.strip() for c in line.strip("|").split("|")[:3]): line for line in text.splitlines()}
    for (brain, circuit, condition), want in expected.items():
        line = lines[(brain, circuit, condition)]
        for metric, _, decimals in SUMMARY_METRICS:
            mean, std = want[metric]
            cell = f"{mean:.{decimals}f}" + ("" if std is None else f" ± {std:.{decimals}f}")
            assert f"| {cell} |" in line, (brain, circuit, metric, line)
    assert "nan" not in text.lower()


def test_worst_runs_are_failed_then_incomplete_then_highest_deviation(runs):
    worst = worst_runs(runs)
    assert worst[0]["error"] == FAILURE
    assert worst[1] is runs[5]  # 60 % completed
    complete = [r for r in runs if not r.get("error") and r["completed_pct"] == 100.0]
    assert worst[2] is max(complete, key=lambda r: r["position_deviation_mae_m"])


def test_report_html_is_self_contained(runs, tmp_path):
    write_png(tmp_path / "runs" / "failed_run" / "trajectory.png")
    write_sweep_outputs(runs, tmp_path)
    text = (tmp_path / "report.html").read_text()
    for brain in {r["brain"] for r in runs}:
        assert html.escape(brain) in text
    assert ODD_BRAIN not in text  # only escaped
    assert "<script>" not in text and html.escape(FAILURE) in text
    assert text.count("<table>") == 2
    assert "Average speed" in text and "± " in text
    # Scatter, per-circuit bars, and the failed run's trajectory; the other two worst runs have none.
    assert text.count("data:image/png;base64,") == 3
    assert text.count("no trajectory saved") == 2
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "<script" not in text


def test_trajectory_in_an_absolute_run_dir_is_embedded(tmp_path):
    run_dir = tmp_path / "elsewhere" / "run0"
    write_png(run_dir / "simple_ccw_explicit.png")
    (run_dir / "notes.png").write_bytes(b"not an image")
    run = make_run("explicit", "simple_circuit", "ccw", 0, 0, run_dir=str(run_dir))
    write_sweep_outputs([run], tmp_path / "out")
    text = (tmp_path / "out" / "report.html").read_text()
    assert text.count("data:image/png;base64,") == 3
    assert "is not a PNG image" in text
    assert "no trajectory saved" not in text


def test_no_runs_gives_a_report_saying_so(tmp_path):
    paths = write_sweep_outputs([], tmp_path)
    assert [p.name for p in paths] == OUTPUT_NAMES
    text = (tmp_path / "report.html").read_text()
    assert "No runs" in text and "data:image/png" not in text
    assert "No runs" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "sweep.csv").read_text().strip() == ",".join(IDENTITY_COLUMNS)
    assert read_csv(tmp_path / "summary.csv") == []


def test_an_output_directory_under_a_file_raises_naming_it(runs, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match="a_file"):
        write_sweep_outputs(runs, blocker / "sweep")
    assert list(tmp_path.iterdir()) == [blocker]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_raises_naming_the_file(runs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(OSError, match="sweep.csv"):
            write_sweep_outputs(runs, out)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_a_full_disk_leaves_no_partial_file(runs, tmp_path, monkeypatch):
    real_write = jsonio._write_file
    written = []

    def fill_up_on_the_third_file(path, data):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(path)
        real_write(path, data)

    monkeypatch.setattr(jsonio, "_write_file", fill_up_on_the_third_file)
    with pytest.raises(OSError, match="summary.csv.*No space left"):
        write_sweep_outputs(runs, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md", "sweep.csv"]


def test_a_run_that_is_not_a_dict_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="sweep run 0"):
        write_sweep_outputs(["explicit"], tmp_path)
