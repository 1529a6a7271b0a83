"""Which examples a run trains on and which it evaluates: `eval_split` test (the default) or validation.

`test`: the task's train split (first `train_limit`) and its test split (first `eval_limit`), as
every comparison reports. `validation`: both come from the train split, carved by
`tasks.validation` (fixed per task, disjoint by prompt); `test` is never read. Sweeps use it, so
tuning never sees the examples a tuned comparison reports on.
"""

from __future__ import annotations

from harness.config import RunConfig


def load_examples(task, split: str, run: RunConfig, limit: int | None) -> list:
    try:
        return task.load(split, data_dir=run.data_dir, limit=limit, **run.task_options)
    except TypeError as err:
        raise ValueError(f"task_options {run.task_options}: not accepted by task {run.task!r} ({err})") from None


def _carved(task, run: RunConfig) -> tuple[list, list]:
    from tasks.validation import carve

    if "train" not in task.splits:
        raise ValueError(f"eval_split validation: task {run.task!r} has no train split to carve it from "
                         f"(splits: {', '.join(task.splits)})")
    kept, validation = carve(load_examples(task, "train", run, None))
    if not validation:
        raise ValueError(f"eval_split validation: task {run.task!r}'s train split gave no validation example")
    return kept, validation


def held_out_examples(task, run: RunConfig, limit: int | None) -> list:
    """The first `limit` examples of the run's held-out split (evaluation, the diagnostic's probes)."""
    if run.eval_split == "test":
        return load_examples(task, "test", run, limit)
    return _carved(task, run)[1][:limit]


def run_examples(task, run: RunConfig) -> tuple[list, list]:
    """(training examples, evaluation examples) of the run."""
    if run.eval_split == "test":
        return load_examples(task, "train", run, run.train_limit), load_examples(task, "test", run, run.eval_limit)
    kept, validation = _carved(task, run)
    return kept[: run.train_limit], validation[: run.eval_limit]


def split_record(run: RunConfig) -> dict:
    """What the run record says about its held-out split."""
    if run.eval_split == "test":
        return {"eval_split": "test"}
    from tasks.validation import VALIDATION_RULE

    return {"eval_split": "validation", "validation_rule": VALIDATION_RULE}
