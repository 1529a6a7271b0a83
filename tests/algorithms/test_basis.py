"""Hand-computed and statistical checks of algorithms.basis (the BASIS reconstruction)."""

import math

import pytest
import torch

from algorithms import basis

F64 = torch.float64


def t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


# --- offline prior -----------------------------------------------------------------------------

def test_prior_from_counts():
    out = basis.prior_from_counts(torch.tensor([0, 3, 8]), 8)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([0.5 / 9, 3.5 / 9, 8.5 / 9]))
    out64 = basis.prior_from_counts(torch.tensor([0.0, 3.0, 8.0], dtype=F64), 8)
    assert out64.dtype == F64
    torch.testing.assert_close(out64, t([0.05555555555555555, 0.3888888888888889,
                                         0.9444444444444444]))
    per_prompt = basis.prior_from_counts(torch.tensor([1, 1]), torch.tensor([3, 8]))
    torch.testing.assert_close(per_prompt, torch.tensor([1.5 / 4, 1.5 / 9]))


def test_prior_from_counts_rejects_impossible_counts():
    with pytest.raises(ValueError):
        basis.prior_from_counts(torch.tensor([9]), 8)
    with pytest.raises(ValueError):
        basis.prior_from_counts(torch.tensor([-1]), 8)


# --- calibration -------------------------------------------------------------------------------

def test_calibrated_values():
    prior = t([0.2, 0.5, 0.8])
    torch.testing.assert_close(basis.calibrated_values(prior, 0.0, 1.0), prior)
    # sigmoid(log 3 + logit .5) = sigmoid(log 3) = 3 / 4; logit(.2) = -log 4: sigmoid(log 3 - log 4)
    out = basis.calibrated_values(prior, math.log(3.0), 1.0)
    torch.testing.assert_close(out, t([3.0 / 7.0, 0.75, 12.0 / 13.0]))


def test_fit_calibration_recovers_saturated_fit_without_ridge():
    # Priors .2 / .8 (logit = -/+ log 4) with 1 of 4 / 3 of 4 right: the maximum-likelihood fit
    # solves a - b log 4 = logit(.25) = -log 3 and a + b log 4 = log 3: a = 0, b = log 3 / log 4.
    prior = t([0.2] * 4 + [0.8] * 4)
    rewards = t([1, 0, 0, 0, 1, 1, 1, 0])
    a, b = basis.fit_calibration(prior, rewards, ridge=0.0, newton_steps=20)
    assert a.item() == pytest.approx(0.0, abs=1e-9)
    assert b.item() == pytest.approx(0.7924812503605781, abs=1e-9)


def test_fit_calibration_ridge_pulls_toward_identity():
    prior = t([0.2] * 4 + [0.8] * 4)
    rewards = t([1, 0, 0, 0, 1, 1, 1, 0])
    a, b = basis.fit_calibration(prior, rewards, ridge=1e6)
    assert abs(a.item()) < 1e-5 and abs(b.item() - 1.0) < 1e-5
    # default ridge: between the identity and the unpenalised fit
    a, b = basis.fit_calibration(prior, rewards)
    assert 0.7924812503605781 < b.item() < 1.0


def test_fit_calibration_stable_on_separable_batches():
    # Pure Newton oscillates to |a|, |b| ~ 100 on this batch; the damped steps must not.
    prior = basis.prior_from_counts(torch.tensor([3, 8, 5, 0, 3, 8, 7, 2]), 8).to(F64)
    rewards = t([0, 0, 0, 0, 1, 0, 0, 0])
    a5, b5 = basis.fit_calibration(prior, rewards, newton_steps=5)
    a50, b50 = basis.fit_calibration(prior, rewards, newton_steps=50)
    v5 = basis.calibrated_values(prior, a5, b5)
    v50 = basis.calibrated_values(prior, a50, b50)
    assert torch.isfinite(v5).all()
    assert (v5 - v50).abs().max() < 1e-2
    for all_same in (torch.zeros(8, dtype=F64), torch.ones(8, dtype=F64)):
        a, b = basis.fit_calibration(prior, all_same)
        assert math.isfinite(a.item()) and math.isfinite(b.item())


# --- cross-fitting -----------------------------------------------------------------------------

def test_fold_assignment_balanced_and_reproducible():
    folds = basis.fold_assignment(11, folds=3, seed=5)
    assert torch.equal(folds, basis.fold_assignment(11, folds=3, seed=5))
    assert sorted(torch.bincount(folds).tolist()) == [3, 4, 4]
    assert not torch.equal(basis.fold_assignment(64, 2, 0), basis.fold_assignment(64, 2, 1))


def cross_fit_batch(B=12):
    g = torch.Generator().manual_seed(4)
    prior = basis.prior_from_counts(torch.randint(0, 9, (B,), generator=g), 8).to(F64)
    rewards = torch.bernoulli(prior, generator=g)
    return prior, rewards


@pytest.mark.parametrize("folds", [2, 3])
def test_value_i_never_depends_on_reward_i(folds):
    prior, rewards = cross_fit_batch()
    values = basis.batch_values(rewards, prior, folds=folds, seed=7)
    some_other_changed = False
    for i in range(len(rewards)):
        flipped = rewards.clone()
        flipped[i] = 1.0 - flipped[i]
        new = basis.batch_values(flipped, prior, folds=folds, seed=7)
        assert new[i].item() == values[i].item(), f"V_{i} changed with r_{i}"
        some_other_changed |= bool((new - values).abs().max() > 1e-6)
    assert some_other_changed  # the rewards do inform the other folds' values


def test_kernel_smoothing_with_fold_ids_keeps_the_cross_fitting_property():
    prior, rewards = cross_fit_batch()
    embeddings = torch.randn(12, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    fold_ids = basis.fold_assignment(12, 2, seed=7)

    def smoothed(r):
        values = basis.batch_values(r, prior, folds=2, seed=7)
        return basis.kernel_smoothed_values(values, r, embeddings, fold_ids=fold_ids)

    base = smoothed(rewards)
    for i in range(12):
        flipped = rewards.clone()
        flipped[i] = 1.0 - flipped[i]
        assert smoothed(flipped)[i].item() == pytest.approx(base[i].item(), abs=1e-15)


def test_batch_values_with_state_returns_full_batch_fit():
    prior, rewards = cross_fit_batch()
    values, (a, b) = basis.batch_values_with_state(rewards, prior, seed=7, init=(0.2, 0.9))
    torch.testing.assert_close(values, basis.batch_values(rewards, prior, seed=7,
                                                          init=(0.2, 0.9)))
    a_full, b_full = basis.fit_calibration(prior, rewards, init=(0.2, 0.9))
    assert a.item() == pytest.approx(a_full.item(), abs=1e-12)
    assert b.item() == pytest.approx(b_full.item(), abs=1e-12)
    with pytest.raises(ValueError):
        basis.batch_values(rewards, prior, folds=1)


def test_calibration_beats_batch_mean_with_an_informative_prior():
    """Synthetic RL step: prompts of spread difficulty q ~ sigmoid(N(0, 1.5^2)) for pi_ref,
    prior from 8 reference samples, and a policy that has moved, p = sigmoid(a + b logit q).
    Mean squared error to the true success probability p over 100 batches of 64."""

    def value_mse(a_true, b_true, batches=100, B=64):
        g = torch.Generator().manual_seed(0)
        totals = {"batch_mean": 0.0, "prior": 0.0, "calibrated": 0.0}
        for step in range(batches):
            q = torch.sigmoid(1.5 * torch.randn(B, generator=g, dtype=F64))
            p = torch.sigmoid(a_true + b_true * torch.logit(q))
            k = torch.binomial(torch.full((B,), 8.0, dtype=F64), q, generator=g)
            prior = basis.prior_from_counts(k, 8)
            r = torch.bernoulli(p, generator=g)
            estimates = {"batch_mean": basis.batch_mean_values(r), "prior": prior,
                         "calibrated": basis.batch_values(r, prior, seed=step)}
            for name, v in estimates.items():
                totals[name] += ((v - p) ** 2).mean().item() / batches
        return totals

    mild = value_mse(0.5, 1.2)  # measured: calibrated / batch mean ~ 0.34
    assert mild["calibrated"] < 0.5 * mild["batch_mean"]
    strong = value_mse(1.5, 1.0)  # large drift: the raw prior is stale, calibration fixes it
    assert strong["calibrated"] < 0.5 * strong["batch_mean"]
    assert strong["calibrated"] < 0.5 * strong["prior"]


# --- residual smoothing, advantages, batch mean ------------------------------------------------

def test_kernel_smoothed_values_hand_example():
    # e = r - V = (.5, -.5, .5); embeddings 1 and 2 point the same way (k = 1), 3 is orthogonal
    # to both (k = exp((0 - 1) / .5) = exp(-2)); ridge c = 1; k_ii = 0.
    # V1' = .5 + (1 * -.5 + e^-2 * .5) / (1 + e^-2 + 1)
    # V2' = .5 + (1 * .5 + e^-2 * .5) / (1 + e^-2 + 1)
    # V3' = .5 + (e^-2 * .5 + e^-2 * -.5) / (e^-2 + e^-2 + 1) = .5
    values, rewards = t([0.5, 0.5, 0.5]), t([1.0, 0.0, 1.0])
    embeddings = t([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    out = basis.kernel_smoothed_values(values, rewards, embeddings, bandwidth=0.5, ridge=1.0)
    torch.testing.assert_close(out, t([0.29753420374977824, 0.7658447345832594, 0.5]),
                               atol=1e-12, rtol=0)


def test_advantages():
    out = basis.advantages(t([1.0, 0.0, 1.0, 0.0]), t([0.5, 0.5, 0.5, 0.5]), eps=0.0)
    # r - V = +-.5, unbiased std sqrt(1/3): .5 / .57735.. = .8660254..
    s = 0.8660254037844386
    torch.testing.assert_close(out, t([s, -s, s, -s]), atol=1e-12, rtol=0)
    default = basis.advantages(t([1.0, 0.0, 1.0, 0.0]), t([0.5, 0.5, 0.5, 0.5]))
    assert default[0].item() == pytest.approx(0.5 / (0.5773502691896258 + 1e-6), abs=1e-12)
    torch.testing.assert_close(basis.advantages(t([1.0]), t([0.25])), t([0.75]))


def test_batch_mean_values():
    rewards = t([1.0, 0.0, 1.0, 1.0])
    # leave-one-out: (3 - r_i) / 3
    torch.testing.assert_close(basis.batch_mean_values(rewards),
                               t([2 / 3, 1.0, 2 / 3, 2 / 3]))
    torch.testing.assert_close(basis.batch_mean_values(rewards, leave_one_out=False),
                               t([0.75, 0.75, 0.75, 0.75]))
    torch.testing.assert_close(basis.batch_mean_values(t([1.0])), t([0.0]))


def test_float32_in_float32_out():
    f32 = torch.float32
    prior = basis.prior_from_counts(torch.tensor([1, 4, 7, 2]), 8)
    rewards = torch.tensor([0.0, 1.0, 1.0, 0.0])
    values = basis.batch_values(rewards, prior)
    assert values.dtype == f32
    assert all(x.dtype == f32 for x in basis.fit_calibration(prior, rewards))
    assert basis.calibrated_values(prior, 0.1, 0.9).dtype == f32
    assert basis.kernel_smoothed_values(values, rewards, torch.randn(4, 3)).dtype == f32
    assert basis.advantages(rewards, values).dtype == f32
    assert basis.batch_mean_values(rewards).dtype == f32
