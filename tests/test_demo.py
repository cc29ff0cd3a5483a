"""demos/mnist_cnn.py: the tutorial's run on real MNIST, its flags, and its files."""
import gzip
import importlib.util
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.datasets import FILES

DEMO = Path(__file__).resolve().parent.parent / "demos" / "mnist_cnn.py"
spec = importlib.util.spec_from_file_location("mnist_cnn_demo", DEMO)
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)


def real_mnist_dir():
    d = os.environ.get("MNIST_DIR")
    if not d or not all((Path(d) / f"{name}.gz").is_file() for pair in FILES.values() for name in pair):
        pytest.skip("real MNIST not found: set MNIST_DIR to a directory with the four IDX .gz files")
    return d


@pytest.fixture
def tiny_mnist(tmp_path):
    """A 300/100-image stand-in with learnable labels (label = a bright 4x4 square's position)."""
    rng = np.random.default_rng(0)

    def write(name, magic, array):
        header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))

    for split, n in [("train", 300), ("test", 100)]:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 28, 28))
        for i, label in enumerate(labels):
            r, c = divmod(int(label), 5)
            images[i, 4 + 10 * r:8 + 10 * r, 2 + 5 * c:6 + 5 * c] = 255
        write(FILES[split][0], 0x803, images)
        write(FILES[split][1], 0x801, labels)
    return str(tmp_path)


def test_help_documents_every_flag():
    out = subprocess.run([sys.executable, str(DEMO), "--help"], capture_output=True, text=True, check=True).stdout
    for flag in ["--model", "--train-size", "--test-size", "--epochs", "--lr", "--batch-size", "--seed",
                 "--save", "--load", "--plot", "--report", "--data-dir", "--momentum", "--optimizer", "--log-every"]:
        assert flag in out
    out = " ".join(out.split())
    assert "0 with --load evaluates saved weights without training" in out
    assert "--epochs 0 --load deep.npz # evaluate saved weights only" in out
    assert "gzipped or not" in out  # --data-dir


def test_tutorial_run_on_real_mnist_prints_its_lines_and_reaches_70_percent(capsys):
    data_dir = real_mnist_dir()
    test_loss, test_acc = demo.main(["--data-dir", data_dir, "--seed", "1"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "MNIST CNN initialized!"
    assert [line for line in out if line.startswith("---")] == [
        "--- Epoch 1 ---", "--- Epoch 2 ---", "--- Epoch 3 ---", "--- Testing the CNN ---"]
    steps = [line for line in out if line.startswith("[Step")]
    assert len(steps) == 30  # 1,000 images, batch size 1, a line every 100 steps, 3 epochs
    assert all(re.fullmatch(r"\[Step \d+00\] Past 100 steps: Average Loss \d\.\d{3} \| Accuracy: \d+%", s)
               for s in steps)
    assert f"Test Loss: {test_loss}" in out and f"Test Accuracy: {test_acc}" in out
    assert test_acc >= 0.70  # the tutorial reports 78% for this run


def test_minibatches_save_and_load_round_trip(tiny_mnist, tmp_path, capsys):
    weights = tmp_path / "w.npz"
    args = ["--data-dir", tiny_mnist, "--train-size", "300", "--test-size", "100", "--batch-size", "10",
            "--epochs", "2", "--lr", "0.05", "--log-every", "10"]
    loss, acc = demo.main(args + ["--save", str(weights)])
    assert acc > 0.5  # the square's position is easy to learn; chance is 10%
    assert weights.is_file() and not list(tmp_path.glob(".tmp-*"))
    out = capsys.readouterr().out
    assert out.count("[Step ") == 2 * 3  # 30 steps of 10 images per epoch

    loaded = demo.main(args[:6] + ["--epochs", "0", "--load", str(weights)])
    assert loaded == (loss, acc)


def test_load_reports_a_bad_weights_file(tiny_mnist, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="bad.npz"):
        demo.main(["--data-dir", tiny_mnist, "--train-size", "10", "--test-size", "10", "--load", str(bad)])


def test_plot_without_matplotlib_says_how_to_install(tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(SystemExit, match=r"matplotlib.*pip install"):
        demo.main(["--data-dir", tiny_mnist, "--plot", str(tmp_path / "p.png")])


def test_plot_writes_a_png(tiny_mnist, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is an optional extra: pip install -e '.[plot]'")
    png = tmp_path / "curves.png"
    demo.main(["--data-dir", tiny_mnist, "--train-size", "300", "--test-size", "100", "--epochs", "1",
               "--log-every", "50", "--plot", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("bad", [["--train-size", "0"], ["--test-size", "10001"], ["--batch-size", "0"]])
def test_bad_flags_are_refused(bad):
    with pytest.raises(SystemExit):
        demo.parse_args(bad)
