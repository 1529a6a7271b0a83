"""Peak live heap memory on the CPU: the bytes malloc has handed out and not yet taken back.

On a GPU, `torch.cuda.max_memory_allocated` counts live tensors. The CPU has no such counter, and
the process's max RSS (`ru_maxrss`) also counts memory that was freed but that glibc's allocator
kept. How much it keeps depends on the order of the allocations, not on what the algorithm needs:
a one-rollout algorithm's varied tensor shapes leave more of it than GRPO's (issue 10: with the
allocator set to give big blocks back at once, A*-PO's and BASIS's max RSS came within 1 % of
GRPO's). glibc's `mallinfo2` counts the bytes in use: `uordblks` in the arenas plus `hblkhd` in
mmapped blocks. A read walks glibc's free lists: microseconds in a bare process, 80-90 us in a
training process (~28 reads in a TRL-size GRPO step: 0.6 % of it).

It is read where a step's memory peaks: at the end of every forward of a watched model (`watch`:
the policy and its frozen reference copy; each decoding step of HF generation is one), before
every backward (the run's telemetry callback: activations and the loss's tensors are all live
then; PPO's critic is trained there too), and whenever the run's metrics are logged. A background
thread reading it every 5 ms was tried first: 2-thread HF generation ran 16 % slower beside it
(its wake-ups stall OpenMP's workers; the same comparison of identical code differs by 2-5 %).

None where the C library has no `mallinfo2` (glibc before 2.33, musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def c_library():
    """The process's C library (glibc here), or None where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _load_mallinfo2():
    function = getattr(c_library(), "mallinfo2", None)
    if function is None:
        return None
    function.restype = _MallInfo2
    return function


_MALLINFO2 = _load_mallinfo2()


def live_heap_bytes() -> int | None:
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return info.uordblks + info.hblkhd


class HeapPeak:
    """The highest `live_heap_bytes()` seen by `sample()`."""

    def __init__(self):
        self.peak = 0

    def sample(self) -> None:
        live = live_heap_bytes()
        if live is not None and live > self.peak:
            self.peak = live

    def reset(self) -> None:
        """Count from now (a run's peak, not the process's: tests and sweeps run several in one)."""
        self.peak = 0
        self.sample()

    def peak_gb(self) -> float | None:
        if _MALLINFO2 is None:
            return None
        self.sample()
        return self.peak / 2**30


_PROCESS = HeapPeak()


def _reset_in_child() -> None:
    _PROCESS.peak = 0  # a forked run (a comparison's) counts from the fork


os.register_at_fork(after_in_child=_reset_in_child)


def process_heap_peak() -> HeapPeak:
    return _PROCESS


def _sample_after_forward(module, args, output) -> None:
    # A module-level function, not a bound method: `copy.deepcopy` of a watched policy (the frozen
    # reference) copies the hook, and must not copy the process's peak with it.
    _PROCESS.sample()


def watch(model) -> None:
    """Sample the process's peak at the end of every forward of `model` (and of its deep copies)."""
    if _MALLINFO2 is not None:
        model.register_forward_hook(_sample_after_forward)
