"""Shared pieces of the benchmark scripts: building an algorithm's module the way `run_training`
does, driving it with a bare Lightning Trainer, per-step wall times, the machine's load.

Not a script: `benchmarks/*.py` import it (`python benchmarks/x.py` puts this folder on the path).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import lightning as L

# Model settings of the benchmarks: the tiny policy on arithmetic, SmolLM2-135M-Instruct on GSM8K.
MODELS = {
    "tiny": {"preset": "default", "task_options": {"levels": [1]}},
    "smollm2-135m": {"preset": "gsm8k-smollm2", "data_dir": os.environ.get("RLVR_DATA_DIR")},  # else the hub
}


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def run_config(algorithm: str, model: str, engine: str, threads: int, samples_per_step: int,
               max_new_tokens: int, steps: int, seed: int = 0, output_dir: str | None = None, **extra):
    """A RunConfig like the model's preset, sized for a benchmark (no periodic eval, no diagnostic)."""
    from harness.config import load_run_config

    spec = MODELS[model]
    algo = {"max_new_tokens": max_new_tokens, **extra.pop("algo", {})}
    overrides = {"algorithm": algorithm, "model": model, "engine": engine, "threads": threads, "seed": seed,
                 "samples_per_step": samples_per_step, "max_steps": steps, "eval_every": 0, "eval_limit": 4,
                 "eval_max_new_tokens": max_new_tokens, "budget": None, "algo": algo,
                 "train_limit": max(samples_per_step * steps, 64), "checkpoint_every": 0,
                 "experiment": "benchmark", "output_dir": output_dir or "/tmp/rlvr-bench-benchmarks"}
    for key in ("task_options", "data_dir"):
        if key in spec:
            overrides[key] = spec[key]
    overrides.update(extra)
    run = load_run_config(spec["preset"], overrides)
    run.budget = None  # the preset's budget would stop a benchmark early
    return run


@dataclass
class Built:
    module: object
    examples: list
    prompts_per_step: int
    parameters: int


def build(run, log=lambda *_: None) -> Built:
    """The algorithm's module on the run's model, task and engine, built by the builder
    `harness.train.run_training` uses (`harness.run_module.build_module`), offline stage included
    (its samples are cached on disk across runs). Without the harness's heap sampling: the bare
    loop times the algorithm, not the harness's instruments."""
    import torch

    from harness.config import prompts_per_step
    from harness.offline import offline_stage
    from harness.run_module import build_module
    from harness.splits import load_examples

    built = build_module(run, log=log, watch_heap=False)
    module = built.module
    examples = load_examples(built.task, "train", run, run.train_limit)
    module.engine = built.make_engine()
    torch.set_num_threads(run.threads)  # vLLM lowers the process's threads when it starts
    if module.needs_offline_values:
        rewards, _ = offline_stage(module, examples, built.encode_fn, built.reward_fn, built.model_path, run.task,
                                   run.seed, log=log)
        module.set_offline(rewards)
        examples = [ex for ex in examples if module.keep_example(ex, rewards)]
    return Built(module, examples, prompts_per_step(run, built.algo_config), built.parameters)


class StepClock(L.Callback):
    """Wall seconds from one training step's start to the next one's (so every other callback's
    work at the end of a step counts), and the module's step metrics and counters after each step."""

    def __init__(self):
        self.starts: list[float] = []
        self.metrics: list[dict] = []
        self.counters: list[dict] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.metrics.append(dict(module.step_metrics))
        self.counters.append(dict(module.counters))

    def step_seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]


class StopAfter(L.Callback):
    def __init__(self, steps: int):
        self.steps = steps

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.rl_step >= self.steps:
            trainer.should_stop = True


def bare_fit(built: Built, steps: int, seed: int = 0, callbacks: list | None = None) -> StepClock:
    """`steps` RL steps of the module under a bare Lightning Trainer: no logger, no telemetry,
    budget, evaluation or checkpoint callbacks."""
    from harness.prompt_data import PromptData

    clock = StepClock()
    trainer = L.Trainer(accelerator="cpu", max_epochs=-1, max_steps=-1, logger=False,
                        callbacks=[clock, *(callbacks or []), StopAfter(steps)], enable_checkpointing=False,
                        enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0,
                        limit_val_batches=0, use_distributed_sampler=False)
    trainer.fit(built.module, datamodule=PromptData(built.examples, built.prompts_per_step, seed))
    return clock


def markdown_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
