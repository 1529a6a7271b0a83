"""scripts/gpu_smoke.py with `--device cpu` on a small shape: every algorithm's steps, the parity
check and the Qwen2-shape update run and write their JSON table."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_smoke.py"


def test_gpu_smoke_runs_on_the_cpu_with_a_small_shape(tmp_path):
    out = tmp_path / "smoke.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--shape", "small", "--prompts", "2",
                           "--group", "4", "--response-tokens", "64", "--prompt-tokens", "16", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    steps = [r for r in rows if r["part"] == "steps"]
    import algorithms

    assert sorted(r["algorithm"] for r in steps) == algorithms.names()
    assert all(r["steps"] == 2 and r["finite"] and r["placed"] for r in steps)
    parity = next(r for r in rows if r["part"] == "cpu_parity")
    assert parity["relative_difference"] < 1e-4
    updates = {r["checkpointing_and_chunking"]: r for r in rows if r["part"] == "qwen_update"}
    assert set(updates) == {False, True}
    for row in updates.values():
        assert row["measured_update_peak_gb"] > 0 and row["plan_update_gb"] > 0
    # Checkpointing and chunking lower the measured peak.
    assert updates[True]["measured_update_peak_gb"] < updates[False]["measured_update_peak_gb"]
