"""pilotnet_brain.jsonio: the one strict-JSON writer (metrics, bag side files, benchmark results)."""

import json
from pathlib import Path

import numpy as np
import pytest

from pilotnet_brain.jsonio import clean_json, dumps_strict, write_json_atomic


def test_non_finite_numbers_become_null_and_numpy_values_plain_json():
    value = {
        "lap_time_s": float("nan"),
        "speed": np.float32(np.inf),
        "count": np.int64(3),
        "ok": np.bool_(True),
        "xy": np.array([[1.0, np.nan]]),
        "path": Path("runs/x"),
        "pair": (1, -np.inf),
    }
    assert clean_json(value) == {
        "lap_time_s": None,
        "speed": None,
        "count": 3,
        "ok": True,
        "xy": [[1.0, None]],
        "path": "runs/x",
        "pair": [1, None],
    }
    assert json.loads(dumps_strict(value)) == clean_json(value)


def test_what_json_cannot_hold_is_refused():
    with pytest.raises(TypeError, match="set"):
        clean_json({"names": {"a"}})


def test_write_is_atomic_and_creates_the_directory(tmp_path):
    path = write_json_atomic({"a": float("inf"), "b": [1.5]}, tmp_path / "sub" / "m.json")
    assert path.read_text(encoding="utf-8") == '{\n  "a": null,\n  "b": [\n    1.5\n  ]\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]  # no temporary file left
