"""`pilotnet-brain`: one subcommand per job, in command groups (cli/simulation.py, learning.py, graph.py)."""

from __future__ import annotations

import argparse
import sys

from pilotnet_brain.cli import graph, learning, simulation
from pilotnet_brain.errors import BackendUnavailable, CircuitError, ConfigError, ImageError

COMMAND_GROUPS = (simulation, learning, graph)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pilotnet-brain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CircuitError, ConfigError, ImageError, BackendUnavailable, ValueError, FileNotFoundError) as error:
        print(f"pilotnet-brain {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
