"""The built-in circuits, shaped after the BehaviorMetrics Gazebo worlds of the same names.

Each is a circuit map in the language of :mod:`track_spec` (our own design, no real track data),
driven counter-clockwise; "cw" reverses it on load. This module also says which circuits PilotNet
is trained on and which are held out for testing: every command, benchmark and the Makefile take
those sets from here (``pilotnet-brain circuits --set test --names``).
"""

from __future__ import annotations

from pilotnet_brain.sim.track_spec import CircuitSpec, left, right, straight

__all__ = [
    "BUILTIN_CIRCUITS",
    "BUILTIN_HALF_WIDTH_M",
    "CIRCUIT_SETS",
    "TEST_CIRCUITS",
    "TRAINING_CIRCUITS",
    "builtin_spec",
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
#: Named sets for `pilotnet-brain circuits --set NAME`.
CIRCUIT_SETS = {"all": BUILTIN_CIRCUITS, "training": TRAINING_CIRCUITS, "test": TEST_CIRCUITS}


def builtin_spec(name: str) -> CircuitSpec:
    """The circuit map of a built-in circuit (KeyError for other names)."""
    return _SPECS[name]
