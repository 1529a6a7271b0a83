"""Search spaces: every shipped space loads; bad files fail on load naming the file and field."""

import math

import optuna
import pytest

import algorithms
from sweeps.space import load_space, suggest


@pytest.mark.parametrize("algorithm", algorithms.names())
def test_every_shipped_space_loads_and_samples_inside_its_bounds(algorithm):
    space = load_space(algorithm)
    fields = algorithms.get(algorithm).config_class.__dataclass_fields__
    assert space and all(p.name in fields for p in space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = suggest(study.ask(), space)
        for p in space:
            if p.distribution == "categorical":
                assert values[p.name] in p.choices
            else:
                assert p.low <= values[p.name] <= p.high


def test_spaces_cover_the_hyperparameters_each_algorithm_is_known_for():
    names = {a: {p.name for p in load_space(a)} for a in algorithms.names()}
    assert {"lr", "kl_coef", "clip_eps", "samples_per_prompt"} <= names["grpo"]
    assert {"lr", "critic_lr", "kl_coef", "clip_eps"} <= names["ppo"]
    assert {"lr", "eta", "kl_coef"} <= names["rebel"]
    assert {"lr", "beta1", "beta2"} <= names["a_star_po"]
    assert {"lr", "value_estimator", "ridge"} <= names["basis"]
    lr = next(p for p in load_space("grpo") if p.name == "lr")
    assert lr.log and lr.distribution == "log_uniform"


def test_log_uniform_samples_spread_over_decades():
    space = [p for p in load_space("grpo") if p.name == "lr"]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    logs = [math.log10(suggest(study.ask(), space)["lr"]) for _ in range(200)]
    below = sum(x < math.log10(1e-4) for x in logs) / len(logs)
    assert 0.2 < below < 0.5  # log-uniform on [1e-5, 3e-3]: P(< 1e-4) = 1 / 2.48 = 0.40; uniform would give 0.03


@pytest.mark.parametrize("text, message", [
    ("lrr: {distribution: log_uniform, low: 1.0e-5, high: 1.0e-3}", "field 'lrr': unknown hyperparameter of grpo"),
    ("lr: {distribution: log_uniform, low: 1.0e-3, high: 1.0e-5}", "field 'lr': bad bounds, low 0.001 must be < high"),
    ("kl_coef: {distribution: log_uniform, low: 0.0, high: 0.1}", "field 'kl_coef': bad bounds, a log distribution needs low > 0"),
    ("lr: {distribution: gaussian, low: 0.1, high: 0.2}", "field 'lr': unknown distribution 'gaussian'"),
    ("lr: {distribution: uniform, low: 0.1}", "field 'lr': uniform needs `low` and `high`"),
    ("lr: {distribution: uniform, low: a, high: 0.2}", "field 'lr'.low: expected a finite number"),
    ("lr: {distribution: uniform, low: 0.1, high: 0.2, choices: [1]}", "field 'lr': key(s) ['choices'] do not apply"),
    ("epochs: {distribution: int, low: 1.5, high: 3}", "field 'epochs'.low: expected an integer"),
    ("kl_kind: {distribution: categorical, choices: []}", "field 'kl_kind': categorical needs a non-empty list"),
    ("kl_kind: {distribution: categorical, choices: [k1, k9]}", "field 'kl_kind': value 'k9' rejected by GRPOConfig"),
    ("samples_per_prompt: {distribution: categorical, choices: [1, 8]}", "value 1 rejected by GRPOConfig"),
    ("lr: 0.001", "field 'lr': expected a mapping with `distribution`"),
    ("", "empty search space"),
])
def test_bad_space_names_file_and_field(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError) as err:
        load_space("grpo", path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_value_estimator_choices_are_checked_against_basis(tmp_path):
    path = tmp_path / "basis.yaml"
    path.write_text("value_estimator: {distribution: categorical, choices: [prior, oracle]}\n")
    with pytest.raises(ValueError, match="value 'oracle' rejected by BASISConfig"):
        load_space("basis", path)


def test_unknown_algorithm_and_missing_file():
    with pytest.raises(ValueError, match="rebel"):
        load_space("reinforce")
    with pytest.raises(ValueError, match="no search space"):
        load_space("grpo", "/nonexistent/space.yaml")
