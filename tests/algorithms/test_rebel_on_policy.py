"""REBEL with one epoch and one mini-batch skips the old-policy pass: same gradient as with it."""

import copy

import torch

from test_modules import make_module


def test_on_policy_rebel_matches_an_explicit_old_policy_pass(tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module("rebel", tiny_model_dir, micro_batch_size=4)
    batch, _ = module.make_batch(examples[:4])
    assert batch.old_logp is None and batch.advantages is None  # no old-policy forward pass ran

    def gradient(b):
        module.zero_grad(set_to_none=True)
        stats = module.accumulate_gradients(copy.copy(b))
        return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None]), stats

    skipped, skipped_stats = gradient(batch)
    explicit = copy.copy(batch)
    explicit.old_logp = module.no_grad_logp(module.policy, explicit)
    explicit.advantages = module.shaped_rewards(explicit, explicit.old_logp)
    reference, reference_stats = gradient(explicit)
    assert skipped.abs().sum() > 0
    torch.testing.assert_close(skipped, reference, rtol=1e-6, atol=1e-9)
    assert skipped_stats["kl_ref"] == reference_stats["kl_ref"]
