"""Hand-computed checks of algorithms.a_star_po."""

import pytest
import torch

from algorithms import a_star_po

F64 = torch.float64


def t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def test_optimal_values_table_k_of_8():
    rewards = torch.stack([torch.cat([torch.ones(k), torch.zeros(8 - k)]) for k in range(9)])
    out = a_star_po.optimal_values(rewards.to(F64), beta1=0.5)
    table = [0.0, 0.294, 0.477, 0.611, 0.717, 0.804, 0.878, 0.943, 1.0]
    assert out.shape == (9,)
    for value, expected in zip(out.tolist(), table):
        assert value == pytest.approx(expected, abs=5e-4)
    assert out[0].item() == pytest.approx(0.0, abs=1e-12)
    assert out[8].item() == pytest.approx(1.0, abs=1e-12)


def test_optimal_values_rejects_bad_input():
    with pytest.raises(ValueError):
        a_star_po.optimal_values(t([[1.0, 0.0]]), beta1=0.0)
    with pytest.raises(ValueError):
        a_star_po.optimal_values(t([1.0, 0.0]))


def test_regression_loss_small_example():
    logp = t([-10.0, -20.0]).requires_grad_(True)
    ref, rewards, values = t([-12.0, -20.0]), t([1.0, 0.0]), t([0.25, 0.5])
    # beta2 = .1: prompt 0: .1 * 2 - (1 - .25) = -.55 -> .3025; prompt 1: 0 - (0 - .5) = .5 -> .25
    loss = a_star_po.regression_loss(logp, ref, rewards, values, beta2=0.1)
    assert loss.item() == pytest.approx((0.3025 + 0.25) / 2, abs=1e-12)  # .27625
    loss.backward()
    # 2 * beta2 * residual / P
    torch.testing.assert_close(logp.grad, t([2 * 0.1 * -0.55 / 2, 2 * 0.1 * 0.5 / 2]),
                               atol=1e-12, rtol=0)


def test_regression_loss_default_beta2():
    loss = a_star_po.regression_loss(t([-10.0]), t([-12.0]), t([1.0]), t([0.5]))
    assert loss.item() == pytest.approx((0.002 - 0.5) ** 2, abs=1e-12)  # .248004


def test_gradient_accumulation():
    g = torch.Generator().manual_seed(3)
    logp0 = -torch.rand(8, generator=g, dtype=F64) * 50
    ref = logp0 + torch.randn(8, generator=g, dtype=F64)
    rewards = torch.randint(0, 2, (8,), generator=g).to(F64)
    values = torch.rand(8, generator=g, dtype=F64)
    full = logp0.clone().requires_grad_(True)
    a_star_po.regression_loss(full, ref, rewards, values).backward()
    micro = logp0.clone().requires_grad_(True)
    for s in range(0, 8, 2):
        a_star_po.regression_loss(micro[s:s + 2], ref[s:s + 2], rewards[s:s + 2],
                                  values[s:s + 2], num_prompts=8).backward()
    torch.testing.assert_close(micro.grad, full.grad, atol=1e-10, rtol=0)


def test_float32_in_float32_out():
    x = t([-1.0, -2.0], torch.float32)
    assert a_star_po.optimal_values(x.view(1, 2)).dtype == torch.float32
    assert a_star_po.regression_loss(x, x, x, x).dtype == torch.float32
