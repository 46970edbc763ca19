"""PyTorch eager FP32 backend (the baseline), on CPU or CUDA."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from pilotnet_brain.errors import BackendUnavailable
from pilotnet_brain.model.preprocessing import INPUT_SHAPE
from pilotnet_brain.runtime.base import Backend


def require_torch():
    try:
        import torch  # noqa: PLC0415  (optional: only the torch backends need it)
    except ImportError:
        raise BackendUnavailable(
            "PyTorch is not installed: pip install 'pilotnet_brain[torch]' (pins torch==2.13.0, a CPU wheel)"
        ) from None
    return torch


def require_cuda(torch) -> None:
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "device 'cuda' requested but torch.cuda.is_available() is False "
            f"(torch {torch.__version__} built without CUDA, or no GPU/driver on this machine)"
        )


class TorchFP32Backend(Backend):
    name = "torch_fp32"
    precision = "fp32"

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        super().__init__(path)
        torch = require_torch()
        from pilotnet_brain.model.weights import load_model  # noqa: PLC0415  (imports torch)

        if device not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}; choose cpu or cuda")
        if device == "cuda":
            require_cuda(torch)
        if threads:
            torch.set_num_threads(threads)
        self.device = device
        self._torch = torch
        model, self.metadata, self._ranges = load_model(path)
        self.model = model.to(device)

    @property
    def label_ranges(self):
        return self._ranges

    def _predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            return self.model(x).float().cpu().numpy()


class TorchTracedFP32Backend(TorchFP32Backend):
    """FP32, traced and frozen (TorchScript) at load from the safetensors weights.

    No TorchScript file is ever read from disk: the graph is traced here from the PilotNet built
    from code, and `torch.jit.freeze` inlines the weights as constants and folds the eval-mode
    BatchNorm, which removes per-call Python/module overhead.
    """

    name = "torch_fp32_traced"

    def __init__(self, path: Path, device: str = "cpu", threads: int | None = None):
        super().__init__(path, device=device, threads=threads)
        torch = self._torch
        example = torch.zeros(1, *INPUT_SHAPE, device=self.device)
        # torch 2.13 marks TorchScript deprecated (in favour of torch.compile/export, which need a
        # compiler toolchain at load time); it still works: silence that warning here only.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r".*torch\.jit\.\w+` is deprecated.*", category=DeprecationWarning
            )
            traced = torch.jit.trace(self.model.eval(), example)
            self.model = torch.jit.freeze(traced.eval())
            for _ in range(2):  # the profiling executor specialises on the first calls
                self.model(example)


class TorchCudaFP32Backend(TorchFP32Backend):
    """Eager PyTorch on a CUDA GPU; optionally replays a captured CUDA graph for batch 1."""

    name = "torch_cuda_fp32"
    precision = "fp32"

    def __init__(self, path: Path, device: str = "cuda", threads: int | None = None, cuda_graph: bool = False):
        torch = require_torch()
        if device != "cuda":
            raise ValueError(f"{self.name} runs on device 'cuda' only (got {device!r}); use torch_fp32 for the CPU")
        try:
            require_cuda(torch)
        except BackendUnavailable as error:
            raise BackendUnavailable(f"{self.name} needs a CUDA GPU and a CUDA build of PyTorch: {error}") from None
        super().__init__(path, device="cuda", threads=threads)
        self._dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self.model = self.model.to(dtype=self._dtype).eval()
        self._graph = None
        if cuda_graph:
            self._capture_batch1()

    def _capture_batch1(self) -> None:
        """Capture one batch-1 forward pass as a CUDA graph (static input/output buffers)."""
        torch = self._torch
        self._static_in = torch.zeros(1, *INPUT_SHAPE, device="cuda", dtype=self._dtype)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs requires
                self.model(self._static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            self._static_out = self.model(self._static_in)
        self._graph = graph

    def _predict_normalized(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        if self._graph is not None and len(batch) == 1:
            with torch.no_grad():
                self._static_in.copy_(torch.from_numpy(batch))
                self._graph.replay()
                return self._static_out.float().cpu().numpy()
        with torch.inference_mode():
            x = torch.from_numpy(batch).to("cuda", dtype=self._dtype)
            return self.model(x).float().cpu().numpy()


class TorchCudaFP16Backend(TorchCudaFP32Backend):
    """Half precision on a CUDA GPU (weights, activations and input in float16; output back to float32)."""

    name = "torch_cuda_fp16"
    precision = "fp16"
