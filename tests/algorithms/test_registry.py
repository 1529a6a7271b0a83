"""Algorithms are registered by being there: a file, an entry point or a package.module:Class path."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import algorithms
from algorithms.base import RLModule

REPO = Path(__file__).resolve().parents[2]


def test_names_list_every_algorithm_and_each_resolves_to_a_module_class():
    assert {"a_star_po", "basis", "grpo", "ppo", "rebel", "reinforce_pp", "rloo"} <= set(algorithms.names())
    assert algorithms.names() == sorted(algorithms.names())
    for name in algorithms.names():
        cls = algorithms.get(name)
        assert issubclass(cls, RLModule) and cls.name == name


def test_a_module_class_path_loads_without_registration():
    assert algorithms.get("algorithms.rloo:RLOO") is algorithms.get("rloo")
    with pytest.raises(ValueError, match="cannot import module"):
        algorithms.get("no_such_package.x:Algo")
    with pytest.raises(ValueError, match="not an algorithms.base.RLModule subclass"):
        algorithms.get("algorithms.rloo:RLOOConfig")
    with pytest.raises(ValueError, match="known algorithms: .*rloo"):
        algorithms.get("dpo")


def test_a_run_names_an_out_of_tree_class_by_its_path():
    from harness.config import load_run_config, validate_run

    run = load_run_config("smoke", {"algorithm": "algorithms.rloo:RLOO"})
    assert type(validate_run(run)).__name__ == "RLOOConfig"
    with pytest.raises(ValueError, match="unknown algorithm 'dpo'"):
        validate_run(load_run_config("smoke", {"algorithm": "dpo"}))


def test_an_installed_entry_point_registers_a_plugin(tmp_path, monkeypatch):
    (tmp_path / "my_plugin.py").write_text(
        "from algorithms.rloo import RLOO\n\nclass MyRLOO(RLOO):\n    pass\n")
    info = tmp_path / "my_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{algorithms.ENTRY_POINT_GROUP}]\nmy_rloo = my_plugin:MyRLOO\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    algorithms._registry.cache_clear()
    try:
        assert "my_rloo" in algorithms.names()
        assert algorithms.get("my_rloo").__name__ == "MyRLOO"
    finally:
        monkeypatch.undo()
        algorithms._registry.cache_clear()
    assert "my_rloo" not in algorithms.names()


def test_two_files_declaring_one_name_fail_naming_both(tmp_path):
    package = tmp_path / "algorithms"
    shutil.copytree(REPO / "algorithms", package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(package / "rloo.py", package / "rloo_twin.py")
    code = "import algorithms; algorithms.names()"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0
    assert "'rloo' is declared twice" in done.stderr and "rloo_twin" in done.stderr


@pytest.mark.slow
def test_one_new_file_is_enough_to_train_and_compare_an_algorithm(tmp_path, tiny_model_dir):
    # A scratch copy of the packages; the new algorithm is a copy of rloo.py under another name.
    scratch = tmp_path / "scratch"
    for package in ("algorithms", "harness", "tasks", "sweeps"):
        shutil.copytree(REPO / package, scratch / package, ignore=shutil.ignore_patterns("__pycache__"))
    source = (scratch / "algorithms" / "rloo.py").read_text()
    assert source.count('name = "rloo"') == 1
    (scratch / "algorithms" / "my_rloo.py").write_text(source.replace('name = "rloo"', 'name = "my_rloo"'))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=scratch, capture_output=True,
                              text=True, timeout=600)

    out = tmp_path / "results"
    done = cli("train", "--algorithm", "my_rloo", "--preset", "smoke", "--steps", "1", "--eval-limit", "4",
               "--model", str(tiny_model_dir), "--output-dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "smoke" / "runs" / "my_rloo-seed0.json").exists()
    assert "my_rloo seed 0: held-out accuracy" in done.stdout
    # `compare --preset smoke` runs the grid `harness.compare.grid` gives it: every registered algorithm.
    code = "from harness.compare import grid; print(grid('smoke', None, None)[0])"
    listed = subprocess.run([sys.executable, "-c", code], cwd=scratch, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "'my_rloo'" in listed.stdout and "'rloo'" in listed.stdout and "'reinforce_pp'" in listed.stdout
