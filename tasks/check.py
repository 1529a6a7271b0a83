"""Score one (gold, completion) pair with math-verify. Runs inside a verifier worker process.

Nothing here evaluates model text: strings only reach math-verify's parser (a LaTeX grammar
and sympy's `parse_expr` on a regex-extracted expression), and plain integers are compared as
integers. Hard time limits are the pool's job (tasks.pool); math-verify's own signal-based
timeouts are a cheaper first line that keeps the worker alive.
"""

from __future__ import annotations

import logging
import re

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
from math_verify import verify as math_verify_verify

from tasks.extract import MAX_COMPLETION_CHARS, gsm8k_answer, last_boxed, truncate

_DEFAULT_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())
# Bounded digits: int() of a huge digit string is itself a slow path.
_PLAIN_INTEGER = re.compile(r"-?[0-9]{1,100}")
_CACHE_LIMIT = 20_000
_CACHE_KEY_CHARS = 256  # long texts rarely repeat; don't hold megabytes of them
_cache: dict[tuple[str, str, int | None], list] = {}


class _TimeoutFlag(logging.Handler):
    """math-verify swallows its own timeouts and only logs them; this turns the log into a flag."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Timeout during"):
            self.count += 1


_flag: _TimeoutFlag | None = None


def _timeout_flag() -> _TimeoutFlag:
    global _flag
    if _flag is None:
        _flag = _TimeoutFlag()
        library_logger = logging.getLogger("math_verify")
        library_logger.addHandler(_flag)
        # Its warnings quote the whole (hostile, huge) input; keep them off stderr.
        library_logger.propagate = False
    return _flag


def _parse(text: str, form: str, soft_timeout: int | None) -> list:
    """math-verify parse of `text` wrapped as `form` ("bare", "latex" or "boxed"), memoised.

    Training verifies the same gold and the same short answers many times per step.
    Timed-out parses are not memoised, so a retry with a longer limit can succeed.
    """
    key = (text, form, soft_timeout)
    if key in _cache:
        return _cache[key]
    wrapped = {"bare": text, "latex": f"${text}$", "boxed": f"\\boxed{{{text}}}"}[form]
    timeouts_before = _timeout_flag().count
    result = parse(wrapped, extraction_config=_DEFAULT_CONFIG, parsing_timeout=soft_timeout)
    if _timeout_flag().count == timeouts_before and len(text) <= _CACHE_KEY_CHARS:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = result
    return result


def parse_gold(gold: str, soft_timeout: int | None) -> list:
    """Gold answers are bare LaTeX ("\\frac{1}{2}", "12"): read as math first, as text second."""
    return _parse(gold, "latex", soft_timeout) or _parse(gold, "bare", soft_timeout)


def find_answer(completion: str) -> tuple[str, str]:
    """(answer text, form to parse it as): `####` line, else last `\\boxed{}`, else the tail itself."""
    tail = truncate(completion, MAX_COMPLETION_CHARS)
    answer = gsm8k_answer(tail)
    if answer is not None:
        # GSM8K-style answers are plain numbers, maybe followed by a unit ("12 pens").
        return answer, "bare"
    boxed = last_boxed(tail)
    if boxed is not None:
        return boxed, "boxed"
    # No marker: math-verify's default search over the tail.
    return tail, "bare"


def soft_timeout_for(timeout_s: float) -> int | None:
    """math-verify's per-step limit (whole seconds, signal.alarm): well under the pool's hard limit."""
    seconds = int(timeout_s / 2)
    return seconds if seconds >= 1 else None


def check(gold: str, completion: str, timeout_s: float = 5.0) -> tuple[float, str]:
    """(score, status) for one pair; status one of "ok", "no_answer", "gold_unparsed", "timeout".

    Exceptions escape to the pool, which reports them as "error".
    """
    soft_timeout = soft_timeout_for(timeout_s)
    timeouts_before = _timeout_flag().count
    gold = truncate(gold, MAX_COMPLETION_CHARS).strip()
    answer_text, form = find_answer(completion)
    answer_text = answer_text.strip()
    if _PLAIN_INTEGER.fullmatch(gold) and _PLAIN_INTEGER.fullmatch(answer_text):
        # Same outcome as math-verify on two integers, without the sympy round trip.
        return float(int(gold) == int(answer_text)), "ok"
    gold_parsed = parse_gold(gold, soft_timeout)
    answer = _parse(answer_text, form, soft_timeout) if answer_text else []
    # Gold first: math-verify is not symmetric (assignments, intervals).
    if gold_parsed and answer and math_verify_verify(gold_parsed, answer, timeout_seconds=soft_timeout):
        return 1.0, "ok"
    if _timeout_flag().count != timeouts_before:
        return 0.0, "timeout"
    if not gold_parsed:
        return 0.0, "gold_unparsed"
    if not answer:
        return 0.0, "no_answer"
    return 0.0, "ok"


def warm_up() -> None:
    """First calls build regexes and import sympy's parsers; pay for it before taking jobs."""
    check("1", "#### 1")
    check("\\frac{1}{2}", "so \\boxed{\\frac{2}{4}}")
    check("12", "The answer is 12.")
