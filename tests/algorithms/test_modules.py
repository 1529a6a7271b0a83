"""The LightningModules on the tiny policy: exact gradient accumulation, declared needs."""

import pytest
import torch

import algorithms
import tasks
from harness.config import algorithm_config, load_run_config
from harness.engines.hf import HFEngine
from harness.models import load_policy
from harness.prompts import encode_prompts


def make_module(name, tiny_model_dir, **overrides):
    tokenizer, policy = load_policy(str(tiny_model_dir))
    task = tasks.get("arithmetic")
    run = load_run_config(None, {"algorithm": name, "algo": {"max_new_tokens": 16, **overrides}})
    config = algorithm_config(run)

    def encode(examples):
        return encode_prompts(tokenizer, [ex.prompt for ex in examples])

    def reward(texts, examples):
        return [v.score for v in task.reward_many(texts, examples)]

    module = algorithms.get(name)(policy, tokenizer, HFEngine(policy, tokenizer), reward, encode, config, seed=0)
    examples = task.load("train", limit=8, levels=(1,))
    if module.needs_offline_values:
        # A fixed offline table: prompt i solved i mod 9 times out of 8 (0..8).
        module.set_offline({ex.id: [1.0] * (i % 9) + [0.0] * (8 - i % 9) for i, ex in enumerate(examples)})
    return module, examples


# Group sizes that let 8 samples split into micro-batches of 2.
SMALL_GROUPS = {"grpo": {"samples_per_prompt": 2}, "rloo": {"samples_per_prompt": 2}}


@pytest.mark.parametrize("name", algorithms.names())
def test_micro_batches_accumulate_to_the_full_batch_gradient(name, tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module(name, tiny_model_dir, **SMALL_GROUPS.get(name, {}))
    g = module.samples_per_prompt
    batch, _ = module.make_batch(examples[: 8 // g])
    assert len(batch) == 8
    grads = []
    for micro in (8, 2):
        module.config.micro_batch_size = micro
        module.zero_grad(set_to_none=True)
        module.accumulate_gradients(batch)
        grads.append(torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None]))
    assert grads[0].abs().sum() > 0
    # fp32 sums in another order: equal up to rounding, measured against the gradient's size (an
    # element-wise rtol fails on near-zero entries; a wrong micro-batch scale is off by ~50 %).
    relative = ((grads[0] - grads[1]).norm() / grads[0].norm()).item()
    assert relative < 1e-5, relative


@pytest.mark.parametrize("name", ["a_star_po", "grpo"])
def test_token_budgeted_micro_batches_fit_the_budget_and_accumulate_to_the_full_gradient(name, tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module(name, tiny_model_dir, **SMALL_GROUPS.get(name, {}))
    g = module.samples_per_prompt
    batch, _ = module.make_batch(examples[: 8 // g])
    shared = module.shares_prompts(batch)
    assert shared is (g > 1)

    def grad():
        module.zero_grad(set_to_none=True)
        module.accumulate_gradients(batch)
        return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])

    module.config.micro_batch_size = 8
    whole = grad()
    budget = 3 * (batch.prompt_width + batch.response_width)
    module.config.micro_batch_tokens = budget
    micro = module.micro_batches(batch)
    assert len(micro) > 1
    assert sorted(torch.cat([rows for rows, _ in micro]).tolist()) == list(range(len(batch)))
    for _, m in micro:
        assert len(m) % g == 0
        prompt_rows = len(m) // g if shared else len(m)
        positions = prompt_rows * m.prompt_width + len(m) * m.response_width
        assert positions <= budget or len(m) == g, (positions, budget, len(m))
    budgeted = grad()
    assert ((whole - budgeted).norm() / whole.norm()) < 1e-5
    with pytest.raises(ValueError, match="micro_batch_tokens"):
        type(module.config)(micro_batch_tokens=-1, samples_per_prompt=g)


def test_declared_needs():
    from algorithms.a_star_po import AStarPOConfig
    from algorithms.basis import BASISConfig
    from algorithms.grpo import GRPOConfig
    from algorithms.rebel import REBELConfig

    assert algorithms.get("ppo").needs_critic and not algorithms.get("grpo").needs_critic
    assert AStarPOConfig().samples_per_prompt == 1 and BASISConfig().samples_per_prompt == 1
    assert REBELConfig().samples_per_prompt == 2 and GRPOConfig().samples_per_prompt > 1
    with pytest.raises(ValueError, match="samples_per_prompt"):
        REBELConfig(samples_per_prompt=1)
    with pytest.raises(ValueError, match="samples_per_prompt"):
        GRPOConfig(samples_per_prompt=1)
    with pytest.raises(ValueError, match="value_estimator"):
        BASISConfig(value_estimator="median")


def test_compact_micro_batches_give_the_log_probs_of_the_padded_batch(tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module("a_star_po", tiny_model_dir)
    batch, _ = module.make_batch(examples)
    mask = batch.response_mask.bool()
    lengths = batch.response_mask.sum(-1)
    assert lengths.min() < lengths.max(), "the rollout should have responses of several lengths"
    with torch.no_grad():
        padded = module.token_logp(module.policy, batch)
    module.config.micro_batch_size = 2
    micro = module.micro_batches(batch)
    # Ordered by length: the shortest pair is compacted to its own longest response.
    rows, first = micro[0]
    assert first.response_width == int(lengths[rows].max()) < batch.response_width
    assert first.input_ids.shape[1] < batch.input_ids.shape[1]
    assert sorted(torch.cat([r for r, _ in micro]).tolist()) == list(range(len(batch)))
    compact = module.no_grad_logp(module.policy, batch)
    assert torch.allclose(compact[mask], padded[mask], atol=1e-5)
    assert (compact[~mask] == 0).all()


@pytest.mark.parametrize("name", ["grpo", "rebel"])
def test_a_groups_shared_prompt_gives_the_log_probs_and_gradient_of_separate_prompts(name, tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module(name, tiny_model_dir)
    g = module.samples_per_prompt
    batch, _ = module.make_batch(examples[: 16 // g])
    results = {}
    for shared in (True, False):
        module.config.shared_prompts = shared
        assert module.shares_prompts(batch) is shared
        module.policy.zero_grad(set_to_none=True)
        logp = module.token_logp(module.policy, batch)
        (logp * batch.response_mask).sum().backward()
        grad = torch.cat([p.grad.flatten() for p in module.policy.parameters() if p.grad is not None])
        results[shared] = (logp.detach(), grad, module.computed_tokens(batch))
    mask = batch.response_mask.bool()
    assert torch.allclose(results[True][0][mask], results[False][0][mask], atol=1e-5)
    assert ((results[True][1] - results[False][1]).norm() / results[False][1].norm()) < 1e-5
    # Each prompt is counted once per group when shared.
    prompt_tokens = int(batch.attention_mask[:, : batch.prompt_width].sum())
    assert results[False][2] - results[True][2] == prompt_tokens - prompt_tokens // g
    # Rows of different prompts in one group: never shared.
    module.config.shared_prompts = True
    assert not module.shares_prompts(batch.select(torch.arange(1, len(batch) - g + 1)))


def test_gradient_checkpointing_falls_back_to_separate_prompts(tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module("grpo", tiny_model_dir, samples_per_prompt=2)
    batch, _ = module.make_batch(examples[:4])
    with torch.no_grad():
        shared = module.token_logp(module.policy, batch)
    module.policy.gradient_checkpointing_enable()
    assert module.computed_tokens(batch) == batch.num_tokens  # no cache to share: every prompt runs
    logp = module.token_logp(module.policy, batch)
    (logp * batch.response_mask).sum().backward()
    mask = batch.response_mask.bool()
    assert torch.allclose(logp.detach()[mask], shared[mask], atol=1e-5)


@pytest.mark.parametrize("name", algorithms.names())
def test_advantages_are_per_token(name, tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module(name, tiny_model_dir, **SMALL_GROUPS.get(name, {}))
    batch, _ = module.make_batch(examples[: 8 // module.samples_per_prompt])
    assert batch.advantages.shape == batch.response_mask.shape
    assert (batch.advantages[batch.response_mask == 0] == 0).all()


@pytest.mark.parametrize("overrides", [{"value_estimator": "blue", "prior_source": "offline"},
                                       {"value_estimator": "blue", "prior_source": "online"},
                                       {"value_estimator": "calibrated", "prior_source": "online"}])
def test_basis_blue_and_online_prior_train(overrides, tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module("basis", tiny_model_dir, **overrides)
    before = module.online.values([ex.id for ex in examples])
    batch, _ = module.make_batch(examples)
    assert torch.isfinite(batch.values).all() and batch.values.shape == (len(examples),)
    after = module.online.values([ex.id for ex in examples])
    if overrides.get("prior_source") == "online":
        # Each prompt's posterior moved toward its reward, and the state goes into checkpoints.
        moved = (after - before) * (batch.rewards.double() - before)
        assert (moved >= 0).all() and (after != before).any()
        state = module.training_state()
        module.online.counts = {}
        module.load_training_state(state)  # a resumed run continues the posteriors
        assert torch.equal(module.online.values([ex.id for ex in examples]), after)
    else:
        assert torch.equal(after, before)
    if overrides["value_estimator"] == "blue":
        assert 0.5 <= module.blue_beta <= 20.0
    module.accumulate_gradients(batch)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.policy.parameters())


def test_basis_rejects_settings_that_cannot_work():
    from algorithms.basis import BASISConfig

    with pytest.raises(ValueError, match="prior_source"):
        BASISConfig(value_estimator="batch_mean", prior_source="online")
    with pytest.raises(ValueError, match="blue_inactive"):
        BASISConfig(blue_inactive="drop")
    with pytest.raises(ValueError, match="blue_beta"):
        BASISConfig(blue_beta_min=0.0)
