"""Chunked log-probs and entropies (`logprob_chunk_size`) and gradient checkpointing: the same
numbers and gradients as the whole-micro-batch path."""

import pytest
import torch

from algorithms import losses
from tests.algorithms.test_modules import make_module


def relative(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_chunked_logp_and_entropy_equal_the_full_logits(dtype, chunk):
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=True).to(dtype)
    hidden = torch.randn(3, 7, 16, dtype=dtype, requires_grad=True)
    tokens = torch.randint(0, 50, (3, 7))
    weights = torch.randn(3, 7, dtype=dtype)
    results = []
    for chunked in (False, True):
        head.zero_grad(set_to_none=True)
        hidden.grad = None
        if chunked:
            logp, entropy = losses.chunked_logp_entropy(hidden, head, tokens, 0.7, chunk, entropy_grad=True)
        else:
            logits = head(hidden)
            logp = losses.token_logp(logits, tokens, temperature=0.7)
            entropy = losses.entropy_from_logits(logits / 0.7)
        ((logp * weights).sum() + 0.3 * entropy.sum()).backward()
        results.append((logp.detach(), entropy.detach(), hidden.grad.clone(), head.weight.grad.clone()))
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    for full, chunked in zip(*results):
        assert chunked.dtype == dtype
        assert relative(chunked, full) < tolerance


def test_chunked_entropy_is_detached_unless_asked():
    head = torch.nn.Linear(4, 9)
    hidden = torch.randn(2, 3, 4, requires_grad=True)
    logp, entropy = losses.chunked_logp_entropy(hidden, head, torch.zeros(2, 3, dtype=torch.long), chunk_size=2)
    assert logp.requires_grad and not entropy.requires_grad
    with pytest.raises(ValueError, match="chunk_size"):
        losses.chunked_logp_entropy(hidden, head, torch.zeros(2, 3, dtype=torch.long), chunk_size=0)


def test_chunked_half_precision_returns_float32_like_token_logp():
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 30).to(torch.bfloat16)
    hidden = torch.randn(2, 5, 8, dtype=torch.bfloat16)
    tokens = torch.randint(0, 30, (2, 5))
    logp, entropy = losses.chunked_logp_entropy(hidden, head, tokens, chunk_size=3)
    assert logp.dtype == entropy.dtype == torch.float32
    torch.testing.assert_close(logp, losses.token_logp(head(hidden), tokens))


def accumulated(module, batch):
    module.zero_grad(set_to_none=True)
    stats = module.accumulate_gradients(batch)
    grad = torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])
    return stats, grad


@pytest.mark.parametrize("name, overrides", [
    ("grpo", {"samples_per_prompt": 4}),                # shared prompts
    ("grpo", {"samples_per_prompt": 4, "shared_prompts": False}),
    ("a_star_po", {"entropy_coef": 0.1}),             # an entropy bonus: the entropy's gradient
])
def test_chunked_module_gives_the_losses_and_gradients_of_whole_logits(name, overrides, tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module(name, tiny_model_dir, micro_batch_size=4, **overrides)
    batch, _ = module.make_batch(examples[: 8 // module.samples_per_prompt])
    module.config.logprob_chunk_size = 0
    full_stats, full_grad = accumulated(module, batch)
    with torch.no_grad():
        full_logp = module.no_grad_logp(module.policy, batch)
    module.config.logprob_chunk_size = 7
    stats, grad = accumulated(module, batch)
    with torch.no_grad():
        chunked_logp = module.no_grad_logp(module.policy, batch)
    assert full_grad.abs().sum() > 0
    assert relative(grad, full_grad) < 1e-5
    assert relative(chunked_logp, full_logp) < 1e-5
    for key in ("loss", "entropy"):
        assert stats[key] == pytest.approx(full_stats[key], rel=1e-5)


@pytest.mark.parametrize("name", ["grpo", "ppo"])
def test_gradient_checkpointing_gives_the_same_gradients(name, tiny_model_dir):
    torch.manual_seed(0)
    results = []
    for checkpointing in (False, True):
        module, examples = make_module(name, tiny_model_dir, gradient_checkpointing=checkpointing,
                                       **({"samples_per_prompt": 4} if name == "grpo" else {}))
        assert module.policy.is_gradient_checkpointing is checkpointing
        torch.manual_seed(1)  # the same rollout for both
        batch, _ = module.make_batch(examples[: 8 // module.samples_per_prompt])
        results.append(accumulated(module, batch))
    (stats, grad), (stats_ckpt, grad_ckpt) = results
    assert grad.abs().sum() > 0
    assert relative(grad_ckpt, grad) < 1e-5
    assert stats_ckpt["loss"] == pytest.approx(stats["loss"], rel=1e-5)


def test_chunk_size_must_be_a_non_negative_integer(tiny_model_dir):
    with pytest.raises(ValueError, match="logprob_chunk_size"):
        make_module("grpo", tiny_model_dir, logprob_chunk_size=-1)
