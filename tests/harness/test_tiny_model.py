"""The warm start is built in its own process with pinned kernels and threads."""

import json
import platform

from harness.tiny_model import TinySpec, _has_avx2, build_environment


def test_warm_start_was_built_with_pinned_kernels_and_threads(tiny_model_dir):
    info = json.loads((tiny_model_dir / "rlvr_pretrain.json").read_text())
    spec = TinySpec()
    assert info["spec"]["threads"] == spec.threads == info["torch_threads"]
    pinned = platform.machine().lower() in ("x86_64", "amd64") and _has_avx2()
    expected = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert info["environment"] == (expected if pinned else {k: None for k in expected})
    if pinned:
        assert info["cpu_capability"] == "AVX2"  # what torch ran, whatever the CPU offers beyond AVX2


def test_build_environment_fixes_threads_whatever_the_caller_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    env = build_environment(TinySpec(threads=3))
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
