"""The shipped warm start is the bytes its sha1 says; a rebuild runs in its own process with pinned
kernels and threads: the same bytes on every build of one machine, and on this machine the shipped ones."""

import json
import platform

import pytest

from harness.paths import cache_dir
from harness.pretrain import pretrain_and_report
from harness.tiny_model import (INTEL_SHA1, KNOWN_BUILDS, SHIPPED_DIR, SHIPPED_SHA1, TinySpec, _has_avx2, _sha1,
                                build_environment, cpu_kind, ensure_tiny)


def test_the_default_warm_start_is_the_shipped_one_with_its_sha1():
    """Every machine starts from these bytes: nothing is built for `--model tiny`."""
    assert ensure_tiny() == SHIPPED_DIR
    assert _sha1(SHIPPED_DIR / "model.safetensors") == SHIPPED_SHA1 == "fd74e64320f603b39a09f63258c11cf05f11c4dc"
    info = json.loads((SHIPPED_DIR / "rlvr_pretrain.json").read_text())
    assert info["sha1"] == SHIPPED_SHA1 and info["spec"] == json.loads(json.dumps(TinySpec().__dict__))
    assert {p.name for p in SHIPPED_DIR.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                        "tokenizer_config.json", "rlvr_pretrain.json"}


def test_pretrain_reports_the_shipped_bytes_and_the_comparisons_accuracy_before():
    """`rlvr-bench pretrain` names the shipped sha1 and evaluates on the default comparison's
    held-out set (arithmetic level 1, 500 problems, 2 samples, its seeds 0 and 1)."""
    lines = []
    pretrain_and_report(log=lines.append)
    assert SHIPPED_SHA1 in lines[0] and "shipped" in lines[0]
    assert "500 held-out arithmetic problems {'levels': [1]} of preset 'default' (2 samples each, T=1)" in lines[1]
    assert "seed 0 " in lines[1] and "seed 1 " in lines[1]
    accuracy = float(lines[1].split("): ")[1].split()[0])
    assert 0.15 < accuracy < 0.45  # right part of the time: RL has room to help


def test_warm_start_was_built_with_pinned_kernels_and_threads(tiny_model_dir):
    info = json.loads((tiny_model_dir / "rlvr_pretrain.json").read_text())
    spec = TinySpec()
    assert info["spec"]["threads"] == spec.threads == info["torch_threads"]
    pinned = platform.machine().lower() in ("x86_64", "amd64") and _has_avx2()
    expected = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE,STRICT", "MKL_DYNAMIC": "FALSE",
                "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert info["environment"] == (expected if pinned else {k: None for k in expected})
    assert info["sha1"] == _sha1(tiny_model_dir / "model.safetensors")
    if pinned:
        assert info["cpu_capability"] == "AVX2"  # what torch ran, whatever the CPU offers beyond AVX2


def test_this_machines_rebuild_is_what_its_cpu_kind_builds():
    """A rebuild (`rlvr-bench pretrain --rebuild`, a few CPU minutes) left in the cache: the bytes its
    CPU kind was seen to build; on an AMD EPYC of family 26 those are the shipped ones."""
    assert KNOWN_BUILDS[("GenuineIntel", 6)] == INTEL_SHA1
    assert KNOWN_BUILDS[("AuthenticAMD", 26)] == SHIPPED_SHA1
    built = cache_dir() / "models" / TinySpec().key() / "rlvr_pretrain.json"
    if not built.exists():
        pytest.skip(f"needs a rebuild in {built.parent} (rlvr-bench pretrain --rebuild)")
    sha1 = json.loads(built.read_text())["sha1"]
    assert sha1 == _sha1(built.parent / "model.safetensors")
    kind = cpu_kind()
    if kind not in KNOWN_BUILDS:
        pytest.skip(f"no recorded build for CPU kind {kind}: this one built {sha1} (add it to KNOWN_BUILDS)")
    assert sha1 == KNOWN_BUILDS[kind], f"{kind} built {sha1}"


def test_two_builds_write_the_same_bytes(tmp_path, monkeypatch):
    """A short build twice, each in its own process: the same file, byte for byte."""
    spec = TinySpec(steps=6, train_examples=400)
    sha1s = []
    for i in range(2):
        monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path / f"cache{i}"))
        path = ensure_tiny(spec, log=lambda *a: None)
        sha1s.append(json.loads((path / "rlvr_pretrain.json").read_text())["sha1"])
        assert sha1s[-1] == _sha1(path / "model.safetensors")
    assert sha1s[0] == sha1s[1]
    assert sha1s[0] != KNOWN_BUILDS.get(cpu_kind())  # six steps are not the full build


def test_build_environment_fixes_threads_whatever_the_caller_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    env = build_environment(TinySpec(threads=3))
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
