"""`rlvr-bench compare`: a grid of algorithms x seeds on one task, model and budget."""

from __future__ import annotations

import json
import statistics

from harness.config import load_run_config, preset_path, read_yaml
from harness.errors import RunFailed
from harness.paths import checkpoint_path, launch_path, progress_path, run_path, write_text_atomic
from harness.records import read_run


def grid(preset: str, algorithms: list[str] | None, seeds: list[int] | None) -> tuple[list[str], list[int]]:
    import algorithms as algorithm_registry

    spec = read_yaml(preset_path(preset)).get("compare", {})
    algos = algorithms or spec.get("algorithms") or algorithm_registry.names()
    for name in algos:
        algorithm_registry.get(name)  # unknown names fail before any run starts
    return list(algos), list(seeds or spec.get("seeds") or [0, 1])


def _train_child(values: dict, resume: bool = False, cpus: list[int] | None = None, queue=None,
                 tags: dict | None = None, gpus: list[str] | None = None) -> None:
    import os

    from harness.config import RunConfig
    from harness.train import run_training

    if cpus:
        os.sched_setaffinity(0, cpus)  # its own cores: runs side by side do not trade them back and forth
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # its own GPUs (CUDA is not started yet here)
    run_training(RunConfig(**values), progress=False, resume=resume, extra_callbacks=_progress_callbacks(values, queue),
                 extra_tags=tags)


def _progress_callbacks(values: dict, queue) -> list:
    from harness.progress import ProgressCallback

    return [ProgressCallback(queue, (values["algorithm"], values["seed"]))] if queue is not None else []


def launches_processes(run) -> bool:
    """Whether the run trains in several processes (DDP): Lightning starts the others by running
    the command line again, so such a run must be a command line of its own (`_start_command`)."""
    return run.strategy != "auto" and run.devices * run.num_nodes > 1


class _Command:
    """A run as its own `rlvr-bench train` process, with `Process`'s `sentinel`, `join` and `exitcode`."""

    def __init__(self, popen, progress_file=None):
        import os

        self.popen, self.sentinel = popen, os.pidfd_open(popen.pid)
        self.progress_file = progress_file  # where its rank 0 reports its steps, if it does

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        import os
        import subprocess

        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return
        if self.sentinel is not None:
            os.close(self.sentinel)
            self.sentinel = None

    @property
    def exitcode(self) -> int | None:
        return self.popen.returncode


def train_command(run, resume: bool, tags: dict | None = None, progress_file=None) -> list[str]:
    """`python -m harness.cli train --preset <the run's resolved config>` (written here): Lightning
    re-runs that line for the other ranks, which then train this run, not a second comparison.
    `tags` go to its MLflow run (`--tag`); its rank 0 writes its steps to `progress_file`."""
    import dataclasses
    import sys

    import yaml

    path = launch_path(run)
    write_text_atomic(path, yaml.safe_dump(dataclasses.asdict(run), sort_keys=False))
    return [sys.executable, "-m", "harness.cli", "train", "--preset", str(path),
            "--algorithm", run.algorithm, "--seed", str(run.seed), *(["--resume"] if resume else []),
            *[arg for key, value in (tags or {}).items() for arg in ("--tag", f"{key}={value}")],
            *(["--progress-file", str(progress_file)] if progress_file else [])]


def _start_command(run, resume: bool, cpus: list[int] | None, gpus: list[str] | None, tags: dict | None = None,
                   progress: bool = False) -> _Command:
    import os
    import subprocess

    report = progress_path(run) if progress else None
    if report is not None:
        report.unlink(missing_ok=True)  # not an earlier, killed comparison's last step
    command = train_command(run, resume, tags, report)
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ",".join(gpus)} if gpus else {})}
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None  # its ranks inherit the cores
    return _Command(subprocess.Popen(command, env=env, preexec_fn=pin), report)


# Imported once by the fork server, not by every run: `import lightning` alone takes ~12 s here
# (torchmetrics imports its text, audio and image metrics and what they need).
PRELOAD = ["torch", "lightning", "transformers", "mlflow", "harness.train", "algorithms", "tasks"]


def _context():
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _start(run, resume: bool, cpus: list[int] | None = None, queue=None, tags: dict | None = None,
           gpus: list[str] | None = None):
    """One run in a fresh process forked from a server that has the libraries imported: its peak
    memory is its own (ru_maxrss never goes down within a process), and a crash leaves the
    finished runs of the grid in place. A DDP run is a command line of its own (`_start_command`)."""
    import dataclasses

    if launches_processes(run):
        return _start_command(run, resume, cpus, gpus, tags, progress=queue is not None)
    process = _context().Process(target=_train_child, args=(dataclasses.asdict(run), resume, cpus, queue, tags, gpus))
    process.start()
    return process


def _finish(process, run, progress=None) -> dict:
    while process.is_alive():
        process.join(timeout=1.0)
        if progress is not None:
            progress.poll()
    path = run_path(run.output_dir, run.experiment, run.algorithm, run.seed)
    if process.exitcode != 0 or not path.exists():
        raise RunFailed(f"run {run.algorithm} seed {run.seed} failed (exit code {process.exitcode}); "
                        f"finished runs are kept, start the comparison again to resume")
    return read_run(path)


def run_isolated(run, resume: bool = False, progress=None, tags: dict | None = None) -> dict:
    process = _start(run, resume, queue=progress and progress.queue, tags=tags)
    _follow(progress, run, process)
    return _finish(process, run, progress)


def _follow(progress, run, process) -> None:
    """A command-line run (DDP) reports its steps through a file, not the queue."""
    if progress is not None and getattr(process, "progress_file", None) is not None:
        progress.follow((run.algorithm, run.seed), process.progress_file)


def gpu_slots(workers: int, per_run: int) -> list[list[str]]:
    """The visible GPUs (their ids as CUDA_VISIBLE_DEVICES names them) split into at most `workers`
    disjoint sets of `per_run` each; an error naming the flags when not one run's worth is visible."""
    import os

    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [i.strip() for i in visible.split(",") if i.strip()] if visible else [str(i) for i in range(torch.cuda.device_count())]
    ids = ids[:torch.cuda.device_count()]
    if len(ids) < per_run:
        raise ValueError(f"--devices {per_run} with --accelerator gpu: {len(ids)} GPU(s) visible")
    return [ids[i * per_run:(i + 1) * per_run] for i in range(min(workers, len(ids) // per_run))]


def core_slots(workers: int) -> list[list[int]]:
    """The process's cores split into `workers` equal, disjoint sets (at least one core each)."""
    import os

    cores = sorted(os.sched_getaffinity(0))
    per = len(cores) // min(workers, len(cores))
    return [cores[i * per:(i + 1) * per] for i in range(min(workers, len(cores)))]


def run_side_by_side(pending: list[tuple], workers: int, log=print, progress=None, tags: dict | None = None,
                     gpus_per_run: int = 0) -> dict:
    """Runs `workers` at a time, each in its own process pinned to its own cores with as many torch
    threads (unless the run sets `threads`), and with `gpus_per_run` > 0 its own GPUs
    (CUDA_VISIBLE_DEVICES; no more workers than the GPUs allow). A failed run does not stop the
    others; the error names every failed run once all have ended. Returns (algorithm, seed) -> record."""
    import dataclasses
    from multiprocessing.connection import wait

    gpus = gpu_slots(workers, gpus_per_run) if gpus_per_run else None
    slots = core_slots(min(workers, len(gpus)) if gpus else workers)  # no more workers than cores
    free = list(range(len(slots)))
    queue = list(pending)
    active: dict = {}
    done, failed = {}, []
    while queue or active:
        while queue and free:
            (run, resume), slot = queue.pop(0), free.pop(0)
            run = dataclasses.replace(run, threads=run.threads or len(slots[slot]))
            where = f"cores {slots[slot]}" + (f", GPUs {','.join(gpus[slot])}" if gpus else "")
            log(f"compare: {run.algorithm} seed {run.seed} on {where} {'resumed from its checkpoint' if resume else ''}...")
            process = _start(run, resume, slots[slot], queue=progress and progress.queue, tags=tags,
                             gpus=gpus[slot] if gpus else None)
            active[process.sentinel] = (process, run, slot)
            if progress is not None:
                progress.start((run.algorithm, run.seed))
            _follow(progress, run, process)
        for sentinel in wait(list(active), timeout=1.0):
            process, run, slot = active.pop(sentinel)
            free.append(slot)
            try:
                done[(run.algorithm, run.seed)] = _finish(process, run)
            except RunFailed as err:
                failed.append(str(err))
            if progress is not None:
                progress.finish((run.algorithm, run.seed))
        if progress is not None:
            progress.poll()
    if failed:
        raise RunFailed("; ".join(failed))
    return done


# Where a run's files and logs go and how it is split over cores do not change what it computes.
PLACEMENT = ("output_dir", "tracking_uri", "data_dir", "experiment", "threads", "checkpoint_every", "keep_checkpoint")


def changed_settings(record: dict, run, algo_config) -> str:
    """The settings of a finished run that differ from `run`'s (`algo_config`: its validated algorithm
    config; "" if none): a comparison never mixes runs made with other settings into its table.
    Settings a record predates count as equal."""
    from harness.config import as_params

    from harness.records import portable_record

    # As the record holds it: JSON values, this machine's folders named portably (harness.records).
    wanted = portable_record({"config": json.loads(json.dumps(as_params(run, algo_config), default=str))})["config"]
    stored = record.get("config", {})
    return ", ".join(f"{k}: {stored[k]!r} there, {v!r} now" for k, v in sorted(wanted.items())
                     if k not in PLACEMENT and k in stored and stored[k] != v)


def run_comparison(preset: str, overrides: dict, algorithms: list[str] | None = None,
                   seeds: list[int] | None = None, log=print, isolate: bool = True,
                   workers: int | None = None) -> list[dict]:
    """Every (algorithm, seed) of the grid not finished yet, then the summary and the leaderboard.
    `workers` (default: the preset's `compare.workers`, else 1) runs that many at a time, side by
    side on disjoint cores (:func:`run_side_by_side`)."""
    import dataclasses
    import queue as local_queue

    from harness.config import validate_run
    from harness.tracking import (
        check_tracking_uri,
        close_stale_runs,
        comparison_run,
        ensure_experiment,
        finish_comparison_run,
    )
    from harness.train import run_training

    algos, seed_list = grid(preset, algorithms, seeds)
    if workers is None:
        workers = read_yaml(preset_path(preset)).get("compare", {}).get("workers", 1)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers (compare.workers): expected a positive integer, got {workers!r}")
    first = load_run_config(preset, {**overrides, "algorithm": algos[0]})
    check_tracking_uri(first.tracking())
    done: dict = {}
    pending = []
    for algorithm in algos:
        for seed in seed_list:
            run = load_run_config(preset, {**overrides, "algorithm": algorithm, "seed": seed})
            algo_config = validate_run(run)  # a bad setting in any run of the grid stops it before the first
            path = run_path(run.output_dir, run.experiment, algorithm, seed)
            if path.exists():
                record = read_run(path)
                changed = changed_settings(record, run, algo_config)
                if changed:
                    raise ValueError(f"{path}: finished with other settings than this comparison's ({changed}); "
                                     f"move it away, or give this comparison another --experiment")
                log(f"compare: {algorithm} seed {seed} already finished ({path}); skipped")
                done[(algorithm, seed)] = record
                continue
            # A run with a checkpoint but no record was interrupted: it continues where it stopped.
            resume = checkpoint_path(run).exists()
            pending.append((run, resume))
    from harness.placement import resolve_accelerator

    on_gpus = resolve_accelerator(first.accelerator, first.devices) == "gpu"
    # A DDP run re-launches its command line: never this process's own (that would be the comparison).
    isolate = isolate or any(launches_processes(run) for run, _ in pending)
    uri = first.tracking()
    parent = _tracked("the comparison's parent run", log, comparison_run, uri, first.experiment,
                      {"preset": preset, "algorithms": " ".join(algos), "seeds": " ".join(map(str, seed_list)),
                       "workers": workers})
    tags = {"mlflow.parentRunId": parent} if parent else None
    for run, resume in pending:
        if not resume:  # a resumed run continues its own MLflow run; others replace any left RUNNING
            closed = _tracked("closing stale runs", log, close_stale_runs, uri, run.experiment, run.algorithm, run.seed)
            if closed:
                log(f"compare: {run.algorithm} seed {run.seed}: marked KILLED the run(s) a killed process left RUNNING "
                    f"({', '.join(closed)})")
    from harness.progress import CompareProgress

    queue = _context().Queue() if isolate else local_queue.Queue()  # run processes' steps, to the display
    with CompareProgress({(r.algorithm, r.seed): r.max_steps for r, _ in pending}, skipped=len(done), queue=queue,
                         log=log) as progress:
        if pending and (workers > 1 or on_gpus) and isolate:
            from harness.models import resolve_model

            # Built (the tiny warm start) or converted once, here on every core, not by the first run
            # on its share while the others wait; and the store and experiment exist before runs start
            # side by side (no creation race).
            resolve_model(first.model, log=log)
            ensure_experiment(first.tracking(), first.experiment)
            gpus_per_run = (first.devices if first.strategy != "auto" else 1) if on_gpus else 0
            done.update(run_side_by_side(pending, workers, progress.log, progress, tags, gpus_per_run))
        else:
            for run, resume in pending:
                progress.log(f"compare: {run.algorithm} seed {run.seed} {'resumed from its checkpoint' if resume else ''}...")
                progress.start((run.algorithm, run.seed))
                done[(run.algorithm, run.seed)] = (
                    run_isolated(run, resume, progress, tags) if isolate else
                    run_training(run, log=progress.log, progress=False, resume=resume, extra_tags=tags,
                                 extra_callbacks=_progress_callbacks(dataclasses.asdict(run), queue)))
                progress.finish((run.algorithm, run.seed))
    records = [done[(algorithm, seed)] for algorithm in algos for seed in seed_list]
    log(summary_table(records))
    from harness.report import write_report

    paths = write_report(first.experiment, first.output_dir, baseline="grpo" if "grpo" in algos else None)
    log(f"compare: leaderboard {paths['md']} (.html, .csv)")
    if parent:
        _tracked("the comparison's parent run", log, finish_comparison_run, uri, parent,
                 [r["mlflow_run_id"] for r in records if r.get("mlflow_run_id")], paths)
        experiment_id = _tracked("the experiment", log, ensure_experiment, uri, first.experiment)
        if uri.startswith(("http://", "https://")):
            log(f"compare: MLflow {mlflow_ui_url(uri, experiment_id)}")
        elif uri.startswith("sqlite:///"):
            log(f"compare: MLflow: `mlflow ui --backend-store-uri {uri}`, then "
                f"{mlflow_ui_url('http://127.0.0.1:5000', experiment_id)}")
    return records


def mlflow_ui_url(base: str, experiment_id: str, run_id: str | None = None) -> str:
    """The experiment (or run) in MLflow 3's UI, in its Model training view: the UI opens on its
    GenAI view (traces, judges) unless the URL or the browser's last choice says otherwise."""
    page = f"/runs/{run_id}" if run_id else ""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}{page}?workflowType=machine_learning"


def _tracked(what: str, log, call, *args):
    """`call(*args)`, or None with a warning when the tracking side fails: the comparison goes on
    (its JSON records hold everything)."""
    try:
        return call(*args)
    except Exception as err:  # any failure of the tracking server or store
        log(f"warning: MLflow, {what}: {type(err).__name__}: {str(err)[:300]}")
        return None


def _mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def summary_table(records: list[dict]) -> str:
    """Per algorithm: accuracy, wall seconds with offline stages charged (as the leaderboard and
    the budget's samples and FLOPs count them), the highest peak memory and heap of the seeds."""
    from harness.report.leaderboard import by_algorithm, wall_seconds

    header = ("| algorithm | seeds | accuracy before | accuracy after | wall s | peak memory GB | peak heap GB "
              "| samples | FLOPs |")
    lines = [header, "|" + "---|" * 9]
    for algo, runs in by_algorithm(records).items():
        final = [r["final_metrics"] for r in runs]
        heap = [f["perf/peak_heap_gb"] for f in final if f.get("perf/peak_heap_gb") is not None]
        lines.append("| {} | {} | {} | {} | {:.0f} | {:.2f} | {} | {:.0f} | {:.3g} |".format(
            algo, len(runs),
            _mean_sd([r["summary"]["accuracy_before"] for r in runs]),
            _mean_sd([r["summary"]["accuracy_after"] for r in runs]),
            statistics.mean(wall_seconds(r) for r in runs),
            max(f["perf/peak_memory_gb"] for f in final),
            f"{max(heap):.2f}" if heap else "-",
            statistics.mean(f["budget/samples"] for f in final),
            statistics.mean(f["budget/flops"] for f in final)))
    return "\n".join(lines)
