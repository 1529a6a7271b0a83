"""The vLLM engine against the HF reference: same greedy completions after a weight update,
log-probs equal to the trainer's recomputed ones, and seeded rollouts that repeat."""

from __future__ import annotations

import copy

import pytest
import torch

from algorithms import losses
from algorithms.rollout import SamplingParams
from harness.engines.hf import HFEngine

@pytest.fixture(scope="module")
def setup(vllm_engine_factory, tiny_model_dir):
    from harness.models import load_policy

    tokenizer, policy = load_policy(str(tiny_model_dir))
    engine = vllm_engine_factory(str(tiny_model_dir), tokenizer, policy)
    prompts = [tokenizer(f"Q: What is {a} + {b}?\nA: ")["input_ids"] for a, b in
               [(3, 4), (12, 9), (45, 17), (8, 80), (123, 7), (6, 6), (71, 29), (250, 250)]]
    return tokenizer, policy, engine, prompts


def perturbed(policy, seed: int = 0, scale: float = 0.02):
    """A copy of the policy as an optimizer step would leave it: every weight moved a little."""
    other = copy.deepcopy(policy)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return other


def recomputed_logp(policy, prompt: list[int], completion: list[int], temperature: float) -> torch.Tensor:
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = policy(input_ids=ids).logits[:, len(prompt) - 1:-1]
    return losses.token_logp(logits, torch.tensor([completion]), temperature=temperature)[0]


def test_greedy_equals_hf_after_weight_update(setup):
    tokenizer, policy, engine, prompts = setup
    updated = perturbed(policy)
    engine.load_weights(updated)
    try:
        greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=24, seed=0)
        ours, reference = engine.generate(prompts, greedy), HFEngine(updated, tokenizer).generate(prompts, greedy)
        assert ours.completion_ids == reference.completion_ids
        assert ours.texts == reference.texts
        # The update changed what the model says, so equality is not the old weights agreeing with themselves.
        before = HFEngine(policy, tokenizer).generate(prompts, greedy)
        assert before.completion_ids != reference.completion_ids
    finally:
        engine.load_weights(policy)


def test_logprobs_match_trainer_recomputation(setup):
    _, policy, engine, prompts = setup
    updated = perturbed(policy, seed=1)
    engine.load_weights(updated)
    try:
        temperature = 0.7
        rollout = engine.generate(prompts, SamplingParams(n=4, temperature=temperature, max_new_tokens=24, seed=5))
        diffs, kls = [], []
        for prompt, completion, sampled in zip(rollout.prompt_ids, rollout.completion_ids, rollout.logprobs):
            mine = recomputed_logp(updated, prompt, completion, temperature)
            theirs = torch.tensor(sampled)
            diffs.append((mine - theirs).abs().max().item())
            kls.append((theirs - mine).mean().item())  # k1 estimate of KL(sampler || trainer) per token
        print(f"vllm vs trainer log-probs: max |diff| {max(diffs):.2e}, mean k1 KL {sum(kls) / len(kls):.2e}")
        assert max(diffs) < 1e-3
        assert abs(sum(kls) / len(kls)) < 1e-4
    finally:
        engine.load_weights(policy)


def test_same_seed_same_rollouts(setup):
    _, _, engine, prompts = setup
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=24, seed=11)
    first, second = engine.generate(prompts, params), engine.generate(prompts, params)
    assert first.completion_ids == second.completion_ids
    assert first.logprobs == second.logprobs
    other = engine.generate(prompts, SamplingParams(n=4, temperature=1.0, max_new_tokens=24, seed=12))
    assert other.completion_ids != first.completion_ids
    # Prompt-major order, n per prompt, and the samples of one prompt are not all copies.
    assert len(first) == 4 * len(prompts)
    assert all(first.prompt_ids[4 * i] == p for i, p in enumerate(prompts))
    assert any(len(set(map(tuple, first.completion_ids[4 * i:4 * i + 4]))) > 1 for i in range(len(prompts)))


def test_stops_on_eos_and_counts_it(setup):
    tokenizer, _, engine, prompts = setup
    rollout = engine.generate(prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=48, seed=3))
    eos = tokenizer.eos_token_id
    stopped = [c for c in rollout.completion_ids if c and c[-1] == eos]
    assert stopped, "the warm start ends its answers with EOS"
    assert all(eos not in c[:-1] for c in rollout.completion_ids)
    assert all(len(c) <= 48 for c in rollout.completion_ids)
    assert [len(c) for c in rollout.completion_ids] == [len(lp) for lp in rollout.logprobs]


def test_reused_engine_takes_the_new_callers_weights(setup, vllm_engine_factory, tiny_model_dir):
    tokenizer, policy, engine, prompts = setup
    updated = perturbed(policy, seed=2)
    second = vllm_engine_factory(str(tiny_model_dir), tokenizer, updated)
    assert second.llm is engine.llm  # one vLLM per process and folder
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=24, seed=0)
    try:
        assert second.generate(prompts, greedy).completion_ids == HFEngine(updated, tokenizer).generate(prompts, greedy).completion_ids
    finally:
        engine.load_weights(policy)


def test_unknown_engine_option_names_the_key():
    from harness.engines import engine_options

    with pytest.raises(ValueError, match="kv_cache_gib"):
        engine_options("vllm", {"kv_cache_gib": 1})
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        engine_options("vllm", {"tensor_parallel_size": 0})
