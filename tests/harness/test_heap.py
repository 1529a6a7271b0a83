"""The CPU's peak memory figure (harness.heap): live heap bytes, read at the end of a watched
model's forward (and of its deep copies), before a backward, and when metrics are logged."""

import copy
import os

import pytest
import torch

from harness.callbacks import TelemetryCallback, memory_metrics
from harness.heap import live_heap_bytes, process_heap_peak, watch

pytestmark = pytest.mark.skipif(live_heap_bytes() is None, reason="the C library has no mallinfo2 (not glibc >= 2.33)")

MB = 2**20


class Widen(torch.nn.Module):
    """Returns a 64 MB activation for any input."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * torch.ones(16 * MB)  # float32: 64 MB


def test_live_heap_counts_a_tensor_until_it_is_freed():
    before = live_heap_bytes()
    block = torch.ones(64 * MB, dtype=torch.uint8)
    held = live_heap_bytes()
    del block
    after = live_heap_bytes()
    assert held - before >= 64 * MB
    assert held - after >= 64 * MB  # freed memory no longer counts, whatever the allocator keeps


def test_a_watched_model_and_its_deep_copy_are_sampled_at_the_end_of_each_forward():
    peak = process_heap_peak()
    model = Widen()
    watch(model)
    for forward in (model, copy.deepcopy(model)):  # the frozen reference is a deep copy of the policy
        peak.reset()
        base = peak.peak
        forward(None)  # the output is freed at once; only the hook could have seen it
        assert peak.peak - base >= 64 * MB
    unwatched = Widen()
    peak.reset()
    base = peak.peak
    unwatched(None)
    assert peak.peak - base < 32 * MB


def test_the_telemetry_callback_samples_before_each_backward():
    peak = process_heap_peak()
    peak.reset()
    base = peak.peak
    loss = (Widen()(None) ** 2).mean()  # the activations are live until backward
    TelemetryCallback(recorder=None).on_before_backward(None, None, loss)
    loss.backward()
    del loss
    assert peak.peak - base >= 64 * MB


def test_run_metrics_carry_the_heap_peak_beside_max_rss():
    process_heap_peak().reset()
    block = torch.ones(64 * MB, dtype=torch.uint8)
    held = memory_metrics()
    del block
    metrics = memory_metrics()
    assert metrics["perf/peak_heap_gb"] == held["perf/peak_heap_gb"] >= 64 * MB / 2**30  # the peak stays
    assert metrics["perf/peak_memory_gb"] == metrics["perf/max_rss_gb"]  # CONTRACT.md: max RSS on the CPU
    assert metrics["perf/max_rss_gb"] > metrics["perf/peak_heap_gb"]  # RSS also counts code and what malloc keeps


def test_a_forked_child_counts_from_the_fork():
    peak = process_heap_peak()
    peak.reset()
    held = torch.ones(64 * MB, dtype=torch.uint8)
    peak.sample()
    del held
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no torch here, OpenMP's threads do not survive a fork
        try:
            fresh = process_heap_peak().peak == 0
            block = bytearray(32 * MB)
            process_heap_peak().sample()
            del block
            sees = process_heap_peak().peak - live_heap_bytes() >= 31 * MB
            os.write(write, b"1" if fresh and sees else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert peak.peak > 64 * MB  # the parent's peak is its own
