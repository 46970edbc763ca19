"""Draw docs/architecture.png from the code: the first-level units of pilotnet_brain in their import-linter
layers (setup.cfg), with an arrow for every package-level import found by grimp (import-linter's graph).

    .venv/bin/python tools/architecture_diagram.py [--out docs/architecture.png]
"""

from __future__ import annotations

import argparse
import configparser
from pathlib import Path

import grimp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PKG = "pilotnet_brain"


def layers() -> list[list[str]]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    rows = [line.strip() for line in cfg["importlinter:contract:layers"]["layers"].splitlines() if line.strip()]
    return [[unit.strip().removeprefix(PKG + ".") for unit in row.split("|")] for row in rows]


def unit_edges(units: list[str]) -> set[tuple[str, str]]:
    graph = grimp.build_graph(PKG)
    edges = set()
    for a in units:
        for b in units:
            if a != b and graph.direct_import_exists(importer=f"{PKG}.{a}", imported=f"{PKG}.{b}", as_packages=True):
                edges.add((a, b))
    return edges


def draw(out: Path) -> Path:
    rows = layers()
    units = [u for row in rows for u in row]
    edges = unit_edges(units)
    pos = {}
    for level, row in enumerate(rows):
        for i, unit in enumerate(row):
            pos[unit] = ((i + 1) / (len(row) + 1), 1.0 - level / (len(rows) - 1))
    fig, ax = plt.subplots(figsize=(9, 10))
    ax.set_axis_off()
    for a, b in sorted(edges):
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0 - 0.02),
                (x1, y1 + 0.02),
                arrowstyle="-|>",
                mutation_scale=10,
                color="0.6",
                lw=0.7,
                connectionstyle="arc3,rad=0.08",
            )
        )
    for unit, (x, y) in pos.items():
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.075, y - 0.022),
                0.15,
                0.044,
                boxstyle="round,pad=0.005",
                fc="#dbe8f6" if "." not in unit else "#eeeeee",
                ec="#34577d",
            )
        )
        ax.text(x, y, unit, ha="center", va="center", fontsize=10, family="monospace")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.06, 1.06)
    ax.set_title(f"{PKG}: layers (top imports down only) and package imports, from the code", fontsize=11)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "architecture.png")
    print(draw(parser.parse_args().out))
