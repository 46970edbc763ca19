"""`pilotnet-brain optimize`: build every requested variant of a trained FP32 model into one directory."""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from pilotnet_brain.errors import BackendUnavailable
from pilotnet_brain.export.registry import METHODS, Method, builder_for

#: Built by default: every method that can run on a CPU-only machine (GPU ones are listed as skipped).
DEFAULT_METHODS = tuple(METHODS)


@dataclass
class BuildResult:
    method: str
    status: str  # built | skipped | failed
    path: Path | None
    seconds: float
    detail: str = ""

    def row(self) -> dict:
        size = None
        if self.path is not None and self.path.exists():
            files = [self.path] if self.path.is_file() else [p for p in self.path.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files) / 1e6
        return {
            "method": self.method,
            "status": self.status,
            "file": str(self.path) if self.path else None,
            "size_mb": size,
            "seconds": round(self.seconds, 1),
            "detail": self.detail,
        }


def parse_methods(spec: str | None) -> list[Method]:
    if not spec:
        return [METHODS[m] for m in DEFAULT_METHODS]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from: {', '.join(METHODS)}")
    return [METHODS[n] for n in names]


def optimize(fp32_model: Path, out_dir: Path, methods: list[Method], data, log=print) -> list[BuildResult]:
    """Build each method's file; a missing runtime or GPU skips that method with the reason."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[BuildResult] = []
    built_files: dict[str, Path] = {}
    for method in methods:
        out_path = out_dir / method.filename
        t0 = time.perf_counter()
        try:
            if method.filename in built_files:  # e.g. traced / CUDA variants run the FP32 file
                path = built_files[method.filename]
            else:
                path = builder_for(method)(fp32_model, out_path, data)
                built_files[method.filename] = path
            result = BuildResult(method.name, "built", Path(path), time.perf_counter() - t0)
            _check_runnable(method)
        except BackendUnavailable as error:
            result = BuildResult(method.name, "skipped", None, time.perf_counter() - t0, str(error))
        except ImportError as error:
            result = BuildResult(
                method.name,
                "skipped",
                None,
                time.perf_counter() - t0,
                f"needs {method.needs or 'an optional package'}: {error}",
            )
        except Exception as error:  # report and go on: one broken method must not hide the others
            result = BuildResult(
                method.name, "failed", None, time.perf_counter() - t0, f"{type(error).__name__}: {error}"
            )
            log(traceback.format_exc())
        results.append(result)
        log(f"{method.name:20s} {result.status:8s} {result.detail or result.path}")
    (out_dir / "optimize_report.json").write_text(json.dumps([r.row() for r in results], indent=2) + "\n")
    return results


def _check_runnable(method: Method) -> None:
    """GPU-only backends are 'built' from the FP32 file but can only run where a GPU exists."""
    if method.name.startswith("torch_cuda"):
        try:
            import torch  # noqa: PLC0415  (optional here: without torch nothing was built to check)
        except ImportError:
            return
        if not torch.cuda.is_available():
            raise BackendUnavailable(f"{method.name} needs a CUDA GPU; torch.cuda.is_available() is False here")


def format_results(results: list[BuildResult]) -> str:
    lines = ["| method | status | file | size (MB) | build (s) | note |", "| --- | --- | --- | ---: | ---: | --- |"]
    for r in results:
        row = r.row()
        size = f"{row['size_mb']:.2f}" if row["size_mb"] is not None else "-"
        name = Path(row["file"]).name if row["file"] else "-"
        lines.append(f"| {r.method} | {r.status} | {name} | {size} | {row['seconds']:.1f} | {r.detail} |")
    return "\n".join(lines)
