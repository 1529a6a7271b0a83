"""harness.allocator: freed blocks are reused without page faults, and runs compute the same numbers."""

import json
import os
import subprocess
import sys

CHURN = """
import json, resource, torch
from harness.allocator import keep_freed_memory
applied = keep_freed_memory()

def churn():  # a step's pattern: large blocks allocated, written and freed, again and again
    x = torch.empty(16 << 20).fill_(1.0)
    y = torch.empty(3 << 20).fill_(2.0)

for _ in range(6):  # the heap settles (a freed block is reused once it has merged with a neighbour)
    churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    churn()
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _run(args: list[str], keep: str) -> str:
    env = dict(os.environ, RLVR_KEEP_FREED_MEMORY=keep)
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_a_freed_block_is_reused_without_page_faults():
    default, kept = (json.loads(_run([sys.executable, "-c", CHURN], keep).splitlines()[-1]) for keep in ("0", "1"))
    assert default["applied"] is False and kept["applied"] is True
    pages = 6 * (64 << 20) // 4096
    assert default["faults"] > 0.9 * pages  # glibc's default: every 64 MB block comes fresh from the kernel
    assert kept["faults"] < 0.05 * pages


def test_a_run_computes_the_same_numbers_with_and_without_it(tmp_path, deterministic_history):
    rlvr = os.path.join(os.path.dirname(sys.executable), "rlvr-bench")
    records = {}
    for keep in ("0", "1"):
        out_dir = tmp_path / f"keep{keep}"
        _run([rlvr, "train", "--preset", "smoke", "--algorithm", "basis", "--seed", "1", "--output-dir", str(out_dir)],
             keep)
        records[keep] = json.loads((out_dir / "smoke" / "runs" / "basis-seed1.json").read_text())
    assert records["0"]["environment"]["keep_freed_memory"] is False
    assert records["1"]["environment"]["keep_freed_memory"] is True
    numbers = {keep: deterministic_history(record["history"]) for keep, record in records.items()}
    assert numbers["0"] == numbers["1"]
    assert any("train/loss" in row for row in numbers["1"])
