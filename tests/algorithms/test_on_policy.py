"""With one epoch and one mini-batch, REBEL and PPO skip the old-policy pass: same gradient as with it."""

import copy

import torch

from test_modules import make_module


def gradient(module, batch):
    module.zero_grad(set_to_none=True)
    stats = module.accumulate_gradients(copy.copy(batch))
    return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None]), stats


def test_on_policy_rebel_matches_an_explicit_old_policy_pass(tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module("rebel", tiny_model_dir, micro_batch_size=4)
    batch, _ = module.make_batch(examples[:4])
    assert batch.old_logp is None  # no old-policy forward pass ran
    assert batch.advantages.shape == batch.response_mask.shape

    skipped, skipped_stats = gradient(module, batch)
    explicit = copy.copy(batch)
    explicit.old_logp = module.no_grad_logp(module.policy, explicit)
    explicit.advantages = module.advantages(explicit)
    reference, reference_stats = gradient(module, explicit)
    assert skipped.abs().sum() > 0
    torch.testing.assert_close(skipped, reference, rtol=1e-6, atol=1e-9)
    assert skipped_stats["kl_ref"] == reference_stats["kl_ref"]


def test_on_policy_ppo_takes_the_samplers_log_probs_for_its_in_reward_kl(tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module("ppo", tiny_model_dir, micro_batch_size=4)
    batch, _ = module.make_batch(examples)
    assert batch.old_logp is None  # no old-policy forward pass ran
    mask = batch.response_mask.bool()
    assert batch.sample_logp[mask].abs().sum() > 0

    explicit = copy.copy(batch)
    explicit.old_logp = module.no_grad_logp(module.policy, explicit)
    # The sampler's log-probs are the policy's own up to float rounding (KV cache against a full pass).
    assert (explicit.old_logp - batch.sample_logp)[mask].abs().max() < 1e-4
    explicit.advantages = module.advantages(explicit)
    skipped, _ = gradient(module, batch)
    reference, _ = gradient(module, explicit)
    assert skipped.abs().sum() > 0
    assert ((skipped - reference).norm() / reference.norm()) < 1e-4

    # A truncated sampling distribution is not pi_old's: then the old-policy pass runs.
    module.config.top_p = 0.9
    assert module.needs_old_logp
    truncated, _ = module.make_batch(examples[:2])
    assert truncated.old_logp is not None
