"""The value-estimation diagnostic: how far each baseline is from the current policy's true value.

On a fixed probe set, draw `group_size + mc_samples` rollouts per prompt from the current policy.
The last `mc_samples` give the Monte-Carlo value of each prompt and are held out from every
estimator, so no estimator sees the samples it is scored against. The first `group_size` feed the
estimators that use online rollouts: sample 0 alone is the one-rollout-per-prompt batch
(REINFORCE++, BASIS), all `group_size` are GRPO's group (RLOO's leave-one-out scores sample 0
against the other `group_size - 1`). The offline estimators (BASIS's prior, A*-PO's V*) use reference
samples drawn once before training (`harness.offline`); the online prior starts from them and adds
each diagnostic's sample 0, as BASIS's online prior adds each visit's reward.
Every estimator of `algorithms.estimators.ESTIMATORS` is scored; none is re-stated here.
Logged as `diag/value_mse/<estimator>` (ALGORITHMS.md); its cost is reported as `timing_s/diag`
and never charged to the training budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import lightning as L
import torch

from algorithms import estimators
from algorithms.basis import prompt_embeddings
from algorithms.batch import positions
from algorithms.rollout import SamplingParams
from harness.evaluate import sample_and_verify
from harness.engines.hf import left_pad

GROUP_ESTIMATORS = ("group_mean", "leave_one_out")  # named with their n: group_mean_8
DIAG_OFFLINE_SAMPLES = 8
"""Reference samples per probe prompt when the algorithm has no offline stage (ALGORITHMS.md's M = N = 8)."""


def value_diagnostic(engine, task, probe_examples: list, encode_fn, offline_rewards: dict[str, list[float]],
                     mc_samples: int = 16, group_size: int = 8, seed: int = 0, temperature: float = 1.0,
                     max_new_tokens: int = 40, embed_fn: Callable[[list], torch.Tensor] | None = None,
                     top_p: float = 1.0, online_prior: estimators.OnlinePrior | None = None) -> dict:
    """MSE of each estimator's baseline against the Monte-Carlo value on the probe prompts.

    Args:
        engine: rollout engine sampling from the current policy.
        task: its `reward_many` verifies the rollouts.
        probe_examples: P probe prompts (P >= 2: the calibration is cross-fitted).
        encode_fn: examples -> prompt token ids.
        offline_rewards: example id -> rewards of the M reference samples (same M for every prompt).
        mc_samples: rollouts per prompt for the Monte-Carlo value, held out from every estimator.
        group_size: GRPO's n; rollouts 0..group_size-1 of each prompt.
        seed: sampling seed; also the fold seed of the cross-fitted calibration.
        embed_fn: examples -> ``[P, H]`` prompt embeddings; adds `calibrated_kernel` when given.
        online_prior: the probe prompts' online posteriors, read, then updated with this call's
            sample 0 (default: a fresh one started from `offline_rewards`, equal to the prior).

    Returns:
        ``{"diag/value_mse/<estimator>": float, ..., "diag/mc_value_mean", "diag/mc_samples" (K),
        "diag/mc_noise" (mean m (1 - m) / (K - 1) over the probe prompts): float}`` over
        `algorithms.estimators.names()` (group ones as `<name>_<group_size>`; `calibrated_kernel`
        only with `embed_fn`, `leave_one_out` only with group_size >= 2).
    """
    if len(probe_examples) < 2 or mc_samples < 1 or group_size < 1:
        raise ValueError("the diagnostic needs >= 2 probe prompts, mc_samples >= 1 and group_size >= 1")
    missing = [ex.id for ex in probe_examples if ex.id not in offline_rewards]
    if missing:
        raise ValueError(f"no offline rewards for probe prompt(s) {missing[:5]}")
    n = group_size + mc_samples
    params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    _, verdicts = sample_and_verify(engine, task, probe_examples, encode_fn, params)
    scores = torch.tensor([v.score for v in verdicts], dtype=torch.float64).view(len(probe_examples), n)
    mc_value = scores[:, group_size:].mean(-1)  # [P]
    single = scores[:, 0]  # [P] the one-rollout-per-prompt batch

    offline = torch.tensor([offline_rewards[ex.id] for ex in probe_examples], dtype=torch.float64)  # [P, M]
    ids = [ex.id for ex in probe_examples]
    if online_prior is None:
        online_prior = estimators.OnlinePrior()
        online_prior.start({i: offline_rewards[i] for i in ids})
    inputs = estimators.EstimatorInputs(
        rewards=single, offline_rewards=offline, group_rewards=scores[:, :group_size], seed=seed,
        embeddings=None if embed_fn is None else embed_fn(probe_examples).cpu().to(torch.float64),
        online_prior=online_prior.values(ids))
    online_prior.update(ids, single)  # after reading: no estimate uses the rollout it is scored with
    values = {}
    for name, estimator in estimators.ESTIMATORS.items():
        value = estimator(inputs)
        if value is not None:
            values[f"{name}_{group_size}" if name in GROUP_ESTIMATORS else name] = value
    metrics = {f"diag/value_mse/{name}": float(((v.to(torch.float64) - mc_value) ** 2).mean())
               for name, v in values.items()}
    metrics["diag/mc_value_mean"] = float(mc_value.mean())
    # Each MSE above carries the Monte-Carlo value's own variance, mean_i p_i (1 - p_i) / K; its
    # unbiased estimate, which harness/value_table.py subtracts (nan with one MC rollout).
    metrics["diag/mc_samples"] = float(mc_samples)
    metrics["diag/mc_noise"] = (float((mc_value * (1 - mc_value)).mean()) / (mc_samples - 1)
                                if mc_samples > 1 else math.nan)
    return metrics


def policy_embed_fn(policy: torch.nn.Module, pad_id: int, encode_fn) -> Callable[[list], torch.Tensor]:
    """examples -> ``[P, H]`` prompt embeddings under the policy's current weights (BASIS's kernel)."""

    def embed(examples: list) -> torch.Tensor:
        ids, mask = left_pad(encode_fn(examples), pad_id)
        position_ids = positions(mask)
        device = next(policy.parameters()).device
        return prompt_embeddings(policy, ids.to(device), mask.to(device), position_ids.to(device))

    return embed


class ValueDiagnosticCallback(L.Callback):
    """The diagnostic at train start and every `every` RL steps; logged, never charged.

    It reads the module's engine, policy and counters (for the curve's x-axis) and writes none
    of them: `module.counters` and the budget stay what they would be without it.
    """

    def __init__(self, recorder, task, probe_examples: list, encode_fn, offline_rewards: dict, every: int,
                 **diag_kwargs):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.recorder, self.task, self.examples, self.encode_fn = recorder, task, probe_examples, encode_fn
        self.every, self.diag_kwargs = every, diag_kwargs
        # Follows the probe prompts across the diagnostic's points (restarted by a resumed run).
        self.online_prior = estimators.OnlinePrior()
        self.set_offline_rewards(offline_rewards)

    def set_offline_rewards(self, offline_rewards: dict) -> None:
        """The probe's reference samples (example id -> rewards); they may arrive once the module is
        on its device (harness.train), after the callback is built."""
        self.offline_rewards = offline_rewards
        if offline_rewards:
            self.online_prior.start({ex.id: offline_rewards[ex.id] for ex in self.examples})

    def run(self, module) -> dict:
        started = time.perf_counter()
        embed_fn = policy_embed_fn(module.policy, module.tokenizer.pad_token_id, self.encode_fn)
        metrics = value_diagnostic(module.engine, self.task, self.examples, self.encode_fn, self.offline_rewards,
                                   embed_fn=embed_fn, online_prior=self.online_prior, **self.diag_kwargs)
        metrics["timing_s/diag"] = time.perf_counter() - started
        self.recorder.diag_curve.append({"step": module.rl_step, **metrics, **self.recorder.budget(module)})
        self.recorder.log(metrics, module.rl_step)
        return metrics

    def on_train_start(self, trainer, module):
        if module.rl_step == 0 and not self.recorder.diag_curve:  # a resumed run has its schedule's points already
            self.run(module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.rl_step % self.every == 0:
            self.run(module)
