r"""Public benchmarks read from local JSONL files (or the Hugging Face hub): GSM8K, MATH,
MATH-500, AIME 2024, AIME 2025 and AMC 2023.

Data directory: the `data_dir` argument, else `$RLVR_DATA_DIR`, else the Hugging Face hub
through `datasets.load_dataset`. The local layout (see shared/data/SOURCES.md):

    gsm8k/{train,test}.jsonl     question, answer ("...\n#### 72")
    math/{train,test}.jsonl      problem, solution, answer, level, unique_id
    math/math500_test.jsonl      problem, solution, answer, level, unique_id
    aime/aime24.jsonl            id, problem, answer, solution
    aime/aime25.jsonl            id, problem, answer
    amc/amc23.jsonl              id, problem, answer

Prompts are the problem text plus one line saying how to state the final answer; every
`solution` ends so that the task's extractor (`####` or the last `\boxed{}`) finds the gold
answer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks.base import Example, Task
from tasks.extract import gsm8k_answer, last_boxed

DATA_DIR_ENV = "RLVR_DATA_DIR"

GSM8K_INSTRUCTION = "\nGive the final answer after '####'."
BOXED_INSTRUCTION = "\nPut the final answer in \\boxed{}."

_CALCULATOR_ANNOTATION = re.compile(r"<<[^<>]*>>")


def read_jsonl(path: str | os.PathLike[str], required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a JSONL file (blank lines skipped). A malformed row (bad JSON, not an object,
    or missing one of `required`) raises ValueError naming the file and its 1-based line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"benchmark data file not found: {path} "
            f"(pass --data-dir or set {DATA_DIR_ENV} to the folder holding gsm8k/, math/, aime/, amc/)"
        )
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: line {number}: invalid JSON: {error.msg}") from error
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
            missing = [field for field in required if field not in row]
            if missing:
                raise ValueError(f"{path}: line {number}: missing field(s) {', '.join(missing)}")
            rows.append(row)
    return rows


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The argument, else $RLVR_DATA_DIR, else None (meaning: the Hugging Face hub)."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir)
    env = os.environ.get(DATA_DIR_ENV, "")
    return Path(env) if env else None


def _hub_rows(repo: str, config: str | None, split: str) -> list[dict[str, Any]]:
    """Rows of a Hugging Face hub dataset split (imported lazily: `datasets` is heavy)."""
    from datasets import load_dataset

    dataset = load_dataset(repo, config, split=split) if config else load_dataset(repo, split=split)
    return [dict(row) for row in dataset]


def _ensure_boxed(solution: str, answer: str) -> str:
    r"""`solution`, with "The final answer is \boxed{answer}." appended unless its last \boxed{}
    already holds the answer; "" stays "" (no solution)."""
    if not solution:
        return ""
    if last_boxed(solution) == answer:
        return solution
    return f"{solution.rstrip()}\n\nThe final answer is $\\boxed{{{answer}}}$."


def _answer_text(value: Any) -> str:
    """Gold answers as strings; integral floats (27.0 from some hub copies) become "27"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _level(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = value.removeprefix("Level").strip()
        return int(digits) if digits.isdigit() else None
    return None


class BenchmarkTask(Task):
    """A task backed by one JSONL file per split (or a hub dataset). Subclasses set the file
    table, the hub source and `_example(row, split, index)`."""

    answer_format = "boxed"
    version = 1
    files: dict[str, str] = {}  # split -> path relative to the data dir
    hub: dict[str, tuple[str, str | None, str]] = {}  # split -> (repo, config, hub split)
    required: tuple[str, ...] = ("problem", "answer")
    instruction = BOXED_INSTRUCTION

    def load(
        self, split: str, data_dir: str | os.PathLike[str] | None = None, limit: int | None = None
    ) -> list[Example]:
        """Examples of `split`, in file order; `limit` keeps the first `limit`."""
        self.check_split(split)
        rows = self.rows(split, data_dir)
        if limit is not None:
            rows = rows[: max(limit, 0)]
        examples = [self._example(row, split, index) for index, row in enumerate(rows)]
        ids = [ex.id for ex in examples]
        if len(set(ids)) != len(ids):
            raise ValueError(f"task {self.name!r} split {split!r} has duplicate ids")
        return examples

    def example_from_row(self, row: dict[str, Any], split: str, index: int) -> Example:
        """Row `index` (0-based, file order) of `split` as `load` builds it; the lm-eval tasks
        (tasks/lm_eval/utils.py) use it so both evaluators see the same prompts and answers."""
        return self._example(row, split, index)

    def rows(self, split: str, data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
        root = resolve_data_dir(data_dir)
        if root is not None:
            return read_jsonl(root / self.files[split], self.required)
        repo, config, hub_split = self.hub[split]
        rows = _hub_rows(repo, config, hub_split)
        source = f"{repo}[{hub_split}]"
        for number, row in enumerate(rows, start=1):
            missing = [field for field in self.required if field not in row]
            if missing:
                raise ValueError(f"{source}: row {number}: missing field(s) {', '.join(missing)}")
        return rows

    def _id(self, row: dict[str, Any], split: str, index: int) -> str:
        for key in ("unique_id", "id"):
            value = row.get(key)
            if value is not None and str(value) != "":
                return str(value)
        return f"{self.name}-{split}-{index}"

    def _example(self, row: dict[str, Any], split: str, index: int) -> Example:
        answer = _answer_text(row["answer"])
        solution = _ensure_boxed(str(row.get("solution") or ""), answer)
        return Example(
            id=self._id(row, split, index),
            prompt=str(row["problem"]).strip() + self.instruction,
            answer=answer,
            solution=solution,
            level=_level(row.get("level")),
        )


class GSM8KTask(BenchmarkTask):
    name = "gsm8k"
    answer_format = "####"
    splits = ("train", "test")
    files = {"train": "gsm8k/train.jsonl", "test": "gsm8k/test.jsonl"}
    hub = {"train": ("openai/gsm8k", "main", "train"), "test": ("openai/gsm8k", "main", "test")}
    required = ("question", "answer")
    instruction = GSM8K_INSTRUCTION

    def _example(self, row: dict[str, Any], split: str, index: int) -> Example:
        text = str(row["answer"])
        at = text.rfind("####")
        if at < 0:
            raise ValueError(f"gsm8k {split} row {index + 1}: answer has no '####'")
        answer = text[at + 4 :].strip().replace(",", "")
        solution = _CALCULATOR_ANNOTATION.sub("", text)
        if gsm8k_answer(solution) != answer:  # never for the published files; kept as a guard
            solution = f"{solution[:at].rstrip()}\n#### {answer}"
        return Example(
            id=self._id(row, split, index),
            prompt=str(row["question"]).strip() + self.instruction,
            answer=answer,
            solution=solution,
        )


class MathTask(BenchmarkTask):
    name = "math"
    splits = ("train", "test")
    files = {"train": "math/train.jsonl", "test": "math/test.jsonl"}
    # The hub copy has no `answer` column; it is filled from the solution's last \boxed{}.
    hub = {
        "train": ("EleutherAI/hendrycks_math", None, "train"),
        "test": ("EleutherAI/hendrycks_math", None, "test"),
    }

    def rows(self, split: str, data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
        if resolve_data_dir(data_dir) is not None:
            return super().rows(split, data_dir)
        from datasets import concatenate_datasets, get_dataset_config_names, load_dataset

        repo, _, hub_split = self.hub[split]
        parts = [load_dataset(repo, config, split=hub_split) for config in get_dataset_config_names(repo)]
        rows = [dict(row) for row in concatenate_datasets(parts)]
        for row in rows:
            row.setdefault("answer", last_boxed(str(row.get("solution", ""))) or "")
        return rows


class Math500Task(BenchmarkTask):
    name = "math500"
    splits = ("test",)
    files = {"test": "math/math500_test.jsonl"}
    hub = {"test": ("HuggingFaceH4/MATH-500", None, "test")}


class Aime24Task(BenchmarkTask):
    name = "aime24"
    splits = ("test",)
    files = {"test": "aime/aime24.jsonl"}
    hub = {"test": ("AI-MO/aimo-validation-aime", None, "train")}

    def rows(self, split: str, data_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
        rows = super().rows(split, data_dir)
        if resolve_data_dir(data_dir) is None:  # that hub set holds 2022-2024; keep 2024
            rows = [row for row in rows if "2024" in str(row.get("url", ""))]
        return rows


class Aime25Task(BenchmarkTask):
    name = "aime25"
    splits = ("test",)
    files = {"test": "aime/aime25.jsonl"}
    hub = {"test": ("MathArena/aime_2025", None, "train")}


class Amc23Task(BenchmarkTask):
    name = "amc23"
    splits = ("test",)
    files = {"test": "amc/amc23.jsonl"}
    hub = {"test": ("AI-MO/aimo-validation-amc", None, "train")}
