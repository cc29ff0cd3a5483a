"""How many threads numpy's BLAS uses for matrix products: every core while the machine is idle,
fewer while other programs keep cores busy.

OpenBLAS splits a large product between its threads, and a thread that finishes its share spins
until the others have finished too. That pays on an idle machine (the deep model's batch-64
step is 1.1-1.4x faster with 2 threads than with 1 on the 2-core machine) and collapses when
another program wants a core. Measured there with one competing CPU-bound process: the step
went from 23-26 ms to 65-79 ms with the competitor in the same terminal session, and to 345 ms
with it in another one (Linux's autogroup scheduling gives each session an equal share, so our
two threads took turns on one core, each spinning while the other worked). With 1 thread it
stayed at 24-34 ms either way.

The policy, on by default ("auto"): a background thread wakes every 0.25 s, works out from
/proc/stat how many of the cores this process may run on were kept busy by *other* programs
(everything busy minus our own CPU time) and, from /proc/self/task/*/schedstat, whether our
threads had to wait for a CPU, and sets OpenBLAS's thread count to the cores the others leave
free: on 2 cores, 1 thread once a competitor takes a core, 2 again once it is gone (see
`choose` and `Sampler`). Nothing runs on the matmul path, so no op gets slower; the sampling
costs about 0.05% of a core.

Overrides:
- TINYGRAD_CNN_BLAS_THREADS, read at import: a number N for N threads always, `auto` for the
  policy, `default` to leave the BLAS alone (numpy's behaviour before this module).
- Without it, OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or OMP_NUM_THREADS in the environment are
  the user's choice: the BLAS is left alone.
- `tinygrad_cnn.set_num_threads(n)` (an int, or "auto") at any time; `get_num_threads()`.

Where it does nothing (and changes nothing): a BLAS other than OpenBLAS (Accelerate on macOS,
MKL), an OpenBLAS built with OpenMP (there the count belongs to each calling thread), and, for
"auto" only, a system without Linux's /proc/stat (macOS, Windows), which keeps the BLAS's
default. It needs nothing beyond ctypes: it calls the OpenBLAS that numpy loaded.
"""
import ctypes
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ENV = "TINYGRAD_CNN_BLAS_THREADS"
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
INTERVAL = 0.25  # seconds between samples: reacts within half a second, costs ~0.05% of a core
FIRST_RETRY, LAST_RETRY = 2.0, 64.0  # seconds before trying all threads again (see Sampler)
TRY_LENGTH = 0.1  # seconds a try lasts: a failed one is slow
WAITED = 0.2      # cores' worth of time our threads may wait for a CPU before all threads count as too many
PTHREADS = 1     # openblas_get_parallel(): 0 sequential, 1 pthreads, 2 OpenMP


class OpenBLAS:
    """The thread-count calls of the OpenBLAS library at `path` (numpy's own copy is named
    scipy_openblas_..._64_ or ...64_, a system one plain openblas_...)."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)  # already loaded by numpy: the same library, not a second copy
        for prefix, suffix in ((p, s) for p in ("scipy_", "") for s in ("64_", "_64", "")):
            try:
                self.set, self.get, parallel = (getattr(lib, f"{prefix}openblas_{name}{suffix}")
                                                for name in ("set_num_threads", "get_num_threads", "get_parallel"))
            except AttributeError:
                continue
            self.path, self.pthreads = path, parallel() == PTHREADS
            return
        raise OSError(f"{path} has no openblas_set_num_threads")


def loaded_libraries():
    """Paths of the OpenBLAS libraries that may be loaded: on Linux the ones mapped into this
    process; elsewhere the copy bundled with numpy's wheel (numpy.libs/ or numpy/.dylibs/)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[-1].strip() for line in f if "openblas" in line.lower()}
        return sorted((p for p in paths if p.startswith("/")), key=lambda p: ("numpy" not in p, p))
    except OSError:
        here = Path(np.__file__).parent
        return [str(p) for d in (here.parent / "numpy.libs", here / ".dylibs") if d.is_dir()
                for p in sorted(d.iterdir()) if "openblas" in p.name.lower()]


def find_openblas():
    """The OpenBLAS that numpy uses, or None (another BLAS, or none found)."""
    for path in loaded_libraries():
        try:
            return OpenBLAS(path)
        except OSError:
            continue
    return None


def choose(current, others, cores, most):
    """The thread count for `others` cores kept busy by other programs out of `cores`: the free
    cores, at most `most`, at least 1. Down as soon as a core we use is half taken, up only when
    one is three quarters free, so that a load near a boundary does not flip it every sample."""
    free = cores - others
    down, up = max(1, -int(-(free - 0.5) // 1)), int(free + 0.25)  # ceil(free - 1/2), floor(free + 1/4)
    return min(most, down) if current > down else min(most, up) if current < up else current


def cpu_usage():
    """(time, seconds the allowed cores were busy in total, seconds of them this process used,
    the number of allowed cores, seconds our threads waited for a CPU while ready to run or
    None), or None without /proc/stat. Steal time (a hypervisor running another machine on our
    core) counts as busy: it is contention too."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    busy = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                name, *ticks = line.split()
                if name != "cpu" and int(name[3:]) in cores:
                    user, nice, system, _, _, irq, softirq, steal = map(int, ticks[:8])
                    busy += user + nice + system + irq + softirq + steal
    except (OSError, ValueError):
        return None
    own = os.times()
    return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, len(cores), waited_for_cpu()


def waited_for_cpu():
    """Seconds this process's threads have spent ready to run but waiting for a CPU (Linux's
    schedstat), or None where that is not kept."""
    total = 0
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


def others_busy(before, after):
    """Cores kept busy by other programs between two cpu_usage() samples."""
    wall = after[0] - before[0]
    return max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / wall if wall > 0 else 0.0


def our_wait(before, after):
    """Cores' worth of time our threads waited for a CPU between two samples, or None (no
    schedstat). A thread that ended in between takes its waits with it: never below 0."""
    wall = after[0] - before[0]
    if before[4] is None or after[4] is None or wall <= 0:
        return None
    return max(0.0, after[4] - before[4]) / wall


class Sampler(threading.Thread):
    """Sets the BLAS's thread count every INTERVAL seconds from what other programs used.

    Busy cores alone cannot tell a program that competes with us from a low-priority one that
    only fills the cores we leave idle (and would yield them): so with all threads it steps
    down only if our threads also had to wait for a CPU (Linux's schedstat; without it, on
    usage alone): beside a competitor our two threads waited 0.5-1 cores' worth of time per
    second, beside low-priority programs 0.05-0.1 (measured). Below all threads it cannot know,
    so it tries all of them again for TRY_LENGTH seconds, after 2 s, then 4, 8, ... up to a
    minute while those tries fail: a failed try costs at most 0.1 s of slow work, less than 1%
    of the time from then on.

    OpenBLAS (pthreads) reads its count when a product starts, and lowering it or raising it
    back up to the threads it already has only stores a number (checked on numpy's OpenBLAS
    0.3.31), so setting it from this thread is safe while the main one multiplies."""

    def __init__(self, blas, most):
        super().__init__(name="tinygrad_cnn BLAS threads", daemon=True)
        self.blas, self.most, self.stopped = blas, most, threading.Event()
        self.backoff, self.retry_at, self.trying = FIRST_RETRY, 0.0, False

    def run(self):
        before = cpu_usage()
        while before is not None and not self.stopped.wait(TRY_LENGTH if self.trying else INTERVAL):
            after = cpu_usage()
            if after is None:
                return
            self.update(others_busy(before, after), after[3], after[0], our_wait(before, after))
            before = after

    def update(self, others, cores, now, waited=None):
        """One sample: `others` cores kept busy by other programs out of `cores`, at time `now`,
        while our threads waited `waited` cores' worth of time for a CPU (None: unknown).
        Returns the thread count set."""
        current = self.blas.get()
        new = choose(current, others, cores, self.most)
        if current == self.most and waited is not None:
            # With all threads: if ours did not wait for a CPU, the others only use what we leave
            # idle; if they did, others are taking our cores from a quarter core on.
            new = choose(current, others + 0.25, cores, self.most) if waited >= WAITED else current
        self.trying = False
        if new == self.most:
            self.backoff = FIRST_RETRY
        elif current == self.most:  # stepping down, or a try that failed
            self.retry_at, self.backoff = now + self.backoff, min(2 * self.backoff, LAST_RETRY)
        elif now >= self.retry_at:
            new, self.trying = self.most, True
        if new != current:
            self.blas.set(new)
        return new


_blas = find_openblas()
_most = _blas.get() if _blas else None  # the BLAS's own count at import: "auto" never uses more
_sampler = None
_mode, _default_reason = "default", "the BLAS's own"


def _stop_sampler():
    global _sampler
    if _sampler is not None:
        _sampler.stopped.set()
        _sampler = None


def _start_sampler():
    global _sampler
    if _blas.pthreads and _most > 1 and cpu_usage() is not None:
        _sampler = Sampler(_blas, _most)
        _sampler.start()


def set_num_threads(n):
    """Use n threads (an int >= 1) for matrix products from now on, or "auto": all the cores
    that other programs leave free (the default, see this module's docstring). Returns False
    when there is no OpenBLAS to set (another BLAS: then it changes nothing)."""
    global _mode
    if n != "auto" and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1):
        raise ValueError(f"set_num_threads: n must be an int >= 1 or 'auto', got {n!r}")
    if _blas is None:
        return False
    _stop_sampler()
    if n == "auto":
        _blas.set(_most)
        _mode = "auto"
        _start_sampler()
    else:
        _blas.set(int(n))
        _mode = "fixed"
    return True


def get_num_threads():
    """The number of threads the BLAS uses now, or None when it is not OpenBLAS."""
    return _blas.get() if _blas else None


def policy():
    """One line on the BLAS and the thread policy in force, for reports."""
    if _blas is None:
        return "BLAS threads: not OpenBLAS, left alone"
    if _mode == "auto" and _sampler is None:
        why = "an OpenMP build" if not _blas.pthreads else "no /proc/stat" if cpu_usage() is None else "the BLAS has 1 thread"
        what = f"auto, inactive here ({why})"
    else:
        what = {"auto": f"auto (up to {_most}; fewer while other programs keep cores busy)",
                "fixed": f"fixed by set_num_threads() or {ENV}", "default": _default_reason}[_mode]
    return f"BLAS threads: {what}; {get_num_threads()} now"


def _from_environment():
    global _default_reason
    given = [f"{v}={os.environ[v]}" for v in BLAS_ENV if v in os.environ]
    setting = os.environ.get(ENV, "default" if given else "auto")
    if setting == "default":
        _default_reason = f"the BLAS's own ({ENV}=default)" if ENV in os.environ else f"as set by {', '.join(given)}"
        return
    if setting != "auto":
        try:
            setting = int(setting)
        except ValueError:
            setting = 0
        if setting < 1:
            warnings.warn(f"{ENV}={os.environ[ENV]!r} is not a number >= 1, 'auto' or 'default': using 'auto'",
                          stacklevel=2)
            setting = "auto"
    set_num_threads(setting)


def _after_fork_in_child():
    global _sampler
    if _sampler is not None:  # the thread did not survive the fork: start the child's own
        _sampler = None
        _start_sampler()


_from_environment()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
