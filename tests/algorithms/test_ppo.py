"""Hand-computed checks of algorithms.ppo: GAE, token rewards, clipped value loss."""

import pytest
import torch

from algorithms import losses, ppo

F64 = torch.float64


def t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def test_gae_hand_worked_gamma_lambda_below_one():
    # gamma = .9, lam = .8, gamma * lam = .72.
    # Row 0, 3 valid tokens, r = (0, 0, 1), V = (.5, .6, .7):
    #   t2: delta = 1 - .7 = .3                 A2 = .3
    #   t1: delta = .9 * .7 - .6 = .03           A1 = .03 + .72 * .3 = .246
    #   t0: delta = .9 * .6 - .5 = .04           A0 = .04 + .72 * .246 = .21712
    # Row 1, right-padded (last token masked, garbage there), r = (-.1, 1), V = (.4, .5):
    #   t1: delta = 1 - .5 = .5                  A1 = .5
    #   t0: delta = -.1 + .9 * .5 - .4 = -.05    A0 = -.05 + .72 * .5 = .31
    rewards = t([[0.0, 0.0, 1.0], [-0.1, 1.0, 5.0]])
    values = t([[0.5, 0.6, 0.7], [0.4, 0.5, 9.0]])
    mask = t([[1, 1, 1], [1, 1, 0]])
    adv, ret = ppo.gae(rewards, values, mask, gamma=0.9, lam=0.8)
    torch.testing.assert_close(adv, t([[0.21712, 0.246, 0.3], [0.31, 0.5, 0.0]]),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(ret, t([[0.71712, 0.846, 1.0], [0.71, 1.0, 0.0]]),
                               atol=1e-12, rtol=0)


def test_gae_default_gamma_lambda_one_is_return_minus_value():
    adv, ret = ppo.gae(t([[0.0, 0.0, 1.0]]), t([[0.5, 0.6, 0.7]]), t([[1, 1, 1]]))
    torch.testing.assert_close(adv, t([[0.5, 0.4, 0.3]]), atol=1e-12, rtol=0)
    torch.testing.assert_close(ret, t([[1.0, 1.0, 1.0]]), atol=1e-12, rtol=0)


def test_gae_skips_masked_positions_inside_a_row():
    # Same as row 1 above with a masked hole in the middle: the hole is skipped.
    adv, ret = ppo.gae(t([[-0.1, 7.0, 1.0]]), t([[0.4, 3.0, 0.5]]), t([[1, 0, 1]]), 0.9, 0.8)
    torch.testing.assert_close(adv, t([[0.31, 0.0, 0.5]]), atol=1e-12, rtol=0)
    torch.testing.assert_close(ret, t([[0.71, 0.0, 1.0]]), atol=1e-12, rtol=0)


def test_token_rewards():
    # k1(old, ref) = old - ref; r_t = -0.1 * k1, plus the score at the last valid token.
    score = t([1.0, 0.5, 3.0])
    old = t([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0], [0.0, 0.0, 0.0]])
    ref = t([[-1.5, -2.0, -2.0], [-2.0, -1.0, -1.0], [0.0, 0.0, 0.0]])
    mask = t([[1, 1, 1], [1, 1, 0], [0, 0, 0]])  # row 2 has no token: no score anywhere
    out = ppo.token_rewards(score, old, ref, mask, beta_kl=0.1)
    expected = t([[-0.05, 0.0, 0.1 + 1.0], [-0.1, 0.5, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def value_inputs():
    # c = .5. token 0: V 1, V_old 0 -> clip .5; max((1-0)^2, (.5-0)^2) = 1 (unclipped wins)
    #         token 1: V 0, V_old 0, R 1 -> 1 (both equal)
    #         token 2: V .9, V_old 0 -> clip .5, R 1; max(.01, .25) = .25 (clipped: no grad)
    values = t([[1.0, 0.0, 0.9], [7.0, 7.0, 7.0]]).requires_grad_(True)
    old = t([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    returns = t([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    mask = t([[1, 1, 1], [0, 0, 0]])
    return values, old, returns, mask


def test_value_loss_hand_values_and_gradient():
    values, old, returns, mask = value_inputs()
    loss = ppo.value_loss(values, old, returns, mask, clip_range=0.5)
    assert loss.item() == pytest.approx(0.5 * (1.0 + 1.0 + 0.25) / 3, abs=1e-12)  # .375
    loss.backward()
    # 0.5 * 2 (V - R) / 3 on unclipped tokens, 0 on the clipped one and on padding
    torch.testing.assert_close(values.grad, t([[1 / 3, -1 / 3, 0.0], [0.0, 0.0, 0.0]]),
                               atol=1e-12, rtol=0)
    seq_sum = ppo.value_loss(values, old, returns, mask, 0.5, "seq-mean-token-sum")
    assert seq_sum.item() == pytest.approx(0.5 * 2.25 / 2, abs=1e-12)


@pytest.mark.parametrize("mode", losses.AGGREGATION_MODES)
def test_value_loss_gradient_accumulation(mode):
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([4, 1, 2, 0, 3, 4, 2, 1])
    mask = (torch.arange(4)[None, :] < lengths[:, None]).to(F64)
    v0 = torch.randn(8, 4, generator=g, dtype=F64)
    old = v0 + 0.8 * torch.randn(8, 4, generator=g, dtype=F64)  # some outside the clip range
    returns = torch.randn(8, 4, generator=g, dtype=F64)
    globals_ = dict(num_tokens=mask.sum(), num_seqs=8, max_len=4)

    full = v0.clone().requires_grad_(True)
    ppo.value_loss(full, old, returns, mask, 0.5, mode).backward()
    micro = v0.clone().requires_grad_(True)
    for s in range(0, 8, 2):
        width = max(int(lengths[s:s + 2].max()), 1)
        ppo.value_loss(micro[s:s + 2, :width], old[s:s + 2, :width],
                       returns[s:s + 2, :width], mask[s:s + 2, :width], 0.5, mode,
                       **globals_).backward()
    torch.testing.assert_close(micro.grad, full.grad, atol=1e-10, rtol=0)
    assert full.grad.abs().sum() > 0


def test_float32_in_float32_out():
    f32 = torch.float32
    r, v, m = t([[0.0, 1.0]], f32), t([[0.5, 0.5]], f32), t([[1, 1]], f32)
    adv, ret = ppo.gae(r, v, m, 0.9, 0.8)
    assert adv.dtype == f32 and ret.dtype == f32
    assert ppo.token_rewards(t([1.0], f32), v, v, m, 0.1).dtype == f32
    assert ppo.value_loss(v, v, ret, m).dtype == f32
