"""Config validation: impossible combinations name the field; random dicts never crash the loader."""

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import algorithms
from harness.config import RunConfig, load_run_config, validate_run


@pytest.mark.parametrize("overrides, field", [
    ({"algorithm": "grpo", "algo": {"samples_per_prompt": 1}}, "samples_per_prompt"),
    ({"algorithm": "rebel", "algo": {"samples_per_prompt": 4}}, "samples_per_prompt"),
    ({"algorithm": "rebel", "algo": {"samples_per_prompt": 1}}, "samples_per_prompt"),
    ({"budget": "samples=0"}, "budget"),
    ({"budget": "steps=10"}, "budget"),
    ({"max_steps": 0}, "max_steps"),
    ({"max_stepz": 3}, "max_stepz"),
    ({"max_steps": "three"}, "max_steps"),
    ({"max_steps": True}, "max_steps"),
    ({"algo": 3}, "algo"),
    ({"algo": {"learning_rate": 1e-3}}, "learning_rate"),
    ({"algo": {"lr": -1.0}}, "lr"),
    ({"algo": {"lr": float("nan")}}, "lr"),
    ({"algorithm": "ppo_v2"}, "algorithm"),
    ({"task": "nope"}, "task"),
    ({"engine": "tgi"}, "engine"),
    ({"prompt_style": "fancy"}, "prompt_style"),
    ({"strategy": "deepspeed"}, "strategy"),
    ({"strategy": "fsdp", "devices": 2}, "--strategy fsdp"),  # refused: nothing accepted and broken
    ({"accelerator": "tpu"}, "accelerator"),
    ({"precision": "16-mixed"}, "precision"),
    ({"devices": 0}, "devices"),
    ({"checkpoint_every": -1}, "checkpoint_every"),
    ({"max_nonfinite_steps": 0}, "max_nonfinite_steps"),
    ({"threads": 0}, "threads"),
    ({"train_limit": 2}, "train_limit"),  # fewer training prompts than one step takes
    ({"samples_per_step": 33}, "samples_per_step"),  # not a multiple of GRPO's group of 8
    ({"strategy": "ddp", "devices": 3}, "devices"),  # 4 prompts per step do not split over 3 processes
])
def test_impossible_configs_are_errors_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        validate_run(load_run_config("smoke", overrides))


def test_a_run_setting_given_as_an_algorithm_hyperparameter_says_where_it_belongs():
    with pytest.raises(ValueError, match=r"\['train_limit'\] are run settings, not grpo hyperparameters"):
        validate_run(load_run_config("smoke", {"algo": {"train_limit": 768, "lr": 1e-4}}))


def test_every_algorithm_with_the_smoke_preset_validates():
    for name in algorithms.names():
        config = validate_run(load_run_config("smoke", {"algorithm": name}))
        assert isinstance(config, algorithms.get(name).config_class)


FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
ALGO_FIELDS = ["lr", "samples_per_prompt", "temperature", "kl_kind", "loss_agg", "epochs", "eta", "beta1",
               "value_estimator", "folds", "critic_lr", "scale_by_std", "micro_batch_size"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12), st.sampled_from(["grpo", "rebel", "basis", "ppo", "a_star_po",
                                                           "arithmetic", "hf", "ddp", "samples=10", "k3"]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=6), SCALARS, max_size=3))
ALGO = st.dictionaries(st.one_of(st.sampled_from(ALGO_FIELDS), st.text(max_size=8)), VALUES, max_size=4)
CONFIG = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)),
                         st.one_of(VALUES, ALGO), max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIG)
def test_random_dicts_give_a_config_or_a_value_error_naming_a_field(values):
    try:
        run = load_run_config(None, values)
        validate_run(run)
    except ValueError as err:
        message = str(err)
        named = set(map(str, values)) | set(FIELDS) | set(ALGO_FIELDS)
        named |= {str(k) for v in values.values() if isinstance(v, dict) for k in v}
        assert any(name and name in message for name in named), message
    else:
        assert isinstance(run, RunConfig)
