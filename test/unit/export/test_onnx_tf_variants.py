"""ONNX Runtime, TensorFlow (SavedModel), TFLite/LiteRT and TF-TRT variants of PilotNet.

A random-init PilotNet (He-initialised so activations neither vanish nor explode, input BatchNorm
statistics from the frames, output layer scaled so outputs lie in about [0, 1] like trained ones) is
saved with pilotnet.weights.save_model; every CPU variant must agree with PyTorch FP32 on real rendered
frames (simple_circuit, several poses, the shared preprocessing) within the stated tolerance, on the
normalised output scale. Calibration uses the 24 frames: with 16 of them, one of the 8 held-out frames
drives this random network's activations past the calibrated ranges and its INT8 output errs by ~0.1
(a trained network calibrated on 300 training frames is compared by `pilotnet-brain offline-benchmark`).
Each runtime is optional: its tests are skipped where it is not installed.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pilotnet_brain.data.calibration import OptimizeData
from pilotnet_brain.errors import (
    BackendUnavailable,
    ModelFileError,
)
from pilotnet_brain.model import space_to_depth
from pilotnet_brain.model.labels import DEFAULT_LABEL_RANGES
from pilotnet_brain.model.network import PilotNet
from pilotnet_brain.model.preprocessing import preprocess
from pilotnet_brain.model.weights import save_model
from pilotnet_brain.runtime import tensorflow as tf_runtime
from pilotnet_brain.runtime.registry import make_backend
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.vehicle import VehicleState
from pilotnet_brain.sim.world import World

#: (max, mean) |variant - torch FP32| on the normalised output scale (outputs span about 0.04..0.67
#: here). Measured: onnx_int8 0.019 / 0.0056, tflite_int8 0.020 / 0.0056.
TOL = {
    "onnx_fp32": (1e-4, 1e-5),
    "onnx_int8": (0.04, 0.01),
    "tf_fp32": (1e-4, 1e-5),
    "tflite_fp32": (1e-4, 1e-5),
    "tflite_fp16": (0.005, 0.001),
    "tflite_dynamic": (0.03, 0.01),
    "tflite_int8": (0.04, 0.01),
}
KERAS_PORT_TOL = 2e-5


def render_frames(n=24, seed=0):
    world = World(load_circuit("simple_circuit"))
    line = world.circuit.centerline
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        k = i * len(line) // n
        (x0, y0), (x1, y1) = line[k], line[(k + 1) % len(line)]
        yaw = math.atan2(y1 - y0, x1 - x0) + rng.uniform(-0.15, 0.15)
        offset = rng.uniform(-2.0, 2.0)
        world.state = VehicleState(x0 - math.sin(yaw) * offset, y0 + math.cos(yaw) * offset, yaw)
        frames.append(preprocess(world.render()))
    return np.stack(frames)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    frames = render_frames()
    torch.manual_seed(0)
    model = PilotNet()
    with torch.no_grad():
        model.input_norm.running_mean.copy_(torch.from_numpy(frames.mean(axis=(0, 2, 3))))
        model.input_norm.running_var.copy_(torch.from_numpy(frames.var(axis=(0, 2, 3))))
        model.input_norm.weight.uniform_(0.5, 1.5)
        model.input_norm.bias.uniform_(-0.1, 0.1)
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                torch.nn.init.uniform_(m.bias, -0.05, 0.05)
        last = model.regressor[-1]
        last.weight.mul_(0.15)
        last.bias.fill_(0.5)
    model.eval()
    directory = tmp_path_factory.mktemp("variants")
    path = save_model(model, directory / "pilotnet_fp32.safetensors", DEFAULT_LABEL_RANGES)
    with torch.inference_mode():
        reference = model(torch.from_numpy(frames)).numpy()
    data = OptimizeData(calibration=frames)
    return {"dir": directory, "fp32": path, "frames": frames, "ref": reference, "data": data, "model": model}


def agree(name, path, setup, threads=1):
    backend = make_backend(name, path, threads=threads)
    out = backend.predict_normalized(setup["frames"])
    diff = np.abs(out - setup["ref"])
    max_tol, mean_tol = TOL[name]
    assert diff.max() <= max_tol and diff.mean() <= mean_tol, (
        f"{name}: max |diff| {diff.max():.3g} (tolerance {max_tol}), mean {diff.mean():.3g} (tolerance {mean_tol})"
    )
    one = backend.predict_normalized(setup["frames"][:1])  # batch 1 after batch 24 (resizes where needed)
    assert np.abs(one - setup["ref"][:1]).max() <= max_tol
    err = diff.max()
    phys = backend.predict(setup["frames"][:2])
    np.testing.assert_allclose(phys, DEFAULT_LABEL_RANGES.denormalize(out[:2]), rtol=1e-6, atol=1e-6)
    return backend, err


def check_metadata(path, method):
    meta = json.loads((path.parent / (path.name + ".json")).read_text())
    assert meta["method"] == method
    assert meta["architecture"] == "pilotnet-v1" and meta["input_shape"] == [3, 66, 200]
    assert meta["label_ranges"] == DEFAULT_LABEL_RANGES.to_dict()
    assert isinstance(meta["settings"], dict)
    return meta


# --- without the optional runtimes -------------------------------------------------------------------
def test_modules_import_without_runtimes():
    code = (
        "import sys\n"
        "import pilotnet_brain.export.onnx_variants, pilotnet_brain.export.tf_variants, pilotnet_brain.export.keras_port\n"
        "import pilotnet_brain.runtime.onnx, pilotnet_brain.runtime.tensorflow\n"
        "heavy = [m for m in ('tensorflow', 'onnxruntime', 'onnx', 'ai_edge_litert', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_missing_runtimes_name_the_extra(setup, monkeypatch, tmp_path):
    from pilotnet_brain.export import onnx_variants, tf_variants

    for module in ("onnxruntime", "onnx", "tensorflow", "ai_edge_litert", "ai_edge_litert.interpreter"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(BackendUnavailable, match=r"pip install 'pilotnet_brain\[onnx\]'"):
        onnx_variants.build_onnx_fp32(setup["fp32"], tmp_path / "x.onnx", setup["data"])
    with pytest.raises(BackendUnavailable, match=r"pip install 'pilotnet_brain\[tf\]'"):
        tf_variants.build_tflite_fp32(setup["fp32"], tmp_path / "x.tflite", setup["data"])
    for name, suffix, extra in (
        ("onnx_fp32", ".onnx", "onnx"),
        ("tflite_fp32", ".tflite", "tf"),
        ("tf_fp32", "", "tf"),
    ):
        fake = tmp_path / f"model_{name}{suffix}"
        fake.write_bytes(b"x")
        meta = {
            "architecture": "pilotnet-v1",
            "input_shape": [3, 66, 200],
            "method": name,
            "label_ranges": DEFAULT_LABEL_RANGES.to_dict(),
        }
        (tmp_path / (fake.name + ".json")).write_text(json.dumps(meta))
        with pytest.raises(BackendUnavailable, match=rf"pip install 'pilotnet_brain\[{extra}\]'"):
            make_backend(name, fake)


# --- ONNX Runtime ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_files(setup):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from pilotnet_brain.export.onnx_variants import build_onnx_fp32, build_onnx_int8

    return {
        "onnx_fp32": build_onnx_fp32(setup["fp32"], setup["dir"] / "pilotnet_fp32.onnx", setup["data"]),
        "onnx_int8": build_onnx_int8(setup["fp32"], setup["dir"] / "pilotnet_int8_qdq.onnx", setup["data"]),
    }


def test_onnx_fp32_export_and_agreement(setup, onnx_files):
    import onnx

    path = onnx_files["onnx_fp32"]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch axis
    check_metadata(path, "onnx_fp32")
    backend, _ = agree("onnx_fp32", path, setup)
    assert backend.describe()["providers"] == ["CPUExecutionProvider"]


def test_onnx_int8_is_static_qdq_per_channel(setup, onnx_files):
    import onnx

    path = onnx_files["onnx_int8"]
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops
    assert "DynamicQuantizeLinear" not in ops and "ConvInteger" not in ops and "MatMulInteger" not in ops
    conv_w_scale = next(i for i in proto.graph.initializer if i.name == "features.2.weight_scale")
    assert tuple(conv_w_scale.dims) == (36,)  # one scale per output channel
    # The graph takes the NCHW batch, rearranges it space-to-depth, and runs the first convolution as
    # a quantised 3x3 convolution over 12 channels.
    reads_input = [n.op_type for n in proto.graph.node if "input" in n.input]
    assert reads_input == ["SpaceToDepth"]
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]] == [3, 66, 200]
    # ... computing two adjacent output columns per position (48 channels, kernel 3x4, stride (1, 2))
    conv0_w = next(i for i in proto.graph.initializer if i.name == "features.0.conv.weight_quantized")
    assert tuple(conv0_w.dims) == (48, 12, 3, 4)
    # The first two Linear layers run as convolutions over the last (NHWC) feature map.
    fc1_w = next(i for i in proto.graph.initializer if i.name == "features.10.weight_quantized")
    assert tuple(fc1_w.dims) == (1164, 64, 1, 18)
    meta = check_metadata(path, "onnx_int8")
    assert meta["settings"]["first_conv"] == "int8-s2d" and meta["settings"]["fc_as_conv"] is True
    assert meta["settings"]["pair_conv0"] is True
    # The small regressor (100-50-10-2) stays FP32: plain Gemm nodes with float weights.
    assert len(meta["settings"]["float_nodes"]) == 3
    gemms = [n for n in proto.graph.node if n.op_type == "Gemm"]
    assert [n.name for n in gemms] == meta["settings"]["float_nodes"]
    floats = {i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    assert all(n.input[1] in floats for n in gemms)
    assert meta["settings"]["quant_format"] == "QDQ" and meta["settings"]["per_channel"] is True
    assert meta["settings"]["calibrate_method"] == "Percentile"
    assert meta["settings"]["calibration_frames"] == 24
    agree("onnx_int8", path, setup)


def test_onnx_cuda_without_cuda_is_unavailable(onnx_files):
    import onnxruntime as ort

    if {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(ort.get_available_providers()):
        pytest.skip("this onnxruntime has a GPU provider")
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        make_backend("onnx_fp32", onnx_files["onnx_fp32"], device="cuda")


def test_onnx_bad_files_fail_clearly(setup, onnx_files, tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage, not a protobuf" * 10)
    (tmp_path / "corrupt.onnx.json").write_text(
        (onnx_files["onnx_fp32"].parent / "pilotnet_fp32.onnx.json").read_text()
    )
    with pytest.raises(ModelFileError, match="corrupt.onnx"):
        make_backend("onnx_fp32", corrupt)
    with pytest.raises(ModelFileError, match="not found"):
        make_backend("onnx_fp32", tmp_path / "missing.onnx")
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(onnx_files["onnx_fp32"].read_bytes())
    with pytest.raises(ModelFileError, match="metadata"):
        make_backend("onnx_fp32", bare)
    with pytest.raises(ModelFileError, match="onnx_int8"):  # an INT8 file given to the FP32 backend
        make_backend("onnx_fp32", onnx_files["onnx_int8"])
    # A valid ONNX model that is not PilotNet
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    (tmp_path / "foreign.onnx.json").write_text((tmp_path / "corrupt.onnx.json").read_text())
    with pytest.raises(ModelFileError, match="not a PilotNet ONNX model"):
        make_backend("onnx_fp32", foreign)


# --- TensorFlow / LiteRT -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tf_files(setup):
    pytest.importorskip("tensorflow")
    from pilotnet_brain.export import tf_variants

    d, fp32, data = setup["dir"], setup["fp32"], setup["data"]
    files = {"tf_fp32": tf_variants.build_savedmodel(fp32, d / "pilotnet_savedmodel", data)}
    for method in ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8"):
        files[method] = getattr(tf_variants, f"build_{method}")(fp32, d / f"pilotnet_{method[7:]}.tflite", data)
    return files


def test_keras_port_matches_torch(setup):
    pytest.importorskip("tensorflow")
    from pilotnet_brain.export import keras_port

    keras_model, torch_model, _ = keras_port.keras_from_fp32(setup["fp32"])
    assert keras_port.port_check(keras_model, torch_model, setup["frames"]) <= KERAS_PORT_TOL
    # Folding the input BatchNorm into conv0 (used for TFLite) is exact up to rounding too.
    folded, folded_torch, _ = keras_port.keras_from_fp32(setup["fp32"], fold_bn=True)
    assert keras_port.port_check(folded, setup["model"], setup["frames"]) <= KERAS_PORT_TOL
    assert "input_norm" not in [layer.name for layer in folded.layers]


def test_savedmodel_agrees(setup, tf_files):
    meta = check_metadata(tf_files["tf_fp32"], "tf_fp32")
    assert meta["settings"]["port_max_abs_diff"] <= KERAS_PORT_TOL
    agree("tf_fp32", tf_files["tf_fp32"], setup)


@pytest.mark.parametrize("method", ["tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8"])
def test_tflite_variants_agree(setup, tf_files, method):
    pytest.importorskip("ai_edge_litert")
    check_metadata(tf_files[method], method)
    backend, _ = agree(method, tf_files[method], setup)
    from pilotnet_brain.export import tf_variants

    s2d = method in tf_variants.S2D_METHODS
    meta = check_metadata(tf_files[method], method)
    assert meta["settings"]["input_layout"] == (tf_runtime.S2D_LAYOUT if s2d else tf_runtime.NCHW_LAYOUT)
    assert backend.input_layout == meta["settings"]["input_layout"]
    assert list(backend._in["shape"][1:]) == ([33, 100, 12] if s2d else [3, 66, 200])
    # float32 I/O everywhere (INT8 quantises in the graph), and no transpose left in S2D graphs
    assert backend._in["dtype"] == np.float32 and backend._out["dtype"] == np.float32
    ops = {op["op_name"] for op in backend.interpreter._get_ops_details()}
    if s2d:
        assert not ops & {"TRANSPOSE"}, ops
    if method == "tflite_int8":
        assert "QUANTIZE" in ops and "DEQUANTIZE" in ops
        # INT8 convolutions and large Linear layers; the small regressor (100-50-10-2) stays FP32.
        weight_types = [
            backend.interpreter._get_tensor_details(op["inputs"][1], 0)["dtype"]
            for op in backend.interpreter._get_ops_details()
            if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")
        ]
        assert weight_types == [np.int8] * 7 + [np.float32] * 3
        assert len(meta["settings"]["float_nodes"]) == 3


def test_space_to_depth_is_exact(setup):
    pytest.importorskip("tensorflow")
    from pilotnet_brain.export import keras_port

    x = setup["frames"][:3]
    y = space_to_depth.space_to_depth(x)
    ref = x.reshape(3, 3, 33, 2, 100, 2).transpose(0, 2, 4, 1, 3, 5).reshape(3, 33, 100, 12)
    assert y.shape == (3, 33, 100, 12) and np.array_equal(y, ref)
    keras_model, _, _ = keras_port.keras_from_fp32(setup["fp32"], fold_bn=True, s2d=True)
    assert tuple(keras_model.get_layer("conv0").kernel.shape) == (3, 3, 12, 24)
    assert keras_port.port_check(keras_model, setup["model"], setup["frames"]) <= KERAS_PORT_TOL


def test_tflite_old_nchw_layout_still_loads_and_unknown_layouts_are_refused(setup, tf_files, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from pilotnet_brain.export import tf_variants

    old = tf_variants._build_tflite(
        setup["fp32"], tmp_path / "old_int8.tflite", setup["data"], "tflite_int8", s2d=False
    )
    assert check_metadata(old, "tflite_int8")["settings"]["input_layout"] == tf_runtime.NCHW_LAYOUT
    agree("tflite_int8", old, setup)
    meta_path = tmp_path / "old_int8.tflite.json"
    meta = json.loads(meta_path.read_text())
    del meta["settings"]["input_layout"]  # files without the key are NCHW
    meta_path.write_text(json.dumps(meta))
    agree("tflite_int8", old, setup)
    meta["settings"]["input_layout"] = "nhwc-something-else"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="unknown input_layout"):
        make_backend("tflite_int8", old)
    # An S2D file whose metadata claims NCHW does not pass the shape check
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes(tf_files["tflite_int8"].read_bytes())
    meta = json.loads((tf_files["tflite_int8"].parent / (tf_files["tflite_int8"].name + ".json")).read_text())
    meta["settings"]["input_layout"] = tf_runtime.NCHW_LAYOUT
    (tmp_path / "wrong.tflite.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="not a PilotNet TFLite model"):
        make_backend("tflite_int8", wrong)


def test_tflite_int8_needs_calibration(setup, tmp_path):
    pytest.importorskip("tensorflow")
    from pilotnet_brain.export import tf_variants

    with pytest.raises(ValueError, match="calibration"):
        tf_variants.build_tflite_int8(
            setup["fp32"], tmp_path / "x.tflite", OptimizeData(np.zeros((0, 3, 66, 200), np.float32))
        )


def test_tf_bad_files_fail_clearly(tf_files, tmp_path):
    pytest.importorskip("ai_edge_litert")
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"TFL3 but not really a flatbuffer" * 8)
    (tmp_path / "corrupt.tflite.json").write_text(
        json.dumps({**json.loads((tf_files["tflite_fp32"].parent / "pilotnet_fp32.tflite.json").read_text())})
    )
    with pytest.raises(ModelFileError, match="corrupt.tflite"):
        make_backend("tflite_fp32", corrupt)
    with pytest.raises(ModelFileError, match="tflite_int8"):
        make_backend("tflite_fp32", tf_files["tflite_int8"])
    broken = tmp_path / "broken_savedmodel"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"\x00garbage")
    (tmp_path / "broken_savedmodel.json").write_text(
        (tf_files["tf_fp32"].parent / "pilotnet_savedmodel.json").read_text()
    )
    with pytest.raises(ModelFileError, match="broken_savedmodel"):
        make_backend("tf_fp32", broken)


def test_tftrt_is_unavailable_here_with_a_clear_message(setup, tmp_path):
    tf = pytest.importorskip("tensorflow")
    from pilotnet_brain.export import tf_variants

    if tf_runtime.tftrt_status(tf)[0]:
        pytest.skip("this machine has TF-TRT")
    needs = "TF-TRT needs TensorFlow built with TensorRT and an NVIDIA GPU; this TensorFlow has none"
    for precision in ("fp32", "fp16", "int8"):
        with pytest.raises(BackendUnavailable, match=needs):
            getattr(tf_variants, f"build_tftrt_{precision}")(setup["fp32"], tmp_path / "trt", setup["data"])
        with pytest.raises(BackendUnavailable, match=needs):
            make_backend(f"tftrt_{precision}", tmp_path / "trt")
    assert not (tmp_path / "trt").exists()  # nothing faked


@pytest.mark.parametrize("order", space_to_depth.CHANNEL_ORDERS)
def test_s2d_conv0_kernel_is_an_exact_rewrite(order):
    """conv(x, 5x5, stride 2) == conv(space_to_depth(x), rewritten 3x3, stride 1), in both channel orders."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(2, 3, 14, 18)).astype(np.float32))
    w = rng.normal(size=(4, 3, 5, 5)).astype(np.float32)
    ref = torch.nn.functional.conv2d(x, torch.from_numpy(w), stride=2)
    kernel = space_to_depth.s2d_conv0_kernel(w.transpose(2, 3, 1, 0), order=order)
    s2d = x.reshape(2, 3, 7, 2, 9, 2)  # n, c, y, dy, x, dx
    s2d = s2d.permute(0, 1, 3, 5, 2, 4) if order == "c,dy,dx" else s2d.permute(0, 3, 5, 1, 2, 4)
    out = torch.nn.functional.conv2d(
        s2d.reshape(2, 12, 7, 9), torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    )
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-4)
    with pytest.raises(ValueError, match="channel order"):
        space_to_depth.s2d_conv0_kernel(w.transpose(2, 3, 1, 0), order="dx,dy,c")


def test_onnx_int8_first_conv_modes(setup, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    from pilotnet_brain.export.onnx_variants import build_onnx_int8

    path = build_onnx_int8(setup["fp32"], tmp_path / "fp32_conv0.onnx", setup["data"], first_conv="fp32")
    first = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv")
    assert first.input[0] == "input"  # FP32 conv0 reads the unquantised input
    agree("onnx_int8", path, setup)
    with pytest.raises(ValueError, match="first_conv"):
        build_onnx_int8(setup["fp32"], tmp_path / "x.onnx", setup["data"], first_conv="bf16")


@pytest.mark.parametrize("frames, batch", [(24, 12), (1000, 10), (17, 1), (5, 5)])
def test_onnx_calibration_batches_are_all_one_size(frames, batch):
    # ORT's histogram calibrators (Percentile, Entropy) fail when the last batch is shorter.
    from pilotnet_brain.export.onnx_variants import _CalibrationReader

    reader = _CalibrationReader(np.zeros((frames, 1, 1, 1), np.float32))
    sizes = []
    while (item := reader.get_next()) is not None:
        sizes.append(len(item["input"]))
    assert reader.batch_size == batch and set(sizes) == {batch} and sum(sizes) == frames
