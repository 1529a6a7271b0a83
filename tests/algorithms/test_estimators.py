"""The value estimators of algorithms.estimators on hand-computed numbers, and their registry."""

import math

import pytest
import torch

from algorithms import basis, estimators
from algorithms.estimators import (
    EstimatorInputs,
    OnlinePrior,
    blue_shift,
    blue_values,
    blue_values_with_beta,
    group_mean_values,
    leave_one_out_values,
    log_grid,
    tilted_values,
)


def test_group_and_leave_one_out_means_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    assert group_mean_values(rewards, 3).tolist() == pytest.approx([1 / 3] * 3 + [1.0] * 3)
    assert leave_one_out_values(rewards, 3).tolist() == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0, 1.0])


def test_tilted_values_by_hand():
    p0 = torch.tensor([0.5], dtype=torch.float64)
    assert tilted_values(p0, 1.0, "tilt").item() == pytest.approx(1 / (1 + math.exp(-1)))  # sigmoid(0 + 1)
    assert tilted_values(p0, 1.0, "soft").item() == pytest.approx(math.log(0.5 + 0.5 * math.e))
    # A large temperature leaves the reference's rate; both kinds agree there.
    for kind in ("tilt", "soft"):
        assert tilted_values(p0, 1e6, kind).item() == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ValueError, match="offline value"):
        tilted_values(p0, 1.0, "cubic")


def test_blue_shift_by_hand():
    values = torch.tensor([0.5, 0.5, 0.2], dtype=torch.float64)
    rewards = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    # w = 1 / (V (1 - V)) = [4, 4, 6.25]; w e = [2, -2, 5]; totals W = 14.25, S = 5.
    expected = [0.5 + 3 / 10.25, 0.5 + 7 / 10.25, 0.2 + 0 / 8]
    assert blue_shift(values, rewards).tolist() == pytest.approx(expected)


def test_inactive_prompts_get_zero_or_their_own_value_and_are_left_out_of_the_shift():
    values = torch.tensor([0.5, 0.0005, 0.5], dtype=torch.float64)
    rewards = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    # Prompt 1 is inactive (V < eps): only prompts 0 and 2 share, each with the other's residual.
    zero = blue_shift(values, rewards, eps=1e-3, inactive="zero")
    own = blue_shift(values, rewards, eps=1e-3, inactive="own")
    assert zero.tolist() == pytest.approx([0.5 - 0.5, 0.0, 0.5 + 0.5])
    assert own.tolist() == pytest.approx([0.0, 0.0005, 1.0])
    with pytest.raises(ValueError, match="inactive"):
        blue_shift(values, rewards, inactive="drop")


def test_with_one_beta_a_baseline_never_uses_its_own_reward():
    torch.manual_seed(0)
    prior = torch.rand(16, dtype=torch.float64) * 0.9 + 0.05
    rewards = (torch.rand(16) < 0.5).double()
    base = blue_values(rewards, prior, [2.0])
    for i in range(16):
        flipped = rewards.clone()
        flipped[i] = 1.0 - flipped[i]
        assert blue_values(flipped, prior, [2.0])[i] == base[i]


def test_the_grid_picks_the_temperature_of_least_squared_error():
    torch.manual_seed(1)
    prior = torch.rand(32, dtype=torch.float64) * 0.5 + 0.05
    rewards = (torch.rand(32, dtype=torch.float64) < prior + 0.3).double()  # the policy improved
    grid = log_grid(0.5, 20.0, 7)
    baselines, beta = blue_values_with_beta(rewards, prior, grid)
    errors = [((rewards - blue_values(rewards, prior, [b])) ** 2).sum().item() for b in grid.tolist()]
    assert beta.item() == pytest.approx(grid[errors.index(min(errors))].item())
    assert torch.equal(baselines, blue_values(rewards, prior, [beta.item()]))
    assert basis.blue_values is blue_values  # the CONTRACT.md name
    with pytest.raises(ValueError, match="betas"):
        blue_values(rewards, prior, [])


def test_log_grid():
    assert log_grid(0.1, 10.0, 3).tolist() == pytest.approx([0.1, 1.0, 10.0])
    assert log_grid(2.0, 5.0, 1).tolist() == [2.0]
    with pytest.raises(ValueError):
        log_grid(0.0, 1.0, 3)


def test_online_prior_starts_at_the_offline_prior_and_follows_rewards():
    online = OnlinePrior(discount=0.5)
    online.start({"a": [1, 1, 0, 0, 0, 0, 0, 0], "b": [0] * 8})
    # k = 2 of M = 8: Beta(2.5, 6.5), mean 2.5 / 9 = p0 = (k + 0.5) / (M + 1).
    assert online.values(["a", "b"]).tolist() == pytest.approx([2.5 / 9, 0.5 / 9])
    online.update(["a"], torch.tensor([1.0]))
    # alpha = 0.5 * 2.5 + 1 = 2.25, beta = 0.5 * 6.5 = 3.25.
    assert online.values(["a"]).item() == pytest.approx(2.25 / 5.5)
    again = OnlinePrior()
    again.load_state_dict(online.state_dict())
    assert again.values(["a", "b"]).tolist() == online.values(["a", "b"]).tolist()
    with pytest.raises(ValueError, match="discount"):
        OnlinePrior(discount=0.0)


def test_online_prior_update_of_a_batch_equals_one_prompt_at_a_time_repeats_in_order():
    from algorithms.online_prior import beta_posterior_update

    offline = {k: [1, 0, 0, 1] for k in "abcd"}
    ids, rewards = ["a", "b", "a", "c", "a", "b"], torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    batched = OnlinePrior(discount=0.7)
    batched.start(offline)
    batched.update(ids, rewards)
    expected = OnlinePrior(discount=0.7)
    expected.start(offline)
    for key, reward in zip(ids, rewards.tolist()):  # the definition: in order, one reward at a time
        alpha, beta = beta_posterior_update(torch.tensor([expected.counts[key][0]], dtype=torch.float64),
                                            torch.tensor([expected.counts[key][1]], dtype=torch.float64),
                                            torch.tensor([reward]), 0.7)
        expected.counts[key] = (float(alpha), float(beta))
    assert batched.counts == expected.counts  # bitwise: the same float64 operations
    assert batched.counts["d"] == (2.5, 2.5)  # not in the batch: unchanged


def test_every_registered_estimator_gives_one_value_per_prompt():
    torch.manual_seed(2)
    p = 12
    group = (torch.rand(p, 8, dtype=torch.float64) < 0.4).double()
    offline = (torch.rand(p, 8, dtype=torch.float64) < 0.3).double()
    online = OnlinePrior()
    online.start({str(i): offline[i].tolist() for i in range(p)})
    inputs = EstimatorInputs(rewards=group[:, 0], offline_rewards=offline, group_rewards=group,
                             embeddings=torch.randn(p, 5, dtype=torch.float64),
                             online_prior=online.values([str(i) for i in range(p)]))
    assert {"batch_mean", "group_mean", "leave_one_out", "prior", "calibrated", "calibrated_kernel", "blue",
            "online", "online_blue", "a_star_po_v_star"} <= set(estimators.names())
    for name, estimator in estimators.ESTIMATORS.items():
        value = estimator(inputs)
        assert value.shape == (p,) and value.dtype == torch.float64 and torch.isfinite(value).all(), name
    assert torch.equal(estimators.ESTIMATORS["leave_one_out"](inputs), group[:, 1:].mean(-1))
    missing = EstimatorInputs(rewards=group[:, 0], offline_rewards=offline)
    assert estimators.ESTIMATORS["calibrated_kernel"](missing) is None
    assert estimators.ESTIMATORS["online"](missing) is None
    with pytest.raises(ValueError, match="twice"):
        estimators.register("blue")(lambda x: x.rewards)
