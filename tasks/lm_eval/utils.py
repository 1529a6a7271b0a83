"""lm-eval hooks of the rlvr-bench tasks: rows become our `tasks.Example` fields (the same prompt
and gold answer as `tasks.get(name).load`), and completions are scored by our one verifier."""

from __future__ import annotations

import tasks


def _process(name: str, dataset):
    task = tasks.get(name)

    def to_doc(row: dict, index: int) -> dict:
        ex = task.example_from_row(row, "test", index)
        return {"id": ex.id, "prompt": ex.prompt, "answer": ex.answer}

    return dataset.map(to_doc, with_indices=True, remove_columns=dataset.column_names)


def process_docs_gsm8k(dataset):
    return _process("gsm8k", dataset)


def process_docs_math500(dataset):
    return _process("math500", dataset)


def process_docs_aime24(dataset):
    return _process("aime24", dataset)


def process_docs_aime25(dataset):
    return _process("aime25", dataset)


def process_docs_amc23(dataset):
    return _process("amc23", dataset)


def process_results(doc: dict, results: list[str]) -> dict:
    return {"pass_at_1": tasks.verify(doc["answer"], results[0]).score}
