"""The warm start is built in its own process with pinned kernels and threads: the same bytes on
every build of one machine, and the bytes each CPU kind seen built (`KNOWN_BUILDS`)."""

import json
import platform

import pytest

from harness.tiny_model import (KNOWN_BUILDS, REFERENCE_SHA1, TinySpec, _has_avx2, _sha1, build_environment,
                                cpu_kind, ensure_tiny)


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


def test_warm_start_is_the_one_this_cpu_kind_builds(tiny_model_dir):
    """The bytes each CPU kind seen so far built; Intel's are the reference (results/reference starts
    from them). A kind not in `KNOWN_BUILDS` has no bytes to compare with yet: the skip names them."""
    assert KNOWN_BUILDS[("GenuineIntel", 6)] == REFERENCE_SHA1
    sha1 = json.loads((tiny_model_dir / "rlvr_pretrain.json").read_text())["sha1"]
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
