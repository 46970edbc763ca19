"""Simulator conditions (sim/conditions.py): parsing, what each condition does to the frame, determinism per
seed, latency spikes on the lock-step timeline, and the drive/record command lines."""

import json
import math

import numpy as np
import pytest
from conftest import STADIUM_RADIUS_M

from pilotnet_brain.control import Command
from pilotnet_brain.errors import CircuitError, ConfigError
from pilotnet_brain.sim.camera import (
    ASPHALT,
    GRASS,
    RED_LINE,
    WHITE_LINE,
    Appearance,
    CameraModel,
    Renderer,
    world_to_car,
)
from pilotnet_brain.sim.circuits import load_circuit, widen_road
from pilotnet_brain.sim.clock import EpisodeClock, Reply
from pilotnet_brain.sim.conditions import (
    CONDITION_NAMES,
    CONDITIONS,
    LEVEL_NAMES,
    RENDERING_CONDITIONS,
    Conditions,
    parse_conditions,
    random_conditions,
)
from pilotnet_brain.sim.settings import sim_config_from_parameters
from pilotnet_brain.sim.world import SimConfig, World

# On the stadium's bottom straight, on the center line, heading along it (+x).
POSE = (0.0, -STADIUM_RADIUS_M, 0.0)


def render(track, conditions="none", seed=0, speed=0.0, yaw_rate=0.0, pose=POSE):
    c = parse_conditions(conditions)
    renderer = Renderer(track, c.camera(), c.appearance(), seed=seed)
    return renderer.render(*pose, speed_mps=speed, yaw_rate_rps=yaw_rate)


def colour_mask(frame, rgb):
    return np.all(frame == np.asarray(rgb, np.uint8), axis=-1)


# --- parsing ---------------------------------------------------------------------------------------------
def test_parse_gives_the_canonical_set_and_label():
    c = parse_conditions("noise=moderate, lighting=0.5")
    assert c == parse_conditions("lighting=0.5,noise=0.5")
    assert c.label == "lighting=0.5,noise=0.5"  # table order, levels as numbers
    assert c.level("noise") == 0.5 and c.level("shadows") == 0.0
    assert parse_conditions(c.label) == c
    for text in ("none", "", "  ", "lighting=0,noise=0"):
        assert parse_conditions(text) == Conditions() and parse_conditions(text).label == "none"
    assert {name: parse_conditions(f"shadows={name}").level("shadows") for name in LEVEL_NAMES} == LEVEL_NAMES
    every = parse_conditions(",".join(f"{name}=severe" for name in reversed(CONDITION_NAMES)))
    assert every.label == ",".join(f"{name}=1" for name in CONDITION_NAMES)
    assert parse_conditions(every.label) == every


@pytest.mark.parametrize(
    "text, message",
    [
        ("fog=0.5", "unknown condition 'fog'; valid names: " + ", ".join(CONDITION_NAMES)),
        ("lighting=1.5", "condition lighting: level 1.5 is outside [0, 1]"),
        ("lighting=-0.1", "condition lighting: level -0.1 is outside [0, 1]"),
        ("lighting=nan", "condition lighting: level nan is outside [0, 1]"),
        ("lighting=bright", "condition lighting: level 'bright' is not a number in [0, 1] or mild, moderate, severe"),
        ("lighting=0.5,noise=0.1,lighting=1", "condition lighting is given twice"),
        ("lighting", "malformed condition 'lighting'"),
        ("lighting=", "malformed condition 'lighting='"),
        ("=0.5", "malformed condition '=0.5'"),
        ("lighting=0.5,,noise=1", "malformed condition an empty item"),
        ("lighting=0.5,", "malformed condition an empty item"),
        ("lighting=0.5=1", "malformed condition 'lighting=0.5=1'"),
        ("none,lighting=1", "malformed condition 'none'"),
    ],
)
def test_bad_conditions_are_one_line_errors(text, message):
    with pytest.raises(ValueError) as error:
        parse_conditions(text)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_the_table_says_what_level_1_means_and_levels_interpolate():
    assert CONDITION_NAMES == tuple(CONDITIONS) and "latency_spike" not in RENDERING_CONDITIONS
    for condition in CONDITIONS.values():
        assert condition.severe and "\n" not in condition.severe and condition.at_level_1
    p = parse_conditions("lighting=0.5,road_colour=1,line_width=mild").parameters
    assert p.brightness == pytest.approx(0.7)
    assert p.asphalt_rgb == CONDITIONS["road_colour"].at_level_1["asphalt_rgb"]
    assert p.line_width_scale == pytest.approx(1 + 0.25 * (CONDITIONS["line_width"].at_level_1["line_width_scale"] - 1))
    assert Conditions().appearance() == Appearance() and Conditions().camera() == CameraModel()


def test_sim_node_parameters_carry_conditions_and_seed():
    c = sim_config_from_parameters({"conditions": "noise=mild", "seed": 3})
    assert (c.conditions.label, c.seed) == ("noise=0.25", 3)
    with pytest.raises(ConfigError, match=r"^here: conditions='fog=1': unknown condition 'fog'; valid names: "):
        sim_config_from_parameters({"conditions": "fog=1"}, "here")


# --- what each condition does to the frame ----------------------------------------------------------------
@pytest.fixture(scope="module")
def clear(stadium_track):
    return render(stadium_track)


def test_level_0_is_the_clear_frame_exactly(stadium_track, clear):
    zero = ",".join(f"{name}=0" for name in CONDITION_NAMES)
    assert np.array_equal(render(stadium_track, zero, seed=5, speed=10.0, yaw_rate=1.0), clear)
    # the clear world draws its palette colours exactly, and a standing car is not blurred
    assert colour_mask(clear, ASPHALT).any() and colour_mask(clear, RED_LINE).any()
    assert np.array_equal(render(stadium_track, "motion_blur=1"), clear)


def test_lighting_scales_brightness_and_colour_temperature_warms(stadium_track, clear):
    ground = slice(300, 480)  # no clipping there: every ground colour is below 255
    for level, factor in ((1.0, 0.4), (0.5, 0.7)):
        dim = render(stadium_track, f"lighting={level}")
        assert dim[ground].mean() == pytest.approx(factor * clear[ground].mean(), rel=0.02)
    warm = render(stadium_track, "colour_temperature=1").astype(float)
    assert np.array_equal(warm[..., 0], clear[..., 0])  # below 6500 K red keeps its gain of 1
    assert warm[..., 1].mean() < 0.9 * clear[..., 1].mean() and warm[..., 2].mean() < 0.7 * clear[..., 2].mean()


def test_noise_has_the_tables_std(stadium_track, clear):
    ground = slice(300, 480)
    for level in (1.0, 0.5):
        noisy = render(stadium_track, f"noise={level}", seed=1)
        diff = noisy[ground].astype(float) - clear[ground]
        std = CONDITIONS["noise"].at_level_1["noise_std"] * level
        assert diff.std() == pytest.approx(std, rel=0.05) and abs(diff.mean()) < 0.1 * std


def test_shadows_darken_bands_fixed_in_the_world(stadium_track, clear):
    darkness = CONDITIONS["shadows"].at_level_1["shadow_darkness"]
    shaded = render(stadium_track, "shadows=1", seed=2)
    changed = np.any(shaded != clear, axis=-1)
    top = Renderer(stadium_track).camera.first_ground_row
    assert 0.05 < changed[top:].mean() < 0.95  # bands, not the whole ground
    assert not changed[:top].any()  # never the sky
    ratio = shaded[changed].astype(float) / np.maximum(clear[changed], 1)
    assert np.median(ratio) == pytest.approx(1 - darkness, abs=0.02)
    # 3 m further on, the ground points shaded before are still shaded: the bands stay where they are.
    cam = CameraModel()
    x, y, yaw = POSE
    later = (x + 3.0, y, yaw)
    moved = np.any(render(stadium_track, "shadows=1", seed=2, pose=later) != render(stadium_track, pose=later), axis=-1)
    rows, cols = np.nonzero(changed[top + 10 :])
    pick = np.random.default_rng(0).choice(len(rows), 300, replace=False)
    uv = np.column_stack([cols[pick], rows[pick] + top + 10]).astype(float)
    ground_car = cam.pixel_to_ground(uv)  # car frame at POSE -> world -> image at `later`
    world = ground_car + (x, y)
    to_image = cam.car_ground_to_image() @ world_to_car(*later)
    p = np.column_stack([world, np.ones(len(world))]) @ to_image.T
    u, v = np.rint(p[:, 0] / p[:, 2]).astype(int), np.rint(p[:, 1] / p[:, 2]).astype(int)
    inside = (v < 480) & (u >= 0) & (u < 640)
    assert inside.sum() > 100 and moved[v[inside], u[inside]].mean() > 0.95
    # a different seed lays the bands out differently
    assert not np.array_equal(render(stadium_track, "shadows=1", seed=3), shaded)


def test_motion_blur_follows_speed_and_yaw_rate(stadium_track, clear):
    def gradient(frame, axis, rows):  # energy: a blurred step keeps its total variation, not its energy
        return np.square(np.diff(frame[rows].astype(float), axis=axis)).mean()

    # Heading 0.3 rad off the road, its lines cross the image rows (driving along a straight road they
    # would look the same while they smear).
    askew = (POSE[0], POSE[1], 0.3)
    sharp = render(stadium_track, pose=askew)
    fast = render(stadium_track, "motion_blur=1", speed=10.0, pose=askew)
    near, far = slice(400, 480), slice(Renderer(stadium_track).camera.first_ground_row, 260)
    assert gradient(fast, 0, near) < 0.8 * gradient(sharp, 0, near)  # rows near the car smear vertically
    assert np.array_equal(fast[far], sharp[far])  # far rows hardly move: under a pixel per exposure
    mild = render(stadium_track, "motion_blur=0.25", speed=10.0, pose=askew)
    assert gradient(fast, 0, near) < gradient(mild, 0, near) < gradient(sharp, 0, near)
    turning = render(stadium_track, "motion_blur=1", yaw_rate=1.0)
    assert gradient(turning, 1, slice(300, 480)) < 0.8 * gradient(clear, 1, slice(300, 480))


def first_grass_row(frame, column=0):
    """The first row from the top at `column` that shows ground (grass is greener than it is blue)."""
    f = frame[:, column].astype(int)
    return int(np.flatnonzero(f[:, 1] > f[:, 2])[0])


def test_camera_offsets_move_the_horizon_the_road_and_the_line(stadium_track, clear):
    cam = CameraModel()
    pitched = render(stadium_track, "camera_pitch=1")
    extra = math.radians(CONDITIONS["camera_pitch"].at_level_1["camera_pitch_offset_deg"])
    expected = cam.focal_px * (math.tan(cam.pitch_rad + extra) - math.tan(cam.pitch_rad))
    assert first_grass_row(clear) - first_grass_row(pitched) == pytest.approx(expected, abs=3)

    row = int(cam.row_of_ground_distance(12.0))

    def road_width_px(frame):  # road and lines: everything that is not grass on the row
        return int((~colour_mask(frame[row : row + 1], GRASS)).sum())

    low = render(stadium_track, "camera_height=1")
    height = cam.height_m + CONDITIONS["camera_height"].at_level_1["camera_height_offset_m"]
    # a ground row r px below the horizon lies f h / r ahead: the road's width in px goes as 1 / h
    assert road_width_px(low) / road_width_px(clear) == pytest.approx(cam.height_m / height, rel=0.05)

    def red_column(frame, row):
        return np.flatnonzero(colour_mask(frame[row : row + 1], RED_LINE)[0]).mean()

    turned = render(stadium_track, "camera_yaw=1")
    far_row = int(cam.row_of_ground_distance(40.0))
    yaw = math.radians(CONDITIONS["camera_yaw"].at_level_1["camera_yaw_offset_deg"])
    # the line straight ahead moves right by about f tan(yaw) (exactly so at infinity)
    assert red_column(turned, far_row) - red_column(clear, far_row) == pytest.approx(
        cam.focal_px * math.tan(yaw), rel=0.1
    )


def test_road_grass_and_line_colours_and_line_width(stadium_track, clear):
    for condition, recoloured in (
        ("road_colour", {"asphalt_rgb": ASPHALT}),
        ("grass_colour", {"grass_rgb": GRASS}),
        ("line_colour", {"red_line_rgb": RED_LINE, "white_line_rgb": WHITE_LINE}),
    ):
        frame = render(stadium_track, f"{condition}=1")
        untouched = np.ones(clear.shape[:2], bool)
        for parameter, clear_rgb in recoloured.items():
            was = colour_mask(clear, clear_rgb)
            assert was.any() and colour_mask(frame, CONDITIONS[condition].at_level_1[parameter])[was].all()
            untouched &= ~was
        assert np.array_equal(frame[untouched], clear[untouched])
    wide = render(stadium_track, "line_width=1")
    red = colour_mask(clear, RED_LINE)[470].sum()
    assert colour_mask(wide, RED_LINE)[470].sum() > 2 * red
    assert colour_mask(wide, ASPHALT)[470].sum() > 0.8 * colour_mask(clear, ASPHALT)[470].sum()  # still a road


def test_road_width_widens_the_road_the_world_draws_and_drives():
    circuit = load_circuit("simple_circuit")
    clear = World(circuit, SimConfig())
    wide = World(circuit, SimConfig(conditions=parse_conditions("road_width=1")))
    assert clear.circuit is circuit and wide.circuit.half_width_m == pytest.approx(2.2 * circuit.half_width_m)
    assert np.array_equal(wide.circuit.centerline, circuit.centerline)
    frames = [w.renderer.render(w.state.x, w.state.y, w.state.yaw) for w in (clear, wide)]
    row = 240  # just below the horizon: both roads' edges in view
    asphalt = [colour_mask(f, ASPHALT)[row].sum() for f in frames]
    red = [colour_mask(f, RED_LINE)[row].sum() for f in frames]
    assert asphalt[1] > 2 * asphalt[0] and red[0] == red[1] > 0  # the road 2.2x as wide, the line the same
    # Off track is judged against the road as driven.
    for world in (clear, wide):
        world.reset(lateral_offset_m=5.0)
    assert clear.is_off_track and not wide.is_off_track


def test_a_road_too_wide_for_its_tightest_bend_is_refused():
    with pytest.raises(CircuitError, match=r"circuit 'montmelo' with its road 4.5x as wide: too tight for its road"):
        widen_road(load_circuit("montmelo"), 4.5)
    assert widen_road(load_circuit("montmelo"), 1.0).half_width_m == load_circuit("montmelo").half_width_m


def test_same_seed_same_frames_other_seed_other_noise():
    circuit = load_circuit("simple_circuit")
    every = parse_conditions(",".join(f"{name}=0.5" for name in RENDERING_CONDITIONS))

    def frames(seed):
        world = World(circuit, SimConfig(conditions=every, seed=seed))
        out = []
        for _ in range(3):
            for _ in range(10):
                world.step(Command(8.0, 0.2))
            out.append(world.render().copy())
        return out

    a, b, c = frames(4), frames(4), frames(5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


# --- latency spikes: the clock ----------------------------------------------------------------------------
class NumberedLink:
    """Lock-step link answering frame k with command v = k / 1000 at once."""

    def __init__(self):
        self.frames = 0

    def ask(self, frame, t, state):
        self.frames += 1
        return Reply(Command(self.frames / 1000.0, 0.0), 0.0)


def lockstep_timeline(conditions, seed):
    config = SimConfig(latency_s=0.0, conditions=parse_conditions(conditions), seed=seed)
    world = World(load_circuit("simple_circuit"), config)
    clock = EpisodeClock(config, timeout_s=4.0)
    applied = []
    clock.run(world, NumberedLink(), on_apply=lambda t, command: applied.append((round(t, 6), command.v)))
    return applied, clock.latency_spikes


def test_latency_spikes_delay_some_commands_deterministically():
    clear, none_spiked = lockstep_timeline("none", 0)
    spiked, count = lockstep_timeline("latency_spike=1", 0)
    assert none_spiked == 0 and 0 < count < 40  # 10 % of 120 frames, about
    assert lockstep_timeline("latency_spike=1", 0) == (spiked, count)  # same seed, same timeline
    assert lockstep_timeline("latency_spike=1", 1)[0] != spiked
    frame_t = dict((v, t) for t, v in clear)  # without spikes a command applies at its own frame's time
    delays = [t - frame_t[v] for t, v in spiked]
    extra = CONDITIONS["latency_spike"].at_level_1["latency_spike_s"]
    # a spiked command applies `extra` after its frame (on the physics grid); the ones behind it wait for it
    assert max(delays) == pytest.approx(extra, abs=0.011) and min(delays) > -1e-9
    assert sum(d > 1e-9 for d in delays) >= count
    assert [v for _, v in spiked] == sorted(v for _, v in spiked)  # still in frame order
    assert {v for _, v in spiked} <= {v for _, v in clear}


# --- the command lines ------------------------------------------------------------------------------------
def test_drive_with_a_condition_records_its_label(tmp_path, capsys):
    from pilotnet_brain.cli.main import main

    args = ["drive", "--brain", "explicit", "--timeout", "3", "--latency-ms", "33", "--quiet", "--json"]
    code = main(args + ["--condition", "noise=mild,lighting=0.5", "--seed", "2", "--out", str(tmp_path)])
    assert code == 1  # 3 s is not a lap
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["condition"] == "lighting=0.5,noise=0.25" and metrics["sim_time_s"] > 2.9
    (saved,) = tmp_path.glob("*.json")
    assert json.loads(saved.read_text())["condition"] == "lighting=0.5,noise=0.25"
    assert main(args) == 1 and json.loads(capsys.readouterr().out)["condition"] == "none"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--condition", "fog=1"], "argument --condition: unknown condition 'fog'; valid names: lighting, "),
        (["--condition", "noise=2"], "argument --condition: condition noise: level 2 is outside [0, 1]"),
    ],
)
def test_drive_refuses_a_bad_condition_in_one_line(capsys, extra, message):
    from pilotnet_brain.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(["drive", "--brain", "explicit", *extra])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pilotnet-brain drive: error: {message}") and err.count("\n") == 1


def test_record_refuses_condition_with_randomize(tmp_path, capsys):
    from pilotnet_brain.cli.main import main

    code = main(["record", "--out", str(tmp_path / "d"), "--condition", "noise=1", "--randomize-conditions", "0.5"])
    err = capsys.readouterr().err
    assert code == 2 and "--randomize-conditions" in err and err.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_random_conditions_are_drawn_from_the_seed():
    draws = [random_conditions(np.random.default_rng(7), 0.5) for _ in range(2)]
    assert draws[0] == draws[1] and draws[0]
    sets = [random_conditions(np.random.default_rng(seed), 0.5) for seed in range(20)]
    assert len({s.label for s in sets}) == 20
    for s in sets:
        assert parse_conditions(s.label) == s and all(0 < level <= 0.5 for _, level in s.levels)
        assert s.level("latency_spike") == 0
    assert random_conditions(np.random.default_rng(0), 0.0) == Conditions()


def ring_track(folder, radius_m=25.0, half_width_m=3.5):
    """A TUM-format CSV of a small ring (a short lap, so recording one is quick)."""
    angle = np.linspace(0.0, 2 * math.pi, 120, endpoint=False)
    rows = [f"{radius_m * math.cos(a)!r},{radius_m * math.sin(a)!r},{half_width_m},{half_width_m}" for a in angle]
    path = folder / "ring.csv"
    path.write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n" + "\n".join(rows) + "\n")
    return path


def test_record_randomizes_conditions_per_lap_and_the_expert_still_drives(tmp_path, capsys):
    from pilotnet_brain.cli.main import main

    out = tmp_path / "data"
    args = ["record", "--out", str(out), "--circuits", str(ring_track(tmp_path)), "--direction", "ccw", "--laps", "2"]
    assert main(args + ["--frame-stride", "20", "--randomize-conditions", "0.6", "--seed", "1"]) == 0
    summary = json.loads((out / "dataset.json").read_text())
    (sequence,) = summary["sequences"]
    assert summary["complete"] and summary["randomize_conditions"] == 0.6
    assert sequence["lap_end_reasons"] == ["lap_completed"] * 2
    labels = sequence["lap_conditions"]
    assert len(labels) == 2 and labels[0] != labels[1] and "none" not in labels
    assert all(parse_conditions(label).label == label for label in labels)
    assert sum(sequence["lap_frames"]) == sequence["frames"]
