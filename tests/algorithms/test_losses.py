"""Hand-computed checks of algorithms.losses (float64 unless a test is about dtype)."""

import math

import pytest
import torch

from algorithms import losses

F64 = torch.float64


def t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


# --- KL estimators -----------------------------------------------------------------------------

def test_kl_kinds_hand_values():
    logp, ref = t([[-1.0, -2.0]]), t([[-1.5, -1.0]])  # d = [0.5, -1.0]
    torch.testing.assert_close(losses.kl_penalty(logp, ref, "k1"), t([[0.5, -1.0]]))
    torch.testing.assert_close(losses.kl_penalty(logp, ref, "k2"), t([[0.125, 0.5]]))
    # exp(-0.5) + 0.5 - 1 and exp(1) - 1 - 1
    torch.testing.assert_close(losses.kl_penalty(logp, ref, "k3"),
                               t([[0.10653065971263342, 0.7182818284590451]]))


def test_kl_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match="k1, k2, k3"):
        losses.kl_penalty(t([[0.0]]), t([[0.0]]), "k4")


# --- aggregation -------------------------------------------------------------------------------

# Row 0 fully valid, row 1 has two masked tokens (holding NaN/inf, which must not leak),
# row 2 is all masked.
VALUES = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, float("nan"), float("inf")], [9.0, 9.0, 9.0, 9.0]]
MASK = [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("mode, expected", [
    ("token-mean", 21.0 / 6.0),                      # 21 over 6 valid tokens
    ("seq-mean-token-mean", (2.5 + 5.5 + 0.0) / 3),  # empty row counts with mean 0
    ("seq-mean-token-sum", (10.0 + 11.0 + 0.0) / 3),
    ("seq-mean-token-sum-norm", (10.0 / 4 + 11.0 / 4 + 0.0) / 3),  # T_max = 4
])
def test_aggregate_modes(mode, expected):
    out = losses.aggregate(t(VALUES), t(MASK), mode)
    assert out.dim() == 0
    assert out.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("mode, expected", [
    ("token-mean", 21.0 / 12.0),
    ("seq-mean-token-mean", 8.0 / 6.0),
    ("seq-mean-token-sum", 21.0 / 6.0),
    ("seq-mean-token-sum-norm", 21.0 / 7.0 / 6.0),
])
def test_aggregate_global_denominators(mode, expected):
    out = losses.aggregate(t(VALUES), t(MASK), mode, num_tokens=12, num_seqs=6, max_len=7)
    assert out.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("mode", losses.AGGREGATION_MODES)
def test_aggregate_all_masked_is_zero_not_nan(mode):
    out = losses.aggregate(t([[1.0, float("nan")]]), t([[0, 0]]), mode)
    assert out.item() == 0.0


def test_aggregate_accepts_bool_mask_and_rejects_unknown_mode():
    out = losses.aggregate(t(VALUES), t(MASK).bool(), "token-mean")
    assert out.item() == pytest.approx(3.5)
    with pytest.raises(ValueError, match="token-mean"):
        losses.aggregate(t(VALUES), t(MASK), "mean")


# --- clipped surrogate -------------------------------------------------------------------------

# ratios and advantages, eps = 0.2; per-token max(-A*rho, -A*clip(rho)):
#   rho 1.5, A +1 -> max(-1.5, -1.2) = -1.2 (clipped)     rho 0.5, A +1 -> max(-0.5, -0.8) = -0.5
#   rho 1.5, A -2 -> max( 3.0,  2.4) =  3.0               rho 0.5, A -2 -> max( 1.0,  1.6) =  1.6 (clipped)
#   rho 1.1, A +1 -> -1.1 (inside the range)             last token masked, log-ratio 1000
RATIOS = [[1.5, 0.5, 1.5], [0.5, 1.1, 1.0]]
ADVANTAGES = [[1.0, 1.0, -2.0], [-2.0, 1.0, 5.0]]
SURR_MASK = [[1, 1, 1], [1, 1, 0]]


def surrogate_inputs():
    old = t([[-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0]])
    logp = old + torch.log(t(RATIOS))
    logp[1, 2] = old[1, 2] + 1000.0  # exp overflows to inf: must not leak into loss or grad
    return logp.requires_grad_(True), old


@pytest.mark.parametrize("mode, expected", [
    ("token-mean", (-1.2 - 0.5 + 3.0 + 1.6 - 1.1) / 5),             # 0.36
    ("seq-mean-token-mean", (1.3 / 3 + 0.5 / 2) / 2),
    ("seq-mean-token-sum", (1.3 + 0.5) / 2),
    ("seq-mean-token-sum-norm", (1.3 / 3 + 0.5 / 3) / 2),
])
def test_clipped_surrogate_values(mode, expected):
    logp, old = surrogate_inputs()
    out = losses.clipped_surrogate(logp, old, t(ADVANTAGES), t(SURR_MASK), 0.2, mode)
    assert out.item() == pytest.approx(expected, abs=1e-12)


def test_clipped_surrogate_gradient_zero_where_clipped():
    logp, old = surrogate_inputs()
    losses.clipped_surrogate(logp, old, t(ADVANTAGES), t(SURR_MASK)).backward()
    # d/dlogp of -A*rho is -A*rho, over 5 tokens; clipped tokens and padding get 0.
    expected = t([[0.0, -0.5 / 5, 3.0 / 5], [0.0, -1.1 / 5, 0.0]])
    torch.testing.assert_close(logp.grad, expected, atol=1e-12, rtol=0)


def test_clip_fraction():
    logp, old = surrogate_inputs()
    frac = losses.clip_fraction(logp, old, t(ADVANTAGES), t(SURR_MASK))
    assert frac.item() == pytest.approx(2 / 5)


# --- gradient accumulation ---------------------------------------------------------------------

def batch_of_eight(seed=0, T=6):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([6, 1, 3, 0, 5, 2, 4, 6])  # one empty row
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(F64)
    old = -torch.rand(8, T, generator=g, dtype=F64) * 3
    logp = old + 0.4 * torch.randn(8, T, generator=g, dtype=F64)  # some ratios outside clip
    adv = torch.randn(8, 1, generator=g, dtype=F64).expand(8, T).clone()
    return logp, old, adv, mask, lengths


@pytest.mark.parametrize("mode", losses.AGGREGATION_MODES)
def test_clipped_surrogate_gradient_accumulation(mode):
    logp0, old, adv, mask, lengths = batch_of_eight()
    globals_ = dict(num_tokens=mask.sum(), num_seqs=8, max_len=mask.shape[1])

    full = logp0.clone().requires_grad_(True)
    full_loss = losses.clipped_surrogate(full, old, adv, mask, 0.2, mode)
    full_loss.backward()

    micro = logp0.clone().requires_grad_(True)
    total = 0.0
    for start in range(0, 8, 2):
        rows = slice(start, start + 2)
        width = max(int(lengths[rows].max()), 1)  # micro-batches are padded to their own width
        loss = losses.clipped_surrogate(micro[rows, :width], old[rows, :width],
                                        adv[rows, :width], mask[rows, :width], 0.2, mode,
                                        **globals_)
        loss.backward()
        total += loss.item()
    assert total == pytest.approx(full_loss.item(), abs=1e-12)
    torch.testing.assert_close(micro.grad, full.grad, atol=1e-10, rtol=0)
    assert full.grad.abs().sum() > 0


def test_token_mean_micro_batches_differ_without_global_denominator():
    # Guard against a vacuous accumulation test: local denominators give a different loss.
    logp, old, adv, mask, _ = batch_of_eight()
    full = losses.clipped_surrogate(logp, old, adv, mask).item()
    local = sum(losses.clipped_surrogate(logp[i:i + 2], old[i:i + 2], adv[i:i + 2],
                                         mask[i:i + 2]).item() / 4 for i in range(0, 8, 2))
    assert abs(local - full) > 1e-3


# --- log-probs, entropy, whitening -------------------------------------------------------------

def test_sequence_logp_masked_sum():
    out = losses.sequence_logp(t([[-1.0, -2.0, float("nan")], [-0.5, -0.5, -0.5]]),
                               t([[1, 1, 0], [1, 1, 1]]))
    torch.testing.assert_close(out, t([-3.0, -1.5]))


def test_token_logp_and_temperature():
    logits = torch.log(t([[[1.0, 2.0, 1.0], [1.0, 2.0, 1.0]]]))  # probs .25 .5 .25
    tokens = torch.tensor([[1, 0]])
    torch.testing.assert_close(losses.token_logp(logits, tokens),
                               t([[math.log(0.5), math.log(0.25)]]))
    # T = 2: probs proportional to (1, sqrt 2, 1); p(1) = sqrt(2) / (2 + sqrt(2)) = sqrt(2) - 1
    out = losses.token_logp(logits, tokens, temperature=2.0)
    assert out[0, 0].item() == pytest.approx(-0.8813735870195429, abs=1e-12)  # log(sqrt2 - 1)
    assert out[0, 1].item() == pytest.approx(math.log(1 / (2 + math.sqrt(2))), abs=1e-12)


def test_token_logp_half_precision_rows_match_float():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 11, generator=g)
    tokens = torch.randint(0, 11, (2, 3), generator=g)
    out = losses.token_logp(logits.bfloat16(), tokens)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, losses.token_logp(logits.bfloat16().float(), tokens))


def test_entropy_from_logits():
    logits = torch.log(t([[[1.0, 2.0, 1.0]]]))  # probs .25 .5 .25 -> 1.5 log 2
    assert losses.entropy_from_logits(logits).item() == pytest.approx(1.0397207708399179)


def test_masked_mean_and_whiten():
    values, mask = t([[2.0, 4.0], [6.0, 100.0]]), t([[1, 1], [1, 0]])
    assert losses.masked_mean(values, mask).item() == pytest.approx(4.0)
    torch.testing.assert_close(losses.masked_mean(values, mask, dim=-1), t([3.0, 6.0]))
    # mean 4, unbiased variance (4 + 0 + 4) / 2 = 4, std 2
    torch.testing.assert_close(losses.masked_whiten(values, mask), t([[-1.0, 0.0], [1.0, 0.0]]))
    torch.testing.assert_close(losses.masked_whiten(values, mask, shift_mean=False),
                               t([[3.0, 4.0], [5.0, 0.0]]))


# --- dtype preservation ------------------------------------------------------------------------

def test_float32_in_float32_out():
    f32 = torch.float32
    logp, old = (x.detach().to(f32) for x in surrogate_inputs())
    adv, mask = t(ADVANTAGES, f32), t(SURR_MASK, f32)
    assert losses.kl_penalty(logp, old, "k3").dtype == f32
    for mode in losses.AGGREGATION_MODES:
        assert losses.aggregate(logp, mask, mode, num_tokens=7, num_seqs=3).dtype == f32
        assert losses.clipped_surrogate(logp, old, adv, mask, mode=mode).dtype == f32
    assert losses.sequence_logp(logp, mask).dtype == f32
    logits = torch.randn(2, 3, 5)
    assert losses.token_logp(logits, torch.zeros(2, 3, dtype=torch.long)).dtype == f32
    assert losses.entropy_from_logits(logits).dtype == f32
    assert losses.masked_whiten(logp, mask).dtype == f32
    assert losses.masked_mean(logp, mask).dtype == f32


def test_policy_loss_is_the_clipped_surrogate_plus_the_weighted_kl():
    torch.manual_seed(0)
    logp, old, ref = (torch.randn(3, 4, dtype=torch.float64) * 0.1 for _ in range(3))
    adv = torch.randn(3, 4, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    surrogate = losses.clipped_surrogate(logp, old, adv, mask, 0.2, "seq-mean-token-mean", num_seqs=6)
    kl = losses.aggregate(losses.kl_penalty(logp, ref, "k2"), mask, "seq-mean-token-mean", num_seqs=6)
    loss, stats = losses.policy_loss(logp, old, adv, mask, 0.2, "seq-mean-token-mean", 0.1, ref, "k2", num_seqs=6)
    assert torch.equal(loss, surrogate + 0.1 * kl)
    assert stats == {"policy_loss": float(surrogate), "kl_ref": float(kl)}
    plain, stats = losses.policy_loss(logp, old, adv, mask)
    assert torch.equal(plain, losses.clipped_surrogate(logp, old, adv, mask)) and set(stats) == {"policy_loss"}
    with pytest.raises(ValueError, match="ref_logp"):
        losses.policy_loss(logp, old, adv, mask, kl_coef=0.1)
