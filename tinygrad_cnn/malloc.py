"""Keep freed memory in the process for reuse, instead of handing it back to the OS each step.

glibc returns every block above a threshold (128 KiB at first) to the OS when it is freed, and
raises that threshold only after it happens to free a large block. A training loop allocates
the same few MB of activations and gradients every step, so with the default it can page-fault
them in again on every step: measured on the tutorial's net at batch 64, 6.4 ms per step
instead of 1.9 ms, depending only on what the process had freed before. Fixed thresholds make
the speed predictable, at the cost of keeping up to ~128 MB of freed memory in the process.

Set TINYGRAD_CNN_MALLOC=default before importing tinygrad_cnn to leave glibc's settings alone.
"""
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h


def keep_freed_memory(mmap_threshold=32 << 20, trim_threshold=128 << 20):
    """Serve blocks up to `mmap_threshold` bytes from the heap and keep up to `trim_threshold`
    bytes of freed memory. Returns False where there is no glibc (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


if os.environ.get("TINYGRAD_CNN_MALLOC") != "default":
    keep_freed_memory()
