"""The parameters' hash after each Adam step of a short warm-start build, in the build's pinned
environment (`harness.tiny_model.build_environment`): run it on two machines to find the first
step at which their builds part (docs/reproducibility.md).

    .venv/bin/python scripts/warm_start_steps.py > scripts/mine.txt        # on machine A
    .venv/bin/python scripts/warm_start_steps.py --compare scripts/mine.txt  # on machine B, with A's file
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def step_hashes(spec) -> list[str]:
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from harness.tiny_model import pretrain

    torch.set_num_threads(spec.threads)
    hashes = []

    def hook(optimizer, args, kwargs):
        digest = hashlib.sha1()
        for group in optimizer.param_groups:
            for p in group["params"]:
                digest.update(p.detach().numpy().tobytes())
        hashes.append(digest.hexdigest()[:12])

    register_optimizer_step_post_hook(hook)
    with tempfile.TemporaryDirectory() as tmp:
        pretrain(spec, Path(tmp) / "model", log=lambda *a: None)
    return hashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--train-examples", type=int, default=2000)
    parser.add_argument("--compare", type=Path, help="a file this script wrote on another machine")
    args = parser.parse_args()
    from harness.tiny_model import TinySpec, build_environment

    spec = TinySpec(steps=args.steps, train_examples=args.train_examples)
    if os.environ.get("RLVR_WARM_START_STEPS") != "1":  # again, in the pinned environment
        env = dict(build_environment(spec), RLVR_WARM_START_STEPS="1")
        return subprocess.run([sys.executable, __file__, *sys.argv[1:]], env=env).returncode
    hashes = step_hashes(spec)
    if args.compare is None:
        print("\n".join(f"step {i} {h}" for i, h in enumerate(hashes)))
        return 0
    theirs = [line.split()[2] for line in args.compare.read_text().splitlines() if line.startswith("step ")]
    for i, (mine, other) in enumerate(zip(hashes, theirs)):
        if mine != other:
            print(f"the builds part at step {i} (of {min(len(hashes), len(theirs))} compared): {mine} against {other}")
            return 1
    print(f"the same parameters after each of {min(len(hashes), len(theirs))} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
