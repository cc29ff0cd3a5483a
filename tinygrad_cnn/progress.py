"""A progress bar on stderr: tqdm when it is installed, else a small built-in one with rate and ETA.

Both stay silent when stderr is not a terminal (logs and CI stay clean) and appear only once a
run has lasted `delay` seconds.
"""
import sys
import time


def progress(total, desc="", unit="it", delay=2.0):
    try:
        from tqdm import tqdm
    except ImportError:
        return _Bar(total, desc, unit, delay)
    return tqdm(total=total or None, desc=desc, unit=unit, unit_scale=unit == "B", leave=False,
                delay=delay, disable=None, dynamic_ncols=True)


class _Bar:
    def __init__(self, total, desc, unit, delay):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.start = self.last = time.perf_counter()
        self.delay, self.enabled = delay, sys.stderr.isatty()

    def update(self, k=1):
        self.n += k
        now = time.perf_counter()
        if not self.enabled or now - self.start < self.delay or now - self.last < 0.2:
            return
        self.last = now
        rate = self.n / (now - self.start)
        done = f"{self.n}/{self.total} ({100 * self.n // self.total}%)" if self.total else f"{self.n}"
        eta = f", ETA {(self.total - self.n) / rate:.0f} s" if self.total and rate else ""
        print(f"\r{self.desc}: {done}, {rate:,.0f} {self.unit}/s{eta}   ", end="", file=sys.stderr, flush=True)

    def close(self):
        if self.enabled and self.last > self.start:
            print("\r" + " " * 79 + "\r", end="", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
