"""tasks.names() / tasks.get(), and what importing `tasks` pulls in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tasks


def test_names_are_sorted_and_include_arithmetic():
    assert "arithmetic" in tasks.names()
    assert tasks.names() == sorted(tasks.names())


def test_get_returns_the_registered_task():
    task = tasks.get("arithmetic")
    assert isinstance(task, tasks.Task)
    assert task.name == "arithmetic" and task.answer_format == "####"
    assert set(task.splits) == {"train", "test"}


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        tasks.get("gsm9k")
    assert "gsm9k" in str(error.value)
    for name in tasks.names():
        assert name in str(error.value)


def test_importing_tasks_stays_light():
    # The trainer imports tasks; sympy lives in the verifier workers only, and tasks never
    # depends on harness or sweeps (CONTRACT.md).
    heavy = {"sympy", "math_verify", "harness", "sweeps", "torch"}
    code = f"import sys, tasks; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r}))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
