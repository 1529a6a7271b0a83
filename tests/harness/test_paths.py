"""harness.paths: the results layout every module writes and reads, and the atomic write they share."""

from types import SimpleNamespace

import pytest

from harness.paths import (
    atomic_file,
    cache_path,
    checkpoint_path,
    default_tracking_uri,
    launch_path,
    run_path,
    write_text_atomic,
)


def test_the_results_layout(tmp_path):
    run = SimpleNamespace(output_dir=str(tmp_path), experiment="smoke", algorithm="grpo", seed=3)
    assert run_path(tmp_path, "smoke", "grpo", 3) == tmp_path / "smoke" / "runs" / "grpo-seed3.json"
    assert checkpoint_path(run) == tmp_path / "smoke" / "checkpoints" / "grpo-seed3" / "last.pt"
    assert launch_path(run) == tmp_path / "smoke" / "launch" / "grpo-seed3.yaml"
    assert default_tracking_uri(tmp_path / "new") == f"sqlite:///{(tmp_path / 'new').resolve() / 'mlflow.db'}"
    assert (tmp_path / "new").is_dir()  # SQLite needs the folder to exist


def test_cache_folders_are_named_and_an_unknown_one_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_path("offline") == tmp_path / "cache" / "offline"
    with pytest.raises(ValueError, match="'offlne' is not one of"):
        cache_path("offlne")


def test_an_atomic_write_replaces_the_file_whole_and_a_failed_one_leaves_the_old_file(tmp_path):
    path = tmp_path / "deep" / "record.json"
    write_text_atomic(path, "first")
    assert path.read_text() == "first"
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_file(path) as f:
            f.write("half of the second")
            raise RuntimeError("midway")
    assert path.read_text() == "first"
    with atomic_file(path, "wb") as f:
        f.write(b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.json"]  # no temporary file left


def test_atomic_file_refuses_a_mode_it_cannot_make_atomic(tmp_path):
    with pytest.raises(ValueError, match="mode 'a'"):
        with atomic_file(tmp_path / "x.txt", "a"):
            pass


def test_an_atomic_folder_appears_whole_or_not_at_all_and_keeps_a_finished_rivals(tmp_path):
    from harness.paths import atomic_folder

    target = tmp_path / "models" / "m"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            tmp.mkdir()
            (tmp / "config.json").write_text("{}")
            raise RuntimeError("killed half-way")
    assert not target.exists() and list(target.parent.iterdir()) == []  # nothing half-built left
    with atomic_folder(target) as tmp:
        tmp.mkdir()
        (tmp / "config.json").write_text("ours")
        assert not target.exists()  # not visible until complete
    assert (target / "config.json").read_text() == "ours"
    with atomic_folder(target) as tmp:  # another process finished first: its folder stays
        tmp.mkdir()
        (tmp / "config.json").write_text("second")
    assert (target / "config.json").read_text() == "ours" and list(target.parent.iterdir()) == [target]
