"""demos/benchmark.py runs with tiny counts and reports well-formed numbers (its speed is not tested).

Each run test runs the script as a user would, in a subprocess with `--quick --json PATH`. With
MNIST_DIR unset the benchmark times random data of MNIST's shape, so nothing here is skipped
when the real files are absent. The PyTorch column holds numbers when torch is importable and
"not installed" otherwise; both are checked.
"""
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import time

import numpy as np
import pytest

from tinygrad_cnn import Tensor, autograd

SCRIPT = Path(__file__).resolve().parent.parent / "demos" / "benchmark.py"
KEYS = ["step_b1", "epoch_b64", "step_b1_generic", "deep_b64", "hvp_b64", "faults_b64", "infer_b1000", "tape_us",
        "tape_overhead_us", "rss_warm", "rss_end", "rss_growth", "rss_peak"]
SLOWDOWN = "deep_b64_slowdown"  # the contended table's last row
HAVE_PROC = Path("/proc/self/status").exists()  # current RSS comes from there; without it it is NaN


def run_benchmark(tmp_path, *args, env=None, timeout=240):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(out.read_text())


@pytest.fixture
def benchmark(monkeypatch):
    """demos/benchmark.py as a module (its main() does not run)."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts demos/ on the path
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def running(pid):
    """Whether process pid is alive (a zombie, dead but not yet reaped by its parent, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def wait_gone(pid, seconds=20):
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not running(pid)


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


def check_report(stdout, report, keys=KEYS):
    rows = {row["key"]: row for row in report["rows"]}
    assert list(rows) == keys
    torch_numbers = isinstance(rows["step_b1"]["pytorch"], float)
    for key, row in rows.items():
        check_figure(key, row["ours"])
        if key == SLOWDOWN:  # a ratio of two timings: no ratio column, a target on ours
            assert row["lower_is_better"] is None and row["targets"][0]["target"] == "<=1.3"
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


def test_quick_run_with_the_environment_as_given_idle_then_contended(tmp_path):
    """Real MNIST if $MNIST_DIR points at it, else random data; either way the report says which.
    With --contended, a second table from the same rows run beside a competing process, which
    is gone after the run."""
    stdout, report = run_benchmark(tmp_path, "--contended", timeout=480)
    idle_out, contended_out = stdout.split("\ncontended (one CPU-bound competing process", 1)
    check_report(idle_out, report)
    assert report["quick"] and report["counts"]["steps"] >= 1
    data_line = next(line for line in stdout.splitlines() if line.startswith("data: "))
    assert data_line.startswith("data: real MNIST" if report["real_data"] else "data: RANDOM data")
    for word in ("cores (os.cpu_count())", "numpy ", "BLAS ", "OPENBLAS_NUM_THREADS=", "Python ", "PyTorch",
                 "BLAS threads: "):
        assert word in stdout

    contended = report["contended"]
    check_report(contended_out, dict(rows=contended["rows"]), KEYS + [SLOWDOWN])
    idle_deep, contended_deep = (next(r["ours"] for r in rows if r["key"] == "deep_b64")
                                 for rows in (report["rows"], contended["rows"]))
    assert contended["rows"][-1]["ours"] == pytest.approx(contended_deep / idle_deep)
    assert len(report["modes"]) == 2 and "our BLAS threads during the deep-model row" in report["modes"][1]
    if HAVE_PROC:
        assert not running(contended["competitor_pid"])


def test_quick_run_without_mnist_uses_random_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DIR"}
    stdout, report = run_benchmark(tmp_path, "--blas-threads", "1", env=env)
    check_report(stdout, report)
    assert not report["real_data"] and "RANDOM data" in stdout
    assert "OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1" in stdout
    assert report["contended"] is None


@pytest.mark.skipif(not HAVE_PROC, reason="checks processes through /proc")
@pytest.mark.parametrize("end", ["exception", "SIGINT", "SIGTERM", "SIGKILL"])
def test_the_competitor_ends_with_the_benchmark_however_it_ends(end):
    """The competitor is stopped on leaving its block by an exception, Ctrl-C or SIGTERM, and
    stops itself when the benchmark is killed outright (no `finally` runs then)."""
    code = f"""
import importlib.util, os, signal, sys, time
spec = importlib.util.spec_from_file_location("benchmark", {str(SCRIPT)!r})
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a shell's `cmd &` ignores it)
with benchmark.competitor(settle=0) as proc:
    print(proc.pid, flush=True)
    if {end!r} == "exception":
        raise RuntimeError("a row failed")
    os.kill(os.getpid(), getattr(signal, {end!r}))
    time.sleep(30)
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = int(child.stdout.readline())
    _, stderr = child.communicate(timeout=60)
    # an uncaught KeyboardInterrupt ends Python by SIGINT, as a shell expects
    assert child.returncode == {"exception": 1, "SIGINT": -signal.SIGINT, "SIGTERM": 128 + signal.SIGTERM,
                                "SIGKILL": -signal.SIGKILL}[end], stderr
    assert wait_gone(pid), f"the competitor {pid} outlived the benchmark ({end})"


def test_the_timed_hessian_vector_product_equals_finite_differences(benchmark):
    """hvp_b64 times benchmark.hvp: in float64, it must equal the central difference of the
    gradient along v, (grad L(p + eps v) - grad L(p - eps v)) / (2 eps)."""
    fw, rng = benchmark.Ours(), np.random.default_rng(0)
    model = fw.net()
    params = list(model.parameters())
    for p in params:
        p.data = p.data.astype(np.float64)
    x, y = Tensor(rng.standard_normal((4, 1, 28, 28))), rng.integers(0, 10, 4)
    v = [rng.standard_normal(p.shape) for p in params]
    hv = benchmark.hvp(fw, model, x, y, [Tensor(a) for a in v])

    def grad_at(step):
        start = [p.data for p in params]
        for p, d in zip(params, v):
            p.data = p.data + step * d
        g = autograd.grad(fw.loss(model(x), y), params)
        for p, d in zip(params, start):
            p.data = d
        return [gi.data for gi in g]

    # The error of the central difference is O(eps^2) (measured ~1e-9 here) plus rounding
    # O(1e-16 |g| / eps); a step of 1e-4 already moves some max-pool windows' maxima (errors ~1).
    eps = 1e-6
    for h, plus, minus in zip(hv, grad_at(eps), grad_at(-eps)):
        assert h.dtype == np.float64 and np.abs(h.data).max() > 1  # not trivially zero
        np.testing.assert_allclose(h.data, (plus - minus) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_unreadable_data_dir_falls_back_to_random_data_and_says_why(tmp_path):
    stdout, report = run_benchmark(tmp_path, "--data-dir", str(tmp_path / "nowhere"))
    assert not report["real_data"] and "could not read MNIST" in stdout


@pytest.mark.parametrize("args", [["--steps", "0"], ["--chain", "-1"]])
def test_bad_counts_are_refused(args):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "must be >= 1" in proc.stderr


def test_the_numpy_baseline_of_the_tape_benchmark_does_the_same_arithmetic(benchmark):
    """The tape overhead is the chain's time minus numpy_chain's: both must compute the same."""
    arrays = [np.linspace(-1, 1, 4) * s for s in (1, 0.9, 0.01)]
    ours = benchmark.chain(*[Tensor(a, requires_grad=True) for a in arrays], 10)
    for got, expected in zip(ours, benchmark.numpy_chain(*arrays, 10)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
