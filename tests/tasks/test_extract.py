"""tasks.extract: where the final answer is taken from, on plain strings."""

from __future__ import annotations

from tasks.extract import MAX_COMPLETION_CHARS, gsm8k_answer, last_boxed, truncate


def test_gsm8k_answer_takes_the_rest_of_the_last_marked_line():
    assert gsm8k_answer("7+5=12\n#### 12") == "12"
    assert gsm8k_answer("#### 3\n#### 1,234,567\nbye") == "1234567"
    assert gsm8k_answer("#### $12.") == "12"
    assert gsm8k_answer("#### (1,2)") == "(1,2)"
    assert gsm8k_answer("####") == ""
    assert gsm8k_answer("no marker") is None


def test_last_boxed_balances_nested_braces():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{\\sqrt{2}}} done") == "\\frac{1}{\\sqrt{2}}"
    assert last_boxed("\\boxed{\\frac{1}{2}") is None  # unclosed
    assert last_boxed("\\boxed{}") == ""
    assert last_boxed("nothing") is None


def test_truncate_keeps_the_tail():
    text = "a" * MAX_COMPLETION_CHARS + "#### 5"
    assert truncate(text) == text[-MAX_COMPLETION_CHARS:]
    assert truncate(text).endswith("#### 5")
    assert truncate("short") == "short"
