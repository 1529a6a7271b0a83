"""Hand-computed checks of algorithms.rebel."""

import pytest
import torch

from algorithms import rebel

F64 = torch.float64


def t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def test_regression_loss_two_prompts():
    logp = t([[-1.0, -2.0], [-3.0, -1.0]]).requires_grad_(True)
    old = t([[-1.5, -1.5], [-3.0, -2.0]])
    rewards = t([[1.0, 0.0], [0.0, 1.0]])
    # prompt 0: (0.5) - (-0.5) - 0.5 * (1 - 0) = 0.5    -> 0.25
    # prompt 1: (0.0) - ( 1.0) - 0.5 * (0 - 1) = -0.5   -> 0.25
    loss = rebel.regression_loss(logp, old, rewards, eta=0.5)
    assert loss.item() == pytest.approx(0.25, abs=1e-12)
    loss.backward()
    # d/dlogp[p, 0] = 2 * residual_p / P, d/dlogp[p, 1] = -2 * residual_p / P
    torch.testing.assert_close(logp.grad, t([[0.5, -0.5], [-0.5, 0.5]]), atol=1e-12, rtol=0)


def test_regression_loss_default_eta():
    loss = rebel.regression_loss(t([[-1.0, -2.0]]), t([[-1.5, -1.5]]), t([[0.0, 1.0]]))
    assert loss.item() == pytest.approx((1.0 + 1.0) ** 2, abs=1e-12)  # 1 - (-1) = 2 -> 4


def test_kl_shaped_rewards():
    out = rebel.kl_shaped_rewards(t([[1.0, 0.0]]), t([[-10.0, -5.0]]), t([[-12.0, -4.0]]), 0.05)
    torch.testing.assert_close(out, t([[1.0 - 0.05 * 2.0, 0.0 + 0.05 * 1.0]]))  # 0.9, 0.05


def test_regression_loss_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\[P, 2\]"):
        rebel.regression_loss(t([-1.0, -2.0]), t([-1.0, -2.0]), t([0.0, 1.0]))


def test_gradient_accumulation():
    g = torch.Generator().manual_seed(2)
    logp0 = -torch.rand(8, 2, generator=g, dtype=F64) * 20
    old = logp0 + 0.1 * torch.randn(8, 2, generator=g, dtype=F64)
    rewards = torch.randint(0, 2, (8, 2), generator=g).to(F64)
    full = logp0.clone().requires_grad_(True)
    rebel.regression_loss(full, old, rewards).backward()
    micro = logp0.clone().requires_grad_(True)
    for s in range(0, 8, 2):
        rebel.regression_loss(micro[s:s + 2], old[s:s + 2], rewards[s:s + 2],
                              num_prompts=8).backward()
    torch.testing.assert_close(micro.grad, full.grad, atol=1e-10, rtol=0)


def test_float32_in_float32_out():
    x = t([[-1.0, -2.0]], torch.float32)
    assert rebel.regression_loss(x, x, x).dtype == torch.float32
    assert rebel.kl_shaped_rewards(x, x, x, 0.05).dtype == torch.float32
