"""`pilotnet-brain`: one subcommand per job, in command groups (cli/simulation.py, learning.py, graph.py, sweep.py)."""

from __future__ import annotations

import sys

from pilotnet_brain.cli import graph, learning, simulation, sweep
from pilotnet_brain.cli.common import OneLineParser
from pilotnet_brain.errors import BackendUnavailable, CircuitError, ConfigError, ImageError, RecordingError

COMMAND_GROUPS = (simulation, learning, graph, sweep)

#: Errors a command expects (bad input, a missing runtime, an output that cannot be written): one line,
#: exit code 2. Anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (CircuitError, ConfigError, ImageError, BackendUnavailable, RecordingError, ValueError, OSError)


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="pilotnet-brain", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EXPECTED_ERRORS as error:
        print(f"pilotnet-brain {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def one_line(error: BaseException) -> str:
    """The error's message on one line (an OSError names its file)."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
