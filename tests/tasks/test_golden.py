r"""The golden table of the verifier: (gold, completion, expected score) for equivalent forms the
benchmarks' answers take, and adversarial completions that must come back within their timeout,
scored 0, without running anything. Cases already in test_verify.py are not repeated here."""

from __future__ import annotations

import time

import pytest

import tasks
from tasks.verify import STATUSES

EQUIVALENT_FORMS = [
    # fractions
    ("\\frac{3}{4}", "\\boxed{\\frac{3}{4}}", 1.0),
    ("\\frac{3}{4}", "\\boxed{3/4}", 1.0),
    ("\\frac{3}{4}", "\\boxed{0.75}", 1.0),
    ("\\frac{3}{4}", "\\boxed{\\dfrac{3}{4}}", 1.0),
    ("\\frac{3}{4}", "\\boxed{\\tfrac34}", 1.0),
    ("\\frac{3}{4}", "\\boxed{\\frac{4}{3}}", 0.0),
    ("0.75", "#### 3/4", 1.0),
    ("\\frac{1}{3}", "\\boxed{0.33}", 0.0),  # two digits are not the fraction
    ("\\frac{1}{3}", "\\boxed{0.333333}", 1.0),  # six are (math-verify rounds at 6 places)
    ("\\frac{9}{2}", "\\boxed{4\\frac{1}{2}}", 1.0),  # mixed number
    ("\\frac{1}{2}", "\\boxed{1/2}", 1.0),
    # decimals
    ("2.5", "#### 2.50", 1.0),
    ("2.5", "\\boxed{\\frac{5}{2}}", 1.0),
    ("1.5", "\\boxed{\\frac{3}{2}}", 1.0),
    ("3", "\\boxed{3.0}", 1.0),
    ("0.1", "#### .1", 1.0),
    ("18.90", "#### $18.9", 1.0),
    ("\\$18.90", "\\boxed{18.90}", 1.0),
    ("0.5", "\\boxed{50\\%}", 1.0),
    ("50", "\\boxed{50\\%}", 1.0),
    # units
    ("12", "#### 12 dollars", 1.0),
    ("18", "#### $18", 1.0),
    ("5", "\\boxed{5 \\text{ cm}}", 1.0),
    ("5", "\\boxed{5\\text{ meters}}", 1.0),
    ("5", "\\boxed{5\\,\\mathrm{m}}", 1.0),
    ("90", "\\boxed{90^\\circ}", 1.0),
    # thousands separators
    ("1000000", "#### 1,000,000", 1.0),
    ("5000", "\\boxed{5,000}", 1.0),
    ("5000", "\\boxed{5{,}000}", 1.0),
    ("1234", "#### 1234.00", 1.0),
    # \boxed{} nesting and other LaTeX
    ("\\frac{1}{\\sqrt{2}}", "\\boxed{\\frac{1}{\\sqrt{2}}}", 1.0),
    ("\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{1}{\\sqrt{2}}}", 1.0),
    ("2", "\\boxed{\\boxed{2}}", 1.0),
    ("x^2+1", "\\boxed{x^{2}+1}", 1.0),
    ("x^2 - 4", "\\boxed{(x-2)(x+2)}", 1.0),
    ("\\sqrt{8}", "\\boxed{2\\sqrt{2}}", 1.0),
    ("2\\pi", "\\boxed{6.28}", 0.0),
    ("\\infty", "\\boxed{\\infty}", 1.0),
    ("6", "The answer is $\\boxed{6}$.", 1.0),
    ("\\text{(C)}", "\\boxed{C}", 1.0),
    ("\\text{(C)}", "\\boxed{\\text{(C)}}", 1.0),
    # intervals, tuples, sets
    ("(-\\infty, 3)", "\\boxed{(-\\infty, 3)}", 1.0),
    ("(-\\infty, 3)", "\\boxed{(-\\infty, 3]}", 0.0),
    ("[2, 5)", "\\boxed{[2,5)}", 1.0),
    ("(-\\infty,-2)\\cup(2,\\infty)", "\\boxed{(-\\infty,-2)\\cup(2,\\infty)}", 1.0),
    ("(-\\infty,-2)\\cup(2,\\infty)", "\\boxed{(2,\\infty)\\cup(-\\infty,-2)}", 1.0),
    ("(3, -2)", "\\boxed{(3,-2)}", 1.0),
    ("(3, -2)", "\\boxed{(-2,3)}", 0.0),  # an ordered pair
    ("2, 3", "\\boxed{2, 3}", 1.0),
    ("2, 3", "\\boxed{3, 2}", 1.0),  # a list of solutions, in any order
    # several boxed answers: the last one is the answer
    ("7", "\\boxed{3} ... so \\boxed{7}", 1.0),
    ("3", "\\boxed{3} ... so \\boxed{7}", 0.0),
    ("2, 3", "\\boxed{2}, \\boxed{3}", 0.0),
    ("12", "\\boxed{12}\n#### 13", 0.0),  # a `####` line wins over \boxed{}
]


@pytest.mark.parametrize("gold, completion, score", EQUIVALENT_FORMS)
def test_equivalent_forms(gold, completion, score):
    assert tasks.verify(gold, completion) == tasks.Verdict(score, "ok")


def test_answers_in_words_are_not_read():
    assert tasks.verify("10", "#### ten") == tasks.Verdict(0.0, "no_answer")


@pytest.mark.parametrize("completion", ["#### \u22124", "\\boxed{\u22124}"])
def test_a_unicode_minus_sign_is_a_minus_sign(completion):
    assert tasks.verify("-4", completion) == tasks.Verdict(1.0, "ok")


TIMEOUT_S = 2.0
SLACK_S = 2.0  # killing and replacing a worker, on 2 busy CPUs


def _adversarial(marker: str) -> list[tuple[str, str, str, float]]:
    """(name, gold, completion, expected score)."""
    shell = f"__import__('os').system('touch {marker}')"
    return [
        ("power tower boxed", "5", "\\boxed{9^{9^{9^{9}}}}", 0.0),
        ("power tower caret", "5", "#### 9^9^9^9", 0.0),
        ("power tower python", "5", "#### 9**9**9**9", 0.0),
        ("power tower of twos", "5", "\\boxed{2^{2^{2^{2^{2^{2}}}}}}", 0.0),
        ("huge factorial", "5", "\\boxed{10!!!!!!!!}", 0.0),
        ("huge sum", "5", "\\boxed{\\sum_{n=1}^{10^{100}} n}", 0.0),
        ("huge exponent literal", "5", "#### 1e999999999", 0.0),
        ("nested braces", "5", "\\boxed{" + "{" * 20_000 + "5" + "}" * 20_000 + "}", 0.0),
        ("nested fractions", "5", "\\boxed{" + "\\frac{1}{" * 3_000 + "5" + "}" * 3_000 + "}", 0.0),
        ("nested parentheses", "5", "\\boxed{" + "(" * 50_000 + "5" + ")" * 50_000 + "}", 0.0),
        ("1 MB then the answer", "5", "a" * 1_000_000 + "\n#### 5", 1.0),
        ("the answer then 1 MB", "5", "#### 5\n" + "a" * 1_000_000, 0.0),
        ("1 MB of digits", "5", "9" * 1_000_000, 0.0),
        ("1 MB of boxes", "5", "\\boxed{1}" * 110_000, 0.0),
        ("code in a box", "5", f"\\boxed{{{shell}}}", 0.0),
        ("code after ####", "5", f"#### {shell}", 0.0),
        ("code as the gold", shell, "#### 5", 0.0),
        ("eval call", "5", f'#### eval("{shell}")', 0.0),
        ("sympify-style attribute chain", "5", "#### ().__class__.__base__.__subclasses__()", 0.0),
        ("LaTeX input", "5", "\\boxed{\\input{/etc/passwd}}", 0.0),
    ]


def test_adversarial_completions_are_answered_within_their_timeout(tmp_path):
    marker = tmp_path / "created-by-model-text"
    tasks.verify("1", "#### 1")  # the pool is up: its start-up is not part of any case's time
    for name, gold, completion, score in _adversarial(str(marker)):
        start = time.perf_counter()
        verdict = tasks.verify(gold, completion, timeout_s=TIMEOUT_S)
        elapsed = time.perf_counter() - start
        assert verdict.status in STATUSES, name
        assert verdict.score == score, (name, verdict)
        assert elapsed < TIMEOUT_S + SLACK_S, (name, elapsed)
    assert not marker.exists()


def test_the_golden_table_is_at_least_forty_cases(tmp_path):
    assert len(EQUIVALENT_FORMS) + len(_adversarial(str(tmp_path / "x"))) >= 40
