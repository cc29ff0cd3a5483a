"""The progress bar never shares a terminal line with the demo's step lines."""
import functools
import os
import re
import sys

import pytest

from tinygrad_cnn import progress
from test_demo import demo, tiny_mnist  # noqa: F401  (a fixture)


class Terminal:
    """A terminal screen as far as \\r and \\n go; stdout and stderr both write onto it."""

    def __init__(self):
        self.lines, self.col, self.log = [""], 0, []

    def write(self, text):
        self.log.append(text)
        for ch in text:
            if ch == "\n":
                self.lines.append("")
                self.col = 0
            elif ch == "\r":
                self.col = 0
            else:
                line = self.lines[-1].ljust(self.col)
                self.lines[-1] = line[:self.col] + ch + line[self.col + 1:]
                self.col += 1
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return True


@pytest.fixture(params=["built-in", "tqdm"])
def terminal(request, monkeypatch):
    if request.param == "tqdm":
        pytest.importorskip("tqdm", reason="tqdm is an optional extra: pip install -e '.[progress]'")
    else:
        monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    monkeypatch.setattr(progress._Bar, "interval", 0)  # redraw on every update
    monkeypatch.setattr(demo, "progress", functools.partial(progress.progress, delay=0))
    return Terminal()


def show_on(screen, monkeypatch):
    # In the test itself: pytest sets its own sys.stdout again between a fixture's setup and the test.
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)


def test_step_lines_never_land_on_the_bar_line(terminal, tiny_mnist, monkeypatch):
    show_on(terminal, monkeypatch)
    demo.main(["--data-dir", tiny_mnist, "--train-size", "100", "--test-size", "100", "--epochs", "2",
               "--log-every", "25"])
    drawn = [t for t in terminal.log if "train: " in t]
    assert len(drawn) >= 8  # the bar really was drawn again after each step line
    steps = [line for line in terminal.lines if "[Step" in line]
    assert len(steps) == 2 * 4
    for line in steps:
        assert re.fullmatch(r"\[Step \d+\] Past 25 steps: Average Loss \d\.\d{3} \| Accuracy: \d+%", line), line
    assert not any("train: " in line for line in terminal.lines)  # and cleared when each epoch ended
    lines = [line.rstrip() for line in terminal.lines]  # a cleared bar leaves spaces behind what follows
    assert lines[lines.index("--- Epoch 2 ---") - 1].startswith("[Step 100]")


def test_a_longer_old_bar_text_is_overwritten(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    bar = progress.progress(10**6, "x", unit="B", delay=0)
    bar.interval = 0
    bar.update(10**5)
    bar.total = None  # a shorter text next
    bar.update(1)
    assert screen.lines[-1].startswith("x: 100001, ") and "ETA" not in screen.lines[-1]  # no residue
    bar.close()
    assert screen.lines[-1].strip() == ""


def test_no_bar_when_stdout_is_a_pipe(monkeypatch):
    # `| tee log` writes our lines to the terminal whenever it likes, maybe onto the bar's line.
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe, os.fdopen(read_end):
        monkeypatch.setattr(sys, "stdout", pipe)
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        assert not progress.visible()
    with open(os.devnull, "w") as file:  # a file (or /dev/null) is fine: nothing of it reaches the terminal
        monkeypatch.setattr(sys, "stdout", file)
        assert progress.visible()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not progress.visible()
