"""demos/mnist_cnn.py as a user meets it: every mistake ends in one or two lines naming the flag or
file and what to do, with a non-zero exit status, never in a traceback.

Each kind of mistake runs the demo as a subprocess at least once (exit status and stderr as a shell
sees them); the many variants of a kind run its command-line entry point, cli(), in this process,
which is the same code without the ~0.5 s start-up of a Python process with numpy."""
import gzip
import io
import os
import pickle
import signal
import subprocess
import sys
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import datasets, nn
from tinygrad_cnn.datasets import FILES
from test_demo import DEMO, demo, tiny_mnist  # noqa: F401  (a fixture)

ROOT = DEMO.parent.parent
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root reads and writes past permission bits
NOWHERE = "/nonexistent/mnist"  # as --data-dir: proves a check ran before any data was read
FLAGS = {"--model", "--train-size", "--test-size", "--epochs", "--batch-size", "--optimizer", "--lr", "--momentum",
         "--seed", "--log-every", "--data-dir", "--load", "--save", "--plot", "--report"}


def environment(tmp_path):
    """No network, no user cache, no $MNIST_DIR: only what a test provides; this checkout's package."""
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]))
    return env


def command(args, prelude=None, script=DEMO):
    """The demo's command line; `prelude` is Python run first in the same process (fakes, patches)."""
    if prelude is None:
        return [sys.executable, str(script), *args]
    code = (f"{prelude}\nimport runpy, sys\nsys.argv = {[str(script), *args]!r}\n"
            f"runpy.run_path({str(script)!r}, run_name='__main__')")
    return [sys.executable, "-c", code]


def run(tmp_path, *args, prelude=None, script=DEMO):
    """The demo (or another demo `script`) in a process of its own."""
    return subprocess.run(command(args, prelude, script), capture_output=True, text=True,
                          env=environment(tmp_path), cwd=tmp_path, timeout=300)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """The demo's entry point in this process, with the same environment as `run` and its result."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def offline(url):
        raise urllib.error.URLError("network is unreachable (faked)")
    monkeypatch.setattr(datasets, "_open_url", offline)

    def call(*args):
        try:
            status = demo.cli(list(args))
        except SystemExit as e:  # argparse's exit, or sys.exit(message), which the interpreter would print
            status = e.code if isinstance(e.code, int) else print(e.code, file=sys.stderr) or 1
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, out, err)
    return call


def error_lines(result, status=1, prog="mnist_cnn.py"):
    """The error's lines, after checking the exit status and that nothing but them (and notes) was said."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr and "allow_pickle" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith(f"{prog}: error: "), result.stderr
    return lines


def flags_named(line):
    return {word.strip(",:;()") for word in line.split()} & FLAGS


# --- bad flag values -----------------------------------------------------------------------------

BAD_VALUES = [  # (args, the one flag to name, a fragment of the message)
    (["--lr", "nan"], "--lr", "finite number > 0"),
    (["--lr", "inf"], "--lr", "finite number > 0"),
    (["--lr", "0"], "--lr", "finite number > 0"),
    (["--lr", "-0.01"], "--lr", "finite number > 0"),
    (["--lr", "fast"], "--lr", "expected a number"),
    (["--momentum", "1"], "--momentum", "in [0, 1)"),
    (["--momentum", "-0.5"], "--momentum", "in [0, 1)"),
    (["--momentum", "nan"], "--momentum", "in [0, 1)"),
    (["--train-size", "0"], "--train-size", "from 1 to 60000"),
    (["--test-size", "10001"], "--test-size", "from 1 to 10000"),
    (["--batch-size", "0"], "--batch-size", "at least 1"),
    (["--epochs", "-1"], "--epochs", "at least 0"),
    (["--epochs", "2.5"], "--epochs", "whole number"),
    (["--log-every", "0"], "--log-every", "at least 1"),
    (["--seed", "-1"], "--seed", "from 0 to 4294967295"),
    (["--model", "resnet"], "--model", "invalid choice"),
    (["--optimizer", "rmsprop"], "--optimizer", "invalid choice"),
]


def check_bad_value(result, args, flag, fragment):
    first, hint = error_lines(result, status=2)
    assert first.startswith(f"mnist_cnn.py: error: argument {flag}: ")
    assert flags_named(first) == {flag} and fragment in first and args[1] in first
    assert "--help" in hint  # instead of argparse's seven-line usage above the message


@pytest.mark.parametrize("args,flag,fragment", BAD_VALUES, ids=[" ".join(a) for a, _, _ in BAD_VALUES])
def test_a_bad_value_names_its_flag_only(cli, args, flag, fragment):
    check_bad_value(cli(*args, "--data-dir", NOWHERE), args, flag, fragment)


def test_bad_values_from_the_command_line(tmp_path):
    cases = [BAD_VALUES[0], BAD_VALUES[5], BAD_VALUES[8]]  # --lr, --momentum, --train-size; in parallel
    procs = [subprocess.Popen(command(args + ["--data-dir", NOWHERE]), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=environment(tmp_path), cwd=tmp_path)
             for args, _, _ in cases]
    for proc, (args, flag, fragment) in zip(procs, cases):
        out, err = proc.communicate(timeout=300)
        check_bad_value(subprocess.CompletedProcess(args, proc.returncode, out, err), args, flag, fragment)


def test_momentum_with_adam_says_how_to_fix_it(cli):
    first, _ = error_lines(cli("--model", "deep", "--momentum", "0.9"), status=2)
    assert first.startswith("mnist_cnn.py: error: argument --momentum: ") and "add --optimizer sgd" in first


def test_unknown_flag(cli):
    first, hint = error_lines(cli("--learning-rate", "0.1"), status=2)
    assert "unrecognized arguments: --learning-rate 0.1" in first and "--help" in hint


# --- outputs are checked before data is read or training starts: a bad flag, exit status 2 --------

def unwritable_dir(tmp_path):
    """A directory this process cannot create files in: root ignores permission bits, but not sysfs."""
    if not AS_ROOT:
        d = tmp_path / "read-only"
        d.mkdir()
        d.chmod(0o555)
        return d
    try:
        with open("/sys/.probe", "w"):
            pass
    except OSError:
        if os.path.isdir("/sys"):
            return Path("/sys")
    pytest.skip("no directory that root cannot write in")


def test_save_destination_is_checked_before_data_is_read(tmp_path):
    first, = error_lines(run(tmp_path, "--save", "missing/w.npz", "--data-dir", NOWHERE), status=2)
    assert first == (f"mnist_cnn.py: error: --save missing/w.npz: {tmp_path / 'missing'} does not exist; "
                     f"create it first or choose another place")


@pytest.mark.parametrize("args,fragment", [
    (["--save", "."], "--save .: is a directory; give a file name"),
    (["--plot", "."], "--plot .: is a directory; give a file name"),  # said without matplotlib
    (["--save", "weights.pt"], "--save weights.pt: weights are written as .npz; name the file weights.npz"),
    (["--save", "{unwritable}/w.npz"], "cannot write in"),
    (["--report", "missing/report"], "--report missing/report: {tmp}/missing does not exist"),
    (["--report", "taken"], "--report taken: is a file; --report takes a directory (it writes report.html)"),
    (["--report", "{unwritable}/r"], "cannot write in"),
])
def test_output_destinations_are_checked_before_data_is_read(cli, tmp_path, args, fragment):
    (tmp_path / "taken").write_text("a file")
    unwritable = unwritable_dir(tmp_path) if "{unwritable}" in args[1] else None
    first, *_ = error_lines(cli(args[0], args[1].format(unwritable=unwritable), "--data-dir", NOWHERE), status=2)
    assert fragment.format(tmp=tmp_path) in first and flags_named(first) == {args[0]}


def test_plot_without_matplotlib_says_how_to_install(tmp_path):
    result = run(tmp_path, "--plot", "p.png", "--data-dir", NOWHERE,
                 prelude="import sys; sys.modules['matplotlib'] = None")  # as if not installed
    first, *_ = error_lines(result)
    assert "--plot needs matplotlib, which is not installed: pip install -e '.[plot]'" in first


# --- --load: what a wrong file is, in the demo's terms ------------------------------------------

def write_with(save, *args, **kwargs):
    def write(path):
        with open(path, "wb") as f:
            save(f, *args, **kwargs)
    return write


def tutorial_npz_bytes():
    buffer = io.BytesIO()
    np.savez(buffer, **demo.tutorial_net().state_dict())
    return buffer.getvalue()


WRONG_FILES = {  # name -> (write it into a path, expected fragment)
    "missing": (lambda p: None, "no such file"),
    "directory": (lambda p: p.mkdir(), "is a directory, not a weights file written by --save"),
    "empty": (lambda p: p.write_bytes(b""), "is an empty file, not the .npz weights file that --save writes"),
    "text": (lambda p: p.write_text("conv.weight = [1, 2]\n"), "is a text file, not the .npz"),
    ".npy": (write_with(np.save, np.zeros(3)), "is a single numpy array (.npy, as np.save writes), not the .npz"),
    "pickle": (lambda p: p.write_bytes(pickle.dumps({"w": np.zeros(3)})), "is a Python pickle, not the .npz"),
    "gzip": (lambda p: p.write_bytes(gzip.compress(b"x")), "is a gzip file"),
    "zip without arrays": (lambda p: zipfile.ZipFile(p, "w").writestr("archive/data.pkl", b"\x80"),
                           "is a zip archive (a PyTorch checkpoint?) without numpy arrays; it holds archive/data.pkl"),
    "object array": (write_with(np.savez, **{"0.weight": np.array([{"a": 1}], dtype=object)}),
                     "its array '0.weight' holds Python objects, not numbers"),
    "truncated": (lambda p: p.write_bytes(tutorial_npz_bytes()[:-200]), "is a damaged .npz (zip) file"),
    "unrelated arrays": (write_with(np.savez, a=np.zeros(3)),
                         "does not fit --model tutorial: it has no 0.weight (and 2 more)"),
}


@pytest.mark.parametrize("kind", WRONG_FILES)
def test_a_wrong_weights_file_says_what_it_is(cli, tmp_path, kind):
    write, fragment = WRONG_FILES[kind]
    write(tmp_path / "weights.npz")
    first, *_ = error_lines(cli("--load", "weights.npz", "--data-dir", NOWHERE))  # also: no allow_pickle
    assert first.startswith("mnist_cnn.py: error: --load weights.npz: ") and fragment in first, first


def test_a_wrong_weights_file_from_the_command_line(tmp_path):
    WRONG_FILES["pickle"][0](tmp_path / "w.npz")
    first, *_ = error_lines(run(tmp_path, "--load", "w.npz", "--data-dir", NOWHERE))
    assert first == ("mnist_cnn.py: error: --load w.npz: is a Python pickle, "
                     "not the .npz weights file that --save writes")


def test_weights_of_the_other_model_name_it(cli, tmp_path):
    nn.save(demo.deep_net(), tmp_path / "deep.npz")
    first, hint = error_lines(run(tmp_path, "--load", "deep.npz", "--data-dir", NOWHERE))
    assert first == "mnist_cnn.py: error: --load deep.npz: holds weights for --model deep, not --model tutorial"
    assert hint == "  add --model deep to use them"
    nn.save(demo.tutorial_net(), tmp_path / "tutorial.npz")
    first, _ = error_lines(cli("--model", "deep", "--load", "tutorial.npz", "--data-dir", NOWHERE))
    assert "holds weights for --model tutorial, not --model deep" in first


def test_evaluate_only_needs_no_training_data_and_prints_no_rate(tmp_path, tiny_mnist):
    for name in FILES["train"]:
        os.unlink(Path(tiny_mnist) / f"{name}.gz")
    nn.save(demo.tutorial_net(), tmp_path / "w.npz")
    result = run(tmp_path, "--epochs", "0", "--load", "w.npz", "--data-dir", tiny_mnist, "--test-size", "100")
    assert result.returncode == 0, result.stderr
    assert "Test Accuracy: " in result.stdout and "--- Epoch" not in result.stdout
    assert "images/s" not in result.stdout and "Trained on" not in result.stdout
    assert "No training (--epochs 0): evaluated the weights from w.npz" in result.stdout


def test_batch_larger_than_the_training_set_is_a_stated_adjustment(tmp_path, tiny_mnist):
    result = run(tmp_path, "--data-dir", tiny_mnist, "--train-size", "10", "--test-size", "10", "--batch-size", "64",
                 "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("note: --batch-size 64 is more than the 10 training images; "
                             "using one batch of 10 per epoch\n")
    assert "batch size 10" in result.stdout.splitlines()[-1]


# --- data ----------------------------------------------------------------------------------------

def test_missing_data_directory(tmp_path):
    first, hint = error_lines(run(tmp_path, "--data-dir", "no-such-dir"))
    assert first == f"mnist_cnn.py: error: --data-dir {tmp_path / 'no-such-dir'}: no such directory"
    assert hint.startswith("  pass --data-dir DIR with the four MNIST files: train-images-idx3-ubyte, ")
    assert "load_mnist" not in hint and "data_dir" not in hint


def test_data_directory_that_is_a_file(cli, tmp_path):
    (tmp_path / "mnist.zip").write_bytes(b"PK")
    first, _ = error_lines(cli("--data-dir", "mnist.zip"))
    assert first.endswith(f"--data-dir {tmp_path / 'mnist.zip'}: is not a directory")


def test_a_missing_file_is_named_with_what_is_there(cli, tiny_mnist):
    os.unlink(Path(tiny_mnist) / f"{FILES['test'][1]}.gz")
    first, hint = error_lines(cli("--data-dir", tiny_mnist))
    assert f"--data-dir {tiny_mnist}: no t10k-labels-idx1-ubyte (.gz or gunzipped); it holds " in first
    assert "t10k-images-idx3-ubyte.gz" in first and "--data-dir" in hint


def test_wrong_mnist_dir_names_it(cli, tmp_path, monkeypatch):
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    monkeypatch.setenv("MNIST_DIR", str(env_dir))
    first, hint = error_lines(cli())
    assert f"$MNIST_DIR {env_dir}: no train-images-idx3-ubyte and train-labels-idx1-ubyte" in first
    assert hint.startswith("  fix $MNIST_DIR, or pass --data-dir DIR")


def test_a_corrupt_file_is_named_with_what_to_do(tmp_path, tiny_mnist):
    bad = Path(tiny_mnist) / f"{FILES['train'][0]}.gz"
    bad.write_bytes(gzip.compress(b"\0\0\x08\x03" + bytes(10)))
    first, hint = error_lines(run(tmp_path, "--data-dir", tiny_mnist))
    assert first == f"mnist_cnn.py: error: {bad}: truncated IDX header"
    assert hint == "  replace that file with an intact copy, or point --data-dir at another copy of MNIST"


@pytest.mark.skipif(AS_ROOT, reason="root reads any file: see test_unreadable_data_file")
def test_unreadable_data_directory(tmp_path, tiny_mnist):
    os.chmod(tiny_mnist, 0)
    try:
        first, _ = error_lines(run(tmp_path, "--data-dir", tiny_mnist))
    finally:
        os.chmod(tiny_mnist, 0o755)
    # the first file looked for, or the directory itself (Python >= 3.14's is_file() hides the refusal)
    assert first.startswith(f"mnist_cnn.py: error: {tiny_mnist}")
    assert first.endswith(": cannot read it (Permission denied)")


def test_unreadable_data_file(cli, tiny_mnist, monkeypatch):
    # As above, with the refusal made by hand: root may read any file.
    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "read_bytes", refuse)
    first, hint = error_lines(cli("--data-dir", tiny_mnist))
    assert first == f"mnist_cnn.py: error: {tiny_mnist}/{FILES['train'][0]}.gz: cannot read it (Permission denied)"
    assert hint == "  make it readable, or point --data-dir at another copy of MNIST"


def test_gunzipped_files_are_read(tmp_path, tiny_mnist):
    for path in Path(tiny_mnist).glob("*.gz"):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    result = run(tmp_path, "--data-dir", tiny_mnist, "--train-size", "20", "--test-size", "20", "--epochs", "1")
    assert result.returncode == 0 and "Test Accuracy: " in result.stdout, result.stderr


FAKE_NETWORK = """
import hashlib, gzip, urllib.error, urllib.request
from pathlib import Path
from tinygrad_cnn import datasets
served = {served!r}  # a directory standing in for the mirrors, or None: offline
def fake_open(url):
    if served is None:
        raise urllib.error.URLError("network is unreachable (faked)")
    return urllib.request.urlopen((Path(served) / url.rsplit("/", 1)[1]).as_uri())
datasets._open_url = fake_open
datasets.MIRRORS = ["https://mirror.invalid/mnist/"]
if served:
    for name in datasets.SHA256:
        raw = gzip.decompress((Path(served) / (name + ".gz")).read_bytes())
        datasets.SHA256[name] = hashlib.sha256(raw).hexdigest()
"""


def test_a_corrupt_file_in_the_cache_is_downloaded_again(tmp_path, tiny_mnist):
    cache = tmp_path / "xdg" / "tinygrad_cnn" / "mnist"
    cache.mkdir(parents=True)
    for path in Path(tiny_mnist).glob("*.gz"):
        (cache / path.name).write_bytes(path.read_bytes())
    (cache / f"{FILES['test'][1]}.gz").write_bytes(b"\x1f\x8b broken")
    args = ["--train-size", "20", "--test-size", "20", "--epochs", "1"]
    result = run(tmp_path, *args, prelude=FAKE_NETWORK.format(served=tiny_mnist))
    assert result.returncode == 0 and "Test Accuracy: " in result.stdout, result.stderr
    assert (cache / f"{FILES['test'][1]}.gz").read_bytes() == (Path(tiny_mnist) / f"{FILES['test'][1]}.gz").read_bytes()



def test_a_corrupt_file_in_the_cache_offline(cli, tmp_path, tiny_mnist, monkeypatch):
    cache = tmp_path / "xdg" / "tinygrad_cnn" / "mnist"
    cache.mkdir(parents=True)
    for path in Path(tiny_mnist).glob("*.gz"):
        (cache / path.name).write_bytes(path.read_bytes())
    (cache / f"{FILES['test'][1]}.gz").write_bytes(b"\x1f\x8b broken")
    monkeypatch.setattr(datasets, "MIRRORS", ["https://mirror.invalid/mnist/"])
    first, hint = error_lines(cli("--train-size", "20", "--test-size", "20", "--epochs", "1"))
    assert f"deleted the corrupt cached copy {cache / FILES['test'][1]}.gz: not a readable gzip file" in first
    assert "downloading failed (https://mirror.invalid/mnist/t10k-labels-idx1-ubyte.gz: " in first
    assert "network is unreachable (faked)" in first
    assert hint.startswith("  check the network, or pass --data-dir DIR")


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, tiny_mnist):
    args = ["--data-dir", tiny_mnist, "--train-size", "300", "--test-size", "100", "--epochs", "1000",
            "--save", "w.npz"]
    proc = subprocess.Popen(command(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(tmp_path),
                            cwd=tmp_path)
    try:
        assert proc.stdout.readline() == "MNIST CNN initialized!\n"
        assert proc.stdout.readline() == "--- Epoch 1 ---\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err == "mnist_cnn.py: interrupted (Ctrl-C); nothing more was written\n"
    assert not (tmp_path / "w.npz").exists() and not list(tmp_path.glob(".tmp-*"))
