"""Hand-computed checks of algorithms.grpo.group_advantages."""

import pytest
import torch

from algorithms import grpo

F64 = torch.float64
# Three prompts, G = 4: one right of four, all right, two of four.
REWARDS = torch.tensor([1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0], dtype=F64)


def test_group_advantages_scaled_by_std():
    out = grpo.group_advantages(REWARDS, 4, eps=0.0)
    # group 0: mean .25, unbiased var (.5625 + 3 * .0625) / 3 = .25, std .5
    # group 2: mean .5, unbiased var 1 / 3, std .57735..; .5 / .57735.. = .8660254..
    s = 0.8660254037844386
    expected = torch.tensor([1.5, -0.5, -0.5, -0.5, 0, 0, 0, 0, s, s, -s, -s], dtype=F64)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_group_advantages_default_eps():
    out = grpo.group_advantages(REWARDS, 4)
    assert out[0].item() == pytest.approx(0.75 / 0.500001, abs=1e-12)
    assert out[8].item() == pytest.approx(0.5 / (0.5773502691896258 + 1e-6), abs=1e-12)


def test_group_advantages_without_std_scaling():
    out = grpo.group_advantages(REWARDS, 4, scale_by_std=False)
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0, 0.5, 0.5, -0.5, -0.5],
                            dtype=F64)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_all_equal_group_is_exactly_zero():
    # 0.1 * 8 / 8 != 0.1 in floating point; the advantage must still be exactly 0.
    out = grpo.group_advantages(torch.full((8,), 0.1, dtype=F64), 8)
    assert torch.equal(out, torch.zeros(8, dtype=F64))


def test_invalid_group_sizes():
    with pytest.raises(ValueError, match="divide"):
        grpo.group_advantages(REWARDS, 5)
    with pytest.raises(ValueError, match="at least 2"):
        grpo.group_advantages(REWARDS, 1)
    with pytest.raises(ValueError, match="1-D"):
        grpo.group_advantages(REWARDS.view(3, 4), 4)


def test_float32_in_float32_out():
    out = grpo.group_advantages(REWARDS.float(), 4)
    assert out.dtype == torch.float32
    assert out.shape == (12,)
