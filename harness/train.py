"""One training run: (algorithm, seed) on a task and model, logged to MLflow and a JSON file."""

from __future__ import annotations

import logging
import time
import warnings

import torch

from harness.budget import Budget
from harness.config import RunConfig, algorithm_config, as_params, prompts_per_step
from harness.prompts import PROMPT_VERSION, encode_prompts


def quiet_lightning() -> None:
    # Lightning's tips (num_workers, litlogger, ...) are noise for this CPU loop.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*TPU available.*")


def make_logger(run: RunConfig, tags: dict):
    from lightning.pytorch.loggers import MLFlowLogger

    from harness.tracking import check_tracking_uri

    uri = run.tracking()
    check_tracking_uri(uri)
    return MLFlowLogger(experiment_name=run.experiment, tracking_uri=uri,
                        run_name=f"{run.algorithm}-seed{run.seed}", tags=tags)


def load_examples(task, split: str, run: RunConfig, limit: int | None) -> list:
    try:
        return task.load(split, data_dir=run.data_dir, limit=limit, **run.task_options)
    except TypeError as err:
        raise ValueError(f"task_options {run.task_options}: not accepted by task {run.task!r} ({err})") from None


def run_offline_stage(module, run: RunConfig, examples, encode_fn, reward_fn, model_path, parameters,
                      recorder, log) -> list:
    """Stage 1 before training; returns the training examples to keep."""
    from harness.offline import charge, offline_stage

    rewards, cost = offline_stage(module, examples, encode_fn, reward_fn, model_path, run.task, run.seed, log=log)
    module.set_offline(rewards)
    metrics = {"timing_s/offline": cost["seconds"], "offline/samples": float(cost["samples"]),
               "offline/generated_tokens": float(cost["generated_tokens"])}
    if run.charge_offline:
        charge(module, cost, parameters)
        recorder.offline_seconds = cost["seconds"]
    log(f"offline: cost {'charged to the budget' if run.charge_offline else 'reported apart, not charged'}")
    recorder.log(metrics, 0)
    return [ex for ex in examples if module.keep_example(ex, rewards)]


def value_diagnostic_callback(module, run: RunConfig, task, encode_fn, reward_fn, model_path, recorder, log):
    """The value diagnostic's probe set, its reference samples (never charged) and its callback."""
    from harness.diagnostic import DIAG_OFFLINE_SAMPLES, ValueDiagnosticCallback
    from harness.offline import offline_stage

    probe = load_examples(task, "test", run, run.diag_probe)
    # The module's own M when it has an offline stage, so an ablation of M shows in the diagnostic.
    n = module.offline_samples_per_prompt() or DIAG_OFFLINE_SAMPLES
    log(f"diag: value diagnostic every {run.diag_every} steps on {len(probe)} probe prompts (not charged)")
    rewards, cost = offline_stage(module, probe, encode_fn, reward_fn, model_path, run.task, run.seed, log=log, n=n)
    recorder.log({"timing_s/diag_offline": cost["seconds"]}, 0)
    c = module.config
    return ValueDiagnosticCallback(recorder, task, probe, encode_fn, rewards, every=run.diag_every,
                                   mc_samples=run.diag_mc_samples, seed=run.seed * 1_000_003 + 700_000,
                                   temperature=c.temperature, top_p=c.top_p, max_new_tokens=c.max_new_tokens)


def run_training(run: RunConfig, log=print, progress: bool = True, extra_callbacks: list | None = None,
                 extra_tags: dict | None = None) -> dict:
    """Train, evaluate before and after, log everything; returns the run record (also written as JSON).

    `extra_callbacks` run after the evaluation callback (a sweep's pruning hook reads its result);
    `extra_tags` are added to the MLflow run's tags (a sweep's parent run and trial number)."""
    import lightning as L
    from torch.utils.data import DataLoader

    import algorithms
    import tasks
    from harness.callbacks import (
        EvalCallback,
        RunRecorder,
        StopCallback,
        TelemetryCallback,
    )
    from harness.engines import make_engine
    from harness.environment import environment
    from harness.models import load_policy, resolve_model
    from harness.records import command_line, examples_checksum, run_path, write_json_atomic

    quiet_lightning()
    if run.threads:
        torch.set_num_threads(run.threads)
    algo_cls = algorithms.get(run.algorithm)
    algo_config = algorithm_config(run)
    budget = Budget.parse(run.budget) if run.budget else None
    task = tasks.get(run.task)
    L.seed_everything(run.seed, workers=True, verbose=False)

    model_path = resolve_model(run.model, log=log)
    tokenizer, policy = load_policy(model_path)
    train_examples = load_examples(task, "train", run, run.train_limit)
    eval_examples = load_examples(task, "test", run, run.eval_limit)
    data = {"data_dir": run.data_dir, "train": examples_checksum(train_examples),
            "eval": examples_checksum(eval_examples)}
    engine = make_engine(run.engine, policy, tokenizer)

    def encode_fn(examples):
        return encode_prompts(tokenizer, [ex.prompt for ex in examples], run.prompt_style)

    def reward_fn(texts, examples):
        return [v.score for v in task.reward_many(texts, examples)]

    module = algo_cls(policy, tokenizer, engine, reward_fn, encode_fn, algo_config, seed=run.seed)
    tags = {"algorithm": run.algorithm, "seed": str(run.seed), "task": run.task, "model": run.model,
            "engine": run.engine, "budget_kind": budget.kind if budget else "steps",
            "prompt_version": PROMPT_VERSION, **(extra_tags or {})}
    logger = make_logger(run, tags)
    params = as_params(run, algo_config)
    env = environment()
    logger.log_hyperparams({**params, "model_path": model_path, "prompt_version": PROMPT_VERSION, "git_commit": env["git_commit"],
                            "command": " ".join(command_line()), "data.train_sha256": data["train"]["sha256"],
                            "data.eval_sha256": data["eval"]["sha256"],
                            **{f"version.{k}": v for k, v in env["versions"].items()}})
    parameters = sum(p.numel() for p in policy.parameters())
    recorder = RunRecorder(logger, parameters)
    if module.needs_offline_values:
        train_examples = run_offline_stage(module, run, train_examples, encode_fn, reward_fn, model_path,
                                           parameters, recorder, log)
    eval_callback = EvalCallback(
        recorder, task, eval_examples, encode_fn, every=run.eval_every, samples=run.eval_samples,
        temperature=run.eval_temperature, max_new_tokens=run.eval_max_new_tokens or algo_config.max_new_tokens,
        seed=run.seed + 12345)
    callbacks = [TelemetryCallback(recorder), StopCallback(recorder, run.max_steps, budget), eval_callback]
    callbacks += list(extra_callbacks or [])
    if run.diag_every > 0:
        callbacks.append(value_diagnostic_callback(module, run, task, encode_fn, reward_fn, model_path, recorder, log))
    loader = DataLoader(train_examples, batch_size=prompts_per_step(run, algo_config), shuffle=True, drop_last=True,
                        collate_fn=list, generator=torch.Generator().manual_seed(run.seed))
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=100_000, max_steps=-1, logger=logger,
                        callbacks=callbacks, enable_checkpointing=False, enable_model_summary=False,
                        enable_progress_bar=progress, num_sanity_val_steps=0, limit_val_batches=0,
                        log_every_n_steps=1)
    started = time.perf_counter()
    trainer.fit(module, loader)
    curve = recorder.eval_curve
    summary = {
        "accuracy_before": curve[0]["eval/accuracy"],
        "accuracy_after": curve[-1]["eval/accuracy"],
        "steps": module.rl_step,
        "wall_s": time.perf_counter() - started,
        "parameters": parameters,
    }
    final = dict(recorder.latest)
    record = {
        "algorithm": run.algorithm, "seed": run.seed, "task": run.task, "model": run.model,
        "engine": run.engine, "experiment": run.experiment, "budget": run.budget,
        "config": params, "environment": env, "prompt_version": PROMPT_VERSION,
        "command": command_line(), "data": data, "model_path": model_path,
        "mlflow_run_id": logger.run_id, "tracking_uri": run.tracking(),
        "summary": summary, "final_metrics": final, "eval_curve": curve,
        "diag_curve": recorder.diag_curve, "history": recorder.history,
    }
    write_json_atomic(run_path(run.output_dir, run.experiment, run.algorithm, run.seed), record)
    try:
        logger.finalize("success")
    except Exception as err:
        log(f"warning: could not close the MLflow run ({err}); the run's JSON has every metric")
    return record
