"""The one preprocessing path: shape/range, the crop, bad frames, and training == offline eval == brain."""

import csv
import math

import cv2
import numpy as np
import pytest

from pilotnet_brain.data.recording import CSV_COLUMNS, PNG_COMPRESSION
from pilotnet_brain.errors import ImageError
from pilotnet_brain.model.preprocessing import (
    FRAME_HEIGHT,
    FRAME_WIDTH,
    INPUT_SHAPE,
    crop_and_resize,
    preprocess,
    preprocess_batch,
    to_network_input,
)
from pilotnet_brain.sim.camera import Appearance
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.vehicle import VehicleState
from pilotnet_brain.sim.world import World

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


# --- helpers ---------------------------------------------------------------------------------------
def pose_frames(world, count, offsets=(0.0, 0.8, -1.1)):
    """`count` real rendered frames at spread-out poses along the circuit (some off the line)."""
    circuit = world.circuit
    pts, tan = circuit.centerline, circuit.tangents()
    frames = []
    for k in range(count):
        i = (k * len(pts)) // count
        yaw = math.atan2(tan[i][1], tan[i][0])
        off = offsets[k % len(offsets)]
        world.state = VehicleState(pts[i][0] - math.sin(yaw) * off, pts[i][1] + math.cos(yaw) * off, yaw)
        frames.append(world.render().copy())
    return frames


@pytest.fixture(scope="module")
def frames():
    world = World(load_circuit("simple_circuit"))
    shots = pose_frames(world, 4)
    # One more under different lighting, with sensor noise (more distinct pixel values for PNG to keep).
    bright = World(load_circuit("simple_circuit"), appearance=Appearance(brightness=1.2, noise_std=4.0), seed=3)
    shots += pose_frames(bright, 1)
    return shots


def write_sequence(seq_dir, frames, labels):
    """A recorded sequence exactly as dataset.record_dataset writes it (RGB -> BGR PNG + data.csv)."""
    (seq_dir / "images").mkdir(parents=True)
    with open(seq_dir / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for i, (frame, (v, w)) in enumerate(zip(frames, labels)):
            name = f"images/{i:06d}.png"
            assert cv2.imwrite(
                str(seq_dir / name),
                cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION],
            )
            writer.writerow([name, f"{v:.6g}", f"{w:.6g}", 0, 0, 0, 0, round(i / 30, 4), 0])


@pytest.fixture
def tiny_model(tmp_path):
    from pilotnet_brain.model.labels import DEFAULT_LABEL_RANGES
    from pilotnet_brain.model.network import PilotNet
    from pilotnet_brain.model.weights import save_model

    torch.manual_seed(0)
    return save_model(PilotNet().eval(), tmp_path / "model" / "m.safetensors", DEFAULT_LABEL_RANGES)


# --- shape, dtype, range ---------------------------------------------------------------------------
def test_preprocess_shape_dtype_range(frames):
    x = preprocess(frames[0])
    assert x.shape == INPUT_SHAPE == (3, 66, 200)
    assert x.dtype == np.float32
    assert x.flags.c_contiguous
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.max() > 0.5 and x.std() > 0.01  # a real image, not blank
    small = crop_and_resize(frames[0])
    assert small.shape == (66, 200, 3) and small.dtype == np.uint8


def test_extreme_pixel_values_map_to_0_and_1():
    assert np.all(preprocess(np.zeros((FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)) == 0.0)
    assert np.all(preprocess(np.full((FRAME_HEIGHT, FRAME_WIDTH, 3), 255, np.uint8)) == 1.0)


def test_channels_stay_rgb_in_chw_order():
    red = np.zeros((FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8)
    red[..., 0] = 255
    x = preprocess(red)
    assert np.all(x[0] == 1.0) and np.all(x[1:] == 0.0)


def test_batch_equals_single(frames):
    batch = preprocess_batch(frames[:3])
    assert batch.shape == (3, *INPUT_SHAPE) and batch.dtype == np.float32
    for i in range(3):
        assert np.array_equal(batch[i], preprocess(frames[i]))


def test_non_contiguous_views_give_the_same_result(frames):
    mirrored = frames[0][:, ::-1]
    assert np.array_equal(preprocess(mirrored), preprocess(np.ascontiguousarray(mirrored)))


# --- the crop: exactly the lower half --------------------------------------------------------------
def test_top_half_has_no_effect(frames):
    frame = frames[0].copy()
    base = preprocess(frame)
    frame[: FRAME_HEIGHT // 2] = 0  # wipe the whole top half (sky) ...
    frame[100:140, 300:340] = (255, 0, 255)  # ... and paint a marker in it
    frame[FRAME_HEIGHT // 2 - 1] = 255  # the last row above the crop
    assert np.array_equal(preprocess(frame), base)


def test_bottom_half_marker_changes_the_input(frames):
    base = preprocess(frames[0])
    frame = frames[0].copy()
    frame[400:440, 300:340] = (255, 0, 255)
    changed = np.argwhere(np.any(preprocess(frame) != base, axis=0))
    assert len(changed)
    # The marker lands where it should: rows (400-240)/240*66 = 44..53, cols 300/640*200 = 93..107.
    assert changed[:, 0].min() >= 43 and changed[:, 0].max() <= 55
    assert changed[:, 1].min() >= 92 and changed[:, 1].max() <= 107


def test_top_of_the_lower_half_feeds_the_first_output_row(frames):
    base = preprocess(frames[0])
    frame = frames[0].copy()
    # Bilinear 240 -> 66 rows samples output row 0 at crop row 1.32, i.e. frame rows 241-242.
    frame[FRAME_HEIGHT // 2 + 1] = 255
    diff = np.any(preprocess(frame) != base, axis=(0, 2))
    assert diff[0] and not diff[1:].any()


# --- bad frames ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros((FRAME_HEIGHT, FRAME_WIDTH, 3), np.float32), ["uint8", "float32"]),
        (np.zeros((FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint16), ["uint8", "uint16"]),
        (np.zeros((240, 320, 3), np.uint8), ["480x640x3", "(240, 320, 3)"]),
        (np.zeros((FRAME_HEIGHT, FRAME_WIDTH), np.uint8), ["480x640x3", "(480, 640)"]),  # grayscale
        (np.zeros((FRAME_HEIGHT, FRAME_WIDTH, 4), np.uint8), ["480x640x3", "(480, 640, 4)"]),  # RGBA
        (np.zeros((FRAME_WIDTH, FRAME_HEIGHT, 3), np.uint8), ["480x640x3", "(640, 480, 3)"]),  # transposed
        ([[0, 0, 0]] * 3, ["numpy", "list"]),
        (None, ["numpy", "NoneType"]),
    ],
)
def test_bad_frames_raise_image_error_with_a_helpful_message(bad, words):
    for fn in (preprocess, crop_and_resize):
        with pytest.raises(ImageError) as info:
            fn(bad)
        for word in words:
            assert word in str(info.value)
    assert issubclass(ImageError, ValueError)
    with pytest.raises(ImageError):
        preprocess_batch([np.zeros((FRAME_HEIGHT, FRAME_WIDTH, 3), np.uint8), bad])


# --- training == offline evaluation == brain, bit for bit ------------------------------------------
def test_training_offline_eval_and_brain_paths_are_bit_identical(frames, tmp_path, tiny_model, monkeypatch):
    from pilotnet_brain.brains.pilotnet import PilotNetBrain
    from pilotnet_brain.data.frames import CACHE_NAME, load_frames
    from pilotnet_brain.evaluation.offline import predict_frames
    from pilotnet_brain.model.labels import DEFAULT_LABEL_RANGES
    from pilotnet_brain.runtime.base import Backend

    expected = np.stack([preprocess(f) for f in frames])
    labels = [(10.0 + 0.1 * i, 0.05 * i - 0.1) for i in range(len(frames))]
    data_dir = tmp_path / "data"
    write_sequence(data_dir / "simple_circuit_ccw", frames[:3], labels[:3])
    write_sequence(data_dir / "simple_circuit_cw", frames[3:], labels[3:])

    # (1) Training: PNG -> load_frames (cached 66x200 crops) -> to_network_input, one frame and per batch.
    fresh = load_frames(data_dir, workers=1)
    assert (data_dir / CACHE_NAME).is_file()
    cached = load_frames(data_dir, workers=1)
    for frameset in (fresh, cached):
        assert frameset.images.dtype == np.uint8 and frameset.images.shape == (len(frames), 66, 200, 3)
        np.testing.assert_allclose(frameset.labels, labels, rtol=1e-5)
        assert list(frameset.sequence) == [0, 0, 0, 1, 1]
        assert frameset.sequences == ["simple_circuit_ccw", "simple_circuit_cw"]
        for i, frame in enumerate(frames):
            assert np.array_equal(to_network_input(frameset.images[i]), preprocess(frame)), f"frame {i}"
        assert np.array_equal(to_network_input(frameset.images), expected)

    # (2) Offline evaluation: what predict_frames hands the backend (in odd batch sizes, in order).
    class SpyBackend(Backend):
        name = "spy"

        def __init__(self):
            super().__init__("spy.safetensors")
            self.seen = []

        @property
        def label_ranges(self):
            return DEFAULT_LABEL_RANGES

        def predict_normalized(self, batch):
            self.seen.append(np.array(batch, copy=True))
            return super().predict_normalized(batch)

        def _predict_normalized(self, batch):
            return np.stack([batch.mean(axis=(1, 2, 3)), batch[:, 0].mean(axis=(1, 2))], axis=1)

    spy = SpyBackend()
    out = predict_frames(spy, fresh, batch_size=2)
    assert [len(b) for b in spy.seen] == [2, 2, 1]
    seen = np.concatenate(spy.seen)
    assert seen.dtype == np.float32
    assert np.array_equal(seen, expected)
    assert np.array_equal(out[:, 0], expected.mean(axis=(1, 2, 3)))  # outputs kept in frame order

    # (3) The brain (what the ROS node runs): the batch PilotNetBrain.step gives its backend.
    brain = PilotNetBrain(model_path=tiny_model, threads=1)
    inputs = []
    original = brain.backend.predict

    def spy_predict(batch):
        inputs.append(np.array(batch, copy=True))
        return original(batch)

    monkeypatch.setattr(brain.backend, "predict", spy_predict)
    for i, frame in enumerate(frames):
        result = brain.step(frame, stamp_s=i / 30)
        assert result.command.is_finite
        assert inputs[-1].shape == (1, *INPUT_SHAPE) and inputs[-1].dtype == np.float32
        assert np.array_equal(inputs[-1][0], preprocess(frame)), f"frame {i}"
        assert np.array_equal(inputs[-1][0], to_network_input(fresh.images[i]))


def test_cache_is_rebuilt_when_data_csv_changes(frames, tmp_path):
    from pilotnet_brain.data.frames import load_frames

    seq = tmp_path / "data" / "simple_circuit_ccw"
    write_sequence(seq, frames[:2], [(5.0, 0.1), (6.0, -0.2)])
    assert load_frames(tmp_path / "data", workers=1).labels[1, 0] == pytest.approx(6.0)
    text = (seq / "data.csv").read_text().replace("\nimages/000001.png,6,", "\nimages/000001.png,7,")
    (seq / "data.csv").write_text(text)
    assert load_frames(tmp_path / "data", workers=1).labels[1, 0] == pytest.approx(7.0)


def test_load_frames_without_data_says_how_to_record(tmp_path):
    from pilotnet_brain.data.frames import load_frames

    with pytest.raises(FileNotFoundError, match="record"):
        load_frames(tmp_path)


def test_laps_recorded_with_the_camera_turned_are_turned_back_for_training(tmp_path):
    """A lap under `camera_yaw` (dataset.json's lap conditions) is cropped through the view correction the
    brain applies at run time; the other laps of the same sequence as they are."""
    import json

    from pilotnet_brain.data.frames import load_frames
    from pilotnet_brain.sim.circuits import load_circuit
    from pilotnet_brain.sim.conditions import parse_conditions
    from pilotnet_brain.sim.world import SimConfig, World

    def render(conditions):
        return World(load_circuit("montreal"), SimConfig(conditions=parse_conditions(conditions))).render()

    straight, turned = render("none"), render("camera_yaw=1")
    data_dir = tmp_path / "data"
    write_sequence(data_dir / "montreal_ccw", [turned, turned, straight], [(10.0, 0.0)] * 3)
    laps = {"name": "montreal_ccw", "lap_conditions": ["camera_yaw=1", "none"], "lap_frames": [2, 1]}
    (data_dir / "dataset.json").write_text(json.dumps({"sequences": [laps]}))
    images = load_frames(data_dir, workers=1).images.astype(int)
    expected = crop_and_resize(straight).astype(int)
    border = 20  # input columns the turn brought in from outside the frame
    assert np.abs(images[0] - expected)[:, :-border].mean() < 1.0
    assert np.abs(crop_and_resize(turned).astype(int) - expected)[:, :-border].mean() > 8.0
    assert np.array_equal(images[2], expected)

    laps["lap_frames"] = [1, 1]  # the laps must account for every row of data.csv
    (data_dir / "dataset.json").write_text(json.dumps({"sequences": [laps]}))
    with pytest.raises(ValueError, match="the laps of montreal_ccw count 2 frames, data.csv 3"):
        load_frames(data_dir, workers=1, use_cache=False)
