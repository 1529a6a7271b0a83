"""Helper of test_ddp.py (run as a script): one step's loss and gradients on a fixed global batch.

`python ddp_first_step.py ALGORITHM MODEL_DIR OUT_DIR ddp` trains under Lightning's DDP strategy
(gloo, 2 CPU processes; Lightning starts the second by running this script again): each process
takes its share of the step's prompts from the real prompt sampler, rolls out the whole global
batch (deterministic: same weights, same seed) and keeps its own rows, then runs the module's
real batch and loss path with its manual backward; DDP averages the gradients. Each process
saves its loss and gradients. `single` runs the same global batch in one process, no Trainer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch

PROMPTS = 4  # global prompts per step: 2 per process


def build(algorithm: str, model_dir: str):
    """The module as a training run builds it (harness.run_module), on the HF engine, one thread."""
    from harness.config import load_run_config, validate_run
    from harness.run_module import build_module

    run = load_run_config("smoke", {"algorithm": algorithm, "model": model_dir, "engine": "hf", "threads": 1,
                                    "accelerator": "cpu", "seed": 0})
    config = validate_run(run)
    config.micro_batch_size = 8  # several micro-batches per process: exact accumulation across them too
    built = build_module(run, algo_config=config)
    module, encode_fn, reward_fn = built.module, built.encode_fn, built.reward_fn
    module.engine = built.make_engine()
    examples = built.task.load("train", limit=32, **run.task_options)
    if module.needs_offline_values:  # a fixed prior: k of 8 reference samples correct, k = index mod 9
        module.set_offline({ex.id: [1.0] * (i % 9) + [0.0] * (8 - i % 9) for i, ex in enumerate(examples)})
    return module, examples, encode_fn, reward_fn


def global_rollout(module, examples, encode_fn, reward_fn):
    from harness.prompt_data import PromptSampler

    chosen = [examples[i] for i in PromptSampler(len(examples), PROMPTS, seed=0).global_batch(0)]
    # Every process draws rank 0's global batch (the harness gives each process its own seed).
    rollout = module.engine.generate(encode_fn(chosen), module.sampling_params(rank=0))
    rewards = reward_fn(rollout.texts, [ex for ex in chosen for _ in range(module.samples_per_prompt)])
    return chosen, rollout, rewards


def rows(rollout, rewards, start: int, stop: int):
    from algorithms.rollout import Rollout

    part = Rollout(rollout.prompt_ids[start:stop], rollout.completion_ids[start:stop], rollout.logprobs[start:stop],
                   rollout.texts[start:stop])
    return part, rewards[start:stop]


def gradients(module) -> dict:
    return {name: p.grad.detach().clone() for name, p in module.policy.named_parameters() if p.grad is not None}


def single(algorithm: str, model_dir: str) -> dict:
    module, examples, encode_fn, reward_fn = build(algorithm, model_dir)
    chosen, rollout, rewards = global_rollout(module, examples, encode_fn, reward_fn)
    batch = module.batch_from_rollout(rollout, rewards, chosen)
    stats = module.accumulate_gradients(batch)
    return {"loss": stats["loss"], "grads": gradients(module), "rewards": rewards,
            "advantages": batch.advantages.detach().clone()}


def ddp(algorithm: str, model_dir: str, out_dir: str) -> None:
    from harness.prompt_data import PromptData

    module, examples, encode_fn, reward_fn = build(algorithm, model_dir)
    base = type(module)

    def training_step(self, shard, batch_idx):
        chosen, rollout, rewards = global_rollout(self, examples, encode_fn, reward_fn)
        share, g = PROMPTS // self.trainer.world_size, self.samples_per_prompt
        start = self.global_rank * share
        assert [ex.id for ex in shard] == [ex.id for ex in chosen[start:start + share]], "sampler shard"
        part, part_rewards = rows(rollout, rewards, start * g, (start + share) * g)
        batch = self.batch_from_rollout(part, part_rewards, shard)
        stats = self.accumulate_gradients(batch)
        torch.save({"loss": stats["loss"], "grads": gradients(self), "advantages": batch.advantages.detach().clone(),
                    "world_size": self.trainer.world_size, "global_counters": self.global_counters()},
                   Path(out_dir) / f"rank{self.global_rank}.pt")
        self.trainer.should_stop = True

    module.__class__ = type(f"FirstStep{base.__name__}", (base,), {"training_step": training_step})
    trainer = L.Trainer(strategy="ddp", accelerator="cpu", devices=2, max_steps=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, datamodule=PromptData(examples, PROMPTS, seed=0))


if __name__ == "__main__":
    algorithm_name, model, out, mode = sys.argv[1:5]
    if mode == "ddp":
        ddp(algorithm_name, model, out)
    else:
        torch.save(single(algorithm_name, model), Path(out) / "single.pt")
