"""A validation split carved from a task's training data, for tuning without touching `test`.

The rule depends on the prompt text alone, so it is fixed per task (whatever the seed, limit or
run) and a question is either always validation or never: one prompt in `VALIDATION_BUCKETS`,
by a salted CRC-32 of its text, is validation; every other one may be trained on. Repeated
training questions land on one side together, so validation never shares a question with the
training prompts of a run that carved it. `test` is not read at all.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from tasks.base import Example

VALIDATION_BUCKETS = 10
VALIDATION_SALT = "rlvr-bench/validation/"
VALIDATION_RULE = f"crc32({VALIDATION_SALT!r} + prompt) % {VALIDATION_BUCKETS} == 0, from the train split"


def is_validation(prompt: str) -> bool:
    return zlib.crc32((VALIDATION_SALT + prompt).encode("utf-8")) % VALIDATION_BUCKETS == 0


def carve(train: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(training examples left, validation examples) from a task's whole `train` split, in its
    order; validation keeps the first example of each distinct prompt."""
    kept: list[Example] = []
    validation: list[Example] = []
    seen: set[str] = set()
    for ex in train:
        if not is_validation(ex.prompt):
            kept.append(ex)
        elif ex.prompt not in seen:
            seen.add(ex.prompt)
            validation.append(ex)
    return kept, validation
