"""Prompt templates: how a task's user message becomes the model's input text.

`plain` is for base models and the tiny policy; `chat` applies the tokenizer's chat template to
a system message and the user message. Either way the user message is the task's prompt, which
ends with the answer-format instruction (`####` for GSM8K, `\\boxed{}` for MATH/AIME/AMC).
The version is recorded with every run (and is the lm-eval tasks' `metadata.version`), so
results say which prompt they used; bump it whenever a template here changes.
"""

from __future__ import annotations

PROMPT_VERSION = "2"  # 1: chat was the user message alone; 2: chat adds SYSTEM_PROMPT
PLAIN_TEMPLATE = "Q: {prompt}\nA: "
SYSTEM_PROMPT = "You are a careful math assistant. Solve the problem step by step."
STYLES = ("plain", "chat")


def chat_messages(prompt: str, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": prompt}]


def format_prompt(tokenizer, prompt: str, style: str = "plain") -> str:
    if style == "plain":
        return PLAIN_TEMPLATE.format(prompt=prompt)
    if style == "chat":
        try:
            return tokenizer.apply_chat_template(chat_messages(prompt), tokenize=False, add_generation_prompt=True)
        except Exception:  # a template without a system role (Gemma's raises): fold it into the user turn
            messages = chat_messages(f"{SYSTEM_PROMPT}\n\n{prompt}", system=None)
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"prompt style {style!r} is not one of {STYLES}")


def encode_prompts(tokenizer, prompts: list[str], style: str = "plain") -> list[list[int]]:
    """Token ids of each formatted prompt (no special tokens added: templates carry their own)."""
    texts = [format_prompt(tokenizer, p, style) for p in prompts]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
