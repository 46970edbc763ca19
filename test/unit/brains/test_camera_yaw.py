"""The camera's yaw on the car: the vanishing point measures it, the view correction undoes it, PilotNet
estimates it while driving and then drives a turned camera as well as a straight one."""

import math

import numpy as np
import pytest

from pilotnet_brain.brains.camera_yaw import (
    CameraYawEstimator,
    vanishing_point,
    view_correction,
    yaw_of_column,
)
from pilotnet_brain.brains.from_parameters import build_brain
from pilotnet_brain.config import BRAIN_NODE
from pilotnet_brain.model.preprocessing import crop_and_resize
from pilotnet_brain.sim.camera import CameraModel
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.conditions import CONDITIONS, parse_conditions
from pilotnet_brain.sim.world import SimConfig, World

CAMERA = CameraModel()
FULL_TURN_DEG = CONDITIONS["camera_yaw"].at_level_1["camera_yaw_offset_deg"]  # the condition at level 1


def start_frame(conditions: str = "none", circuit: str = "montreal") -> np.ndarray:
    """The frame at the start of a circuit: the car on the centre line of a straight, heading along it."""
    return World(load_circuit(circuit), SimConfig(conditions=parse_conditions(conditions))).render()


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_the_vanishing_point_gives_the_cameras_yaw(level):
    found = vanishing_point(start_frame(f"camera_yaw={level}"), CAMERA.horizon_row)
    assert found is not None
    column, row, spread = found
    assert spread < 6.0
    assert abs(row - CAMERA.horizon_row) < 3.0
    assert math.degrees(yaw_of_column(column, CAMERA)) == pytest.approx(level * FULL_TURN_DEG, abs=0.3)


@pytest.mark.parametrize(
    "other",
    [
        "lighting",
        "colour_temperature",
        "shadows",
        "noise",
        "motion_blur",
        "road_colour",
        "grass_colour",
        "line_colour",
        "line_width",
        "camera_pitch",
        "camera_height",
    ],
)
def test_the_vanishing_point_holds_under_the_other_conditions(other):
    found = vanishing_point(start_frame(f"camera_yaw=0.5,{other}=0.5"), CAMERA.horizon_row)
    assert found is not None, other
    assert math.degrees(yaw_of_column(found[0], CAMERA)) == pytest.approx(0.5 * FULL_TURN_DEG, abs=0.4)


@pytest.mark.parametrize("picture", ["black", "grey", "noise"])
def test_a_frame_without_straight_edges_gives_no_sample(picture):
    rng = np.random.default_rng(0)
    frame = {
        "black": np.zeros((480, 640, 3), np.uint8),
        "grey": np.full((480, 640, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
    }[picture]
    estimator = CameraYawEstimator(every=1, min_samples=1)
    estimator.observe(frame, turn_rate=0.0)
    assert estimator.samples == 0
    assert estimator.yaw_rad == 0.0


def test_the_estimator_samples_straight_driving_only_and_starts_from_the_calibration():
    turned = start_frame("camera_yaw=1")
    estimator = CameraYawEstimator(
        initial_yaw_rad=math.radians(1.0), every=2, min_samples=3, straight_frames=4, max_mean_turn_rate=0.01
    )
    for _ in range(10):
        estimator.observe(turned, turn_rate=0.5)  # turning: the road ahead bends, no sample
    for _ in range(10):
        estimator.observe(turned, turn_rate=0.05)  # a long sweeper: small but steady w, no sample
    assert estimator.samples == 0 and estimator.yaw_rad == pytest.approx(math.radians(1.0))
    for _ in range(3):  # the last frames still hold the sweeper's turn rates
        estimator.observe(turned, turn_rate=0.0)
    assert estimator.samples == 0
    for _ in range(4):  # straight for the whole window now: every second frame, two samples, < min_samples
        estimator.observe(turned, turn_rate=(-1) ** estimator._frames * 0.03)  # corrections around zero
    assert estimator.samples == 2 and estimator.yaw_rad == pytest.approx(math.radians(1.0))
    estimator.observe(turned, turn_rate=0.0)
    estimator.observe(turned, turn_rate=0.0)
    assert estimator.samples == 3
    assert math.degrees(estimator.yaw_rad) == pytest.approx(FULL_TURN_DEG, abs=0.3)
    estimator.reset()
    assert estimator.samples == 0 and estimator.yaw_rad == pytest.approx(math.radians(1.0))


def test_the_view_correction_turns_a_turned_frame_back():
    straight = crop_and_resize(start_frame()).astype(int)
    turned = start_frame("camera_yaw=1")
    corrected = crop_and_resize(turned, view_correction(CAMERA, math.radians(FULL_TURN_DEG))).astype(int)
    border = 20  # input columns the turn brought in from outside the frame (5 deg ~ 15 of 200)
    assert np.abs(corrected - straight)[:, :-border].mean() < 1.0
    assert np.abs(crop_and_resize(turned).astype(int) - straight)[:, :-border].mean() > 8.0


def test_no_view_and_the_identity_view_sample_the_same_input():
    frame = start_frame("noise=0.5")
    assert np.abs(crop_and_resize(frame, np.eye(3)).astype(int) - crop_and_resize(frame).astype(int)).max() <= 1


def test_the_camera_yaw_parameters_reach_both_brains():
    params = BRAIN_NODE.resolve({"brain": "explicit", "camera_yaw_deg": 4})
    assert build_brain(params).camera.yaw_rad == pytest.approx(math.radians(4.0))
    for bad in (25.0, float("nan"), "left"):
        with pytest.raises(Exception, match="camera_yaw_deg"):
            BRAIN_NODE.resolve({"brain": "explicit", "camera_yaw_deg": bad})


def test_the_calibrated_explicit_brain_sees_the_line_where_it_is():
    from pilotnet_brain.brains.explicit import ExplicitBrain

    turned = start_frame("camera_yaw=1")
    calibrated = ExplicitBrain(camera=CameraModel(yaw_rad=math.radians(FULL_TURN_DEG))).line_points(turned)
    uncalibrated = ExplicitBrain().line_points(turned)
    # On the start straight the line runs along the car's X axis at Y = 0.
    assert np.abs(calibrated[:, 1]).max() < 0.1
    assert np.abs(uncalibrated[:, 1]).max() > 0.5


# --- closed loop ------------------------------------------------------------------------------------------


def _deviation(conditions: str, estimate: bool, seconds: float = 30.0) -> tuple[float, float]:
    from pilotnet_brain.brains.pilotnet import PilotNetBrain
    from pilotnet_brain.evaluation.metrics import compute_metrics
    from pilotnet_brain.sim.world import run_episode

    brain = PilotNetBrain(estimate_camera_yaw=estimate)
    world = World(
        load_circuit("simple_circuit", "ccw"),
        SimConfig(clock="lockstep", latency_s=0.002, timeout_s=seconds, conditions=parse_conditions(conditions)),
    )
    metrics = compute_metrics(run_episode(world, brain).record)
    return metrics["position_deviation_mae_m"], math.degrees(brain.camera_yaw_rad)


def test_pilotnet_estimates_a_turned_camera_and_drives_as_with_a_straight_one():
    pytest.importorskip("torch")
    from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL

    if not SHIPPED_MODEL.exists():
        pytest.skip(f"no shipped weights at {SHIPPED_MODEL}")
    clear, clear_yaw = _deviation("none", estimate=True)
    blind_to_it, _ = _deviation("camera_yaw=0.5", estimate=False)
    estimated, yaw = _deviation("camera_yaw=0.5", estimate=True)
    assert clear_yaw == 0.0  # a straight camera: frames used as they are
    assert yaw == pytest.approx(0.5 * FULL_TURN_DEG, abs=0.75)  # short straights: 2.05 deg after 30 s
    assert blind_to_it > 1.5 * clear, (blind_to_it, clear)  # the condition bites without the estimate
    assert estimated <= 1.5 * clear, (estimated, clear)
