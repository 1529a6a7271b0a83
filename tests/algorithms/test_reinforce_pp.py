"""REINFORCE++: returns-to-go of KL-shaped token rewards around the batch mean, hand-computed."""

import pytest
import torch

import algorithms
from algorithms.reinforce_pp import ReinforcePPConfig, reinforce_pp_advantages, returns_to_go


def test_returns_to_go_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert returns_to_go(rewards, mask).tolist() == [[6.0, 5.0, 3.0], [9.0, 5.0, 0.0]]


def test_advantages_by_hand():
    # Scores 1 and 0, batch mean 0.5; d = old - ref per token; kl_coef 0.5.
    scores = torch.tensor([1.0, 0.0], dtype=torch.float64)
    ref = torch.zeros(2, 3, dtype=torch.float64)
    old = torch.tensor([[0.1, 0.2, 7.0], [0.3, 5.0, 5.0]], dtype=torch.float64)  # padding values ignored
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    baseline = torch.tensor([0.5, 0.5], dtype=torch.float64)
    got = reinforce_pp_advantages(scores, old, ref, mask, 0.5, baseline)
    # Row 0: token rewards [-0.05, -0.1 + 0.5]; returns [0.35, 0.4]. Row 1: [-0.15 - 0.5].
    expected = torch.tensor([[0.35, 0.4, 0.0], [-0.65, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(got, expected)
    assert got.dtype == torch.float64


def test_without_kl_every_token_carries_score_minus_baseline():
    scores = torch.tensor([1.0, 0.0, 0.0, 0.0])
    logp = torch.randn(4, 5)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]])
    got = reinforce_pp_advantages(scores, logp, logp, mask, 0.0, torch.full((4,), 0.25))
    expected = (torch.tensor([0.75, -0.25, -0.25, -0.25])[:, None] * mask)
    assert torch.allclose(got, expected)


def test_one_rollout_per_prompt_and_registered():
    assert "reinforce_pp" in algorithms.names()
    assert algorithms.get("reinforce_pp").name == "reinforce_pp"
    with pytest.raises(ValueError, match="samples_per_prompt"):
        ReinforcePPConfig(samples_per_prompt=2)
