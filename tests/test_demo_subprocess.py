"""The demos' mistakes and tools as a shell meets them: each runs demos/mnist_cnn.py or demos/curvature.py
in a process of its own and checks the exit status and what was printed (test_demo_errors.py's helpers).
Runs that train use a tiny synthetic MNIST in tmp_path, 20 images for 1 epoch, so they always run."""
import importlib.util
import json
import os
import re
import select
import subprocess
from pathlib import Path

import pytest

from tinygrad_cnn.datasets import FILES
from test_demo import DEMO, tiny_mnist  # noqa: F401  (a fixture)
from test_demo_errors import NOWHERE, command, environment, error_lines, run

CURVATURE = DEMO.parent / "curvature.py"
TINY = ["--train-size", "20", "--test-size", "10", "--epochs", "1"]


def trained(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Test Accuracy: " in result.stdout
    return result.stdout


# --- flags ---------------------------------------------------------------------------------------

def test_an_unknown_flag_is_named_with_exit_status_2(tmp_path):
    first, hint = error_lines(run(tmp_path, "--learning-rate", "0.1", "--data-dir", NOWHERE), status=2)
    assert first == "mnist_cnn.py: error: unrecognized arguments: --learning-rate 0.1"
    assert hint == "  `mnist_cnn.py --help` lists every flag"  # not argparse's seven lines of usage


# --- data ----------------------------------------------------------------------------------------

def test_a_data_dir_lacking_some_files_names_the_missing_and_what_is_there(tmp_path, tiny_mnist):
    os.unlink(Path(tiny_mnist) / f"{FILES['train'][1]}.gz")
    first, hint = error_lines(run(tmp_path, "--data-dir", tiny_mnist, *TINY))
    found = ", ".join(sorted(f"{name}.gz" for name in FILES["test"] + FILES["train"][:1]))
    assert first == (f"mnist_cnn.py: error: --data-dir {tiny_mnist}: no {FILES['train'][1]} (.gz or gunzipped); "
                     f"it holds {found}")
    assert hint.startswith("  pass --data-dir DIR with the four MNIST files: ")


# --- the tape tools: --graph, --profile, --profile-trace, --detect-anomaly ------------------------

def test_graph_writes_dot(tmp_path, tiny_mnist):
    out = trained(run(tmp_path, "--data-dir", tiny_mnist, *TINY, "--graph", "step.dot"))
    assert "Saved the graph of the first training step to step.dot" in out
    assert (tmp_path / "step.dot").read_text().startswith("digraph")


def test_graph_with_an_unknown_extension_is_named_before_data_is_read(tmp_path):
    first, = error_lines(run(tmp_path, "--graph", "out.xyz", "--data-dir", NOWHERE), status=2)
    assert first == ("mnist_cnn.py: error: --graph out.xyz: unsupported picture format '.xyz'; "
                     "use a file name ending in .dot, .svg, .png or .pdf")
    assert not (tmp_path / "out.xyz").exists()


def test_profile_prints_the_per_op_table_and_writes_the_trace(tmp_path, tiny_mnist):
    out = trained(run(tmp_path, "--data-dir", tiny_mnist, *TINY, "--profile", "--profile-trace", "trace.json"))
    table = out[out.index("Profile of the training (--profile):"):]
    for op in ("Conv2d", "MaxPool2d", "Linear", "CrossEntropy"):
        assert re.search(rf"^{op}\s+20\s", table, re.MULTILINE), table  # one call per step: 20 images, batch 1
    assert "Saved the trace to trace.json" in out
    events = json.loads((tmp_path / "trace.json").read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert any(e.get("name") == "Conv2d" for e in events)


def test_detect_anomaly_lets_a_healthy_run_finish(tmp_path, tiny_mnist):
    result = run(tmp_path, "--data-dir", tiny_mnist, *TINY, "--detect-anomaly")
    trained(result)
    assert result.stderr == ""


# --- --plot: its destination is checked before data is read, matplotlib or not --------------------

def test_plot_into_a_missing_directory_needs_no_matplotlib(tmp_path):
    result = run(tmp_path, "--plot", "missing/c.png", "--data-dir", NOWHERE,
                 prelude="import sys; sys.modules['matplotlib'] = None")  # as if not installed
    first, = error_lines(result, status=2)
    assert first == (f"mnist_cnn.py: error: --plot missing/c.png: {tmp_path / 'missing'} does not exist; "
                     f"create it first or choose another place")


# Which formats matplotlib writes depends on its installation, so the demo asks it. Where it is not
# installed, a stand-in answers that one question as matplotlib does (FigureCanvasBase's classmethod).
FAKE_MATPLOTLIB = """
import sys, types
matplotlib, backend_bases = types.ModuleType("matplotlib"), types.ModuleType("matplotlib.backend_bases")
class FigureCanvasBase:
    @classmethod
    def get_supported_filetypes(cls):
        return {"pdf": "Portable Document Format", "png": "Portable Network Graphics",
                "svg": "Scalable Vector Graphics"}
backend_bases.FigureCanvasBase, matplotlib.backend_bases = FigureCanvasBase, backend_bases
sys.modules.update({"matplotlib": matplotlib, "matplotlib.backend_bases": backend_bases})
"""


@pytest.mark.parametrize("name, what", [("curves.xyz", ".xyz files"), ("curves", "a name without an extension")])
def test_plot_format_is_checked_before_data_is_read(tmp_path, name, what):
    have_matplotlib = importlib.util.find_spec("matplotlib") is not None
    result = run(tmp_path, "--plot", name, "--data-dir", NOWHERE,
                 prelude=None if have_matplotlib else FAKE_MATPLOTLIB)
    first, = error_lines(result, status=2)
    assert first.startswith(f"mnist_cnn.py: error: --plot {name}: matplotlib cannot write {what}; "
                            f"end the name in one of ")
    assert ".pdf, " in first and ".png, " in first


# --- the progress bar on a terminal ----------------------------------------------------------------

def screen_lines(raw):
    """The lines a terminal shows for `raw`: a carriage return sends the cursor back to column 0,
    where later characters overwrite earlier ones."""
    lines = []
    for line in raw.split("\n"):
        cells, col = [], 0
        for ch in line:
            if ch == "\r":
                col = 0
                continue
            cells[col:col + 1] = [ch]
            col += 1
        lines.append("".join(cells).rstrip())
    return lines


def test_the_progress_bar_never_shares_a_line_with_a_step_line(tmp_path, tiny_mnist):
    pty = pytest.importorskip("pty", reason="pseudo-terminals are a POSIX facility")
    try:
        master, slave = pty.openpty()
    except OSError as e:
        pytest.skip(f"no pseudo-terminal available here ({e})")
    # The bar draws only on a terminal, after 2 s, at most every 0.2 s: here at once and on every step,
    # and always the built-in bar (tqdm's line handling is tqdm's to test).
    prelude = ("import sys; sys.modules['tqdm'] = None\nfrom tinygrad_cnn import progress\n"
               "progress.progress.__defaults__ = ('', 'it', 0.0)\nprogress._Bar.interval = 0.0")
    args = ["--data-dir", tiny_mnist, *TINY, "--log-every", "5"]
    proc = subprocess.Popen(command(args, prelude), stdin=slave, stdout=slave, stderr=slave,
                            env=environment(tmp_path), cwd=tmp_path)
    os.close(slave)
    raw = b""
    try:
        while select.select([master], [], [], 120)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the demo has exited and closed the terminal
                break
            if not chunk:
                break
            raw += chunk
        assert proc.wait(timeout=60) == 0, raw
    finally:
        proc.kill()
        os.close(master)
    raw = raw.decode()
    assert raw.count("\rtrain: ") >= 20, raw  # the bar was drawn after every step, so a test of lines means something
    lines = screen_lines(raw)
    steps = [line for line in lines if "[Step" in line]
    assert len(steps) == 4, lines  # 20 steps, a line every 5
    for line in steps:
        assert re.fullmatch(r"\[Step \d+\] Past 5 steps: Average Loss \d+\.\d{3} \| Accuracy: \d+%", line), lines
    assert not [line for line in lines if "train: " in line and not line.startswith("train: ")], lines
    assert "Test Accuracy: " in raw


# --- demos/curvature.py ------------------------------------------------------------------------------

def curvature_error(result, status):
    lines = error_lines(result, status=status, prog="curvature.py")
    assert "usage:" not in result.stderr and "load_mnist" not in result.stderr and "MNIST_DIR" not in result.stderr
    return lines


def test_curvature_missing_data_dir_is_two_lines_naming_the_flag(tmp_path):
    first, hint = curvature_error(run(tmp_path, "--data-dir", "/nonexistent", script=CURVATURE), status=1)
    assert first == "curvature.py: error: --data-dir /nonexistent: no such directory"
    assert hint.startswith("  pass --data-dir DIR with the four MNIST files: train-images-idx3-ubyte, ")


CURVATURE_FLAGS = {"--data-dir", "--train-size", "--curvature-size", "--iterations", "--penalty", "--penalty-epochs",
                   "--seed"}
CURVATURE_BAD_VALUES = [  # (flag, value, the message after "argument FLAG: ")
    ("--iterations", "0", "must be at least 2, got 0"),
    ("--iterations", "2.5", "expected a whole number, got '2.5'"),
    ("--penalty", "-1", "must be a finite number >= 0, got -1"),
    ("--penalty", "nan", "must be a finite number >= 0, got nan"),
    ("--penalty", "inf", "must be a finite number >= 0, got inf"),
    ("--penalty", "much", "expected a number, got 'much'"),
    ("--penalty-epochs", "0", "must be at least 1, got 0"),
    ("--train-size", "63", "must be from 64 to 60000 (MNIST has 60,000 training images), got 63"),
    ("--train-size", "60001", "must be from 64 to 60000 (MNIST has 60,000 training images), got 60001"),
    ("--curvature-size", "0", "must be from 1 to 60000 (MNIST has 60,000 training images), got 0"),
    ("--seed", "-1", "must be from 0 to 4294967295, got -1"),
]


def check_curvature_bad_value(result, flag, value, message):
    first, hint = curvature_error(result, status=2)
    assert first == f"curvature.py: error: argument {flag}: {message}"
    assert {word.strip(",:;()") for word in first.split()} & CURVATURE_FLAGS == {flag}
    assert hint == "  `curvature.py --help` lists every flag"


def test_curvature_bad_values_from_the_command_line(tmp_path):
    cases = [CURVATURE_BAD_VALUES[0], CURVATURE_BAD_VALUES[2], ("--bogus", None, None)]  # in parallel
    procs = [subprocess.Popen(command([flag] + ([value] if value else []), script=CURVATURE), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=environment(tmp_path), cwd=tmp_path)
             for flag, value, _ in cases]
    outputs = [proc.communicate(timeout=300) for proc in procs]  # sets returncode
    results = [subprocess.CompletedProcess(proc.args, proc.returncode, *out) for proc, out in zip(procs, outputs)]
    for result, case in zip(results[:2], cases):
        check_curvature_bad_value(result, *case)
    first, _ = curvature_error(results[2], status=2)
    assert first == "curvature.py: error: unrecognized arguments: --bogus"


@pytest.fixture(scope="module")
def curvature():
    spec = importlib.util.spec_from_file_location("curvature_demo_cli", CURVATURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flag, value, message", CURVATURE_BAD_VALUES,
                         ids=[f"{f} {v}" for f, v, _ in CURVATURE_BAD_VALUES])
def test_curvature_a_bad_value_names_its_flag_only(curvature, capsys, flag, value, message):
    # The same entry point as the command line's, in this process: argparse's exit is a SystemExit.
    with pytest.raises(SystemExit) as exit:
        curvature.run(curvature.main, curvature.PROG, [flag, value, "--data-dir", NOWHERE])
    err = capsys.readouterr().err
    check_curvature_bad_value(subprocess.CompletedProcess([], exit.value.code, "", err), flag, value, message)
