"""Checkpoints of a run, resuming from them, and the stop after a run of non-finite losses.

One file per run, `<output_dir>/<experiment>/checkpoints/<algorithm>-seed<k>/last.pt`
(`harness.paths.checkpoint_path`), written to a temporary file and renamed (a reader never sees
half a file), loaded with `torch.load(weights_only=True)`: it holds tensors and plain Python
values only. It carries what makes a resumed run continue the same trajectory as one never
interrupted:

- the module's weights (policy, and critic for PPO) and every optimizer's state;
- the algorithm's training state (step, budget counters, BASIS's prior and calibration, A*-PO's
  V*; see `RLModule.training_state`) and the training prompts kept after the offline stage;
- every process's RNGs (python, numpy, torch CPU and the current CUDA device; the rollout engine's
  if it has one), each process restoring its own;
- the recorder (metric history, eval and diagnostic curves, time counters) and the MLflow run id.

The data position needs no state of its own: `harness.prompt_data.PromptSampler` draws step k's
prompts as a function of (seed, k), so a resumed run starts it at the checkpoint's step.
"""

from __future__ import annotations

import random
from pathlib import Path

import lightning as L
import numpy as np
import torch

from harness.errors import NonFiniteLossError
from harness.paths import atomic_file

FORMAT = 1
# Fields a resumed run may change: they do not alter the trajectory (or only where it ends).
RESUMABLE_CHANGES = {"threads", "max_steps", "budget", "checkpoint_every", "max_nonfinite_steps", "tracking_uri",
                     "output_dir", "data_dir", "strategy", "devices", "num_nodes", "eval_every", "diag_every",
                     "keep_checkpoint"}


def rng_state() -> dict:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()  # the current device: each DDP process has its own
    return state


def all_rng_states() -> list[dict]:
    """Every process's `rng_state()`, in rank order (a collective under DDP; one entry otherwise)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [rng_state()]
    states: list = [None] * dist.get_world_size()
    dist.all_gather_object(states, rng_state())
    return states


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        # A list: the format before per-process states (every device's); else this process's device.
        if isinstance(cuda, list):
            torch.cuda.set_rng_state_all(cuda)
        else:
            torch.cuda.set_rng_state(cuda)


def _python_tuple(value):
    # torch.load(weights_only=True) gives lists back where tuples went in; random.setstate needs tuples.
    return tuple(_python_tuple(v) for v in value) if isinstance(value, list) else value


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic write (:func:`harness.paths.atomic_file`): a reader never sees half a checkpoint."""
    with atomic_file(path, "wb") as f:
        torch.save(state, f)


def remove_checkpoint(path: Path) -> None:
    """The checkpoint file, then its run's folder and `checkpoints/` once empty (a finished run's
    record is written: it needs no resume any more)."""
    path.unlink(missing_ok=True)
    for folder in (path.parent, path.parent.parent):
        try:
            folder.rmdir()
        except OSError:
            break


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a checkpoint of format {FORMAT}")
    state["rng"]["python"] = _python_tuple(state["rng"]["python"])
    for each in state.get("rng_per_process") or []:
        each["python"] = _python_tuple(each["python"])
    return state


def check_resumable(state: dict, params: dict, path: Path) -> None:
    """A checkpoint only continues the run it came from: same config up to RESUMABLE_CHANGES."""
    saved = state["run"]["params"]
    differ = sorted(k for k in set(saved) | set(params)
                    if k not in RESUMABLE_CHANGES and saved.get(k) != params.get(k))
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {params.get(k)!r}" for k in differ[:8])
        raise ValueError(f"--resume: {path} is from a different config ({detail}); "
                         f"remove the checkpoint or run without --resume")


class CheckpointCallback(L.Callback):
    """Restores a resumed run's optimizers and RNGs at train start; writes the checkpoint every
    `every` steps and at the end; stops the run, after a checkpoint, when `max_nonfinite_steps`
    steps in a row had a non-finite loss. Goes last in the callback list, so the metrics and the
    evaluation of a step are in the checkpoint written after it."""

    def __init__(self, path: Path, every: int, run_state, resume_state: dict | None = None,
                 max_nonfinite_steps: int = 3):
        self.path, self.every, self.run_state = path, every, run_state
        self.resume_state, self.max_nonfinite_steps = resume_state, max_nonfinite_steps
        self.saved_step = -1

    def state(self, trainer, module, finished: bool, counters: dict, rngs: list[dict]) -> dict:
        engine_state = getattr(module.engine, "state_dict", None)
        return {
            "format": FORMAT,
            "module": module.state_dict(),
            "optimizers": [optimizer.state_dict() for optimizer in trainer.optimizers],
            "training": {**module.training_state(), "counters": counters},
            "rng": rngs[0],
            "rng_per_process": rngs,
            "engine": engine_state() if callable(engine_state) else None,
            "run": {**self.run_state(), "finished": finished},
        }

    def save(self, trainer, module, finished: bool = False) -> None:
        counters = module.global_counters()  # under DDP a collective: every process gets here
        rngs = all_rng_states()  # a collective too
        if trainer.is_global_zero:
            save_checkpoint(self.path, self.state(trainer, module, finished, counters, rngs))
            flush = getattr(trainer.logger, "flush", None)
            if callable(flush):
                flush()
        self.saved_step = module.rl_step

    def on_train_start(self, trainer, module):
        state = self.resume_state
        if state is None:
            return
        for optimizer, saved in zip(trainer.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        per_process = state.get("rng_per_process") or []
        # Each process its own; a checkpoint from another process count restores rank 0's everywhere.
        same_count = len(per_process) == trainer.world_size
        set_rng_state(per_process[trainer.global_rank] if same_count else state["rng"])
        if trainer.global_rank != 0:  # the saved counters are the global sums: rank 0 carries them
            module.counters = {k: (v if k.startswith("offline_") else 0) for k, v in module.counters.items()}
        load_engine = getattr(module.engine, "load_state_dict", None)
        if state["engine"] is not None and callable(load_engine):
            load_engine(state["engine"])
        self.saved_step = module.rl_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.every and module.rl_step % self.every == 0:
            self.save(trainer, module)
        if module.nonfinite_streak >= self.max_nonfinite_steps:
            if self.saved_step != module.rl_step:
                self.save(trainer, module)
            first = module.rl_step - module.nonfinite_streak + 1
            raise NonFiniteLossError(
                f"stopped at step {module.rl_step}: the loss was NaN/inf in {module.nonfinite_streak} steps in a row "
                f"(steps {first}..{module.rl_step}; max_nonfinite_steps {self.max_nonfinite_steps}), "
                f"{module.nonfinite_skipped} updates skipped in all; checkpoint {self.path}")

    def on_train_end(self, trainer, module):
        self.save(trainer, module, finished=True)
