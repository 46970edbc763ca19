"""Optimised PilotNet variants: `pilotnet-brain optimize --model MODEL --out DIR [--methods ...]`.

Every method turns the trained FP32 weights into a file that one backend (see backends/) loads
without executing pickled code, and writes `<file>.json` metadata beside it (label ranges and
architecture copied from the FP32 model, plus the method's own settings).

METHODS maps a method name (= the backend name that runs its output) to the module and function that
builds it and the file name it writes; see `registry.py`.
"""
