"""The BLAS thread policy (tinygrad_cnn/blas.py): its decisions, its overrides, and that it
changes nothing where there is no OpenBLAS to control.

Its speed under contention is measured by `demos/benchmark.py --contended`, not here."""
import json
import os
import subprocess
import sys
import time

import pytest

from tinygrad_cnn import blas

HAVE_OPENBLAS = blas._blas is not None and blas._blas.pthreads and blas._most > 1
needs_openblas = pytest.mark.skipif(not HAVE_OPENBLAS, reason="needs numpy's OpenBLAS (pthreads) with >= 2 threads")
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != blas.ENV and k not in blas.BLAS_ENV}

# Imports tinygrad_cnn (after SETUP) and prints what the policy did, as JSON.
PROBE = """
import json, sys, threading, time
{setup}
import tinygrad_cnn
from tinygrad_cnn import blas
{after}
print(json.dumps(dict(threads=tinygrad_cnn.get_num_threads(), mode=blas._mode, policy=blas.policy(),
                      sampler=any(t.name == "tinygrad_cnn BLAS threads" for t in threading.enumerate()))))
"""


def probe(setup="", after="", **env):
    code = PROBE.format(setup=setup, after=after)
    out = subprocess.run([sys.executable, "-c", code], env={**CLEAN_ENV, **env}, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1]), out.stderr


@pytest.mark.parametrize("current, others, cores, most, expected", [
    (2, 0.1, 2, 2, 2),   # idle: all threads
    (2, 0.67, 2, 2, 1),  # a competitor sharing the cores with our two threads gets 2/3 of one: step down
    (2, 1.0, 2, 2, 1),
    (1, 1.0, 2, 2, 1),   # the competitor has its core: stay down
    (1, 0.4, 2, 2, 1),   # hysteresis: between a quarter and a half of a core busy, keep what we have
    (2, 0.4, 2, 2, 2),
    (1, 0.2, 2, 2, 2),   # the competitor is gone: back up
    (2, 7.0, 2, 2, 1),   # never fewer than one
    (8, 1.0, 8, 8, 7),   # more cores: the free ones
    (8, 2.6, 8, 8, 5),
    (1, 0.0, 8, 4, 4),   # never more than the BLAS had at import
])
def test_choose_uses_the_cores_that_others_leave_free(current, others, cores, most, expected):
    assert blas.choose(current, others, cores, most) == expected


def test_others_busy_is_the_busy_time_beyond_our_own():
    # (time, busy seconds of the allowed cores, our CPU seconds, cores, seconds our threads waited)
    assert blas.others_busy((10.0, 100.0, 5.0, 2, 1.0), (10.5, 100.9, 5.4, 2, 1.0)) == pytest.approx(1.0)
    assert blas.others_busy((10.0, 100.0, 5.0, 2, 1.0), (10.5, 100.1, 5.4, 2, 1.0)) == 0.0  # tick rounding: >= 0
    assert blas.others_busy((10.0, 100.0, 5.0, 2, 1.0), (10.0, 100.0, 5.0, 2, 1.0)) == 0.0


def test_our_wait_is_per_second_and_unknown_without_schedstat():
    assert blas.our_wait((10.0, 0, 0, 2, 1.0), (10.5, 0, 0, 2, 1.2)) == pytest.approx(0.4)
    assert blas.our_wait((10.0, 0, 0, 2, 1.0), (10.5, 0, 0, 2, 0.5)) == 0.0  # a thread that ended took its waits
    assert blas.our_wait((10.0, 0, 0, 2, None), (10.5, 0, 0, 2, 1.0)) is None


class FakeBLAS:
    def __init__(self, threads):
        self.threads, self.calls = threads, []

    def get(self):
        return self.threads

    def set(self, n):
        self.threads = n
        self.calls.append(n)


def test_sampler_steps_down_under_load_retries_with_backoff_and_comes_back():
    fake = FakeBLAS(2)
    sampler = blas.Sampler(fake, most=2)
    t = 0.0

    def sample(others, dt=blas.INTERVAL):
        nonlocal t
        t += dt
        return sampler.update(others, 2, t)

    assert sample(0.1) == 2 and fake.calls == []
    assert sample(0.7) == 1  # a competitor: down at once
    # it stays; after FIRST_RETRY seconds, all threads are tried for one short sample
    counts = [sample(1.0) for _ in range(int(blas.FIRST_RETRY / blas.INTERVAL))]
    assert counts[:-1] == [1] * (len(counts) - 1) and counts[-1] == 2 and sampler.trying
    assert sample(0.7, blas.TRY_LENGTH) == 1  # the try failed: down again, the next try twice as late
    assert not sampler.trying
    counts = [sample(1.0) for _ in range(int(2 * blas.FIRST_RETRY / blas.INTERVAL))]
    assert counts.count(2) == 1 and counts[-1] == 2
    assert sample(0.1, blas.TRY_LENGTH) == 2  # that try held (others only filled the core we had left): stay
    assert not sampler.trying
    assert sampler.backoff == blas.FIRST_RETRY
    assert fake.calls == [1, 2, 1, 2]


@pytest.mark.parametrize("others, waited, expected", [
    (1.0, 0.05, 2),  # busy cores, but our threads never waited: low-priority programs filling what we leave idle
    (1.0, 0.9, 1),   # a competitor took a core from our two threads
    (0.4, 0.5, 1),   # a competitor sharing the cores with our threads gets less than half of one
    (0.1, 0.5, 2),   # our threads waited for each other (more threads than cores of our own): not others
    (1.0, None, 1),  # no schedstat: busy cores alone decide
])
def test_with_all_threads_it_steps_down_only_if_our_threads_waited(others, waited, expected):
    assert blas.Sampler(FakeBLAS(2), most=2).update(others, 2, 1.0, waited) == expected


def test_sampler_backoff_is_capped():
    sampler = blas.Sampler(FakeBLAS(2), most=2)
    for i in range(20):  # twenty failed tries
        sampler.update(1.0, 2, 1000.0 * i)
    assert sampler.backoff == blas.LAST_RETRY


def test_bad_arguments_name_the_function():
    for bad in (0, -1, 1.5, "2", True, None):
        with pytest.raises(ValueError, match=r"set_num_threads: n must be an int >= 1 or 'auto', got"):
            blas.set_num_threads(bad)


@needs_openblas
def test_set_num_threads_sets_the_blas_that_numpy_uses():
    assert blas.get_num_threads() >= 1
    try:
        assert blas.set_num_threads(1) is True
        assert blas.get_num_threads() == 1 and blas._sampler is None and "fixed" in blas.policy()
        blas.set_num_threads(2)
        assert blas.get_num_threads() == 2
    finally:
        blas.set_num_threads("auto")
    assert blas._mode == "auto" and blas._sampler.is_alive()


@needs_openblas
def test_auto_is_the_default_and_its_thread_really_sets_the_blas():
    # others keep every core busy (as measured by a stand-in for /proc/stat): the real OpenBLAS goes to 1 thread
    fake_usage = """
from tinygrad_cnn import blas as b
calls = iter(range(10**9))
def usage():  # each sample 1 ms later, with both cores busy, none of it ours
    t = next(calls) * 0.001
    return t, 2 * t, 0.0, 2, t  # and our threads waiting all the time
b.INTERVAL, b.cpu_usage = 0.01, usage
b.set_num_threads("auto")
deadline = time.time() + 20
while b.get_num_threads() != 1 and time.time() < deadline:
    time.sleep(0.01)
"""
    result, _ = probe(after=fake_usage)
    assert result["mode"] == "auto" and result["sampler"] and result["threads"] == 1
    result, _ = probe()
    assert result["mode"] == "auto" and result["sampler"] and "auto (up to" in result["policy"]


@needs_openblas
@pytest.mark.parametrize("env, threads, mode", [
    ({blas.ENV: "1"}, 1, "fixed"),
    ({blas.ENV: "default"}, None, "default"),
    ({"OPENBLAS_NUM_THREADS": "1"}, 1, "default"),       # the user's own BLAS setting is left alone
    ({"OPENBLAS_NUM_THREADS": "1", blas.ENV: "auto"}, 1, "auto"),  # ours wins; at most the BLAS's 1
])
def test_environment_overrides(env, threads, mode):
    result, _ = probe(**env)
    assert result["mode"] == mode
    assert not result["sampler"]  # fixed, left alone, or (the BLAS has 1 thread) nothing to adapt
    if threads is not None:
        assert result["threads"] == threads
    if mode == "default":
        assert "OPENBLAS_NUM_THREADS=1" in result["policy"] or f"{blas.ENV}=default" in result["policy"]


@needs_openblas
def test_a_bad_environment_value_warns_and_uses_auto():
    result, stderr = probe(**{blas.ENV: "lots"})
    assert result["mode"] == "auto" and result["sampler"]
    assert f"{blas.ENV}='lots' is not a number >= 1" in stderr


@needs_openblas
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_sampler():
    child = """
import os
pid = os.fork()
if pid == 0:
    alive = blas._sampler is not None and blas._sampler.is_alive()
    os._exit(0 if alive else 3)
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 0, status
"""
    probe(after=child)


# Without OpenBLAS (Accelerate, MKL, or none found): ctypes finds nothing, and nothing changes.
NO_OPENBLAS = """
import ctypes
def no_library(path, *args, **kwargs):
    raise OSError("not here")
ctypes.CDLL = no_library
"""
NO_SYMBOLS = """
import ctypes
class Empty:
    pass
ctypes.CDLL = lambda path, *args, **kwargs: Empty()
"""


@pytest.mark.parametrize("setup", [NO_OPENBLAS, NO_SYMBOLS], ids=["no library", "library without the calls"])
def test_without_openblas_nothing_is_set_and_training_works(setup):
    after = """
assert blas._blas is None and blas.set_num_threads(2) is False and blas.set_num_threads("auto") is False
try:
    blas.set_num_threads(0)
except ValueError:
    pass
else:
    raise AssertionError("no error for 0")
import numpy as np
from tinygrad_cnn import Tensor, nn
model = nn.Linear(64, 10)
loss = model(Tensor(np.ones((4, 64), np.float32))).cross_entropy(np.arange(4))
loss.backward()
assert model.weight.grad.shape == (10, 64)
"""
    result, _ = probe(setup=setup, after=after)
    assert result == dict(threads=None, mode="default", policy="BLAS threads: not OpenBLAS, left alone",
                          sampler=False)


def test_without_proc_stat_auto_keeps_the_default_and_says_why(monkeypatch):
    monkeypatch.setattr(blas, "cpu_usage", lambda: None)
    monkeypatch.setattr(blas, "_sampler", None)
    if blas._blas is None:
        assert blas.set_num_threads("auto") is False
        return
    try:
        blas.set_num_threads("auto")
        assert blas._sampler is None and blas.get_num_threads() == blas._most
        assert "inactive here" in blas.policy()
    finally:
        monkeypatch.undo()
        blas.set_num_threads("auto")


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux's /proc/stat")
def test_cpu_usage_reads_this_machine():
    before = blas.cpu_usage()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # busy: our own CPU time grows
        pass
    after = blas.cpu_usage()
    assert after[0] > before[0] and after[2] > before[2] and after[1] >= before[1]
    assert after[3] == len(os.sched_getaffinity(0))
    assert after[4] is None or after[4] >= before[4] >= 0
    assert 0 <= blas.others_busy(before, after) <= after[3] + 0.5  # + tick rounding
