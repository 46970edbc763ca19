"""PilotNet: the network, labels, weights files (safe loading), backends, the brain, training, offline eval."""

import json
import math
import pickle
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from torch import nn

from pilotnet_brain.brains.explicit import ExplicitBrain
from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL, PilotNetBrain
from pilotnet_brain.control import STOP
from pilotnet_brain.data.frames import FrameSet, block_split
from pilotnet_brain.errors import (
    BackendUnavailable,
    ModelFileError,
)
from pilotnet_brain.evaluation.offline import score
from pilotnet_brain.model.architecture import ARCHITECTURE, FLATTENED_FEATURES
from pilotnet_brain.model.labels import DEFAULT_LABEL_RANGES, LabelRanges
from pilotnet_brain.model.network import PilotNet
from pilotnet_brain.model.preprocessing import INPUT_SHAPE, crop_and_resize, preprocess
from pilotnet_brain.model.weights import METADATA_KEY, load_model, metadata_path, read_metadata, save_model
from pilotnet_brain.runtime.registry import BACKEND_NAMES, make_backend
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.vehicle import VehicleState
from pilotnet_brain.sim.world import World
from pilotnet_brain.train.trainer import TrainConfig, train, turn_weights

RANGES = LabelRanges(v_min=0.5, v_max=11.5, w_min=-2.5, w_max=2.0)  # not the defaults: must travel with the file


# --- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    return World(load_circuit("simple_circuit"))


def render_at(world, i, offset=0.0, yaw_offset=0.0):
    pts, tan = world.circuit.centerline, world.circuit.tangents()
    i %= len(pts)
    yaw = math.atan2(tan[i][1], tan[i][0])
    world.state = VehicleState(pts[i][0] - math.sin(yaw) * offset, pts[i][1] + math.cos(yaw) * offset, yaw + yaw_offset)
    return world.render().copy()


@pytest.fixture(scope="module")
def expert_frames(world):
    """~32 real frames at spread poses (on and off the line) with the explicit brain's labels."""
    brain = ExplicitBrain()
    images, labels = [], []
    n = len(world.circuit.centerline)
    for k in range(32):
        frame = render_at(world, k * n // 32, offset=((k * 7) % 5 - 2) * 0.4)
        brain.reset()
        cmd = brain.step(frame, 0.0).command
        images.append(crop_and_resize(frame))
        labels.append((cmd.v, cmd.w))
    return FrameSet(np.stack(images), np.asarray(labels, np.float32), np.zeros(32, np.int32), ["simple_circuit_ccw"])


def trained_like(seed=0):
    """A PilotNet with non-default BatchNorm statistics (so buffers must be saved too), in eval mode."""
    torch.manual_seed(seed)
    model = PilotNet()
    model.train()
    with torch.no_grad():
        model(torch.rand(4, *INPUT_SHAPE) * 0.5 + 0.2)
    return model.eval()


@pytest.fixture
def model_file(tmp_path):
    return save_model(trained_like(), tmp_path / "m.safetensors", RANGES, extra={"note": "test"})


# --- the network -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 4])
def test_output_shape(n):
    with torch.no_grad():
        y = PilotNet().eval()(torch.rand(n, *INPUT_SHAPE))
    assert y.shape == (n, 2) and y.dtype == torch.float32


def test_flatten_size_is_1152():
    model = PilotNet().eval()
    with torch.no_grad():
        feats = model.features(model.input_norm(torch.zeros(1, *INPUT_SHAPE)))
    assert tuple(feats.shape) == (1, 64, 1, 18)
    assert model.flatten(feats).shape[1] == FLATTENED_FEATURES == 1152
    assert model.regressor[0].in_features == 1152
    assert [m.out_features for m in model.regressor if isinstance(m, nn.Linear)] == [1164, 100, 50, 10, 2]
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [24, 36, 48, 64, 64]
    assert isinstance(model.input_norm, nn.BatchNorm2d)


def test_every_relu_is_its_own_module():
    model = PilotNet()
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 9  # 5 after convolutions, 4 after linears
    assert len({id(r) for r in relus}) == 9  # not one shared instance
    # Each follows a conv / linear directly (fusable pairs).
    for seq in (model.features, model.regressor):
        layers = list(seq)
        for i, m in enumerate(layers):
            if isinstance(m, nn.ReLU):
                assert isinstance(layers[i - 1], (nn.Conv2d, nn.Linear))


def test_a_training_step_changes_the_weights():
    torch.manual_seed(0)
    model = PilotNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.functional.mse_loss(model(torch.rand(4, *INPUT_SHAPE)), torch.full((4, 2), 0.5))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    optimizer.step()
    after = model.state_dict()
    for name, p in model.named_parameters():
        assert not torch.equal(before[name], after[name]), name


# --- labels ----------------------------------------------------------------------------------------
def test_label_normalisation_known_values_and_round_trip():
    r = DEFAULT_LABEL_RANGES
    np.testing.assert_allclose(
        r.normalize([[6.0, 0.0], [0.0, -3.0], [12.0, 3.0]]), [[0.5, 0.5], [0.0, 0.0], [1.0, 1.0]], atol=1e-7
    )
    rng = np.random.default_rng(0)
    vw = np.column_stack([rng.uniform(RANGES.v_min, RANGES.v_max, 50), rng.uniform(RANGES.w_min, RANGES.w_max, 50)])
    y = RANGES.normalize(vw)
    assert y.dtype == np.float32 and y.min() >= 0 and y.max() <= 1
    np.testing.assert_allclose(RANGES.denormalize(y), vw, atol=1e-5)
    np.testing.assert_allclose(RANGES.normalize(RANGES.denormalize(y)), y, atol=1e-6)
    assert LabelRanges.from_dict(RANGES.to_dict()) == RANGES


@pytest.mark.parametrize(
    "args", [(1, 1, -3, 3), (5, 1, -3, 3), (0, 12, 3, -3), (0, 12, 0, 0), (math.nan, 12, -3, 3), (0, 12, -3, math.nan)]
)
def test_bad_label_ranges_are_rejected(args):
    with pytest.raises(ValueError, match="increasing|finite"):
        LabelRanges(*args)


@pytest.mark.parametrize(
    "d", [{}, {"v": [0, 1]}, {"v": [0], "w": [0, 1]}, {"v": "ab", "w": [0, 1]}, {"v": [0, 1], "w": [1, 0]}, None]
)
def test_bad_label_range_dicts_are_rejected(d):
    with pytest.raises(ValueError):
        LabelRanges.from_dict(d)


@pytest.mark.parametrize("args", [(0, math.inf, -3, 3), (-math.inf, 12, -3, 3)])
def test_infinite_label_ranges_are_rejected(args):
    with pytest.raises(ValueError):
        LabelRanges(*args)


# --- weights files ---------------------------------------------------------------------------------
def test_save_load_round_trip(model_file):
    original = trained_like()
    model, meta, ranges = load_model(model_file)
    assert not model.training
    x = torch.rand(3, *INPUT_SHAPE)
    with torch.no_grad():
        assert torch.equal(model(x), original(x))
    for k, v in original.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert ranges == RANGES
    assert meta["architecture"] == ARCHITECTURE
    assert meta["input_shape"] == list(INPUT_SHAPE)
    assert meta["label_ranges"] == RANGES.to_dict()
    assert meta["note"] == "test"
    assert json.loads(metadata_path(model_file).read_text()) == meta == read_metadata(model_file)


def test_save_refuses_other_formats(tmp_path):
    with pytest.raises(ModelFileError, match="safetensors"):
        save_model(PilotNet(), tmp_path / "m.pt", RANGES)


def _state(model):
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def _meta(**changes):
    meta = {"architecture": ARCHITECTURE, "input_shape": list(INPUT_SHAPE), "label_ranges": RANGES.to_dict()}
    meta.update(changes)
    return {METADATA_KEY: json.dumps(meta)}


def test_bad_model_files(tmp_path):
    from safetensors.torch import save_file

    cases = {}
    cases["missing"] = (tmp_path / "nope.safetensors", "not found")
    (tmp_path / "random.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
    cases["random"] = (tmp_path / "random.safetensors", "not a readable safetensors")
    (tmp_path / "text.safetensors").write_text("these are not weights\n" * 20)
    cases["text"] = (tmp_path / "text.safetensors", "not a readable safetensors")
    save_file(_state(PilotNet(num_outputs=3)), str(tmp_path / "shape.safetensors"), metadata=_meta())
    cases["shape"] = (tmp_path / "shape.safetensors", r"not a PilotNet of this shape.*regressor\.8\.weight")
    save_file(_state(PilotNet()), str(tmp_path / "nometa.safetensors"))
    cases["no metadata"] = (tmp_path / "nometa.safetensors", "not a pilotnet_brain model")
    save_file(_state(PilotNet()), str(tmp_path / "arch.safetensors"), metadata=_meta(architecture="resnet"))
    cases["architecture"] = (tmp_path / "arch.safetensors", "architecture 'resnet'")
    save_file(
        _state(PilotNet()),
        str(tmp_path / "ranges.safetensors"),
        metadata=_meta(label_ranges={"v": [3, 1], "w": [0, 1]}),
    )
    cases["ranges"] = (tmp_path / "ranges.safetensors", "label ranges")
    state = _state(PilotNet())
    state.pop("regressor.0.bias")
    save_file(state, str(tmp_path / "missing_key.safetensors"), metadata=_meta())
    cases["missing tensor"] = (tmp_path / "missing_key.safetensors", r"missing \['regressor\.0\.bias'\]")
    nan_model = PilotNet()
    with torch.no_grad():
        nan_model.regressor[2].weight[0, 0] = float("nan")
    cases["nan"] = (save_model(nan_model, tmp_path / "nan.safetensors", RANGES), "NaN")
    for name, (path, message) in cases.items():
        with pytest.raises(ModelFileError, match=message):
            load_model(path)
        with pytest.raises(ModelFileError, match=message):
            make_backend("torch_fp32", path)
        assert issubclass(ModelFileError, ValueError), name


class _Payload:
    """Unpickling this creates (truncates) the marker file: a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_pickle_that_would_run_code_is_never_unpickled(tmp_path):
    # The payload really works when unpickled unsafely (so the test below can fail).
    probe = tmp_path / "probe_marker"
    pickle.loads(pickle.dumps(_Payload(str(probe)))).close()
    assert probe.is_file()

    marker = tmp_path / "pwned"
    files = []
    for name in ("model.safetensors", "model.pt"):
        torch.save({"regressor.0.weight": _Payload(str(marker))}, tmp_path / ("torch_" + name))
        files.append(tmp_path / ("torch_" + name))
        with open(tmp_path / ("pickle_" + name), "wb") as f:
            pickle.dump({"state_dict": _Payload(str(marker))}, f)
        files.append(tmp_path / ("pickle_" + name))
    for path in files:
        with pytest.raises(ModelFileError, match="not a readable safetensors"):
            load_model(path)
        with pytest.raises(ModelFileError):
            make_backend("torch_fp32", path)
        with pytest.raises(ModelFileError):
            PilotNetBrain(model_path=path)
        assert not marker.exists(), f"loading {path.name} ran pickled code"


# --- backends --------------------------------------------------------------------------------------
def test_registry_refuses_unknown_backend_names(model_file):
    assert "torch_fp32" in BACKEND_NAMES
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'") as info:
        make_backend("tensorflow", model_file)
    for name in BACKEND_NAMES:
        assert name in str(info.value)


def test_torch_backend_predicts_physical_units_with_the_files_ranges(model_file, world):
    backend = make_backend("torch_fp32", model_file, threads=1)
    assert backend.label_ranges == RANGES
    assert backend.describe()["backend"] == "torch_fp32" and backend.describe()["device"] == "cpu"
    x = preprocess(render_at(world, 0))[None]
    with torch.no_grad():
        y_norm = trained_like()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(backend.predict_normalized(x), y_norm, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(backend.predict(x), RANGES.denormalize(y_norm), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="batch of shape"):
        backend.predict(x[0])


def test_missing_torch_gives_backend_unavailable_naming_the_install(model_file, monkeypatch):
    from pilotnet_brain.runtime.torch_fp32 import require_torch

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for call in (require_torch, lambda: make_backend("torch_fp32", model_file)):
        with pytest.raises(BackendUnavailable, match="PyTorch is not installed") as info:
            call()
        assert "pip install" in str(info.value) and "torch" in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present here")
def test_cuda_without_a_gpu_is_backend_unavailable(model_file):
    with pytest.raises(BackendUnavailable, match="(?i)cuda"):
        make_backend("torch_fp32", model_file, device="cuda")
    with pytest.raises(BackendUnavailable, match="(?i)cuda"):
        PilotNetBrain(model_path=model_file, device="cuda")
    with pytest.raises(ValueError, match="unknown device"):
        make_backend("torch_fp32", model_file, device="tpu")


# --- the brain -------------------------------------------------------------------------------------
def test_brain_commands_follow_the_model(model_file, world):
    brain = PilotNetBrain(model_path=model_file, threads=1)
    frame = render_at(world, 0)
    out = brain.step(frame, 0.0)
    v, w = brain.backend.predict(preprocess(frame)[None])[0]
    assert out.command.v == pytest.approx(float(v)) and out.command.w == pytest.approx(float(w))
    assert out.inference_s is not None and out.inference_s >= 0
    assert brain.last_error is None


@pytest.mark.parametrize("bad", [(math.nan, 0.5), (3.0, math.nan), (math.inf, 0.0)])
def test_brain_stops_on_non_finite_model_output(model_file, world, monkeypatch, bad):
    brain = PilotNetBrain(model_path=model_file, threads=1)
    monkeypatch.setattr(brain.backend, "predict", lambda batch: np.array([bad], np.float32))
    out = brain.step(render_at(world, 0), 0.0)
    assert out.command == STOP
    assert brain.last_error and "non-finite" in brain.last_error
    brain.reset()
    assert brain.last_error is None


def test_brain_clamps_commands(model_file, world, monkeypatch):
    brain = PilotNetBrain(model_path=model_file, max_v=5.0, max_w=1.0, threads=1)
    monkeypatch.setattr(brain.backend, "predict", lambda batch: np.array([[9.0, -2.0]], np.float32))
    cmd = brain.step(render_at(world, 0), 0.0).command
    assert (cmd.v, cmd.w) == (5.0, -1.0)


# --- training --------------------------------------------------------------------------------------
def test_tiny_training_run_lowers_the_loss_and_writes_its_files(expert_frames, tmp_path):
    assert np.ptp(expert_frames.labels[:, 1]) > 0.5  # the expert labels vary (turns both ways)
    out = tmp_path / "out" / "pilot.safetensors"
    config = TrainConfig(epochs=3, batch_size=8, augment=True, threads=1, seed=0)
    summary = train(expert_frames, out, config, data_description={"test": True}, show_progress=False)
    history = summary["history"]
    assert history["epoch"] == [1, 2, 3]
    assert all(np.isfinite(history["train_mse"]))
    assert history["train_mse"][-1] < history["train_mse"][0]
    assert out.is_file()
    assert (out.parent / "pilot.json").is_file()
    assert (out.parent / "pilot_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out.parent / "pilot_history.json").read_text())
    assert saved["history"]["train_mse"] == history["train_mse"]
    assert summary["train_frames"] + summary["val_frames"] == len(expert_frames)
    model, meta, ranges = load_model(out)
    assert ranges == DEFAULT_LABEL_RANGES
    assert meta["training"]["data"] == {"test": True}
    assert meta["training"]["best_epoch"] == summary["best_epoch"] >= 1
    backend = make_backend("torch_fp32", out)
    pred = backend.predict(np.stack([preprocess(f) for f in [np.zeros((480, 640, 3), np.uint8)]]))
    assert np.all(np.isfinite(pred))


def test_block_split_keeps_whole_blocks():
    mask = block_split(1000, 0.2, block=100, seed=3)
    assert mask.shape == (1000,) and mask.dtype == bool
    blocks = mask.reshape(10, 100)
    assert np.all(blocks.all(axis=1) | (~blocks).all(axis=1))  # each block entirely in or out
    assert blocks.all(axis=1).sum() == 2
    assert np.array_equal(mask, block_split(1000, 0.2, block=100, seed=3))  # seeded
    # A partial last block counts as a block too.
    mask = block_split(250, 0.34, block=100, seed=0)
    assert all(len(set(mask[s : s + 100])) == 1 for s in (0, 100, 200))
    assert 0 < mask.sum() < 250
    # One block (or none): nothing to validate on, everything trains.
    assert not block_split(120, 0.3, block=150).any()
    assert len(block_split(0, 0.3)) == 0


def test_turn_weights_up_weight_rare_sharp_turns():
    w = np.concatenate([np.zeros(80), np.full(10, 0.05), np.full(5, 2.5), np.full(5, -2.5)])
    weights = turn_weights(w)
    assert weights.shape == w.shape
    assert np.all(weights[:90] == 1.0)  # the common bin (|w| < 2.5/15)
    assert np.all(weights[90:] == 8.0)  # 90/10 = 9, capped at 8
    assert weights[92] == weights[97]  # left and right turns alike
    assert np.all(turn_weights(w, cap=100.0)[90:] == 9.0)
    assert np.all(turn_weights(np.zeros(5)) == 1.0)


# --- offline evaluation ----------------------------------------------------------------------------
def test_offline_score_on_hand_made_predictions():
    r = DEFAULT_LABEL_RANGES  # v 0..12 m/s, w -3..3 rad/s
    labels = np.array([[6, 0], [12, 3], [0, -3], [6, 1.5]], np.float32)
    frames = FrameSet(np.zeros((4, 66, 200, 3), np.uint8), labels, np.array([0, 0, 1, 1]), ["a_ccw", "b_cw"])
    errors = np.array([[0.1, 0.0], [0.0, -0.2], [0.3, 0.1], [0.0, 0.0]], np.float32)
    res = score(r.normalize(labels) + errors, frames, r)
    assert set(res) == {"a", "b", "all"}
    expect = {
        "a": dict(samples=2, mse_v=0.005, mse_w=0.02, mse=0.0125, mae_v_mps=0.6, mae_w_rps=0.6),
        "b": dict(samples=2, mse_v=0.045, mse_w=0.005, mse=0.025, mae_v_mps=1.8, mae_w_rps=0.3),
        "all": dict(samples=4, mse_v=0.025, mse_w=0.0125, mse=0.01875, mae_v_mps=1.2, mae_w_rps=0.45),
    }
    for name, figures in expect.items():
        assert res[name]["samples"] == figures.pop("samples")
        for key, value in figures.items():
            assert res[name][key] == pytest.approx(value, rel=1e-4, abs=1e-7), (name, key)
    perfect = score(r.normalize(labels), frames, r)["all"]
    assert perfect["mse"] == pytest.approx(0, abs=1e-12) and perfect["mae_w_rps"] == pytest.approx(0, abs=1e-6)


# --- the shipped weights ---------------------------------------------------------------------------
@pytest.mark.skipif(
    not SHIPPED_MODEL.is_file(),
    reason=f"shipped weights {SHIPPED_MODEL.name} not in the package yet (trained with `make model`)",
)
def test_shipped_weights_load_and_predict_sensibly(world):
    backend = make_backend("torch_fp32", SHIPPED_MODEL, threads=1)
    assert backend.metadata["architecture"] == ARCHITECTURE
    r = backend.label_ranges
    n = len(world.circuit.centerline)
    frames = [render_at(world, k * n // 4, offset=o) for k, o in enumerate((0.0, 0.5, -0.5, 0.0))]
    pred = backend.predict(np.stack([preprocess(f) for f in frames]))
    assert pred.shape == (4, 2) and np.all(np.isfinite(pred))
    assert np.all((pred[:, 0] >= r.v_min) & (pred[:, 0] <= r.v_max)), pred
    assert np.all((pred[:, 1] >= r.w_min) & (pred[:, 1] <= r.w_max)), pred
    assert pred[:, 0].min() > 0.5, "the shipped model should drive, not stand still, on the track"
    cmd = PilotNetBrain(threads=1).step(frames[0], 0.0).command  # the default model path
    assert cmd.is_finite


def test_weighted_mse_equals_mse_at_weight_one_and_emphasises_steering():
    import torch
    import torch.nn.functional as F

    from pilotnet_brain.train.trainer import _weighted_mse

    pred = torch.tensor([[0.5, 0.2], [0.1, 0.9]])
    target = torch.tensor([[0.4, 0.4], [0.1, 0.5]])
    assert float(_weighted_mse(pred, target, 1.0)) == pytest.approx(float(F.mse_loss(pred, target)))
    only_w_error = torch.tensor([[0.4, 0.6], [0.1, 0.5]])
    assert float(_weighted_mse(only_w_error, target, 4.0)) > float(_weighted_mse(only_w_error, target, 1.0))


# --- DAgger: another brain drives, the expert labels -------------------------------------------------
class _VeerLeftBrain:
    """Drives straight off the road: the states a learned brain drifts into, labelled by the expert."""

    name = "veer_left"

    def reset(self):
        pass

    def step(self, image_rgb, stamp_s):
        from pilotnet_brain.control import BrainOutput, Command

        return BrainOutput(Command(3.0, 1.2))


def test_dagger_recording_labels_the_drivers_frames_with_the_expert(tmp_path):
    from pilotnet_brain.data.frames import load_frames
    from pilotnet_brain.data.recording import PerturbationSettings, read_sequence, record_dataset

    out = tmp_path / "dagger"
    summary = record_dataset(
        out,
        ["simple_circuit"],
        ["ccw"],
        seed=0,
        laps=1,
        perturbation=PerturbationSettings(rate_per_s=0.0),
        show_progress=False,
        driver=_VeerLeftBrain(),
        driver_description={"brain": "veer_left"},
        held_out=True,  # simple_circuit is a test circuit
    )
    seq = summary["sequences"][0]
    assert seq["lap_end_reasons"] == ["off_track"]  # the driver's lost lap ends, its frames are kept
    assert 3 <= seq["frames"] < 400
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["driver"] == {"brain": "veer_left"} and meta["labels"] == "explicit"
    w = np.array([row["w"] for row in read_sequence(out / "simple_circuit_ccw")])
    assert len(w) == seq["frames"]
    # The driver always steers +1.2 rad/s; the expert, seeing the car leave the line to the left,
    # asks for the opposite while it still sees the line (once the line is out of view it brakes):
    # these labels are the expert's, not the driver's.
    assert (w < 0.0).any() and not np.allclose(w, 1.2)
    assert len(load_frames(out, use_cache=False)) == seq["frames"]


def test_concat_frame_sets_keeps_sequences_apart_and_circuits_known():
    from pilotnet_brain.data.frames import concat_frame_sets

    def frames(n, names):
        return FrameSet(
            np.zeros((n, 66, 200, 3), np.uint8),
            np.full((n, 2), n, np.float32),
            np.arange(n, dtype=np.int32) % len(names),
            names,
        )

    a = frames(4, ["many_curves_ccw", "nurburgring_cw"])
    b = frames(3, ["many_curves_ccw"])
    both = concat_frame_sets([a, b], ["train", "dagger"])
    assert len(both) == 7
    assert both.sequences == ["many_curves_ccw@train", "nurburgring_cw", "many_curves_ccw@dagger"]
    assert [both.circuit_of(i) for i in range(7)] == ["many_curves", "nurburgring"] * 2 + ["many_curves"] * 3
    assert list(both.sequence) == [0, 1, 0, 1, 2, 2, 2]
    assert np.all(both.labels[:4] == 4) and np.all(both.labels[4:] == 3)
    assert concat_frame_sets([a], ["train"]) is a


def test_training_on_two_dataset_directories(tmp_path):
    from pilotnet_brain.data.recording import PerturbationSettings, record_dataset
    from pilotnet_brain.train.trainer import train_from_directory

    dirs = []
    for name, seed in (("expert_like", 0), ("dagger", 1)):
        record_dataset(
            tmp_path / name,
            ["many_curves"],  # a training circuit: test circuits are never trained on
            ["ccw"],
            seed=seed,
            show_progress=False,
            perturbation=PerturbationSettings(rate_per_s=0.0),
            driver=_VeerLeftBrain(),
        )
        dirs.append(tmp_path / name)
    out = tmp_path / "both.safetensors"
    summary = train_from_directory(
        dirs, out, TrainConfig(epochs=1, batch_size=8, threads=1, seed=0, val_fraction=0.0), show_progress=False
    )
    frames = [json.loads((d / "dataset.json").read_text())["frames"] for d in dirs]
    assert summary["train_frames"] + summary["val_frames"] == sum(frames)
    data = read_metadata(out)["training"]["data"]
    assert data["frames"] == sum(frames)
    assert [d["dir"] for d in data["datasets"]] == [str(d) for d in dirs]
    assert all(d["recording"]["driver"]["brain"] == "veer_left" for d in data["datasets"])
