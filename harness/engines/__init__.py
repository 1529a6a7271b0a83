"""Rollout engines behind `algorithms.rollout.RolloutEngine`: `hf` (reference) and `vllm`."""

from __future__ import annotations

ENGINES = ("hf", "vllm")


def make_engine(name: str, model, tokenizer, **options):
    if name == "hf":
        from harness.engines.hf import HFEngine

        return HFEngine(model, tokenizer)
    if name == "vllm":
        raise ValueError("--engine vllm: the vLLM engine is not built yet; use --engine hf")
    raise ValueError(f"--engine {name!r} is not one of {ENGINES}")
