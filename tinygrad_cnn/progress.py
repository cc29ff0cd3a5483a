"""A progress bar on stderr: tqdm when it is installed, else a small built-in one with rate and ETA.

Both stay silent when stderr is not a terminal (logs and CI stay clean) or stdout is a pipe, and
appear only once a run has lasted `delay` seconds. Print lines through `bar.write(line)` while a
bar is open: it clears the bar first, so the line never lands on the bar's terminal line.
"""
import os
import stat
import sys
import time


def progress(total, desc="", unit="it", delay=2.0):
    try:
        from tqdm import tqdm
    except ImportError:
        return _Bar(total, desc, unit, delay)
    return tqdm(total=total or None, desc=desc, unit=unit, unit_scale=unit == "B", leave=False,
                delay=delay, disable=not visible(), dynamic_ncols=True)


def visible():
    """Draw on a terminal only, and not while stdout is a pipe: a pipe's reader (`| tee log`) writes our
    lines to the terminal whenever it likes, possibly onto the bar's line, and no clearing can prevent it."""
    try:
        return sys.stderr.isatty() and not stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # a stream without a file descriptor (captured, fake)
        return bool(getattr(sys.stderr, "isatty", lambda: False)())


class _Bar:
    interval = 0.2  # seconds between redraws

    def __init__(self, total, desc, unit, delay):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.start = self.last = time.perf_counter()
        self.delay, self.enabled, self.drawn = delay, visible(), 0  # drawn: length of the text on screen

    def update(self, k=1):
        self.n += k
        now = time.perf_counter()
        if not self.enabled or now - self.start < self.delay or now - self.last < self.interval:
            return
        self.last = now
        rate = self.n / max(now - self.start, 1e-9)
        done = f"{self.n}/{self.total} ({100 * self.n // self.total}%)" if self.total else f"{self.n}"
        eta = f", ETA {(self.total - self.n) / rate:.0f} s" if self.total and rate else ""
        text = f"{self.desc}: {done}, {rate:,.0f} {self.unit}/s{eta}"
        print(f"\r{text:<{self.drawn}}", end="", file=sys.stderr, flush=True)  # padded over a longer old text
        self.drawn = max(self.drawn, len(text))

    def write(self, line):
        """Print `line` on stdout below the bar's line: the bar is cleared first and redrawn by the next update."""
        self.clear()
        print(line, flush=True)

    def clear(self):
        if self.drawn:
            print("\r" + " " * self.drawn + "\r", end="", file=sys.stderr, flush=True)
            self.drawn = 0

    def close(self):
        self.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
