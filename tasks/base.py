"""What every task is: examples to load, and a reward computed by the one shared verifier."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tasks.verify import Verdict, verify, verify_many


@dataclass(frozen=True)
class Example:
    """prompt: the user message (question only, no template); answer: the gold final answer;
    solution: a worked solution for supervised warm start; level: difficulty, if the task has one."""

    id: str
    prompt: str
    answer: str
    solution: str = ""
    level: int | None = None


class Task:
    """A named source of examples. Subclasses set the class attributes and implement `load`."""

    name: str = ""
    answer_format: str = "####"  # how solutions state the answer: "####" (GSM8K) or "boxed"
    splits: tuple[str, ...] = ("train", "test")
    version: int = 1  # bump when prompts or answers change, so results say which ones they used

    def load(self, split: str, data_dir: str | None = None, limit: int | None = None) -> list[Example]:
        raise NotImplementedError

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(f"task {self.name!r} has no split {split!r}; splits: {', '.join(self.splits)}")

    def reward(self, completion: str, ex: Example) -> float:
        """1.0 if the completion's final answer equals `ex.answer`, else 0.0."""
        return verify(ex.answer, completion).score

    def reward_many(
        self, completions: Sequence[str], examples: Sequence[Example], timeout_s: float = 5.0
    ) -> list[Verdict]:
        """Verdicts for completions[i] against examples[i], verified in parallel."""
        if len(completions) != len(examples):
            raise ValueError(f"{len(completions)} completions for {len(examples)} examples")
        pairs = [(ex.answer, completion) for completion, ex in zip(completions, examples, strict=True)]
        return verify_many(pairs, timeout_s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
