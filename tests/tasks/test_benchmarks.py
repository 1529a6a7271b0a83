"""The benchmark tasks on the local data files: counts, gold answers that verify, bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tasks
from tasks.benchmarks import read_jsonl
from tasks.extract import gsm8k_answer, last_boxed

SIZES = {
    ("gsm8k", "train"): 7473,
    ("gsm8k", "test"): 1319,
    ("math", "train"): 7500,
    ("math", "test"): 5000,
    ("math500", "test"): 500,
    ("aime24", "test"): 30,
    ("aime25", "test"): 30,
    ("amc23", "test"): 40,
}
BENCHMARKS = sorted({name for name, _ in SIZES})
# math-verify cannot match a handful of MATH golds against themselves; they are reported, not hidden.
MAX_SELF_FAILURE_RATE = 0.005
# Two MATH train solutions end in an empty \boxed{} (a flaw of the original dataset: the answers
# would be "0" and "(A)"). They are kept, so the split has its published size; they can never
# be rewarded (status "gold_unparsed"). Any other empty gold answer fails the tests.
EMPTY_MATH_GOLDS = {"train/number_theory/7115.json", "train/number_theory/7117.json"}


@pytest.fixture(scope="session")
def data_dir() -> str:
    env = os.environ.get("RLVR_DATA_DIR")
    # CI clones the repository into a fresh folder with shared/ beside it: <repo>/../shared/data.
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"benchmark data folder {path} does not exist (set RLVR_DATA_DIR to run these tests)")
    return str(path)


def _stated(task: tasks.Task, answer: str) -> str:
    if task.answer_format == "####":
        return f"#### {answer}"
    return f"The answer is \\boxed{{{answer}}}."


def test_all_benchmarks_are_registered():
    for name in BENCHMARKS:
        task = tasks.get(name)
        assert task.name == name and task.version == 1
        assert task.answer_format == ("####" if name == "gsm8k" else "boxed")
    assert {split for name, split in SIZES if name == "math500"} == set(tasks.get("math500").splits)


@pytest.mark.parametrize(("name", "split"), sorted(SIZES))
def test_full_split_loads_with_the_published_count(name, split, data_dir):
    task = tasks.get(name)
    examples = task.load(split, data_dir=data_dir)
    assert len(examples) == SIZES[name, split]
    assert len({ex.id for ex in examples}) == len(examples)
    instruction = "\nGive the final answer after '####'." if name == "gsm8k" else "\nPut the final answer in \\boxed{}."
    for ex in examples:
        assert ex.prompt.endswith(instruction) and len(ex.prompt) > len(instruction)
        assert ex.answer == ex.answer.strip()
        if ex.solution:  # the solution states exactly the gold answer, in the task's format
            extract = gsm8k_answer if task.answer_format == "####" else last_boxed
            assert extract(ex.solution) == ex.answer, ex.id
    empty = {ex.id for ex in examples if not ex.answer}
    assert empty == (EMPTY_MATH_GOLDS if (name, split) == ("math", "train") else set())
    assert task.load(split, data_dir=data_dir, limit=3) == examples[:3]


def test_gsm8k_fields(data_dir):
    ex = tasks.get("gsm8k").load("test", data_dir=data_dir, limit=1)[0]
    assert ex.id == "gsm8k-test-0" and ex.answer == "18"
    assert "<<" not in ex.solution and ex.solution.endswith("#### 18")
    answers = [e.answer for e in tasks.get("gsm8k").load("train", data_dir=data_dir)]
    assert not any("," in a for a in answers)


def test_ids_come_from_the_files(data_dir):
    assert tasks.get("math500").load("test", data_dir=data_dir, limit=1)[0].id == "test/precalculus/807.json"
    assert tasks.get("aime25").load("test", data_dir=data_dir)[-1].id == "2025-II-15"
    assert tasks.get("amc23").load("test", data_dir=data_dir, limit=1)[0].id == "amc23-0"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_gold_answer_verifies_against_itself(name, data_dir):
    task = tasks.get(name)
    examples = [ex for split in task.splits for ex in task.load(split, data_dir=data_dir)]
    verdicts = tasks.verify_many([(ex.answer, _stated(task, ex.answer)) for ex in examples])
    failed = [(ex.id, ex.answer, v.status) for ex, v in zip(examples, verdicts, strict=True) if v.score != 1.0]
    if name == "math":
        assert len(failed) / len(examples) < MAX_SELF_FAILURE_RATE, failed
        if failed:
            print(f"\n{len(failed)} MATH gold answers do not verify against themselves: {failed}")
    else:
        assert failed == []


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "bad_line",
    ['{"problem": "x", "answer": ', '["problem", "answer"]', '{"problem": "3+4?"}'],
    ids=["bad-json", "not-an-object", "missing-field"],
)
def test_malformed_row_names_the_file_and_line(tmp_path, bad_line):
    good = '{"problem": "1+1?", "answer": "2"}'
    path = _write(tmp_path / "broken.jsonl", [good, good, bad_line, good])
    with pytest.raises(ValueError) as error:
        read_jsonl(path, required=("problem", "answer"))
    assert str(path) in str(error.value) and "line 3" in str(error.value)


def test_malformed_task_file_raises_through_load(tmp_path):
    (tmp_path / "amc").mkdir()
    good = '{"id": "a", "problem": "1+1?", "answer": "2"}'
    path = _write(tmp_path / "amc" / "amc23.jsonl", [good, good, "{not json"])
    with pytest.raises(ValueError, match="line 3") as error:
        tasks.get("amc23").load("test", data_dir=str(tmp_path))
    assert str(path) in str(error.value)


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        tasks.get("aime24").load("test", data_dir=str(tmp_path))
    message = str(error.value)
    assert str(tmp_path / "aime" / "aime24.jsonl") in message
    assert "--data-dir" in message and "RLVR_DATA_DIR" in message


def test_env_var_is_the_fallback_data_dir(monkeypatch, data_dir):
    monkeypatch.setenv("RLVR_DATA_DIR", data_dir)
    assert len(tasks.get("aime25").load("test")) == 30


def test_ids_fall_back_to_task_split_index(tmp_path):
    (tmp_path / "amc").mkdir()
    _write(tmp_path / "amc" / "amc23.jsonl", ['{"problem": "1+1?", "answer": 2.0}'])
    ex = tasks.get("amc23").load("test", data_dir=str(tmp_path))[0]
    assert ex.id == "amc23-test-0" and ex.answer == "2" and ex.solution == ""


def test_unknown_split_is_refused(data_dir):
    with pytest.raises(ValueError, match="no split"):
        tasks.get("math500").load("train", data_dir=data_dir)
