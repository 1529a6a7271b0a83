"""RLOO's leave-one-out advantages on hand-computed numbers."""

import pytest
import torch

import algorithms
from algorithms.rloo import RLOOConfig, leave_one_out_advantages


def test_leave_one_out_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    # Group 1, sum 2: r=1 -> 1 - 1/3, r=0 -> 0 - 2/3. Group 2, sum 3: r=1 -> 1 - 2/3, r=0 -> 0 - 1.
    expected = torch.tensor([2 / 3, -2 / 3, -2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3, -1.0])
    got = leave_one_out_advantages(rewards, 4)
    assert torch.allclose(got, expected)
    assert torch.allclose(got.view(2, 4).sum(-1), torch.zeros(2), atol=1e-6)  # zero-sum per group
    assert leave_one_out_advantages(torch.tensor([1.0, 0.0]), 2).tolist() == [1.0, -1.0]


def test_equal_groups_give_zero_and_float64_stays_float64():
    rewards = torch.tensor([1, 1, 0, 0], dtype=torch.float64)
    got = leave_one_out_advantages(rewards, 2)
    assert got.dtype == torch.float64 and got.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_bad_groups_fail_naming_the_problem():
    with pytest.raises(ValueError, match="group_size"):
        leave_one_out_advantages(torch.ones(6), 4)
    with pytest.raises(ValueError, match="at least 2"):
        leave_one_out_advantages(torch.ones(4), 1)
    with pytest.raises(ValueError, match="samples_per_prompt"):
        RLOOConfig(samples_per_prompt=1)


def test_registered_with_its_contract_function():
    assert "rloo" in algorithms.names()
    assert algorithms.rloo.leave_one_out_advantages is leave_one_out_advantages
    assert algorithms.get("rloo").name == "rloo"
