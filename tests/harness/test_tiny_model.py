"""The warm start is built in its own process with pinned kernels and threads: the same bytes on
every x86-64 CPU with AVX2."""

import json
import platform

from harness.tiny_model import REFERENCE_SHA1, TinySpec, _has_avx2, _sha1, build_environment


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
        # The bytes every such CPU builds, Intel's and AMD's (MKL's AVX2 branch built other bytes on
        # Intel CPUs than on AMD ones): the published reference results start from this warm start.
        assert info["sha1"] == REFERENCE_SHA1


def test_build_environment_fixes_threads_whatever_the_caller_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    env = build_environment(TinySpec(threads=3))
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
