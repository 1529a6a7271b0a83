"""Tasks (data + reward) and the one verifier shared by training and evaluation.

`tasks.get("arithmetic").load("test")` gives a list of `Example`s;
`tasks.verify(example.answer, completion)` gives a `Verdict(score, status)`.
"""

from tasks.arithmetic import ArithmeticTask
from tasks.base import Example, Task
from tasks.benchmarks import Aime24Task, Aime25Task, Amc23Task, GSM8KTask, Math500Task, MathTask
from tasks.verify import Verdict, reset_status_counts, status_counts, verify, verify_many

# name -> task instance; adding a task is one line here.
REGISTRY: dict[str, Task] = {
    "arithmetic": ArithmeticTask(),
    "gsm8k": GSM8KTask(),
    "math": MathTask(),
    "math500": Math500Task(),
    "aime24": Aime24Task(),
    "aime25": Aime25Task(),
    "amc23": Amc23Task(),
}


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str) -> Task:
    """The task registered as `name`; unknown names raise ValueError listing the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(names())}")
    return REGISTRY[name]


__all__ = [
    "Example",
    "Task",
    "Verdict",
    "get",
    "names",
    "reset_status_counts",
    "status_counts",
    "verify",
    "verify_many",
]
