"""The validation split carved from train: fixed per task, disjoint by prompt, and never test."""

import tasks
from tasks.base import Example
from tasks.validation import VALIDATION_BUCKETS, carve, is_validation


def test_carving_partitions_train_by_prompt_and_keeps_each_validation_question_once():
    train = tasks.get("arithmetic").load("train", levels=[1])  # level 1 repeats questions: the hard case
    kept, validation = carve(train)
    kept_prompts, validation_prompts = {ex.prompt for ex in kept}, [ex.prompt for ex in validation]
    assert len(validation_prompts) == len(set(validation_prompts)) > 0
    assert not kept_prompts & set(validation_prompts)
    assert kept_prompts | set(validation_prompts) == {ex.prompt for ex in train}
    assert len(kept) + sum(1 for ex in train if ex.prompt in set(validation_prompts)) == len(train)
    # About one distinct question in VALIDATION_BUCKETS.
    share = len(validation_prompts) / len({ex.prompt for ex in train})
    assert 0.5 / VALIDATION_BUCKETS < share < 1.5 / VALIDATION_BUCKETS


def test_the_rule_reads_only_the_prompt_so_it_is_fixed_whatever_the_order_or_ids():
    a, b = Example("x-1", "Ann has 3 pens.", "3"), Example("y-9", "Ann has 3 pens.", "4")
    assert is_validation(a.prompt) == is_validation(b.prompt)
    train = tasks.get("arithmetic").load("train", limit=2000)
    _, forward = carve(train)
    _, backward = carve(train[::-1])
    assert {ex.prompt for ex in forward} == {ex.prompt for ex in backward}
    _, longer = carve(tasks.get("arithmetic").load("train", limit=4000))
    assert [ex.prompt for ex in longer[: len(forward)]] == [ex.prompt for ex in forward]  # a prefix: fixed per task


def test_validation_shares_no_question_with_test():
    task = tasks.get("arithmetic")
    _, validation = carve(task.load("train"))
    assert not {ex.prompt for ex in validation} & {ex.prompt for ex in task.load("test")}
