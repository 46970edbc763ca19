"""A sweep's result files: every run (CSV), the summary per brain x circuit x condition (Markdown + CSV)
and one self-contained HTML report (tables and plots embedded as base64 PNG: no server, no network).

The summary's figures are the README's main table columns (``bench.closed_loop.SUMMARY_COLUMNS``) as
mean and sample standard deviation over the runs of each brain x circuit x condition, directions and
repeats pooled. A failed run (one with ``error``) counts 0 % completed and is left out of the other means.
Every text is rendered in memory first, then each file is written atomically (``jsonio.write_text_atomic``).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import statistics
from pathlib import Path

from pilotnet_brain.bench.closed_loop import SUMMARY_COLUMNS
from pilotnet_brain.evaluation.metrics import METRIC_KEYS, TABLE_COLUMNS, metrics_table
from pilotnet_brain.evaluation.plots import new_figure
from pilotnet_brain.jsonio import clean_json, dumps_strict, write_text_atomic

__all__ = [
    "GROUP_COLUMNS",
    "IDENTITY_COLUMNS",
    "SUMMARY_METRICS",
    "summarize_sweep",
    "sweep_columns",
    "worst_runs",
    "write_sweep_outputs",
]

#: The axes of a sweep: the first columns of sweep.csv, in this order.
IDENTITY_COLUMNS = ("brain", "circuit", "direction", "condition", "repeat")

#: One summary row per distinct value of these (directions and repeats pooled).
GROUP_COLUMNS = ("brain", "circuit", "condition")

#: The summary's figures: the numeric columns of the README's main table (all but "Method").
SUMMARY_METRICS = tuple(column for column in SUMMARY_COLUMNS if column[2] is not None)

#: A failed run counts 0 here; every other summary metric leaves failed runs out.
COMPLETED_KEY = "completed_pct"

#: How many of the worst runs the report shows with their trajectory.
WORST_RUN_COUNT = 3

POOLING_NOTE = (
    "One row per brain × circuit × condition, directions and repeats pooled: mean ± sample standard "
    "deviation (n − 1; no ± for a single value) over the runs that report each figure. A failed run "
    "counts 0 % completed and is left out of the other means."
)
RUNS_HEADER = "Runs (directions, repeats pooled)"

_METRIC_ORDER = tuple(dict.fromkeys([*METRIC_KEYS, *(key for key, _, _ in SUMMARY_METRICS)]))
_TABLE_HEADERS = {key: header for key, header, _ in TABLE_COLUMNS}
_SPEED_KEY = "average_speed_mps"
_DEVIATION_KEY = "position_deviation_mae_m"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- values


def _plain_run(index: int, run: dict) -> dict:
    """The run with JSON-plain values: numpy -> numbers, NaN/inf -> None, paths -> str, lists/dicts -> JSON text."""
    if not isinstance(run, dict):
        raise ValueError(f"sweep run {index}: expected a dict of metrics, got {type(run).__name__}")
    out = {}
    for key, value in run.items():
        try:
            value = clean_json(value)
        except TypeError as error:
            raise ValueError(f"sweep run {index}: {key!r}: {error}") from None
        out[str(key)] = dumps_strict(value, indent=None) if isinstance(value, (list, dict)) else value
    return out


def _number(value) -> float | None:
    """A finite float, or None (missing, not a number, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _finite_values(runs: list[dict], key: str) -> list[float]:
    """``key``'s finite values over the runs that did not fail."""
    return [v for v in (_number(run.get(key)) for run in runs if not _failed(run)) if v is not None]


def _failed(run: dict) -> bool:
    return run.get("error") not in (None, "")


def _completed(run: dict) -> float:
    """completed_pct as the summary counts it: 0 for a failed run or one that reports none."""
    value = None if _failed(run) else _number(run.get(COMPLETED_KEY))
    return 0.0 if value is None else value


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _label(value) -> str:
    return "-" if value is None else str(value)


def _first_seen(runs: list[dict], key: str) -> list:
    return list(dict.fromkeys(run.get(key) for run in runs))


# --------------------------------------------------------------------------- tables


def sweep_columns(runs: list[dict]) -> list[str]:
    """sweep.csv's columns: IDENTITY_COLUMNS, then the metric keys the runs have (compute_metrics' order),
    then every other key in order of first appearance."""
    present = dict.fromkeys(key for run in runs for key in run)
    metrics = [key for key in _METRIC_ORDER if key in present and key not in IDENTITY_COLUMNS]
    leading = set(IDENTITY_COLUMNS) | set(metrics)
    return [*IDENTITY_COLUMNS, *metrics, *(key for key in present if key not in leading)]


def summarize_sweep(runs: list[dict]) -> list[dict]:
    """One row per brain x circuit x condition (first-seen order): those three, ``directions`` (pooled,
    sorted), ``runs``, ``failed``, and ``<key>_mean`` / ``<key>_std`` for each SUMMARY_METRICS key."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(tuple(run.get(key) for key in GROUP_COLUMNS), []).append(run)
    rows = []
    for key, members in groups.items():
        succeeded = [run for run in members if not _failed(run)]
        row = dict(zip(GROUP_COLUMNS, key))
        row["directions"] = " ".join(sorted({_label(run.get("direction")) for run in members}))
        row["runs"] = len(members)
        row["failed"] = len(members) - len(succeeded)
        for metric, _, _ in SUMMARY_METRICS:
            if metric == COMPLETED_KEY:
                values = [_completed(run) for run in members]
            else:
                values = _finite_values(succeeded, metric)
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std(values)
        rows.append(row)
    return rows


def _summary_text_rows(summary: list[dict]) -> list[dict]:
    """Summary rows with each figure as "mean ± std" text at the main table's decimals."""
    rows = []
    for row in summary:
        text = {key: row[key] for key in (*GROUP_COLUMNS, "runs", "failed")}
        for metric, _, decimals in SUMMARY_METRICS:
            mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
            if mean is None:
                text[metric] = None
            elif std is None:
                text[metric] = f"{mean:.{decimals}f}"
            else:
                text[metric] = f"{mean:.{decimals}f} ± {std:.{decimals}f}"
        rows.append(text)
    return rows


_GROUP_TABLE_COLUMNS = (("brain", "Brain", None), ("circuit", "Circuit", None), ("condition", "Condition", None))
# Decimals on the count and text columns only right-align them (metrics_table formats text as given).
_SUMMARY_TEXT_COLUMNS = (*_GROUP_TABLE_COLUMNS, *SUMMARY_METRICS, ("runs", RUNS_HEADER, 0), ("failed", "Failed", 0))
_SUMMARY_CSV_COLUMNS = (
    *_GROUP_TABLE_COLUMNS,
    ("directions", "Directions", None),
    ("runs", RUNS_HEADER, None),
    ("failed", "Failed", None),
    *(
        column
        for key, header, _ in SUMMARY_METRICS
        for column in ((f"{key}_mean", f"{header} mean", None), (f"{key}_std", f"{header} std", None))
    ),
)
_RUN_TABLE_COLUMNS = (
    *_GROUP_TABLE_COLUMNS[:2],
    ("direction", "Direction", None),
    ("condition", "Condition", None),
    ("repeat", "Repeat", 0),
    *(column for column in TABLE_COLUMNS if column[0] not in IDENTITY_COLUMNS),
    ("error", "Error", None),
)


def _summary_markdown(summary: list[dict]) -> str:
    body = metrics_table(_summary_text_rows(summary), "markdown", _SUMMARY_TEXT_COLUMNS) if summary else "No runs.\n"
    return f"# Sweep summary\n\n{POOLING_NOTE}\n\n{body}"


# --------------------------------------------------------------------------- HTML


def _html_table(rows: list[dict], columns) -> str:
    """``metrics_table``'s cells (its CSV form, so the same formatting) as an escaped HTML table."""
    header, *body = csv.reader(io.StringIO(metrics_table(rows, "csv", columns)))
    numeric = [decimals is not None for _, _, decimals in columns]

    def cells(tag, values):
        return "".join(
            f"<{tag}{' class=num' if is_number else ''}>{html.escape(value or '-')}</{tag}>"
            for value, is_number in zip(values, numeric)
        )

    rows_html = "\n".join(f"<tr>{cells('td', row)}</tr>" for row in body)
    return f"<table>\n<thead><tr>{cells('th', header)}</tr></thead>\n<tbody>\n{rows_html}\n</tbody>\n</table>"


def _png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _brain_style(index: int) -> dict:
    return {"marker": _MARKERS[index % len(_MARKERS)], "color": f"C{index % 10}"}


def _scatter_png(runs: list[dict], brains: list) -> bytes:
    """Average speed against deviation MAE, one point per successful run, one marker and colour per brain."""
    fig = new_figure((7.5, 5))
    ax = fig.add_subplot(1, 1, 1)
    plotted = False
    for index, brain in enumerate(brains):
        points = [
            (_number(run.get(_SPEED_KEY)), _number(run.get(_DEVIATION_KEY)))
            for run in runs
            if run.get("brain") == brain and not _failed(run)
        ]
        points = [p for p in points if None not in p]
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, label=_label(brain), alpha=0.8, **_brain_style(index))
            plotted = True
    if plotted:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    else:
        ax.text(0.5, 0.5, "no run reports both speed and deviation", transform=ax.transAxes, ha="center")
    ax.set_xlabel(_TABLE_HEADERS[_SPEED_KEY])
    ax.set_ylabel(_TABLE_HEADERS[_DEVIATION_KEY])
    ax.set_title("Speed against deviation, one point per run (failed runs left out)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _png_bytes(fig)


def _circuit_bars_png(runs: list[dict], brains: list, circuits: list) -> bytes:
    """Per circuit, one bar per brain: mean (error bar: std) speed above, deviation MAE below."""
    fig = new_figure((min(4.0 + 0.35 * len(circuits) * len(brains), 24.0), 8))
    width = 0.8 / len(brains)
    legend_drawn = False  # once, on the first panel with a bar
    for panel, key in enumerate((_SPEED_KEY, _DEVIATION_KEY)):
        ax = fig.add_subplot(2, 1, panel + 1)
        for index, brain in enumerate(brains):
            label = _label(brain)  # on the brain's first bar only: one legend entry each
            for position, circuit in enumerate(circuits):
                values = _finite_values(
                    [run for run in runs if run.get("brain") == brain and run.get("circuit") == circuit], key
                )
                x = position - 0.4 + width * (index + 0.5)
                mean, std = _mean_std(values)
                if mean is None:
                    ax.annotate("-", (x, 0.0), ha="center", va="bottom", fontsize=8)
                    continue
                ax.bar(
                    x,
                    mean,
                    width,
                    yerr=std or 0.0,
                    capsize=2,
                    color=_brain_style(index)["color"],
                    label=label,
                )
                label = None
        ax.set_xlim(-0.5, len(circuits) - 0.5)  # keeps the "-" of a missing last bar in view
        ax.set_xticks(range(len(circuits)))
        ax.set_xticklabels([_label(c) for c in circuits] if panel else [""] * len(circuits), fontsize=8)
        ax.set_ylabel(_TABLE_HEADERS[key])
        ax.grid(True, axis="y", alpha=0.3)
        if panel == 0:
            ax.set_title("Per circuit: mean ± std over each brain's successful runs")
        if not legend_drawn and ax.get_legend_handles_labels()[1]:
            legend_drawn = True
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    return _png_bytes(fig)


def worst_runs(runs: list[dict], count: int = WORST_RUN_COUNT) -> list[dict]:
    """The ``count`` worst runs: failed first, then the least completed, then the highest deviation MAE
    (a run without one counts as the worst of its completion)."""

    def badness(run):
        deviation = _number(run.get(_DEVIATION_KEY))
        return (not _failed(run), min(_completed(run), 100.0), -(math.inf if deviation is None else deviation))

    return sorted(runs, key=badness)[:count]


def _run_title(run: dict) -> str:
    parts = [f"{key} {_label(run.get(key))}" for key in IDENTITY_COLUMNS]
    return ", ".join(parts)


def _run_verdict(run: dict) -> str:
    if _failed(run):
        return f"failed: {run['error']}"
    deviation = _number(run.get(_DEVIATION_KEY))
    return f"completed {_completed(run):.1f} %, deviation MAE {'-' if deviation is None else f'{deviation:.3f}'} m"


def _trajectory_html(run: dict, out_dir: Path) -> str:
    """The run's trajectory PNGs (``run_dir``/*.png) embedded, or a line saying why there is none."""
    if run.get("run_dir") in (None, ""):
        return "<p>no trajectory saved (the run has no run_dir)</p>"
    run_dir = Path(str(run["run_dir"]))
    run_dir = run_dir if run_dir.is_absolute() else out_dir / run_dir
    pngs = sorted(run_dir.glob("*.png")) if run_dir.is_dir() else []
    if not pngs:
        return f"<p>no trajectory saved (no PNG in {html.escape(str(run_dir))})</p>"
    parts = []
    for png in pngs:
        try:
            data = png.read_bytes()
        except OSError as error:
            parts.append(f"<p>trajectory {html.escape(str(png))} unreadable: {html.escape(str(error))}</p>")
            continue
        if not data.startswith(_PNG_SIGNATURE):
            parts.append(f"<p>{html.escape(str(png))} is not a PNG image</p>")
            continue
        parts.append(_img(data, f"trajectory {png.name}"))
    return "\n".join(parts)


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; }
th { background: #eee; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
"""


def _report_html(runs: list[dict], summary: list[dict], out_dir: Path) -> str:
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Sweep report</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>Sweep report</h1>\n"
    )
    if not runs:
        return head + "<p>No runs: the sweep produced no results.</p>\n</body>\n</html>\n"
    brains = _first_seen(runs, "brain")
    circuits = _first_seen(runs, "circuit")
    failed = sum(map(_failed, runs))
    sections = [
        f"<p>{len(runs)} runs ({failed} failed); brains: {html.escape(', '.join(map(_label, brains)))}; "
        f"circuits: {html.escape(', '.join(map(_label, circuits)))}.</p>",
        "<h2>Summary</h2>",
        f"<p>{html.escape(POOLING_NOTE)}</p>",
        f'<div class="scroll">{_html_table(_summary_text_rows(summary), _SUMMARY_TEXT_COLUMNS)}</div>',
        "<h2>Plots</h2>",
        _img(_scatter_png(runs, brains), "speed against deviation per brain"),
        _img(_circuit_bars_png(runs, brains, circuits), "speed and deviation per brain per circuit"),
        f"<h2>The {min(WORST_RUN_COUNT, len(runs))} worst runs</h2>",
        "<p>Failed runs first, then the least completed, then the highest deviation MAE.</p>",
    ]
    for run in worst_runs(runs):
        sections += [
            f"<h3>{html.escape(_run_title(run))}</h3>",
            f"<p>{html.escape(_run_verdict(run))}</p>",
            _trajectory_html(run, out_dir),
        ]
    sections += [
        "<h2>Runs</h2>",
        "<p>One row per run; sweep.csv beside this file has every column.</p>",
        f'<div class="scroll">{_html_table(runs, _RUN_TABLE_COLUMNS)}</div>',
    ]
    return head + "\n".join(sections) + "\n</body>\n</html>\n"


# --------------------------------------------------------------------------- files


def _write(text: str, path: Path) -> Path:
    try:
        return write_text_atomic(text, path)
    except OSError as error:
        raise type(error)(f"cannot write {path}: {error.strerror or error}") from error


def write_sweep_outputs(runs: list[dict], out_dir: Path) -> list[Path]:
    """Write sweep.csv, summary.md, summary.csv and report.html into ``out_dir``; return their paths.

    Everything is rendered before the first file is written, and each file is replaced atomically, so a
    failure (an unwritable directory, a full disk) leaves no partial file; it raises OSError naming the path.
    A run's ``run_dir`` (absolute, or relative to ``out_dir``) is searched for trajectory PNGs to embed.
    """
    out_dir = Path(out_dir)
    runs = [_plain_run(index, run) for index, run in enumerate(runs)]
    summary = summarize_sweep(runs)
    columns = sweep_columns(runs)
    texts = {
        "sweep.csv": metrics_table(runs, "csv", [(key, key, None) for key in columns]),
        "summary.md": _summary_markdown(summary),
        "summary.csv": metrics_table(summary, "csv", _SUMMARY_CSV_COLUMNS),
        "report.html": _report_html(runs, summary, out_dir),
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise type(error)(f"cannot create the sweep output directory {out_dir}: {error.strerror or error}") from error
    return [_write(text, out_dir / name) for name, text in texts.items()]
