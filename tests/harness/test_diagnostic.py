"""The value-estimation diagnostic: estimator MSEs, embeddings shared with BASIS, the training callback."""

import math
from types import SimpleNamespace

import mlflow
import pytest
import torch

import tasks
from algorithms.rollout import Rollout, SamplingParams
from harness.diagnostic import policy_embed_fn, value_diagnostic
from harness.engines.hf import HFEngine
from harness.models import load_policy
from harness.prompts import encode_prompts
from harness.train import run_training

ESTIMATORS = ("batch_mean", "group_mean_8", "leave_one_out_8", "prior", "calibrated", "calibrated_kernel", "blue",
              "online", "online_blue", "a_star_po_v_star")


class BernoulliEngine:
    """Prompt `[i]` is answered right with probability p[i]: a policy whose values we know."""

    def __init__(self, p):
        self.p = torch.tensor(p, dtype=torch.float64)

    def generate(self, prompt_ids, params: SamplingParams) -> Rollout:
        g = torch.Generator().manual_seed(params.seed)
        rows = [ids[0] for ids in prompt_ids for _ in range(params.n)]
        right = torch.rand(len(rows), generator=g, dtype=torch.float64) < self.p[rows]
        texts = ["right" if r else "wrong" for r in right.tolist()]
        return Rollout([[i] for i in rows], [[0]] * len(rows), [[0.0]] * len(rows), texts)


class MatchTask:
    def reward_many(self, texts, examples):
        return [SimpleNamespace(score=float(t == "right")) for t in texts]


def test_on_heterogeneous_prompts_the_group_and_batch_shared_estimators_beat_the_batch_mean():
    # Half the prompts easy (p = .9), half hard (p = .1): the batch mean, which ignores the
    # prompt, is off by about .4 everywhere; a group of 8 or an offline prior is not.
    p = [0.9, 0.1] * 24
    engine = BernoulliEngine(p)
    examples = [SimpleNamespace(id=f"q{i}") for i in range(len(p))]
    offline = engine.generate([[i] for i in range(len(p))], SamplingParams(n=8, seed=99))
    scores = [float(t == "right") for t in offline.texts]
    offline_rewards = {ex.id: scores[8 * i: 8 * i + 8] for i, ex in enumerate(examples)}
    m = value_diagnostic(engine, MatchTask(), examples, lambda exs: [[int(ex.id[1:])] for ex in exs],
                         offline_rewards, mc_samples=64, seed=1)
    mse = {k.removeprefix("diag/value_mse/"): v for k, v in m.items() if k.startswith("diag/value_mse/")}
    assert set(mse) == set(ESTIMATORS) - {"calibrated_kernel"}
    assert mse["batch_mean"] > 0.12  # about .16 + MC noise
    assert mse["group_mean_8"] < mse["batch_mean"] / 4
    assert mse["prior"] < mse["batch_mean"] / 4
    assert mse["calibrated"] < mse["batch_mean"] / 4
    assert mse["leave_one_out_8"] < mse["batch_mean"] / 4
    assert mse["blue"] < mse["batch_mean"] / 4
    assert mse["online"] == pytest.approx(mse["prior"], rel=1e-6)  # a fresh online prior is the offline one (float64)
    assert abs(m["diag/mc_value_mean"] - 0.5) < 0.05


def test_the_monte_carlo_noise_it_logs_is_what_each_mse_carries_beyond_the_true_error():
    # A group mean of n = 8 has true MSE p (1 - p) / 8 = .01125 at p = .9 or .1; against an MC value
    # of K = 8 rollouts it reads about twice that, and the logged noise (.09 / 8) is the excess.
    p = [0.9, 0.1] * 400
    engine = BernoulliEngine(p)
    examples = [SimpleNamespace(id=f"q{i}") for i in range(len(p))]
    offline_rewards = {ex.id: [1.0, 0.0] for ex in examples}
    encode = lambda exs: [[int(ex.id[1:])] for ex in exs]  # noqa: E731
    m = value_diagnostic(engine, MatchTask(), examples, encode, offline_rewards, mc_samples=8, seed=3)
    assert m["diag/mc_samples"] == 8
    assert m["diag/mc_noise"] == pytest.approx(0.09 / 8, rel=0.1)
    assert m["diag/value_mse/group_mean_8"] == pytest.approx(2 * 0.09 / 8, rel=0.15)
    assert m["diag/value_mse/group_mean_8"] - m["diag/mc_noise"] == pytest.approx(0.09 / 8, rel=0.15)
    one = value_diagnostic(engine, MatchTask(), examples[:4], encode, offline_rewards, mc_samples=1, seed=3)
    assert math.isnan(one["diag/mc_noise"])  # one rollout cannot estimate its own variance


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    tokenizer, policy = load_policy(str(tiny_model_dir))
    return tokenizer, policy, lambda exs: encode_prompts(tokenizer, [ex.prompt for ex in exs])


def test_tiny_warm_start_reports_every_estimator(tiny):
    tokenizer, policy, encode = tiny
    task = tasks.get("arithmetic")
    examples = task.load("test", limit=48, levels=(1,))
    engine = HFEngine(policy, tokenizer)
    offline = engine.generate(encode(examples), SamplingParams(n=8, max_new_tokens=24, seed=500_000))
    scores = [v.score for v in task.reward_many(offline.texts, [ex for ex in examples for _ in range(8)])]
    offline_rewards = {ex.id: scores[8 * i: 8 * i + 8] for i, ex in enumerate(examples)}
    m = value_diagnostic(engine, task, examples, encode, offline_rewards, mc_samples=16, seed=1, max_new_tokens=24,
                         embed_fn=policy_embed_fn(policy, tokenizer.pad_token_id, encode))
    assert set(m) == {f"diag/value_mse/{name}" for name in ESTIMATORS} | {"diag/mc_value_mean", "diag/mc_samples",
                                                                          "diag/mc_noise"}
    assert all(math.isfinite(v) and v >= 0 for v in m.values()), m
    assert 0.05 < m["diag/mc_value_mean"] < 0.6  # the warm start solves about a fifth of level 1
    # V* = beta1 * log mean exp(r / beta1) >= the mean reward (Jensen): an optimistic value,
    # further from the policy's value than the prior.
    assert m["diag/value_mse/a_star_po_v_star"] > m["diag/value_mse/prior"]
    # Not asserted: group mean < batch mean. On level 1 the warm start's per-prompt success
    # rates are nearly alike (between-prompt variance ~.012 < p(1-p)/8 ~.019), so here the
    # batch mean wins; the heterogeneous test above checks the ordering where it holds.


def test_embeddings_equal_basis_kernel_embeddings(tiny):
    from algorithms.basis import BASIS, BASISConfig

    tokenizer, policy, encode = tiny
    task = tasks.get("arithmetic")
    examples = task.load("test", limit=4, levels=(1, 3))  # prompts of different lengths: padding matters
    module = BASIS(policy, tokenizer, HFEngine(policy, tokenizer),
                   lambda texts, exs: [v.score for v in task.reward_many(texts, exs)], encode,
                   BASISConfig(max_new_tokens=4, value_estimator="batch_mean"))
    batch, _ = module.make_batch(examples)
    before = module.counters["forward_tokens"]
    from_batch = module.prompt_embeddings(batch)
    assert module.counters["forward_tokens"] - before == sum(len(ids) for ids in encode(examples))
    from_examples = policy_embed_fn(policy, tokenizer.pad_token_id, encode)(examples)
    assert from_examples.shape == (4, policy.config.hidden_size)
    assert torch.allclose(from_batch, from_examples, atol=1e-5)


def test_training_logs_the_diagnostic_without_charging_it(make_run, tmp_path):
    run = make_run("smoke", algorithm="grpo", diag_every=2, diag_probe=16, diag_mc_samples=8)
    record = run_training(run, progress=False)
    plain = run_training(make_run("smoke", algorithm="grpo", output_dir=str(tmp_path / "plain")), progress=False)

    assert [row["step"] for row in record["diag_curve"]] == [0, 2]
    for row in record["diag_curve"]:
        for name in ESTIMATORS:
            assert math.isfinite(row[f"diag/value_mse/{name}"])
        assert row["timing_s/diag"] > 0
    history = mlflow.MlflowClient(run.tracking()).get_metric_history(record["mlflow_run_id"],
                                                                      "diag/value_mse/batch_mean")
    assert sorted(m.step for m in history) == [0, 2]
    for key in ("budget/samples", "budget/generated_tokens", "budget/flops"):
        assert record["final_metrics"][key] == plain["final_metrics"][key], key
    # Nor does it change what training does (the engine reseeds before every rollout).
    def train_rows(rec):
        return [{k: v for k, v in row.items() if k.startswith("train/")} for row in rec["history"]
                if "train/loss" in row]

    assert train_rows(record) == train_rows(plain)
    assert plain["diag_curve"] == []
