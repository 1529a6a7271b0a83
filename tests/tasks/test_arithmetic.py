"""The generated `arithmetic` task: deterministic, disjoint splits, correct and short problems."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tasks
from tasks.arithmetic import DEFAULT_SIZES

TASK = tasks.get("arithmetic")
STEP = re.compile(r"(\d+)([+*-])(\d+)=(\d+)")
APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@pytest.fixture(scope="module")
def train():
    return TASK.load("train")


@pytest.fixture(scope="module")
def test():
    return TASK.load("test")


def steps(example):
    *lines, final = example.solution.split("\n")
    assert final == f"#### {example.answer}"
    parsed = []
    for line in lines:
        match = STEP.fullmatch(line)
        assert match, line
        a, op, b, result = match.groups()
        parsed.append((int(a), op, int(b), int(result)))
    return parsed


def test_default_sizes_and_limit(train, test):
    assert len(train) == DEFAULT_SIZES["train"] == 20_000
    assert len(test) == DEFAULT_SIZES["test"] == 500
    assert TASK.load("test", limit=17) == test[:17]
    assert TASK.load("train", limit=0) == []


def test_same_seed_same_items_other_seed_other_items():
    assert TASK.load("train", limit=300, seed=0) == TASK.load("train", limit=300, seed=0)
    first, other = TASK.load("train", limit=300, seed=0), TASK.load("train", limit=300, seed=1)
    assert sum(a.prompt == b.prompt for a, b in zip(first, other, strict=True)) < 30


def test_items_do_not_depend_on_the_interpreter_hash_seed():
    code = "import json, tasks; print(json.dumps([e.solution for e in tasks.get('arithmetic').load('test', limit=20)]))"
    root = Path(__file__).resolve().parents[2]
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]  # fmt: skip
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0]) == [e.solution for e in TASK.load("test", limit=20)]


def test_train_and_test_never_share_a_question(train, test):
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    # ...whatever the seeds.
    other_seed_test = TASK.load("test", seed=1)
    assert not {e.prompt for e in train} & {e.prompt for e in other_seed_test}


def test_test_questions_are_unique(test):
    assert len({e.prompt for e in test}) == len(test)


def test_ids(train, test):
    assert test[17].id == "arithmetic-test-17"
    assert len({e.id for e in train}) == len(train)


def test_levels_are_mixed_evenly_and_selectable(train, test):
    for split in (train, test):
        counts = collections.Counter(e.level for e in split)
        assert set(counts) == {1, 2, 3}
        assert max(counts.values()) - min(counts.values()) <= 1
    assert {e.level for e in TASK.load("test", levels=(2,))} == {2}
    with pytest.raises(ValueError):
        TASK.load("test", levels=(4,))
    with pytest.raises(ValueError):
        TASK.load("test", levels=())


def test_solutions_are_arithmetically_correct_and_match_the_question(train, test):
    for example in train[:3000] + test:
        parsed = steps(example)
        for a, op, b, result in parsed:
            assert APPLY[op](a, b) == result, example
        for previous, step in zip(parsed, parsed[1:], strict=False):
            assert step[0] == previous[3], example  # each step continues from the last result
        assert int(example.answer) == parsed[-1][3] >= 0
        # The question states exactly the given numbers, in order.
        given = [parsed[0][0], parsed[0][2]] + [step[2] for step in parsed[1:]]
        assert [int(n) for n in re.findall(r"\d+", example.prompt)] == given, example


def test_levels_mean_what_they_say(train):
    for example in train[:3000]:
        parsed = steps(example)
        numbers = [n for a, _, b, _ in parsed for n in (a, b)]
        if example.level == 1:
            assert len(parsed) == 1 and parsed[0][1] in "+-" and max(numbers) < 10
        elif example.level == 2:
            assert len(parsed) == 1 and max(numbers) < 50
            if parsed[0][1] == "*":
                assert min(numbers) < 10
        else:
            assert len(parsed) == 2


def test_text_is_short_plain_ascii(train, test):
    for example in train[:3000] + test:
        for text in (example.prompt, example.solution, example.answer):
            assert all(32 <= ord(c) < 127 or c == "\n" for c in text), text
        assert "\n" not in example.prompt
        assert 40 <= len(example.prompt) <= 95, example.prompt


def test_unknown_split():
    with pytest.raises(ValueError, match="validation"):
        TASK.load("validation")


def test_reward(test):
    example = test[0]
    assert TASK.reward(example.solution, example) == 1.0
    assert TASK.reward("#### 100000", example) == 0.0
    verdicts = TASK.reward_many([e.solution for e in test[:10]], test[:10])
    assert [v.score for v in verdicts] == [1.0] * 10
    with pytest.raises(ValueError):
        TASK.reward_many(["#### 1"], test[:2])
