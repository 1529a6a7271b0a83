"""Placement: every tensor the loop makes follows the module's device and dtype.

On a CPU-only machine a forgotten `device=` is invisible; two tricks make it fail here. The module
cast to float64 must take its reference and critic along (Lightning's precision casts go through the
same `Module._apply`). And the loop run with `torch.set_default_device("meta")` makes every tensor
created without a device a meta tensor, which fails as soon as it meets a real one.
"""

import pytest
import torch
from test_modules import SMALL_GROUPS, make_module

import algorithms

# A KL term, so that every algorithm holds a frozen reference.
WITH_REFERENCE = {"kl_coef": 0.01}


def floating_dtypes(module: torch.nn.Module) -> set:
    return {p.dtype for p in module.parameters()} | {b.dtype for b in module.buffers() if b.is_floating_point()}


@pytest.mark.parametrize("name", algorithms.names())
def test_a_cast_of_the_module_takes_reference_and_critic_along(name, tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module(name, tiny_model_dir, **SMALL_GROUPS.get(name, {}), **WITH_REFERENCE)
    assert module.needs_ref_logp
    module.to(torch.float64)
    assert floating_dtypes(module.reference) == {torch.float64}
    assert floating_dtypes(module) == {torch.float64}  # the policy, and PPO's critic
    # The reference is not a parameter, not trained, not in the state dict (never checkpointed twice).
    assert not any(p is q for p in module.parameters() for q in module.reference.parameters())
    assert not any(key.startswith("_reference") or key.startswith("reference") for key in module.state_dict())
    batch, _ = module.make_batch(examples[: 8 // module.samples_per_prompt])
    assert batch.ref_logp.dtype == torch.float32  # log-probs in float32, whatever the weights' dtype
    stats = module.accumulate_gradients(batch)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    grads = [p.grad for p in module.policy.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float64 for g in grads)


@pytest.mark.parametrize("name", algorithms.names())
def test_the_loop_makes_no_tensor_without_a_device(name, tiny_model_dir):
    torch.manual_seed(0)
    module, examples = make_module(name, tiny_model_dir, **SMALL_GROUPS.get(name, {}), **WITH_REFERENCE)
    module.config.micro_batch_size = 2  # several micro-batches, shuffled mini-batches
    module.config.mini_batches = 2
    chosen = examples[: 8 // module.samples_per_prompt]
    rollout = module.engine.generate(module.encode_fn(chosen), module.sampling_params())
    rewards = module.reward_fn(rollout.texts, [ex for ex in chosen for _ in range(module.samples_per_prompt)])
    module.config.max_grad_norm = 0.0  # Lightning's clipping needs a Trainer
    optimizers = module.configure_optimizers()
    optimizers = [CPUStep(o) for o in (optimizers if isinstance(optimizers, list) else [optimizers])]
    module.optimizers = lambda: optimizers if len(optimizers) > 1 else optimizers[0]
    before = [p.detach().clone() for p in module.policy.parameters()]
    with torch.device("meta"):  # a tensor made without a device is a meta tensor here
        batch = module.batch_from_rollout(rollout, rewards, chosen)
        stats = module.update(batch)  # shuffled mini-batches, micro-batches, optimizer steps
    assert batch.advantages.device.type == "cpu"
    assert stats and all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert any(not torch.equal(a, p) for a, p in zip(before, module.policy.parameters()))  # it stepped


class CPUStep:
    """An optimizer whose step runs outside the meta default device: torch's AdamW makes its step
    counter without a device (not our code)."""

    def __init__(self, optimizer):
        self.optimizer, self.param_groups = optimizer, optimizer.param_groups

    def step(self):
        with torch.device("cpu"):
            self.optimizer.step()

    def zero_grad(self, set_to_none: bool = True):
        self.optimizer.zero_grad(set_to_none=set_to_none)
