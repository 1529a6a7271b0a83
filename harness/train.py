"""One training run: (algorithm, seed) on a task and model, logged to MLflow and a JSON file.

:func:`run_training` is :func:`build` (settings, module, data, logger, callbacks), :func:`fit`
(the Lightning Trainer) and :func:`record` (summary, run record, checkpoint cleanup, MLflow close).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from harness.budget import Budget
from harness.config import RunConfig, as_params, prompts_per_step
from harness.prompts import PROMPT_VERSION
from harness.run_module import RunModule, build_module
from harness.splits import held_out_examples, run_examples, split_record

if TYPE_CHECKING:  # imported where used: `import harness.train` stays light (Lightning takes seconds)
    from harness.callbacks import RunRecorder
    from harness.placement import ProcessSetup
    from harness.prompt_data import PromptData


def make_logger(run: RunConfig, tags: dict, run_id: str | None = None):
    """MLflow logger that survives the server going away mid-run; `run_id` continues a run."""
    from harness.mlflow_logger import ResilientMLFlowLogger
    from harness.tracking import check_tracking_uri, ensure_experiment

    uri = run.tracking()
    check_tracking_uri(uri)
    ensure_experiment(uri, run.experiment)  # a new store's tables, made under a lock
    return ResilientMLFlowLogger(experiment_name=run.experiment, tracking_uri=uri,
                                 run_name=f"{run.algorithm}-seed{run.seed}", tags=tags, run_id=run_id)


def before_eval_cache(run: RunConfig, model_path: str, data: dict, eval_kwargs: dict, accelerator: str) -> Path:
    """Where the evaluation before training is kept for the runs that start from the same weights
    (:class:`harness.callbacks.EvalCallback`): keyed on the weights' files, the engine and its
    options, the held-out examples, the prompts, the sampling, the torch build and threads, and
    where it runs (device kind, the weights' dtype, the precision)."""
    import hashlib
    import json

    from harness.engines import resolve_engine
    from harness.models import model_fingerprint
    from harness.paths import cache_path

    placement = {"device": "cuda" if accelerator == "gpu" else "cpu",
                 "dtype": "bfloat16" if run.precision == "bf16-true" else "float32", "precision": run.precision}
    key = json.dumps([model_fingerprint(model_path), resolve_engine(run.engine), run.engine_options, run.task,
                      data["eval"]["sha256"], run.prompt_style, eval_kwargs, torch.__version__,
                      torch.get_num_threads(), placement], sort_keys=True, default=str)
    return cache_path("evals") / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def run_offline_stage(module, run: RunConfig, examples, encode_fn, reward_fn, model_path, parameters,
                      recorder, log) -> list:
    """Stage 1 before training (once the module is on its device); returns the training examples to keep."""
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
    """The value diagnostic's probe set and its callback, and the job that draws its reference
    samples (never charged) once the module is on its device."""
    from harness.diagnostic import DIAG_OFFLINE_SAMPLES, ValueDiagnosticCallback
    from harness.offline import offline_stage

    probe = held_out_examples(task, run, run.diag_probe)
    # The module's own M when it has an offline stage, so an ablation of M shows in the diagnostic.
    n = module.offline_samples_per_prompt() or DIAG_OFFLINE_SAMPLES
    log(f"diag: value diagnostic every {run.diag_every} steps on {len(probe)} probe prompts (not charged)")
    c = module.config
    callback = ValueDiagnosticCallback(recorder, task, probe, encode_fn, {}, every=run.diag_every,
                                       mc_samples=run.diag_mc_samples, seed=run.seed * 1_000_003 + 700_000,
                                       temperature=c.temperature, top_p=c.top_p, max_new_tokens=c.max_new_tokens)

    def sample_reference(module) -> None:
        rewards, cost = offline_stage(module, probe, encode_fn, reward_fn, model_path, run.task, run.seed, log=log, n=n)
        recorder.log({"timing_s/diag_offline": cost["seconds"]}, 0)
        callback.set_offline_rewards(rewards)

    return callback, sample_reference


@dataclass
class TrainingRun:
    """A run as :func:`build` leaves it for :func:`fit` and :func:`record`."""

    run: RunConfig
    built: RunModule
    data: dict  # the examples' checksums and the held-out split (the record's `data`)
    tags: dict
    params: dict  # the MLflow params and the record's `config`
    env: dict
    logger: object
    recorder: RunRecorder
    prompt_data: PromptData
    setup: ProcessSetup
    callbacks: list
    ckpt_path: Path
    resumed_at: list[int]  # the steps this run was resumed at
    progress: bool = True


def build(run: RunConfig, log=print, progress: bool = True, extra_callbacks: list | None = None,
          extra_tags: dict | None = None, resume: bool = False) -> TrainingRun:
    """Settings checked, the module (harness.run_module), the data, the MLflow logger, the
    recorder, and the callbacks in their order; a resumed run's state loaded from its checkpoint."""
    from harness.callbacks import EvalCallback, RunRecorder, StopCallback, TelemetryCallback
    from harness.checkpoint import CheckpointCallback, check_resumable, load_checkpoint
    from harness.engines import engine_params, resolve_engine
    from harness.environment import environment
    from harness.heap import process_heap_peak
    from harness.paths import checkpoint_path
    from harness.placement import ProcessSetup
    from harness.prompt_data import PromptData
    from harness.records import command_line, examples_checksum

    built = build_module(run, log=log)
    module, algo_config, task = built.module, built.algo_config, built.task
    encode_fn, reward_fn, model_path = built.encode_fn, built.reward_fn, built.model_path
    on_cpu = built.accelerator == "cpu"
    budget = Budget.parse(run.budget) if run.budget else None
    train_examples, eval_examples = run_examples(task, run)
    data = {"data_dir": run.data_dir, "train": examples_checksum(train_examples),
            "eval": examples_checksum(eval_examples), **split_record(run)}
    tags = {"algorithm": run.algorithm, "seed": str(run.seed), "task": run.task, "model": run.model,
            "engine": resolve_engine(run.engine), "budget_kind": budget.kind if budget else "steps",
            "prompt_version": PROMPT_VERSION, **(extra_tags or {})}
    params = as_params(run, algo_config)
    params.update(engine_params(run.engine, run.engine_options, run.precision))
    ckpt_path = checkpoint_path(run)
    saved = None
    if resume and ckpt_path.exists():
        saved = load_checkpoint(ckpt_path)
        check_resumable(saved, params, ckpt_path)
        log(f"resume: from {ckpt_path} at step {saved['training']['rl_step']}")
    elif resume:
        log(f"resume: no checkpoint at {ckpt_path}; starting from scratch")
    same_tracking = saved is not None and saved["run"]["tracking_uri"] == run.tracking()
    logger = make_logger(run, tags, run_id=saved["run"]["mlflow_run_id"] if same_tracking else None)
    env = environment()
    env["heap_watch"] = on_cpu and process_heap_peak().peak_gb() is not None  # harness.heap in effect
    if not same_tracking:  # a resumed MLflow run has its params already
        logger.log_hyperparams({**params, "model_path": model_path, "prompt_version": PROMPT_VERSION, "git_commit": env["git_commit"],
                                "command": " ".join(command_line()), "data.train_sha256": data["train"]["sha256"],
                                "data.eval_sha256": data["eval"]["sha256"],
                                **{f"version.{k}": v for k, v in env["versions"].items()}})
    parameters = built.parameters
    recorder = RunRecorder(logger, parameters)
    resumed_at = list(saved["run"]["resumed_at"]) if saved else []
    prompt_data = PromptData(train_examples, prompts_per_step(run, algo_config), run.seed)
    before_training = []  # jobs run once the module is on its device, before the first evaluation
    if saved is not None:
        # Weights, counters and offline results now; optimizers and RNGs once the Trainer has built them.
        module.load_state_dict(saved["module"])
        module.load_training_state(saved["training"])
        recorder.load_state(saved["run"]["recorder"])
        kept = set(saved["run"]["train_ids"])
        prompt_data.examples = [ex for ex in train_examples if ex.id in kept]
        resumed_at.append(module.rl_step)
    elif module.needs_offline_values:
        def offline(module) -> None:
            prompt_data.examples = run_offline_stage(module, run, prompt_data.examples, encode_fn, reward_fn,
                                                     model_path, parameters, recorder, log)

        before_training.append(offline)
    prompt_data.start_step = module.rl_step
    eval_kwargs = {"samples": run.eval_samples, "temperature": run.eval_temperature, "seed": run.seed + 12345,
                   "max_new_tokens": run.eval_max_new_tokens or algo_config.max_new_tokens}
    eval_callback = EvalCallback(recorder, task, eval_examples, encode_fn, every=run.eval_every,
                                 before_cache=before_eval_cache(run, model_path, data, eval_kwargs, built.accelerator),
                                 **eval_kwargs)

    # The engine is built per process once Lightning has started them (harness.placement).
    setup = ProcessSetup(lambda module, rank: built.make_engine(rank), before_training)
    callbacks = [setup, TelemetryCallback(recorder), StopCallback(recorder, run.max_steps, budget), eval_callback]
    callbacks += list(extra_callbacks or [])
    if run.diag_every > 0:
        diag_callback, sample_reference = value_diagnostic_callback(module, run, task, encode_fn, reward_fn,
                                                                    model_path, recorder, log)
        callbacks.append(diag_callback)
        setup.before_training.append(sample_reference)

    def run_state() -> dict:
        return {"params": params, "mlflow_run_id": logger.run_id, "tracking_uri": run.tracking(),
                "train_ids": [ex.id for ex in prompt_data.examples], "resumed_at": resumed_at,
                "recorder": recorder.state()}

    callbacks.append(CheckpointCallback(ckpt_path, run.checkpoint_every, run_state, resume_state=saved,
                                        max_nonfinite_steps=run.max_nonfinite_steps))  # last: sees the whole step
    return TrainingRun(run, built, data, tags, params, env, logger, recorder, prompt_data, setup, callbacks,
                       ckpt_path, resumed_at, progress)


def fit(training: TrainingRun):
    """The Lightning Trainer over the run's callbacks; returns (trainer, wall seconds of `fit`)."""
    import lightning as L

    from harness.placement import trainer_devices, trainer_precision

    run = training.run
    # strategy auto: one process; ddp: devices x num_nodes processes, each with its share of every
    # step's prompts (PromptData), budgets summed and metrics logged once (rank 0).
    trainer = L.Trainer(accelerator=training.built.accelerator, strategy=run.strategy, devices=trainer_devices(run),
                        **trainer_precision(run.precision), num_nodes=run.num_nodes, max_epochs=-1, max_steps=-1,
                        logger=training.logger, callbacks=training.callbacks, enable_checkpointing=False,
                        enable_model_summary=False, enable_progress_bar=training.progress, num_sanity_val_steps=0,
                        limit_val_batches=0, log_every_n_steps=1, use_distributed_sampler=False)
    started = time.perf_counter()
    trainer.fit(training.built.module, datamodule=training.prompt_data)
    return trainer, time.perf_counter() - started


def record(training: TrainingRun, trainer, wall_s: float, log=print) -> dict:
    """The run record; on rank 0 written (harness.records), the checkpoint removed unless kept,
    and the MLflow run closed."""
    from harness.checkpoint import remove_checkpoint
    from harness.paths import run_path
    from harness.records import command_line, write_run

    run, module, recorder, logger = training.run, training.built.module, training.recorder, training.logger
    curve = recorder.eval_curve
    summary = {
        "accuracy_before": curve[0]["eval/accuracy"],
        "accuracy_after": curve[-1]["eval/accuracy"],
        "steps": module.rl_step,
        "nonfinite_skipped": module.nonfinite_skipped,
        "wall_s": wall_s,
        "parameters": training.built.parameters,
        "processes": trainer.world_size,
        "processes_in_training_step": module.processes,
        "parameters_in_sync": training.setup.parameters_in_sync,
    }
    final = dict(recorder.latest)
    record = {
        "algorithm": run.algorithm, "seed": run.seed, "task": run.task, "model": run.model,
        "engine": training.tags["engine"], "experiment": run.experiment, "budget": run.budget,
        "config": training.params, "environment": training.env, "prompt_version": PROMPT_VERSION,
        "command": command_line(), "data": training.data, "model_path": training.built.model_path,
        "mlflow_run_id": logger.run_id, "tracking_uri": run.tracking(),
        "summary": summary, "final_metrics": final, "eval_curve": curve,
        "diag_curve": recorder.diag_curve, "history": recorder.history,
        "faults": {"nonfinite_skipped": module.nonfinite_skipped, "resumed_at_steps": training.resumed_at,
                   "tracking": logger.status()},
        "global_rank": trainer.global_rank,
    }
    if not trainer.is_global_zero:
        return record
    write_run(run_path(run.output_dir, run.experiment, run.algorithm, run.seed), record)
    if not run.keep_checkpoint:  # the record is written: the run needs no resume any more
        remove_checkpoint(training.ckpt_path)
    try:
        logger.finalize("success")
    except Exception as err:
        log(f"warning: could not close the MLflow run ({err}); the run's JSON has every metric")
    return record


def run_training(run: RunConfig, log=print, progress: bool = True, extra_callbacks: list | None = None,
                 extra_tags: dict | None = None, resume: bool = False) -> dict:
    """Train, evaluate before and after, log everything; returns the run record (also written as JSON).

    With `resume`, continue from the run's checkpoint if it has one (harness.checkpoint).

    `extra_callbacks` run after the evaluation callback (a sweep's pruning hook reads its result);
    `extra_tags` are added to the MLflow run's tags (a sweep's parent run and trial number)."""
    training = build(run, log=log, progress=progress, extra_callbacks=extra_callbacks, extra_tags=extra_tags,
                     resume=resume)
    trainer, wall_s = fit(training)
    return record(training, trainer, wall_s, log=log)
