"""The example demos (lenet5.py, resnet.py, char_rnn.py, unet.py), each run briefly on tiny data:
they learn something (above chance, loss falling) and print the lines their README sections show."""
import gzip
import importlib
import math
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.datasets import FILES

DEMOS = Path(__file__).resolve().parent.parent / "demos"
sys.path.insert(0, str(DEMOS))
lenet5, resnet, char_rnn, unet = (importlib.import_module(name) for name in ("lenet5", "resnet", "char_rnn", "unet"))


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    """A 320/100-image stand-in with learnable labels (label = a bright 4x4 square's position)."""
    path = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    for split, n in [("train", 320), ("test", 100)]:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 28, 28))
        for i, label in enumerate(labels):
            r, c = divmod(int(label), 5)
            images[i, 4 + 10 * r:8 + 10 * r, 2 + 5 * c:6 + 5 * c] = 255
        for name, magic, array in [(FILES[split][0], 0x803, images), (FILES[split][1], 0x801, labels)]:
            header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
            (path / f"{name}.gz").write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return str(path)


def epoch_losses(out):
    return [float(v) for v in re.findall(r"Average Loss (\d+\.\d+)", out)]


def test_lenet5_learns_and_follows_its_cosine_schedule(tiny_mnist, capsys):
    loss, acc = lenet5.main(["--data-dir", tiny_mnist, "--epochs", "3", "--batch-size", "16", "--log-every", "10"])
    out = capsys.readouterr().out
    assert acc > 0.5  # chance is 0.1
    assert "AvgPool2d(kernel_size=2" in out and "Tanh()" in out and "Linear(400, 120" in out
    assert "61,706 parameters" in out  # LeNet-5's count: 156 + 2,416 + 48,120 + 10,164 + 850
    # CosineAnnealingLR(T_max=3), stepped per epoch: lr * (1 + cos(pi t / 3)) / 2
    assert [float(v) for v in re.findall(r"--- Epoch \d \(lr ([\d.]+)\)", out)] == \
        pytest.approx([0.05, 0.05 * (1 + math.cos(math.pi / 3)) / 2, 0.05 * (1 + math.cos(2 * math.pi / 3)) / 2],
                      rel=1e-3)
    losses = epoch_losses(out)
    assert losses[-1] < losses[0] / 2
    assert out.count("Test Accuracy:") == 3 and "Trained on 320 examples x 3 epochs" in out


def test_lenet5_relu_and_step_schedule(tiny_mnist, capsys):
    _, acc = lenet5.main(["--data-dir", tiny_mnist, "--epochs", "3", "--batch-size", "16", "--activation", "relu",
                          "--schedule", "step", "--test-size", "50", "--train-size", "160"])
    out = capsys.readouterr().out
    assert "ReLU()" in out and "Tanh()" not in out and "StepLR" in out
    assert re.findall(r"--- Epoch \d \(lr ([\d.]+)\)", out) == ["0.05", "0.05", "0.005"]  # x0.1 every 2 epochs
    assert acc > 0.2


def test_resnet_learns_and_shows_batchnorm_train_and_eval(tiny_mnist, capsys):
    loss, acc = resnet.main(["--data-dir", tiny_mnist, "--width", "4", "--epochs", "3", "--batch-size", "16",
                             "--log-every", "10", "--lr", "0.05"])
    out = capsys.readouterr().out
    assert acc > 0.3
    assert "BasicBlock" in out and "BatchNorm2d(4" in out and "OneCycleLR to max lr 0.05 over 60 steps" in out
    assert "tracked 60 batches" in out  # one running-statistics update per training batch
    for mode in ("eval(), batches of 1000", "train(), batches of 1000", "train(), batches of 10"):
        assert f"Test accuracy in {mode}: " in out
    # the first epoch starts at max_lr / 25, OneCycleLR's default div_factor
    assert "--- Epoch 1 (lr 0.002 at its start) ---" in out


def test_resnet_blocks_skip_shapes_and_batchnorm_modes_leave_the_model_as_it_was():
    np.random.seed(0)
    block = resnet.BasicBlock(4, 8, stride=2)
    from tinygrad_cnn import Tensor
    assert block(Tensor(np.random.randn(3, 4, 14, 14).astype(np.float32))).shape == (3, 8, 7, 7)
    assert isinstance(resnet.BasicBlock(4, 4).shortcut, resnet.nn.Identity)
    for stages, channels in [(1, 4), (2, 8), (3, 16)]:  # each stage after the first doubles the channels
        head = resnet.resnet(4, stages)[-1]
        assert head.weight.shape == (10, channels)
        assert resnet.resnet(4, stages)(Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape == (2, 10)
    model = resnet.resnet(4)
    images = np.random.randn(20, 1, 28, 28).astype(np.float32)
    labels = np.random.randint(0, 10, 20)
    before = model.state_dict()
    modes = resnet.batchnorm_modes(model, images, labels)
    after = model.state_dict()
    assert sorted(before) == sorted(after) and all(np.array_equal(before[k], after[k]) for k in before)
    assert not model.training and set(modes) == {"eval(), batches of 1000", "train(), batches of 1000",
                                                 "train(), batches of 10"}


@pytest.fixture
def poem(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("abcabcabd abcabcabd\nthe cat sat on the mat\n" * 8, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("cell", ["gru", "rnn", "lstm"])
def test_char_rnn_loss_per_character_falls_and_it_samples(poem, cell, capsys):
    loss = char_rnn.main(["--text", poem, "--cell", cell, "--epochs", "12", "--batch-size", "4", "--seq-len", "16",
                          "--hidden", "32", "--lr", "0.01", "--log-every", "10", "--sample", "40", "--prompt", "the"])
    out = capsys.readouterr().out
    vocab = len(set(Path(poem).read_text()))
    assert f"ln({vocab}) = {math.log(vocab):.3f} nats" in out
    logged = [float(v) for v in re.findall(r"Loss (\d+\.\d+) nats/char", out)]
    assert logged[-1] < logged[0] and loss < 0.6 * math.log(vocab)
    assert re.search(r"gradient norm [\d.]+, clipped in \d+ of 10 steps", out)
    sample = out.split("--- Sample (temperature 0.5) ---\n")[1]
    assert sample.startswith("the") and len(sample.rstrip("\n")) >= 43 - 1  # prompt + 40 (one may be a newline)
    assert {"GRU": "gru", "RNN": "rnn", "LSTM": "lstm"}[re.search(r"\(rnn\): (\w+)\(", out).group(1)] == cell


def test_char_rnn_learns_the_zen_of_python_by_default():
    text = char_rnn.zen_of_python()
    assert text.startswith("The Zen of Python, by Tim Peters") and "Beautiful is better than ugly." in text
    x, y = char_rnn.streams(np.arange(20), 3)  # targets are the inputs shifted by one character
    assert x.shape == (6, 3) and np.array_equal(y, x + 1) and np.array_equal(x[:, 1], np.arange(6, 12))


def test_char_rnn_truncates_backprop_between_chunks(poem):
    """The state is carried over but detached: the second chunk's backward stops at it."""
    np.random.seed(0)
    model = char_rnn.CharRNN(5, embed=4, hidden=6)
    _, state = model(np.zeros((3, 2), np.int64))
    assert state.requires_grad and not char_rnn.detach(state).requires_grad
    lstm = char_rnn.CharRNN(5, embed=4, hidden=6, cell="lstm")
    _, state = lstm(np.zeros((3, 2), np.int64))
    assert all(not s.requires_grad for s in char_rnn.detach(state))


def test_unet_denoises_and_its_skips_concatenate(tiny_mnist, capsys):
    noisy, denoised = unet.main(["--data-dir", tiny_mnist, "--epochs", "2", "--width", "4", "--batch-size", "16",
                                 "--log-every", "10", "--test-size", "40", "--lr", "0.01"])
    out = capsys.readouterr().out
    assert denoised < 0.5 * noisy  # noise of sigma 0.5 has mean square 0.25
    assert noisy == pytest.approx(0.25, rel=0.1)
    assert "PSNR: noisy" in out and "Test image 0: clean, noisy, denoised" in out
    art = out.split("clean, noisy, denoised\n")[1].splitlines()
    assert len(art) == 14 and all(len(line) == 3 * 28 + 6 for line in art)
    losses = epoch_losses(out)
    assert losses[-1] < losses[0]
    model = unet.UNet(4)
    from tinygrad_cnn import Tensor
    assert model.dec2[0].weight.shape[1] == 16 and model.dec1[0].weight.shape[1] == 8  # cat doubled the channels
    assert model(Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape == (2, 1, 28, 28)
    plain = unet.UNet(4, skip=False)
    assert plain.dec2[0].weight.shape[1] == 8 and plain(Tensor(np.zeros((1, 1, 28, 28), np.float32))).shape == \
        (1, 1, 28, 28)


@pytest.mark.parametrize("argv, status, message", [
    (["lenet5.py", "--epochs", "0"], 2, "argument --epochs: must be at least 1, got 0"),
    (["resnet.py", "--width", "x"], 2, "argument --width: expected a whole number, got 'x'"),
    (["char_rnn.py", "--text", "/nonexistent/poem.txt"], 1, "--text /nonexistent/poem.txt: no such file"),
    (["char_rnn.py", "--prompt", "~"], 1, "--prompt '~': the text has no '~'"),
    (["unet.py", "--data-dir", "/nonexistent/mnist"], 1, "--data-dir /nonexistent/mnist: no such directory"),
])
def test_mistakes_end_in_a_message_not_a_traceback(argv, status, message):
    result = subprocess.run([sys.executable, str(DEMOS / argv[0]), *argv[1:]], capture_output=True, text=True)
    assert result.returncode == status
    assert message in result.stderr and "Traceback" not in result.stderr


def test_each_demo_documents_its_command_and_flags():
    for name, flags in [("lenet5.py", ["--activation", "--schedule"]), ("resnet.py", ["--width"]),
                        ("char_rnn.py", ["--text", "--cell", "--seq-len", "--clip", "--temperature"]),
                        ("unet.py", ["--noise", "--no-skip", "--width"])]:
        out = subprocess.run([sys.executable, str(DEMOS / name), "--help"], capture_output=True, text=True,
                             check=True).stdout
        assert f"python demos/{name}" in out and all(flag in out for flag in flags + ["--epochs", "--seed"])
