"""demos/benchmark.py runs with tiny counts and reports well-formed numbers (its speed is not tested).

Each test runs the script as a user would, in a subprocess with `--quick --json PATH`. With
MNIST_DIR unset the benchmark times random data of MNIST's shape, so nothing here is skipped
when the real files are absent. The PyTorch column holds numbers when torch is importable and
"not installed" otherwise; both are checked.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor

SCRIPT = Path(__file__).resolve().parent.parent / "demos" / "benchmark.py"
KEYS = ["step_b1", "epoch_b64", "faults_b64", "infer_b1000", "tape_us", "tape_overhead_us", "rss_warm", "rss_end", "rss_growth", "rss_peak"]
HAVE_PROC = Path("/proc/self/status").exists()  # current RSS comes from there; without it it is NaN


def run_benchmark(tmp_path, *args, env=None):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out), *args],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(out.read_text())


def check_figure(key, value):
    if key in ("rss_warm", "rss_end", "rss_growth") and not HAVE_PROC:
        assert math.isnan(value)
    elif key in ("rss_growth", "tape_overhead_us"):  # a difference: in a --quick run, noise may make it <= 0
        assert math.isfinite(value)
    elif key == "faults_b64":  # may be 0
        assert math.isfinite(value) and value >= 0
    else:
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)


def table_cells(stdout, label):
    lines = [line for line in stdout.splitlines() if line.startswith(label + " ")]
    assert len(lines) == 1, f"no single table row for {label!r}"
    return [cell.strip() for cell in lines[0].split(" | ")]


def number(cell):
    return float(cell.split()[0].replace(",", ""))


def check_report(stdout, report):
    rows = {row["key"]: row for row in report["rows"]}
    assert list(rows) == KEYS
    torch_numbers = isinstance(rows["step_b1"]["pytorch"], float)
    for key, row in rows.items():
        check_figure(key, row["ours"])
        if key == "rss_growth" and HAVE_PROC:
            assert row["ours"] == pytest.approx(rows["rss_end"]["ours"] - rows["rss_warm"]["ours"])
        # the tutorial's loop code is timed for the batch-1 training step only
        if key == "step_b1":
            check_figure(key, row["tutorial"])
            assert row["ours_over_tutorial"] == pytest.approx(row["ours"] / row["tutorial"])
        else:
            assert row["tutorial"] is None and row["ours_over_tutorial"] is None
        # PyTorch: numbers in every row, or "not installed" in every row
        if torch_numbers:
            check_figure(key, row["pytorch"])
            no_ratio = row["lower_is_better"] is None or min(row["ours"], row["pytorch"]) <= 0
            expected = None if no_ratio else pytest.approx(row["ours"] / row["pytorch"])
            assert row["ours_over_pytorch"] == expected
        else:
            assert row["pytorch"] == "not installed" and row["ours_over_pytorch"] is None
        for target in row["targets"]:
            needs_torch = "PyTorch" in target["target"]
            assert target["met"] is None if needs_torch and not torch_numbers else isinstance(target["met"], bool)

        # the printed table says the same as the JSON
        cells = table_cells(stdout, row["label"])
        assert len(cells) == 7
        if math.isfinite(row["ours"]):
            assert number(cells[1]) == pytest.approx(row["ours"], rel=0.01, abs=0.05)
        if not torch_numbers:
            assert cells[3] == "not installed"
        elif math.isfinite(row["pytorch"]):
            assert number(cells[3]) == pytest.approx(row["pytorch"], rel=0.01, abs=0.05)
        for cell, value in ((cells[4], row["ours_over_tutorial"]), (cells[5], row["ours_over_pytorch"])):
            assert cell == "-" if value is None else number(cell) == pytest.approx(value, rel=0.01)
    assert "ours/tutorial" in stdout and "target met?" in stdout


def test_quick_run_with_the_environment_as_given(tmp_path):
    """Real MNIST if $MNIST_DIR points at it, else random data; either way the report says which."""
    stdout, report = run_benchmark(tmp_path)
    check_report(stdout, report)
    assert report["quick"] and report["counts"]["steps"] >= 1
    data_line = next(line for line in stdout.splitlines() if line.startswith("data: "))
    assert data_line.startswith("data: real MNIST" if report["real_data"] else "data: RANDOM data")
    for word in ("cores (os.cpu_count())", "numpy ", "BLAS ", "OPENBLAS_NUM_THREADS=", "Python ", "PyTorch"):
        assert word in stdout


def test_quick_run_without_mnist_uses_random_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DIR"}
    stdout, report = run_benchmark(tmp_path, "--blas-threads", "1", env=env)
    check_report(stdout, report)
    assert not report["real_data"] and "RANDOM data" in stdout
    assert "OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1" in stdout


def test_unreadable_data_dir_falls_back_to_random_data_and_says_why(tmp_path):
    stdout, report = run_benchmark(tmp_path, "--data-dir", str(tmp_path / "nowhere"))
    assert not report["real_data"] and "could not read MNIST" in stdout


@pytest.mark.parametrize("args", [["--steps", "0"], ["--chain", "-1"]])
def test_bad_counts_are_refused(args):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "must be >= 1" in proc.stderr


def test_the_numpy_baseline_of_the_tape_benchmark_does_the_same_arithmetic(monkeypatch):
    """The tape overhead is the chain's time minus numpy_chain's: both must compute the same."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts demos/ on the path
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    arrays = [np.linspace(-1, 1, 4) * s for s in (1, 0.9, 0.01)]
    ours = benchmark.chain(*[Tensor(a, requires_grad=True) for a in arrays], 10)
    for got, expected in zip(ours, benchmark.numpy_chain(*arrays, 10)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
