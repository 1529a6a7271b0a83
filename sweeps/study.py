"""One sweep worker: open (or join) an Optuna study, run trials until it has N complete ones.

Each trial is one `run_training` with the trial's hyperparameters as `algo` overrides, logged
as an MLflow child run (tag `mlflow.parentRunId`) of the study's parent run. Several workers
(processes, machines) share a study through any Optuna RDB storage; a heartbeat marks the
trial of a dead worker FAIL after the grace period and queues a retry with the same params.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from harness.config import RunConfig
from harness.paths import sweeps_dir
from sweeps.pruning import PruningCallback
from sweeps.space import load_space, suggest

PARENT_ATTR = "mlflow_parent_run_id"


@dataclass
class SweepSettings:
    algorithm: str
    trials: int
    """Complete trials the study must reach (over all workers; pruned and failed ones do not count)."""
    study: str | None = None
    storage: str | None = None
    """Optuna RDB URL; default SQLite under <output_dir>/sweeps/optuna.db."""
    resume: bool = False
    """Continue (or join) an existing study instead of refusing to touch it."""
    multi_objective: bool = False
    space: str | None = None
    seed: int = 0
    baseline: bool = True
    """Enqueue the algorithm's preset values as trial 0, so the study holds the untuned result."""
    pruner: str = "median"
    pruner_startup_trials: int = 2
    startup_trials: int | None = None
    heartbeat_s: int = 10
    grace_s: int = 60
    max_retry: int = 2
    poll_s: float = 2.0
    join_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"--trials must be >= 1, got {self.trials}")
        if self.pruner not in ("median", "none"):
            raise ValueError(f"--pruner must be median or none, got {self.pruner!r}")
        if self.heartbeat_s < 1 or self.grace_s <= self.heartbeat_s:
            raise ValueError(f"--heartbeat must be >= 1 s and --grace longer than it, got {self.heartbeat_s}, {self.grace_s}")


def study_name(settings: SweepSettings, run: RunConfig) -> str:
    return settings.study or f"{settings.algorithm}-{run.experiment}"


def sweep_dir(run: RunConfig, name: str) -> Path:
    return sweeps_dir(run.output_dir) / name


def default_storage(run: RunConfig) -> str:
    folder = sweeps_dir(run.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'optuna.db'}"


def make_storage(url: str, settings: SweepSettings) -> optuna.storages.RDBStorage:
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=settings.heartbeat_s, grace_period=settings.grace_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=settings.max_retry))
    except Exception as err:  # bad URL, missing driver, unreachable server
        raise ValueError(f"--storage {shown(url)}: cannot open the Optuna storage ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None


def shown(url: str) -> str:
    """The storage URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<storage URL>"


def make_sampler(settings: SweepSettings, seed: int):
    if settings.multi_objective:
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, min(50, settings.trials // 2)))
    startup = settings.startup_trials or max(2, min(10, settings.trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def make_pruner(settings: SweepSettings):
    if settings.pruner == "none" or settings.multi_objective:  # Optuna prunes single-objective studies only
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=settings.pruner_startup_trials, n_warmup_steps=0)


def _mlflow_parent(run: RunConfig, name: str, settings: SweepSettings, space) -> str:
    from mlflow import MlflowClient

    from harness.tracking import ensure_experiment

    client = MlflowClient(run.tracking())
    experiment_id = ensure_experiment(run.tracking(), run.experiment)
    parent = client.create_run(experiment_id, run_name=name, tags={
        "sweep.study": name, "sweep.role": "parent", "algorithm": settings.algorithm,
        "sweep.objectives": "accuracy,seconds" if settings.multi_objective else "accuracy",
        "sweep.eval_split": run.eval_split})
    for p in space:
        spec = list(p.choices) if p.distribution == "categorical" else [p.low, p.high]
        client.log_param(parent.info.run_id, f"space.{p.name}", f"{p.distribution} {spec}")
    client.log_param(parent.info.run_id, "trials", settings.trials)
    return parent.info.run_id


def open_study(settings: SweepSettings, run: RunConfig, storage_url: str, space, preset: str | None, log=print):
    """Create the study (and its MLflow parent run), or join it with `resume`."""
    storage = make_storage(storage_url, settings)
    name = study_name(settings, run)
    directions = ["maximize", "minimize"] if settings.multi_objective else ["maximize"]
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions,
                                    sampler=make_sampler(settings, settings.seed), pruner=make_pruner(settings))
    except optuna.exceptions.DuplicatedStudyError:
        if not settings.resume:
            raise ValueError(f"--study {name}: already exists in {shown(storage_url)}; pass --resume to continue it "
                             f"or to join it as another worker") from None
        # A joining worker draws its own random stream, or both would propose the same trials.
        seed = settings.seed + 1 + int.from_bytes(os.urandom(2), "little")
        study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(settings, seed),
                                  pruner=make_pruner(settings))
        return _joined(study, settings, storage_url, log)
    from harness.config import preset_path, read_yaml

    compare = read_yaml(preset_path(preset)).get("compare", {}) if preset else {}
    study.set_user_attr("algorithm", settings.algorithm)
    study.set_user_attr("run_config", dataclasses.asdict(run))
    study.set_user_attr("compare", compare)
    defaults = baseline_params(run, space) if settings.baseline else {}
    if defaults:
        study.enqueue_trial(defaults, user_attrs={"baseline": True})
    study.set_user_attr(PARENT_ATTR, _mlflow_parent(run, name, settings, space))
    log(f"sweep: created study {name!r} in {shown(storage_url)}")
    return study


def baseline_params(run: RunConfig, space) -> dict:
    """The run's resolved hyperparameters (preset and `--set`) that lie inside the space."""
    from harness.config import algorithm_config

    config = algorithm_config(run)
    values = {}
    for p in space:
        value = getattr(config, p.name)
        if p.distribution == "categorical":
            inside = value in p.choices
        else:
            inside = isinstance(value, (int, float)) and not isinstance(value, bool) and p.low <= value <= p.high
        if inside:
            values[p.name] = value
    return values


def _joined(study, settings: SweepSettings, storage_url: str, log):
    expected = [optuna.study.StudyDirection.MAXIMIZE] + (
        [optuna.study.StudyDirection.MINIMIZE] if settings.multi_objective else [])
    if study.directions != expected:
        raise ValueError(f"--study {study.study_name}: its objectives do not match --multi-objective "
                         f"{'on' if settings.multi_objective else 'off'}")
    deadline = time.monotonic() + settings.join_timeout_s
    while PARENT_ATTR not in study.user_attrs:  # the creating worker is still setting it up
        if time.monotonic() > deadline:
            raise ValueError(f"--study {study.study_name}: no MLflow parent run after {settings.join_timeout_s:.0f} s; "
                             "was it created by `rlvr-bench sweep`?")
        time.sleep(0.5)
    if study.user_attrs.get("algorithm") != settings.algorithm:
        raise ValueError(f"--study {study.study_name}: sweeps {study.user_attrs.get('algorithm')!r}, "
                         f"not --algorithm {settings.algorithm!r}")
    log(f"sweep: joined study {study.study_name!r} in {shown(storage_url)}")
    return study


def make_objective(study, settings: SweepSettings, run: RunConfig, space, log=print):
    from mlflow import MlflowClient

    from harness.train import run_training

    parent = study.user_attrs[PARENT_ATTR]
    client = MlflowClient(run.tracking())

    def objective(trial: optuna.Trial):
        values = suggest(trial, space)
        trial_run = dataclasses.replace(run, algo={**run.algo, **values}, tracking_uri=run.tracking(),
                                        output_dir=str(sweep_dir(run, study.study_name) / f"trial-{trial.number}"))
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        tags = {"mlflow.parentRunId": parent, "sweep.study": study.study_name, "sweep.trial": str(trial.number)}
        if trial.user_attrs.get("baseline"):
            tags["sweep.baseline"] = "true"
        if "failed_trial" in frozen.system_attrs:
            tags["sweep.retry_of"] = str(frozen.system_attrs["failed_trial"])
        pruning = [] if settings.multi_objective or settings.pruner == "none" else [PruningCallback(trial)]
        log(f"sweep: trial {trial.number} {values}")
        try:
            record = run_training(trial_run, log=log, progress=False, extra_callbacks=pruning, extra_tags=tags)
        except optuna.TrialPruned:
            run_id = pruning[0].mlflow_run_id
            if run_id:
                trial.set_user_attr("mlflow_run_id", run_id)
                client.set_tag(run_id, "sweep.state", "PRUNED")
                client.set_terminated(run_id, "KILLED")
            log(f"sweep: trial {trial.number} pruned at step {pruning[0].pruned_at}")
            raise
        accuracy = record["summary"]["accuracy_after"]
        seconds = record["final_metrics"]["budget/seconds"]
        trial.set_user_attr("mlflow_run_id", record["mlflow_run_id"])
        trial.set_user_attr("seconds", seconds)
        trial.set_user_attr("peak_memory_gb", record["final_metrics"].get("perf/peak_memory_gb"))
        client.set_tag(record["mlflow_run_id"], "sweep.state", "COMPLETE")
        log(f"sweep: trial {trial.number} accuracy {accuracy:.4f} budget seconds {seconds:.1f}")
        return (accuracy, seconds) if settings.multi_objective else accuracy

    return objective


def run_worker(study, objective, trials: int, poll_s: float = 2.0, max_failures: int = 3) -> None:
    """Run trials until the study has `trials` COMPLETE ones. While the running trials of other
    workers would reach the count, wait: if one of them dies, its retry is queued (WAITING) and
    taken here. A trial whose training raises (say, a learning rate that sends the policy to
    NaN) is FAIL and the sweep goes on; `max_failures` failures in a row stop the worker."""
    failures = 0
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        if states[TrialState.COMPLETE] >= trials:
            return
        if states[TrialState.COMPLETE] + states[TrialState.RUNNING] >= trials and not states[TrialState.WAITING]:
            time.sleep(poll_s)
            continue
        finished: list = []
        study.optimize(objective, n_trials=1, gc_after_trial=True, catch=(RuntimeError, FloatingPointError),
                       callbacks=[lambda _, trial: finished.append(trial)])
        failures = failures + 1 if finished and finished[-1].state == TrialState.FAIL else 0
        if failures >= max_failures:
            raise RuntimeError(f"{failures} trials in a row failed (the last: trial {finished[-1].number}, "
                               f"error in the log above); stopping this worker")


def finish_parent(study, run: RunConfig, trials: int) -> None:
    """Summaries on the parent run; FINISHED once the study has its complete trials."""
    from mlflow import MlflowClient

    client = MlflowClient(run.tracking())
    parent = study.user_attrs[PARENT_ATTR]
    states = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    for state, count in states.items():
        client.set_tag(parent, f"sweep.trials_{state}", str(count))
    if len(study.directions) == 1 and states["complete"]:
        best = study.best_trial
        client.log_metric(parent, "best/eval_accuracy", best.value, step=best.number)
        client.set_tag(parent, "sweep.best_trial", str(best.number))
        for key, value in best.params.items():
            client.set_tag(parent, f"best.{key}", str(value))
        baseline = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if t.user_attrs.get("baseline")]
        if baseline:
            client.log_metric(parent, "baseline/eval_accuracy", baseline[0].value, step=baseline[0].number)
    if states["complete"] >= trials:
        client.set_terminated(parent, "FINISHED")


def run_sweep(settings: SweepSettings, run: RunConfig, preset: str | None = None, log=print):
    """Create or join the study, run this worker's trials, summarise; returns the study."""
    from harness.tracking import check_tracking_uri

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeat, constant_liar and fail_stale_trials are "experimental" in Optuna; they are relied on here.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if run.strategy != "auto":
        raise ValueError(f"--strategy {run.strategy}: a sweep runs its trials in this process, and a DDP run "
                         f"re-launches its own command line in each new process, which here is the whole sweep; "
                         f"tune with one process (--strategy auto), then compare the tuned preset with --strategy ddp")
    space = load_space(settings.algorithm, settings.space)
    # Trials score on validation carved from the train split: tuning never sees the test examples
    # that the tuned comparison reports on (harness.splits).
    run = dataclasses.replace(run, algorithm=settings.algorithm, eval_split="validation")
    check_tracking_uri(run.tracking())
    storage_url = settings.storage or default_storage(run)
    study = open_study(settings, run, storage_url, space, preset, log=log)
    objective = make_objective(study, settings, run, space, log=log)
    run_worker(study, objective, settings.trials, settings.poll_s)
    finish_parent(study, run, settings.trials)
    return study
