"""glibc's allocator told to keep freed memory for reuse instead of handing it back to the kernel.

By default glibc serves every block above its mmap threshold (128 KB, rising to at most 32 MB)
with a fresh `mmap` and unmaps it on free, and it trims the heap's top past 128 KB. A training
step allocates and frees the same large tensors every micro-batch, so each one comes back from
the kernel as new zeroed pages: page faults, not arithmetic. On SmolLM2-135M, whose tied
embedding gradient alone is 49152 x 576 floats (113 MB), the update spent more than half its time
faulting (`benchmarks/update_flops.py`, Intel Xeon, 2 threads: 7.36 s a step, 22 % of the fp32
matmul rate; with this setting 3.50 s, 43 %).

`keep_freed_memory()` turns mmap off for the allocator (`M_MMAP_MAX` 0: every block comes from
the heap) and trimming off below 2 GiB of free heap top (`M_TRIM_THRESHOLD`, a C int), so freed
blocks are reused in place. Only where memory comes from changes: tensors stay 64-byte aligned
(PyTorch's CPU allocator asks for it), and the numbers a run computes are the same
(`tests/harness/test_allocator.py`; the default comparison's ten runs at seeds 2 and 3 gave the
same histories). A process then holds its high-water mark until it exits, and a freed block is
reused once it has merged with a neighbour (a 64-byte-aligned request needs a little more than the
block it replaces), so the heap can hold more than glibc's defaults would: in those ten runs max
RSS moved by -0.031 to +0.026 GB, inside the runs' own spread. `RLVR_KEEP_FREED_MEMORY=0` keeps
glibc's defaults. Nothing happens off glibc.
"""

from __future__ import annotations

import ctypes
import os

from harness.heap import c_library

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 2**31 - 1  # mallopt's value is a C int

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the setting once per process; True where it is in effect."""
    global _applied
    if _applied is None:
        _applied = os.environ.get("RLVR_KEEP_FREED_MEMORY", "1") != "0" and _mallopt()
    return _applied


def in_effect() -> bool:
    """Whether this process has applied it (a run's record says so; asking applies nothing)."""
    return bool(_applied)


def _mallopt() -> bool:
    libc = c_library()
    # glibc only: other C libraries' mallopt take other options
    if libc is None or not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trim = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)  # 1 on success
    return bool(mallopt(M_MMAP_MAX, 0) and trim)
