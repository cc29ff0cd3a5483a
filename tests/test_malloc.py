"""The allocator setting that keeps a training step's freed buffers for the next step."""
import os
import subprocess
import sys

import pytest

from tinygrad_cnn import malloc

# Imports tinygrad_cnn.malloc with ctypes.CDLL faked, and prints the mallopt calls it made.
PROBE = """
import ctypes
calls = []
class FakeLibc:
    def mallopt(self, option, value):
        calls.append((option, value))
        return 1
ctypes.CDLL = lambda name: FakeLibc()
import tinygrad_cnn.malloc
print(calls)
"""


def import_calls(**env):
    env = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_import_raises_the_mmap_and_trim_thresholds():
    assert import_calls() == str([(malloc.M_MMAP_THRESHOLD, 32 << 20), (malloc.M_TRIM_THRESHOLD, 128 << 20)])
    assert malloc.keep_freed_memory() is True  # the real glibc accepts them


def test_opt_out_leaves_the_allocator_alone():
    assert import_calls(TINYGRAD_CNN_MALLOC="default") == "[]"
