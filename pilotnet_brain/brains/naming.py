"""How a brain is named in metrics, file names and logs: one function for the CLI, the nodes and Brain.name."""

from __future__ import annotations


def brain_name(brain: str, backend: str = "torch_fp32") -> str:
    """The name a brain goes by in metrics, file names and logs (``Brain.name``): ``explicit``, ``pilotnet``
    on the default torch_fp32 backend, ``pilotnet_<backend>`` on any other."""
    if brain == "pilotnet":
        return "pilotnet" if backend == "torch_fp32" else f"pilotnet_{backend}"
    return str(brain)
