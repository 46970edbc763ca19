"""The shipped PilotNet weights drive a held-out circuit end to end on the embedded simulator."""

import pytest

pytest.importorskip("torch")

from pilotnet_brain.brains.pilotnet import SHIPPED_MODEL, PilotNetBrain
from pilotnet_brain.evaluation.metrics import compute_metrics
from pilotnet_brain.sim.circuits import load_circuit
from pilotnet_brain.sim.world import SimConfig, World, run_episode


@pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason=f"no shipped weights at {SHIPPED_MODEL}")
def test_shipped_pilotnet_completes_simple_circuit():
    # Held out from training (trained on many_curves and nurburgring); fixed latency = reproducible.
    world = World(load_circuit("simple_circuit", "ccw"), SimConfig(latency_s=1 / 30))
    log = run_episode(world, PilotNetBrain())
    metrics = compute_metrics(log.record)
    assert log.record.end_reason == "lap_completed", metrics
    assert metrics["completed_pct"] == 100.0
    assert metrics["average_speed_mps"] > 8.0
    assert metrics["position_deviation_mae_m"] < 0.5
