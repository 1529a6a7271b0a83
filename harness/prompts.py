"""Prompt templates: how a task's user message becomes the model's input text.

`plain` is for base models and the tiny policy; `chat` applies the tokenizer's chat template.
The template version is recorded with every run so results say which prompt they used.
"""

from __future__ import annotations

PROMPT_VERSION = "1"
PLAIN_TEMPLATE = "Q: {prompt}\nA: "
STYLES = ("plain", "chat")


def format_prompt(tokenizer, prompt: str, style: str = "plain") -> str:
    if style == "plain":
        return PLAIN_TEMPLATE.format(prompt=prompt)
    if style == "chat":
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"prompt style {style!r} is not one of {STYLES}")


def encode_prompts(tokenizer, prompts: list[str], style: str = "plain") -> list[list[int]]:
    """Token ids of each formatted prompt (no special tokens added: templates carry their own)."""
    texts = [format_prompt(tokenizer, p, style) for p in prompts]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
