"""A run's training and held-out examples: `test` as every comparison had them, or validation
carved from train, which never reads test."""

import pytest

import tasks
from harness.config import RunConfig, load_run_config
from harness.splits import held_out_examples, run_examples, split_record


@pytest.fixture
def loaded_splits(monkeypatch):
    """The splits a task's `load` is asked for (the real load runs)."""
    task = tasks.get("arithmetic")
    seen: list[str] = []
    real = type(task).load

    def load(self, split, *args, **kwargs):
        seen.append(split)
        return real(self, split, *args, **kwargs)

    monkeypatch.setattr(type(task), "load", load)
    return seen


def test_the_test_split_path_loads_exactly_what_runs_always_loaded():
    run = load_run_config("default")
    task = tasks.get(run.task)
    train, held_out = run_examples(task, run)
    assert train == task.load("train", limit=run.train_limit, **run.task_options)
    assert held_out == task.load("test", limit=run.eval_limit, **run.task_options)
    assert held_out_examples(task, run, 7) == held_out[:7]
    assert split_record(run) == {"eval_split": "test"}


def test_validation_is_disjoint_from_the_training_prompts_and_never_reads_test(loaded_splits):
    run = load_run_config("smoke", {"eval_split": "validation", "train_limit": 300, "eval_limit": 40})
    task = tasks.get(run.task)
    train, held_out = run_examples(task, run)
    probe = held_out_examples(task, run, 12)
    assert loaded_splits and set(loaded_splits) == {"train"}
    assert len(train) == 300 and len(held_out) == 40 and probe == held_out[:12]
    assert not {ex.prompt for ex in train} & {ex.prompt for ex in held_out}
    assert all(ex.id.startswith("arithmetic-train-") for ex in held_out)
    test_prompts = {ex.prompt for ex in task.load("test", **run.task_options)}
    assert not test_prompts & {ex.prompt for ex in held_out}
    assert split_record(run)["eval_split"] == "validation" and "crc32" in split_record(run)["validation_rule"]


def test_a_task_without_a_train_split_cannot_carve_validation():
    run = RunConfig(task="math500", eval_split="validation")
    with pytest.raises(ValueError, match="eval_split validation: task 'math500' has no train split"):
        run_examples(tasks.get("math500"), run)
    with pytest.raises(ValueError, match="eval_split must be one of"):
        RunConfig(eval_split="dev")


def test_the_leaderboard_names_the_split_of_its_accuracies():
    from harness.report import held_out_splits

    old = {"config": {}, "data": {"eval": {"examples": 500}}}  # written before eval_split existed: test
    carved = {"config": {"eval_split": "validation"}, "data": {"eval": {"examples": 64}}}
    from_mlflow = {"config": {"eval_split": "validation"}, "data": None}
    assert held_out_splits([old]) == "`test` (500 examples)"
    assert held_out_splits([old, carved, from_mlflow]) == (
        "`test` (500 examples) and `validation` (64 examples) carved from the train split, disjoint from the "
        "training prompts")
