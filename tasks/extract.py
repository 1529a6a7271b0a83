"""Find the final-answer text in a model completion.

Pure string scanning, linear in the input: no regex backtracking, no parsing of math.
Runs inside the verifier workers (tasks.check), but is safe anywhere.
"""

from __future__ import annotations

import re

# The answer sits at the end of a completion; a bound keeps parsing cheap on 10 MB junk.
MAX_COMPLETION_CHARS = 4000

# GSM8K writes "1,234"; only commas followed by exactly three digits are separators,
# so a tuple such as "1,2" is left alone.
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def truncate(text: str, max_chars: int = MAX_COMPLETION_CHARS) -> str:
    """Keep the last `max_chars` characters (the answer is at the end)."""
    return text[-max_chars:] if len(text) > max_chars else text


def gsm8k_answer(completion: str) -> str | None:
    """Text after the last `####`, up to the end of that line, GSM8K-normalised; None if absent."""
    at = completion.rfind("####")
    if at < 0:
        return None
    line = completion[at + 4 :].split("\n", 1)[0]
    # U+2212 is how some models (and typeset text) write a minus sign.
    line = _THOUSANDS_COMMA.sub("", line).replace("\u2212", "-").strip()
    # "#### $12." is a common variant of "#### 12".
    return line.lstrip("$").rstrip(".").strip()


def last_boxed(completion: str) -> str | None:
    r"""Contents of the last `\boxed{...}` with nested braces balanced; None if absent or unclosed."""
    at = completion.rfind("\\boxed{")
    if at < 0:
        return None
    start = at + len("\\boxed{")
    depth = 1
    for i in range(start, len(completion)):
        char = completion[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return completion[start:i]
    return None
