"""Property-based tests of the verifier: on any text, a verdict with a known status, within its timeout."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tasks
from tasks.verify import STATUSES, get_pool

TIMEOUT_S = 1.0
SLACK_S = 2.0  # pipe round trip on a busy shared CPU

# Pieces of what models write: LaTeX, answer markers, numbers, sympy-looking names, unbalanced braces.
PIECES = st.sampled_from([
    "\\boxed{", "}", "{", "\\frac{", "\\sqrt{", "^", "_", "\\cdot", "\\left(", "\\right)", "$", "$$", "\\[", "\\]",
    "####", "\n", " ", "x", "y", "=", "+", "-", "*", "/", "**", "(", ")", ",", ".", "%", "\\pi", "\\infty", "\\pm",
    "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "\\text{", "\\dfrac", "Eq(", "Symbol(", "lambda", "1e309",
    "0.", "9" * 40, "10^{10^{10}}", "\\in", "\\cup", "[", "]", "The answer is ", "\\mathbf{", "i", "e",
])
MATHY = st.lists(st.one_of(PIECES, st.integers(-10**6, 10**6).map(str), st.text(max_size=3)), max_size=40).map("".join)
TEXT = st.one_of(st.text(max_size=300), MATHY)
GOLD = st.one_of(st.integers(-1000, 1000).map(str), st.sampled_from(["\\frac{1}{2}", "\\sqrt{2}", "3\\pi", "(1, 2)"]),
                 MATHY, st.text(max_size=20))


STARTUP_S = 10.0  # a worker killed at its deadline is replaced; a new one imports sympy before its first job
_replacements_seen = [0]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(GOLD, TEXT)
def test_verify_never_raises_and_answers_within_its_timeout(gold, completion):
    pool = get_pool()
    tasks.verify("1", "#### 1")  # the pool is up
    # Each job gets TIMEOUT_S once a worker takes it; only when an earlier job had its worker
    # killed may this call also wait for the replacement to start.
    replaced = pool.replacements > _replacements_seen[0]
    _replacements_seen[0] = pool.replacements
    started = time.perf_counter()
    verdict = tasks.verify(gold, completion, timeout_s=TIMEOUT_S)
    elapsed = time.perf_counter() - started
    assert verdict.status in STATUSES
    assert verdict.score in (0.0, 1.0)
    assert verdict.score == 0.0 or verdict.status == "ok"
    assert elapsed < TIMEOUT_S + SLACK_S + STARTUP_S * replaced, (elapsed, gold, completion)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(-10**9, 10**9), st.sampled_from(["#### {}", "so the answer is \\boxed{{{}}}", "#### {}.0 apples"]),
       st.text(alphabet="abc xyz+-=\n", max_size=80))
def test_a_correct_final_answer_after_any_reasoning_scores_one(answer, template, reasoning):
    verdict = tasks.verify(str(answer), reasoning + "\n" + template.format(answer), timeout_s=5.0)
    assert (verdict.score, verdict.status) == (1.0, "ok")
