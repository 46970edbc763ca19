"""Named, parameterised simulator conditions: lighting, shadows, sensor noise, motion blur, camera
offsets, road colours, line and road widths, latency spikes.

Each condition takes a level in [0, 1] (0 = clear, 1 = severe; `mild`, `moderate` and `severe` name
0.25, 0.5 and 1). `CONDITIONS` is the one table from level to physical parameters: it gives each
parameter's value at level 1; between, a parameter moves linearly from its clear value (the default of
`ConditionParameters`). A set of conditions is written `lighting=0.5,noise=moderate` (`parse_conditions`)
and has a canonical label, `Conditions.label` (table order, levels as numbers, `none` when clear), that
runs, sweeps and datasets record.

Where each condition acts: the palette and sky (lighting, colour temperature, road, grass and line
colours, line widths: no cost per frame), the camera model (height, pitch, yaw), the renderer's frame
(shadows, motion blur, noise: see `camera.Renderer`), the circuit (road width: `World` widens the road it
drives and draws), the episode clock (latency spikes, in both clocks).
Everything random comes from the simulator's seed: the same seed gives the same frames and timeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from pilotnet_brain.sim.camera import (
    ASPHALT,
    GRASS,
    RED_LINE,
    RED_LINE_WIDTH_M,
    WHITE_LINE,
    WHITE_LINE_WIDTH_M,
    Appearance,
    CameraModel,
)

#: Named levels accepted in place of a number.
LEVEL_NAMES = {"mild": 0.25, "moderate": 0.5, "severe": 1.0}
#: The set of no conditions, as parsed and as labelled.
CLEAR = "none"
#: Colour temperature (K) of the clear light: daylight, the renderer's colours as they are.
DAYLIGHT_K = 6500.0


@dataclass(frozen=True)
class ConditionParameters:
    """The physical parameters the conditions set; the defaults are the clear world."""

    brightness: float = 1.0  # multiplies every colour
    colour_temperature_k: float = DAYLIGHT_K  # of the light; lower is warmer (redder)
    shadow_darkness: float = 0.0  # fraction of the light a shadow band takes away
    noise_std: float = 0.0  # additive Gaussian sensor noise, std on the 0..255 scale
    exposure_s: float = 0.0  # camera exposure: smear by the car's speed and yaw rate over this time
    camera_height_offset_m: float = 0.0
    camera_pitch_offset_deg: float = 0.0  # + = further down
    camera_yaw_offset_deg: float = 0.0  # + = turned left
    asphalt_rgb: tuple = ASPHALT
    grass_rgb: tuple = GRASS
    red_line_rgb: tuple = RED_LINE
    white_line_rgb: tuple = WHITE_LINE
    line_width_scale: float = 1.0  # multiplies the widths of the center and edge lines
    road_width_scale: float = 1.0  # multiplies the road's width (real race tracks: 1.4-1.8x the built-ins')
    latency_spike_fraction: float = 0.0  # of the frames whose command is late by latency_spike_s
    latency_spike_s: float = 0.0  # extra command latency of a spiked frame, simulated s


@dataclass(frozen=True)
class Condition:
    """One row of the table: what level 1 means, and the parameters' values at level 1."""

    severe: str
    at_level_1: Mapping


#: The table: condition -> what level 1 means and the parameters it sets (their values at level 1).
CONDITIONS: dict[str, Condition] = {
    "lighting": Condition("brightness x0.4 (dusk)", {"brightness": 0.4}),
    "colour_temperature": Condition(
        "light at 3500 K instead of 6500 K daylight (warm evening sun)", {"colour_temperature_k": 3500.0}
    ),
    "shadows": Condition(
        "bands of shadow 60 % darker across the ground, fixed in the world (7 m apart)", {"shadow_darkness": 0.6}
    ),
    "noise": Condition("Gaussian sensor noise, std 12 (of 255) per pixel and channel", {"noise_std": 12.0}),
    "motion_blur": Condition(
        "20 ms exposure: vertical smear by the speed, horizontal by the yaw rate", {"exposure_s": 0.02}
    ),
    "camera_height": Condition("camera 0.3 m lower (0.7 m above the ground)", {"camera_height_offset_m": -0.3}),
    "camera_pitch": Condition("camera pitched 5 deg further down (horizon higher)", {"camera_pitch_offset_deg": 5.0}),
    "camera_yaw": Condition("camera turned 5 deg to the left", {"camera_yaw_offset_deg": 5.0}),
    "road_colour": Condition("asphalt faded to light grey-brown (150, 140, 120)", {"asphalt_rgb": (150, 140, 120)}),
    "grass_colour": Condition("grass dried to straw (150, 140, 80)", {"grass_rgb": (150, 140, 80)}),
    "line_colour": Condition(
        "red line faded to (150, 95, 85), white lines soiled to (170, 170, 160)",
        {"red_line_rgb": (150, 95, 85), "white_line_rgb": (170, 170, 160)},
    ),
    "line_width": Condition("painted lines 2.5x as wide (center 0.62 m, edges 0.5 m)", {"line_width_scale": 2.5}),
    "road_width": Condition(
        "road 2.2x as wide (15.4 m instead of the built-ins' 7 m; real race tracks are 9.6-12.6 m)",
        {"road_width_scale": 2.2},
    ),
    "latency_spike": Condition(
        "10 % of the frames: their command 250 ms late",
        {"latency_spike_fraction": 0.1, "latency_spike_s": 0.25},
    ),
}
CONDITION_NAMES = tuple(CONDITIONS)
#: The conditions that change what the camera sees (all but the clock's).
RENDERING_CONDITIONS = tuple(name for name in CONDITION_NAMES if name != "latency_spike")

_CLEAR_PARAMETERS = ConditionParameters()


def _check_table() -> None:
    known = {f.name for f in fields(ConditionParameters)}
    owners: dict[str, str] = {}
    for name, condition in CONDITIONS.items():
        for parameter in condition.at_level_1:
            if parameter not in known or parameter in owners:
                raise AssertionError(
                    f"condition {name}: parameter {parameter} unknown or set by {owners.get(parameter)}"
                )
            owners[parameter] = name


_check_table()


def _interpolate(clear, severe, level: float):
    if isinstance(clear, tuple):
        return tuple(c + level * (s - c) for c, s in zip(clear, severe))
    return clear + level * (severe - clear)


def light_rgb_gain(kelvin: float) -> tuple[float, float, float]:
    """RGB gains of light at `kelvin` relative to daylight (6500 K = 1, 1, 1), from Tanner Helland's fit of
    the black-body colours (1000-40000 K)."""

    def rgb(k: float) -> np.ndarray:
        t = k / 100.0
        r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
        g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
        return np.clip([r, g, b], 0.0, 255.0)

    if kelvin == DAYLIGHT_K:
        return (1.0, 1.0, 1.0)
    return tuple(float(v) for v in rgb(kelvin) / rgb(DAYLIGHT_K))


@dataclass(frozen=True)
class Conditions:
    """A set of conditions with their levels, in canonical form: table order, levels in (0, 1] (a level 0
    is no condition). `Conditions()` is the clear world. Build one with `parse_conditions` or `of`."""

    levels: tuple = ()  # ((name, level), ...)

    def __post_init__(self):
        names = [name for name, _ in self.levels]
        canonical = tuple(sorted(self.levels, key=lambda item: CONDITION_NAMES.index(item[0])))
        if (
            len(set(names)) != len(names)
            or any(name not in CONDITIONS or not 0 < level <= 1 for name, level in self.levels)
            or canonical != self.levels
        ):
            raise ValueError(f"not a canonical set of conditions: {self.levels!r} (build one with Conditions.of)")

    @classmethod
    def of(cls, levels: Mapping) -> Conditions:
        """From {name: level}; names are checked, levels must lie in [0, 1] (0 = leave it out)."""
        for name, level in levels.items():
            if name not in CONDITIONS:
                raise ValueError(f"unknown condition {name!r}; valid names: {', '.join(CONDITION_NAMES)}")
            if not (isinstance(level, (int, float)) and 0.0 <= level <= 1.0):
                raise ValueError(f"condition {name}: level {level!r} is outside [0, 1]")
        return cls(tuple((name, float(levels[name])) for name in CONDITION_NAMES if levels.get(name, 0.0) > 0.0))

    def __bool__(self) -> bool:
        return bool(self.levels)

    @property
    def label(self) -> str:
        """Canonical text form, accepted back by parse_conditions: 'lighting=0.5,noise=0.5', or 'none'."""
        return ",".join(f"{name}={level:g}" for name, level in self.levels) or CLEAR

    def __str__(self) -> str:
        return self.label

    def level(self, name: str) -> float:
        if name not in CONDITIONS:
            raise ValueError(f"unknown condition {name!r}; valid names: {', '.join(CONDITION_NAMES)}")
        return dict(self.levels).get(name, 0.0)

    @property
    def changes_rendering(self) -> bool:
        return any(name in RENDERING_CONDITIONS for name, _ in self.levels)

    @property
    def parameters(self) -> ConditionParameters:
        """The physical parameters at these levels (CONDITIONS, linear between clear and level 1)."""
        values = {}
        for name, level in self.levels:
            for parameter, severe in CONDITIONS[name].at_level_1.items():
                values[parameter] = _interpolate(getattr(_CLEAR_PARAMETERS, parameter), severe, level)
        return replace(_CLEAR_PARAMETERS, **values)

    def appearance(self) -> Appearance:
        """What the renderer draws under these conditions."""
        p = self.parameters
        return Appearance(
            brightness=p.brightness,
            noise_std=p.noise_std,
            light_rgb_gain=light_rgb_gain(p.colour_temperature_k),
            asphalt_rgb=p.asphalt_rgb,
            grass_rgb=p.grass_rgb,
            red_line_rgb=p.red_line_rgb,
            white_line_rgb=p.white_line_rgb,
            red_line_width_m=RED_LINE_WIDTH_M * p.line_width_scale,
            white_line_width_m=WHITE_LINE_WIDTH_M * p.line_width_scale,
            shadow_darkness=p.shadow_darkness,
            exposure_s=p.exposure_s,
        )

    def camera(self, base: CameraModel | None = None) -> CameraModel:
        """`base` (default: the F1 camera) moved by the camera offsets."""
        base = base or CameraModel()
        p = self.parameters
        if not (p.camera_height_offset_m or p.camera_pitch_offset_deg or p.camera_yaw_offset_deg):
            return base
        return replace(
            base,
            height_m=base.height_m + p.camera_height_offset_m,
            pitch_rad=base.pitch_rad + math.radians(p.camera_pitch_offset_deg),
            yaw_rad=base.yaw_rad + math.radians(p.camera_yaw_offset_deg),
        )

    def latency_spikes(self, seed: int) -> LatencySpikes | None:
        """The clock's extra latency per frame, or None when there is no latency spike."""
        p = self.parameters
        if not (p.latency_spike_fraction > 0 and p.latency_spike_s > 0):
            return None
        return LatencySpikes(p.latency_spike_fraction, p.latency_spike_s, seed)


class LatencySpikes:
    """Extra command latency for a seeded random `fraction` of the frames, drawn frame by frame in order
    (the same seed gives the same frames spiked)."""

    def __init__(self, fraction: float, extra_s: float, seed: int):
        self.fraction, self.extra_s = float(fraction), float(extra_s)
        self._rng = np.random.default_rng([int(seed), 0x5EED_1A7E])
        self.count = 0

    def next(self) -> float:
        """The extra latency (s) of the next frame: extra_s or 0."""
        if self._rng.random() < self.fraction:
            self.count += 1
            return self.extra_s
        return 0.0


def _parse_level(name: str, text: str) -> float:
    allowed = f"a number in [0, 1] or {', '.join(LEVEL_NAMES)}"
    if text in LEVEL_NAMES:
        return LEVEL_NAMES[text]
    try:
        level = float(text)
    except ValueError:
        raise ValueError(f"condition {name}: level {text!r} is not {allowed}") from None
    if not 0.0 <= level <= 1.0:  # also NaN
        raise ValueError(f"condition {name}: level {text} is outside [0, 1] (allowed: {allowed})")
    return level


def parse_conditions(text: str) -> Conditions:
    """'lighting=0.5,noise=moderate' -> Conditions; 'none' (or '') -> the clear world.

    A bad item is a ValueError of one line: an unknown name (listing the valid ones), a level outside
    [0, 1], a condition given twice, or an item that is not name=level."""
    text = text.strip()
    if text in ("", CLEAR):
        return Conditions()
    levels: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name or not value or "=" in value:
            what = "an empty item" if not item.strip() else repr(item.strip())
            raise ValueError(
                f"malformed condition {what} in {text!r}: expected name=level, comma separated "
                f"(e.g. lighting=0.5,noise=moderate), or {CLEAR}"
            )
        if name not in CONDITIONS:
            raise ValueError(f"unknown condition {name!r}; valid names: {', '.join(CONDITION_NAMES)}")
        if name in levels:
            raise ValueError(f"condition {name} is given twice in {text!r}")
        levels[name] = _parse_level(name, value)
    return Conditions.of(levels)


def random_conditions(
    rng: np.random.Generator, max_level: float, names: tuple = RENDERING_CONDITIONS, probability: float = 0.5
) -> Conditions:
    """Domain randomisation: each of `names` is on with `probability`, at a level drawn uniformly from
    (0, max_level] and rounded to 0.01 (so the label gives back the same set)."""
    if not 0.0 <= max_level <= 1.0:
        raise ValueError(f"max_level {max_level} is outside [0, 1]")
    levels = {}
    for name in names:
        on, level = rng.random() < probability, rng.uniform(0.0, max_level)
        if on:
            levels[name] = min(max(round(level, 2), 0.01), max_level)
    return Conditions.of(levels) if max_level > 0 else Conditions()


def conditions_markdown() -> str:
    """The table of conditions as Markdown (for the README)."""
    lines = ["| condition | level 1 (severe) | parameters at level 1 |", "| --- | --- | --- |"]
    for name, condition in CONDITIONS.items():
        params = ", ".join(f"`{k}` = {v}" for k, v in condition.at_level_1.items())
        lines.append(f"| `{name}` | {condition.severe} | {params} |")
    return "\n".join(lines) + "\n"
