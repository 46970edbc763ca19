"""The built-in circuits, shaped after the BehaviorMetrics Gazebo worlds of the same names.

Each is a circuit map in the language of :mod:`track_spec` (our own design, no real track data),
driven counter-clockwise; "cw" reverses it on load. This module also says which circuits PilotNet
is trained on and which are held out for testing: every command, benchmark and the Makefile take
those sets from here (``pilotnet-brain circuits --set test --names``).

Generated circuits (:mod:`generated`) are named ``gen:SEED``; their seeds are split here once and for
all: TRAINING_SEEDS may be trained on, EVALUATION_SEEDS never (``record`` and ``train`` refuse them,
like the held-out TEST_CIRCUITS and the shared real tracks).
"""

from __future__ import annotations

from pathlib import Path

from pilotnet_brain.errors import CircuitError
from pilotnet_brain.sim.track_spec import CircuitSpec, left, right, straight

__all__ = [
    "BUILTIN_CIRCUITS",
    "BUILTIN_HALF_WIDTH_M",
    "CIRCUIT_SETS",
    "EVALUATION_SEEDS",
    "GENERATED_EVALUATION",
    "GENERATED_PREFIX",
    "GENERATED_TRAINING",
    "SHARED_EVAL_TRACKS",
    "TEST_CIRCUITS",
    "TRAINING_CIRCUITS",
    "TRAINING_SEEDS",
    "builtin_spec",
    "generated_seed",
    "held_out_reason",
]

# Road width of every built-in circuit (the BehaviorMetrics worlds' asphalt band).
BUILTIN_HALF_WIDTH_M = 3.5


# Design rules (checked by test/unit/sim/test_circuits.py): radii >= 14 m before
# scaling (hairpins 14-16 m, chicanes >= 16 m), parallel legs >= 30 m apart,
# corner angles summing to +360 (driven ccw; "cw" reverses it on load).
# fmt: off
_SPECS: dict[str, CircuitSpec] = {
    # A rounded loop with a few gentle curves.
    "simple_circuit": CircuitSpec(scale=1.0, segments=(
        straight(50),
        left(40, 90),
        straight(),
        left(35, 70),
        right(45, 40),
        left(40, 80),
        straight(60),
        left(45, 70),
        straight(40),
        left(40, 90),
        straight(),
    )),
    # Lots of corners of both signs, few straights.
    "many_curves": CircuitSpec(scale=1.12, segments=(
        straight(40),
        left(30, 60),
        right(25, 90),
        left(25, 120),
        straight(20),
        left(25, 60),
        right(25, 120),
        left(25, 60),
        straight(),
        left(30, 90),
        right(20, 90),
        left(20, 180),
        right(25, 90),
        left(30, 60),
        right(35, 60),
        left(30, 90),
        straight(30),
        right(25, 60),
        left(25, 120),
        right(25, 60),
        straight(30),
        left(30, 90),
        straight(),
    )),
    # After Circuit Gilles-Villeneuve: long and narrow, Senna S, chicanes,
    # the hairpin, the long back straight and the final chicane.
    "montreal": CircuitSpec(scale=1.0, segments=(
        straight(100),
        left(16, 90),
        straight(),
        right(25, 40),
        left(25, 130),
        straight(120),
        right(18, 45),
        left(18, 45),
        straight(150),
        left(80, 20),
        right(80, 20),
        straight(150),
        left(18, 50),
        right(18, 50),
        straight(100),
        right(20, 40),
        left(20, 40),
        straight(200),
        left(15, 180),
        right(60, 30),
        straight(80),
        left(60, 30),
        straight(),
        right(20, 45),
        left(20, 45),
        straight(120),
    )),
    # After Circuit de Barcelona-Catalunya: long main straight, a long fast
    # sweeper, slow hairpins and a final chicane.
    "montmelo": CircuitSpec(scale=1.0, segments=(
        straight(100),
        left(20, 90),
        right(25, 45),
        left(45, 135),
        straight(50),
        left(18, 90),
        straight(30),
        right(18, 90),
        straight(40),
        right(30, 60),
        left(30, 60),
        right(40, 45),
        left(40, 45),
        straight(50),
        left(15, 90),
        straight(),
        left(35, 60),
        right(16, 45),
        left(16, 45),
        left(30, 30),
        straight(),
    )),
    # After the Nuerburgring GP circuit: tight first-corner complex, a flowing
    # section, the hairpin, the chicane and the last corner.
    "nurburgring": CircuitSpec(scale=1.04, segments=(
        straight(80),
        left(14, 150),
        right(20, 60),
        left(25, 60),
        straight(),
        left(40, 60),
        right(50, 40),
        left(16, 140),
        straight(),
        right(50, 30),
        left(50, 50),
        right(16, 40),
        left(16, 40),
        left(35, 30),
        straight(60),
    )),
    # A training circuit of long sweeping corners (radius 40-75 m, 80-150 degrees, both signs): the
    # other training circuits turn mostly at 20-35 m, and PilotNet trained on them alone held a steady
    # offset through long gentle corners (README, "Training data").
    "sweepers": CircuitSpec(scale=1.0, segments=(
        straight(),
        left(60, 100),
        right(45, 100),
        left(50, 150),
        straight(40),
        left(75, 90),
        right(55, 80),
        left(40, 100),
        straight(),
        left(65, 100),
    )),
}
# fmt: on

#: Names in the order `pilotnet-brain circuits` lists them.
BUILTIN_CIRCUITS = tuple(_SPECS)

#: The expert's recordings and the first DAgger rounds drive these (`sweepers` joins them in the
#: last DAgger round, see the Makefile); PilotNet never sees TEST_CIRCUITS while training.
TRAINING_CIRCUITS = ("many_curves", "nurburgring")
#: Held out: offline evaluation, the closed-loop benchmark and `make run` drive these.
TEST_CIRCUITS = ("simple_circuit", "montreal", "montmelo")

#: Generated circuits are named GENERATED_PREFIX + seed ("gen:12").
GENERATED_PREFIX = "gen:"
#: The split of the generator's seeds: training data may come from TRAINING_SEEDS only; EVALUATION_SEEDS
#: are held out like TEST_CIRCUITS. Disjoint, and together every seed `gen:SEED` accepts.
TRAINING_SEEDS = range(0, 900_000)
EVALUATION_SEEDS = range(900_000, 1_000_000)
#: Fixed samples of each range, for `--set generated-training` / `--set generated-evaluation`.
GENERATED_TRAINING = tuple(f"{GENERATED_PREFIX}{seed}" for seed in TRAINING_SEEDS[:40])
GENERATED_EVALUATION = tuple(f"{GENERATED_PREFIX}{seed}" for seed in EVALUATION_SEEDS[:20])

#: The shared real race tracks beside the repository checkout: for evaluation only, never trained on.
SHARED_EVAL_TRACKS = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "tracks"

#: Named sets for `pilotnet-brain circuits --set NAME`.
CIRCUIT_SETS = {
    "all": BUILTIN_CIRCUITS,
    "training": TRAINING_CIRCUITS,
    "test": TEST_CIRCUITS,
    "generated-training": GENERATED_TRAINING,
    "generated-evaluation": GENERATED_EVALUATION,
}


def builtin_spec(name: str) -> CircuitSpec:
    """The circuit map of a built-in circuit (KeyError for other names)."""
    return _SPECS[name]


def generated_seed(name: str) -> int | None:
    """The seed of a generated circuit's name ("gen:12" -> 12); None for a name without the prefix.

    CircuitError (one line) for a malformed seed: not a plain decimal integer (no sign, no leading
    zero, so each circuit has one name) or outside both seed ranges.
    """
    if not name.startswith(GENERATED_PREFIX):
        return None
    text = name[len(GENERATED_PREFIX) :]
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        seed = None
    else:
        seed = int(text)
    if seed is None or not (TRAINING_SEEDS.start <= seed < EVALUATION_SEEDS.stop):
        raise CircuitError(
            f"generated circuit {name!r}: the seed must be an integer in {TRAINING_SEEDS.start}.."
            f"{EVALUATION_SEEDS.stop - 1} ({_seed_split()})"
        )
    return seed


def _seed_split() -> str:
    return (
        f"training seeds {TRAINING_SEEDS.start}..{TRAINING_SEEDS.stop - 1}, "
        f"evaluation seeds {EVALUATION_SEEDS.start}..{EVALUATION_SEEDS.stop - 1}"
    )


def held_out_reason(name_or_path) -> str | None:
    """Why a circuit must not be trained on (one line), or None if it may be.

    Held out: the test circuits, generated circuits with an evaluation seed, and the shared real tracks
    (their files, or a copy of one: the same bytes).
    """
    text = str(name_or_path)
    if text in TEST_CIRCUITS:
        return f"{text!r} is a held-out test circuit (test: {', '.join(TEST_CIRCUITS)}), never trained on"
    seed = generated_seed(text)
    if seed is not None:
        if seed in EVALUATION_SEEDS:
            return f"{text!r} has an evaluation seed ({_seed_split()}): held out, never trained on"
        return None
    path = Path(text)
    if path.is_file() and SHARED_EVAL_TRACKS.is_dir():
        content = path.read_bytes()
        if any(content == track.read_bytes() for track in SHARED_EVAL_TRACKS.glob("*.csv")):
            return f"{text} is a shared real track ({SHARED_EVAL_TRACKS}): for evaluation only, never trained on"
    return None
