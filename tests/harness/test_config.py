import pytest

import algorithms
from harness.config import PRESET_DIR, algorithm_config, load_run_config, preset_names, prompts_per_step, read_yaml


@pytest.mark.parametrize("name", preset_names())
def test_every_experiment_preset_loads_with_every_algorithm(name):
    spec = read_yaml(PRESET_DIR / f"{name}.yaml").get("compare", {})
    for algorithm in spec.get("algorithms", algorithms.names()):
        run = load_run_config(name, {"algorithm": algorithm})
        config = algorithm_config(run)
        assert isinstance(config, algorithms.get(algorithm).config_class)


@pytest.mark.parametrize("path", sorted((PRESET_DIR / "algorithms").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_algorithm_preset_loads(path):
    run = load_run_config(None, {"algorithm": path.stem})
    config = algorithm_config(run)
    assert set(read_yaml(path)) <= set(vars(config))


def test_unknown_key_names_the_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_stepz: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*max_stepz"):
        load_run_config(str(bad))


def test_wrong_type_names_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_steps: three\n")
    with pytest.raises(ValueError, match=r"'max_steps'.*expected int"):
        load_run_config(str(bad))


def test_malformed_yaml_names_the_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("max_steps: [1, 2\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML"):
        load_run_config(str(bad))


def test_algorithm_override_is_validated():
    run = load_run_config(None, {"algorithm": "grpo", "algo": {"samples_per_prompt": 1}})
    with pytest.raises(ValueError, match="samples_per_prompt"):
        algorithm_config(run)
    run = load_run_config(None, {"algorithm": "grpo", "algo": {"learning_rate": 1e-3}})
    with pytest.raises(ValueError, match="learning_rate"):
        algorithm_config(run)


def test_unknown_algorithm_lists_the_known_ones():
    with pytest.raises(ValueError, match="grpo"):
        algorithms.get("dpo")
    assert algorithms.names() == sorted(algorithms.names())


EVERY = dict.fromkeys(["a_star_po", "basis", "grpo", "ppo", "rebel", "reinforce_pp", "rloo"], 256)


@pytest.mark.parametrize("preset, prompts, samples", [
    ("default", {"grpo": 32, "rebel": 128, "a_star_po": 256, "basis": 256, "ppo": 256, "reinforce_pp": 256,
                 "rloo": 32}, EVERY),
    ("equal-prompts", EVERY, {"grpo": 2048, "rebel": 512, "a_star_po": 256, "basis": 256, "ppo": 256,
                              "reinforce_pp": 256, "rloo": 2048}),
])
def test_the_two_protocols_shape_every_step(preset, prompts, samples):
    """default: equal samples per step (prompts follow each algorithm's samples per prompt);
    equal-prompts: equal prompts per step, as verl counts a step (samples follow)."""
    got_prompts, got_samples = {}, {}
    for algorithm in algorithms.names():
        run = load_run_config(preset, {"algorithm": algorithm})
        config = algorithm_config(run)
        got_prompts[algorithm] = prompts_per_step(run, config)
        got_samples[algorithm] = got_prompts[algorithm] * config.samples_per_prompt
    assert got_prompts == prompts and got_samples == samples


def test_a_preset_sets_one_algorithms_run_length(tmp_path):
    """equal-prompts gives one-rollout algorithms twice GRPO's steps; --steps and --budget still win,
    and the hyperparameters of the same section still reach the algorithm."""
    assert load_run_config("equal-prompts", {"algorithm": "basis"}).max_steps == 96
    assert load_run_config("equal-prompts", {"algorithm": "grpo"}).max_steps == 48
    assert load_run_config("equal-prompts", {"algorithm": "basis", "max_steps": 5}).max_steps == 5
    preset = tmp_path / "p.yaml"
    preset.write_text("max_steps: 4\nper_algorithm:\n  grpo: {max_steps: 7, budget: samples=64, lr: 2.0e-4}\n")
    run = load_run_config(str(preset), {"algorithm": "grpo"})
    assert (run.max_steps, run.budget, algorithm_config(run).lr) == (7, "samples=64", 2.0e-4)
    assert load_run_config(str(preset), {"algorithm": "grpo", "budget": "samples=32"}).budget == "samples=32"
    assert load_run_config(str(preset), {"algorithm": "rloo"}).max_steps == 4
    preset.write_text("per_algorithm:\n  grpo: {max_steps: many}\n")
    with pytest.raises(ValueError, match=r"per_algorithm.grpo.*max_steps"):
        load_run_config(str(preset), {"algorithm": "grpo"})
