"""Attribute docstrings of a dataclass's fields: the string under a field, as in

    lr: float = 1e-4
    \"\"\"AdamW learning rate of the policy.\"\"\"

Python keeps no such docstring at runtime, so it is read from the class's source (as jsonargparse
and Sphinx do). The command line's help for run flags and for algorithm hyperparameters comes from
here, so a field documents itself once, where it is declared.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """{field: its docstring, whitespace collapsed} for `cls` and its bases; a subclass's docstring
    wins, and a field a subclass redeclares without one keeps its base's. A class whose source is
    not available (a compiled plugin) documents nothing."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body
        for stmt, after in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[stmt.target.id] = " ".join(after.value.value.split())
    return docs


_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.")


def first_sentence(text: str) -> str:
    """Up to the first `.` that ends a sentence: outside parentheses and backticks, followed by a
    space or the end, and not the end of an abbreviation such as `e.g.`."""
    depth, code = 0, False
    for i, char in enumerate(text):
        if char == "`":
            code = not code
        elif code:
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif (char == "." and depth == 0 and (i + 1 == len(text) or text[i + 1] == " ")
              and not any(text[:i + 1].endswith(a) for a in _ABBREVIATIONS)):
            return text[:i + 1]
    return text


def plain(text: str) -> str:
    """Docstring text for a terminal: Markdown's backticks dropped."""
    return re.sub(r"`([^`]*)`", r"\1", text)
