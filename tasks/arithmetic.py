"""`arithmetic`: generated GSM8K-style word problems, short enough for a tiny model to learn.

"Ann has 7 pens. She gets 5 more. How many pens does she have?" -> "7+5=12\n#### 12".
A ~1M-parameter character-level model trained for minutes on a CPU should solve some of them
(20-50 % after warm start), so RL has room to help. Levels: 1 = one add/subtract step on
numbers below 10; 2 = one step on numbers below 50, including multiplying by a single digit;
3 = two steps.

Train and test never share a question: a stable hash of the question text reserves one bucket
in ten for test, whatever the seeds and sizes; each split also draws from its own seed.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence

from tasks.base import Example, Task

# (name, pronoun)
PEOPLE = (("Ann", "she"), ("Bob", "he"), ("Sue", "she"), ("Tom", "he"),
          ("Eve", "she"), ("Max", "he"), ("Amy", "she"), ("Sam", "he"))  # fmt: skip
OBJECTS = ("pens", "apples", "cards", "books", "eggs", "coins", "cups", "toys")
GAIN = ("gets {} more", "buys {} more", "finds {} more")
LOSS = ("gives away {}", "loses {}", "sells {}")

DEFAULT_SIZES = {"train": 20_000, "test": 500}
LEVELS = (1, 2, 3)
TEST_BUCKETS = 10  # one question in ten (by hash) is reserved for the test split

# A step of a solution: (left, operator, right, result), written "left<op>right=result".
Step = tuple[int, str, int, int]


def _add(a: int, b: int) -> Step:
    return (a, "+", b, a + b)


def _subtract(a: int, b: int) -> Step:
    return (a, "-", b, a - b)


def _multiply(a: int, b: int) -> Step:
    return (a, "*", b, a * b)


def _change(rng: random.Random, amount: int, gain: bool) -> str:
    return rng.choice(GAIN if gain else LOSS).format(amount)


def _one_step(rng: random.Random, name: str, pronoun: str, obj: str, low: int, high: int) -> tuple[str, list[Step]]:
    """Add or subtract with both numbers in [low, high]."""
    a = rng.randint(max(2, low), high)
    gain = rng.random() < 0.5
    b = rng.randint(1, high) if gain else rng.randint(1, a)
    step = _add(a, b) if gain else _subtract(a, b)
    change = _change(rng, b, gain)
    return f"{name} has {a} {obj}. {pronoun.capitalize()} {change}. How many {obj} does {pronoun} have?", [step]


def _level1(rng: random.Random, name: str, pronoun: str, obj: str) -> tuple[str, list[Step]]:
    return _one_step(rng, name, pronoun, obj, 2, 9)


def _level2(rng: random.Random, name: str, pronoun: str, obj: str) -> tuple[str, list[Step]]:
    if rng.random() < 1 / 3:
        groups, each = rng.randint(2, 9), rng.randint(2, 49)
        if rng.random() < 0.5:
            question = f"{name} has {groups} bags with {each} {obj} each. How many {obj} does {pronoun} have?"
        else:
            question = f"{name} buys {groups} boxes of {each} {obj}. How many {obj} does {pronoun} have?"
        return question, [_multiply(groups, each)]
    return _one_step(rng, name, pronoun, obj, 10, 49)


def _level3(rng: random.Random, name: str, pronoun: str, obj: str) -> tuple[str, list[Step]]:
    kind = rng.randrange(3)
    ask = f"How many {obj} does {pronoun} have?"
    if kind == 0:  # gain then loss, or loss then gain
        a = rng.randint(2, 19)
        first_gain = rng.random() < 0.5
        b = rng.randint(1, 19) if first_gain else rng.randint(1, a)
        first = _add(a, b) if first_gain else _subtract(a, b)
        c = rng.randint(1, first[3]) if first_gain else rng.randint(1, 19)
        second = _subtract(first[3], c) if first_gain else _add(first[3], c)
        changes = f"{_change(rng, b, first_gain)} and {_change(rng, c, not first_gain)}"
        return f"{name} has {a} {obj}. {pronoun.capitalize()} {changes}. {ask}", [first, second]
    if kind == 1:  # groups, then a gain or a loss
        groups, each = rng.randint(2, 9), rng.randint(2, 19)
        first = _multiply(groups, each)
        gain = rng.random() < 0.5
        c = rng.randint(1, 19) if gain else rng.randint(1, first[3])
        second = _add(first[3], c) if gain else _subtract(first[3], c)
        change = _change(rng, c, gain)
        question = f"{name} has {groups} bags with {each} {obj} each. {pronoun.capitalize()} {change}. {ask}"
        return question, [first, second]
    # a gain or a loss, then "k times as many" for someone else
    other = rng.choice([person for person, _ in PEOPLE if person != name])
    a = rng.randint(2, 19)
    gain = rng.random() < 0.5
    b = rng.randint(1, 9) if gain else rng.randint(1, a)
    first = _add(a, b) if gain else _subtract(a, b)
    times = rng.randint(2, 9)
    question = (
        f"{name} has {a} {obj} and {_change(rng, b, gain)}. "
        f"{other} has {times} times as many. How many {obj} does {other} have?"
    )
    return question, [first, _multiply(first[3], times)]


_MAKERS = {1: _level1, 2: _level2, 3: _level3}


def make_problem(rng: random.Random, level: int) -> tuple[str, str, int]:
    """(question, worked solution ending in "#### N", N) for one random problem of `level`."""
    name, pronoun = rng.choice(PEOPLE)
    obj = rng.choice(OBJECTS)
    question, steps = _MAKERS[level](rng, name, pronoun, obj)
    answer = steps[-1][3]
    lines = [f"{left}{op}{right}={result}" for left, op, right, result in steps]
    return question, "\n".join(lines + [f"#### {answer}"]), answer


def is_test_question(question: str) -> bool:
    return zlib.crc32(question.encode("ascii")) % TEST_BUCKETS == 0


def generate(split: str, count: int, seed: int = 0, levels: Sequence[int] = LEVELS) -> list[Example]:
    """`count` examples of `split`, levels in round-robin order. A prefix of a longer call:
    generate(s, 10) == generate(s, 100)[:10]. Test questions are unique; train may repeat."""
    rng = random.Random(f"arithmetic/{split}/{seed}")  # str seeds are stable across runs
    held_out = split == "test"
    examples: list[Example] = []
    seen: set[str] = set()
    for _ in range(1000 * count + 1000):  # rejection sampling; bounded so bad levels cannot hang
        if len(examples) >= count:
            break
        level = levels[len(examples) % len(levels)]
        question, solution, answer = make_problem(rng, level)
        if is_test_question(question) != held_out or (held_out and question in seen):
            continue
        seen.add(question)
        examples.append(Example(f"arithmetic-{split}-{len(examples)}", question, str(answer), solution, level))
    if len(examples) < count:
        raise ValueError(f"cannot generate {count} distinct {split} questions for levels {tuple(levels)}")
    return examples


class ArithmeticTask(Task):
    name = "arithmetic"
    answer_format = "####"
    splits = ("train", "test")
    version = 1

    def load(
        self,
        split: str,
        data_dir: str | None = None,
        limit: int | None = None,
        seed: int = 0,
        levels: Sequence[int] = LEVELS,
    ) -> list[Example]:
        """Generated examples (`data_dir` is ignored). Sizes: train 20000, test 500; `limit` truncates."""
        self.check_split(split)
        levels = tuple(levels)
        if not levels or any(level not in _MAKERS for level in levels):
            raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {levels}")
        count = DEFAULT_SIZES[split] if limit is None else min(max(limit, 0), DEFAULT_SIZES[split])
        return generate(split, count, seed, levels)
