import gzip
import hashlib
import os
import struct
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import datasets
from tinygrad_cnn.datasets import (FILES, IMAGES_MAGIC, LABELS_MAGIC, MNISTError,
                                   MNISTNotFoundError, load_mnist)

# Captured at import: the autouse fixture below removes MNIST_DIR from the environment.
REAL_MNIST_DIR = os.environ.get("MNIST_DIR")
TRAIN_IMG, TRAIN_LBL = FILES["train"]


def idx(magic, dims, payload):
    return struct.pack(f">I{len(dims)}I", magic, *dims) + bytes(payload)


def tiny_images(n=5):
    return np.arange(n * 28 * 28, dtype=np.uint64).reshape(n, 28, 28).astype(np.uint8)


def write_split(d, split="train", images=None, labels=None):
    """Write a valid tiny split into d; return the raw (decompressed) IDX bytes by name."""
    images = tiny_images() if images is None else images
    labels = np.array([3, 0, 9, 1, 7], np.uint8) if labels is None else labels
    img_name, lbl_name = FILES[split]
    raw = {img_name: idx(IMAGES_MAGIC, images.shape, images.tobytes()),
           lbl_name: idx(LABELS_MAGIC, labels.shape, labels.tobytes())}
    d.mkdir(parents=True, exist_ok=True)
    for name, data in raw.items():
        (d / f"{name}.gz").write_bytes(gzip.compress(data))
    return raw


def no_network(url):
    if not url.startswith("file:"):
        raise AssertionError(f"test tried to reach the network: {url}")
    return urllib.request.urlopen(url)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Never touch the real cache, the user's MNIST_DIR or the network."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setattr(datasets, "_open_url", no_network)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "xdg" / "tinygrad_cnn" / "mnist"


def files_in(d):
    return sorted(os.listdir(d)) if d.exists() else []


# --- loading valid data -----------------------------------------------------

@pytest.mark.parametrize("split", ["train", "test"])
def test_loads_tiny_split(tmp_path, split):
    write_split(tmp_path / "d", split)
    images, labels = load_mnist(split, data_dir=tmp_path / "d")
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5,) and labels.dtype == np.uint8
    np.testing.assert_array_equal(images, tiny_images())
    np.testing.assert_array_equal(labels, [3, 0, 9, 1, 7])


def test_mnist_dir_env_and_data_dir_precedence(tmp_path, monkeypatch):
    write_split(tmp_path / "env")
    write_split(tmp_path / "arg", labels=np.array([1, 1, 1, 1, 1], np.uint8))
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "env"))
    assert load_mnist("train")[1].tolist() == [3, 0, 9, 1, 7]
    assert load_mnist("train", data_dir=str(tmp_path / "arg"))[1].tolist() == [1] * 5


def test_files_already_in_cache_are_used(cache):
    write_split(cache)
    assert load_mnist()[0].shape == (5, 28, 28)


def test_results_are_not_shared_state(tmp_path):
    write_split(tmp_path)
    images, labels = load_mnist(data_dir=tmp_path)
    images[:] = 0
    labels[:] = 0
    again_images, again_labels = load_mnist(data_dir=tmp_path)
    np.testing.assert_array_equal(again_images, tiny_images())
    assert again_labels.tolist() == [3, 0, 9, 1, 7]


def test_bad_split():
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_mnist("validation")


def test_cache_dir_location(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert datasets._cache_dir() == tmp_path / "x" / "tinygrad_cnn" / "mnist"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for xdg in (None, "", "relative/dir"):  # unset, empty and relative all fall back to ~/.cache
        if xdg is None:
            monkeypatch.delenv("XDG_CACHE_HOME")
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert datasets._cache_dir() == tmp_path / "home" / ".cache" / "tinygrad_cnn" / "mnist"


# --- corrupt files --------------------------------------------------------

def _trunc_gzip(raw):
    return gzip.compress(raw)[:-12]


CORRUPTIONS = {
    # name: (file to damage, replacement .gz bytes given the valid raw bytes, expected message part)
    "bad gzip": (TRAIN_IMG, lambda raw: b"this is not gzip data", "gzip"),
    "truncated gzip": (TRAIN_LBL, _trunc_gzip, "gzip"),
    "empty": (TRAIN_IMG, lambda raw: gzip.compress(b""), "truncated"),
    "truncated header": (TRAIN_IMG, lambda raw: gzip.compress(raw[:10]), "truncated IDX header"),
    "truncated data": (TRAIN_IMG, lambda raw: gzip.compress(raw[:-100]), "wrong number of items"),
    "extra data": (TRAIN_LBL, lambda raw: gzip.compress(raw + b"\x01"), "wrong number of items"),
    "wrong magic": (TRAIN_LBL, lambda raw: gzip.compress(idx(IMAGES_MAGIC, (5, 1, 1), raw[8:])),
                    "wrong magic number 0x00000803"),
    "float dtype": (TRAIN_IMG, lambda raw: gzip.compress(b"\x00\x00\x0d\x03" + raw[4:]), "magic"),
    "not 28x28": (TRAIN_IMG, lambda raw: gzip.compress(idx(IMAGES_MAGIC, (5, 28, 27), bytes(5 * 28 * 27))),
                  "28x28"),
    "label out of range": (TRAIN_LBL, lambda raw: gzip.compress(raw[:-1] + b"\x0a"),
                           "label 10 at index 4"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_corrupt_file_names_path_and_problem(tmp_path, case):
    name, damage, expected = CORRUPTIONS[case]
    raw = write_split(tmp_path)
    path = tmp_path / f"{name}.gz"
    path.write_bytes(damage(raw[name]))
    with pytest.raises(MNISTError) as err:
        load_mnist("train", data_dir=tmp_path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)
    # no struct/zlib/numpy traceback chained underneath
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_count_mismatch_names_both_files(tmp_path):
    write_split(tmp_path, labels=np.array([1, 2, 3, 4], np.uint8))
    with pytest.raises(MNISTError, match="5 images but .* 4 labels") as err:
        load_mnist("train", data_dir=tmp_path)
    assert str(tmp_path / f"{TRAIN_IMG}.gz") in str(err.value)
    assert str(tmp_path / f"{TRAIN_LBL}.gz") in str(err.value)


# --- missing files and downloads -------------------------------------------

def test_missing_in_user_dir_is_not_downloaded(tmp_path, monkeypatch):
    def opener(url):
        raise AssertionError("must not download into a user-given directory")
    monkeypatch.setattr(datasets, "_open_url", opener)
    d = tmp_path / "nope"
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist("test", data_dir=d)
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(d) in msg and "does not exist" in msg and "MNIST_DIR" in msg
    assert not d.exists()


def test_no_network_gives_one_clear_error(monkeypatch, cache):
    calls = []

    def opener(url):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(datasets, "_open_url", opener)
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist("train")
    msg = str(err.value)
    assert f"{TRAIN_IMG}.gz" in msg and f"{TRAIN_LBL}.gz" in msg
    assert str(cache) in msg
    for mirror in datasets.MIRRORS:
        assert mirror in msg
    assert "network is unreachable" in msg
    assert "MNIST_DIR" in msg and "data_dir" in msg
    assert len(calls) == len(datasets.MIRRORS)  # gave up after the first file, not 2x the timeouts
    assert files_in(cache) == []


def _serve(tmp_path, monkeypatch, raw):
    """Mirrors: an empty dir, one with files that fail verification, one with good files."""
    empty, bad, good = (tmp_path / m for m in ("empty", "bad", "good"))
    empty.mkdir()
    bad.mkdir()
    for name, data in raw.items():  # valid gzip, one byte off: only the hash can tell
        (bad / f"{name}.gz").write_bytes(gzip.compress(data[:-1] + bytes([data[-1] ^ 1])))
    write_split(good)
    for name, data in raw.items():  # the real hashes cannot match tiny fakes
        monkeypatch.setitem(datasets.SHA256, name, hashlib.sha256(data).hexdigest())
    return [d.as_uri() + "/" for d in (empty, bad, good)]


def test_download_falls_back_to_next_mirror(tmp_path, monkeypatch, cache):
    raw = write_split(tmp_path / "expected")
    monkeypatch.setattr(datasets, "MIRRORS", _serve(tmp_path, monkeypatch, raw))
    images, labels = load_mnist("train")
    assert labels.tolist() == [3, 0, 9, 1, 7]
    assert files_in(cache) == sorted(f"{n}.gz" for n in FILES["train"])
    for name in FILES["train"]:
        data = gzip.decompress((cache / f"{name}.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == datasets.SHA256[name]


def test_failed_verification_leaves_nothing(tmp_path, monkeypatch, cache):
    raw = write_split(tmp_path / "expected")
    mirrors = _serve(tmp_path, monkeypatch, raw)
    monkeypatch.setattr(datasets, "MIRRORS", mirrors[:2])
    with pytest.raises(MNISTNotFoundError, match="sha256 mismatch") as err:
        load_mnist("train")
    assert mirrors[0] in str(err.value) and mirrors[1] in str(err.value)
    assert files_in(cache) == []


class FlakyResponse:
    """Serves `good` bytes, then fails with `exc` partway through."""

    def __init__(self, data, exc, seen, cache):
        self.data, self.exc, self.seen, self.cache = data, exc, seen, cache
        self.headers = {"Content-Length": str(len(data))}
        self.sent = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, n):
        self.seen.append(files_in(self.cache))
        if self.sent:
            raise self.exc
        self.sent = min(n, len(self.data) // 2)
        return self.data[:self.sent]


@pytest.mark.parametrize("exc", [ConnectionResetError("connection reset by peer"), KeyboardInterrupt()])
def test_failure_midway_leaves_nothing(tmp_path, monkeypatch, cache, exc):
    raw = write_split(tmp_path / "good")
    seen = []
    monkeypatch.setattr(datasets, "MIRRORS", ["https://mirror.invalid/"])
    monkeypatch.setattr(datasets, "_open_url",
                        lambda url: FlakyResponse(gzip.compress(raw[TRAIN_IMG]), exc, seen, cache))
    with pytest.raises((MNISTNotFoundError, KeyboardInterrupt)) as err:
        load_mnist("train")
    assert isinstance(err.value, MNISTNotFoundError) == isinstance(exc, OSError)
    if isinstance(exc, OSError):
        assert "connection reset by peer" in str(err.value)
    assert any(f.endswith(".part") for f in seen[-1])  # the partial data really was on disk
    assert files_in(cache) == []


# --- other layouts, unreadable places, and the cache repairing itself ---------

LAYOUTS = {  # how a user may have the files: name on disk given the standard name, and compressed or not
    "gunzipped": (lambda n: n, False),
    "kaggle names": (lambda n: n.replace("-idx", ".idx"), False),
    "gunzipped by a browser, .gz kept": (lambda n: f"{n}.gz", False),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_uncompressed_idx_files_are_read(tmp_path, layout):
    rename, compressed = LAYOUTS[layout]
    raw = write_split(tmp_path / "gz")
    d = tmp_path / "d"
    d.mkdir()
    for name, data in raw.items():
        (d / rename(name)).write_bytes(gzip.compress(data) if compressed else data)
    images, labels = load_mnist("train", data_dir=d)
    np.testing.assert_array_equal(images, tiny_images())
    assert labels.tolist() == [3, 0, 9, 1, 7]


def test_gz_and_gunzipped_files_mix(tmp_path):
    raw = write_split(tmp_path)
    (tmp_path / f"{TRAIN_LBL}.gz").unlink()
    (tmp_path / TRAIN_LBL).write_bytes(raw[TRAIN_LBL])
    assert load_mnist("train", data_dir=tmp_path)[1].tolist() == [3, 0, 9, 1, 7]


def test_missing_file_says_what_the_directory_holds(tmp_path):
    write_split(tmp_path)
    (tmp_path / f"{TRAIN_LBL}.gz").unlink()
    (tmp_path / "mnist.npz").write_bytes(b"")
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist("train", data_dir=tmp_path)
    msg = str(err.value)
    assert f"missing: {TRAIN_LBL}.gz (or the same without .gz)" in msg
    assert f"found there: mnist.npz, {TRAIN_IMG}.gz" in msg
    assert err.value.missing == [TRAIN_LBL] and err.value.found == ["mnist.npz", f"{TRAIN_IMG}.gz"]
    assert err.value.source == "data_dir" and err.value.directory == tmp_path


def test_empty_directory_and_a_file_instead_of_a_directory(tmp_path):
    with pytest.raises(MNISTNotFoundError, match="the directory is empty"):
        load_mnist("test", data_dir=tmp_path)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(MNISTNotFoundError, match="which is not a directory") as err:
        load_mnist("test", data_dir=not_a_dir)
    assert err.value.found is None


def test_unreadable_directory_and_file_are_os_errors_naming_them(tmp_path, monkeypatch):
    # Not MNISTErrors: nothing is wrong with the data, and a cached copy must not be deleted for it.
    # Permissions cannot be tested as root (CI is root), so the refusals are made by hand.
    write_split(tmp_path)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))
    for method in ("is_file", "read_bytes"):
        with monkeypatch.context() as m:
            m.setattr(Path, method, refuse)
            with pytest.raises(PermissionError) as err:
                load_mnist("train", data_dir=tmp_path)
            assert err.value.filename == str(tmp_path / f"{TRAIN_IMG}.gz")


def test_corrupt_file_in_a_user_directory_is_left_alone(tmp_path):
    write_split(tmp_path)
    bad = tmp_path / f"{TRAIN_IMG}.gz"
    bad.write_bytes(b"garbage")
    with pytest.raises(MNISTError, match=str(bad)):
        load_mnist("train", data_dir=tmp_path)
    assert bad.read_bytes() == b"garbage"


def test_corrupt_file_in_the_cache_is_downloaded_again(tmp_path, monkeypatch, cache):
    raw = write_split(tmp_path / "expected")
    monkeypatch.setattr(datasets, "MIRRORS", _serve(tmp_path, monkeypatch, raw))
    write_split(cache)
    (cache / f"{TRAIN_IMG}.gz").write_bytes(gzip.compress(raw[TRAIN_IMG][:-100]))  # truncated
    images, labels = load_mnist("train")
    np.testing.assert_array_equal(images, tiny_images())
    assert gzip.decompress((cache / f"{TRAIN_IMG}.gz").read_bytes()) == raw[TRAIN_IMG]
    assert files_in(cache) == sorted(f"{n}.gz" for n in FILES["train"])


def test_corrupt_file_in_the_cache_offline_says_what_happened(tmp_path, monkeypatch, cache):
    def offline(url):
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(datasets, "_open_url", offline)
    write_split(cache)
    bad = cache / f"{TRAIN_LBL}.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(MNISTNotFoundError) as err:
        load_mnist("train")
    msg = str(err.value)
    assert f"deleted the corrupt cached copy {bad}: not a readable gzip file" in msg
    assert "network is unreachable" in msg
    assert not bad.exists()


def test_undeletable_corrupt_cache_file_says_which_file_to_delete(monkeypatch, cache):
    write_split(cache)
    bad = cache / f"{TRAIN_IMG}.gz"
    bad.write_bytes(b"not gzip")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(MNISTError, match=f"; delete {bad} to have it downloaded again"):
        load_mnist("train")


# --- the real data set (only when MNIST_DIR points at it) --------------------

def _real_dir():
    names = [f"{n}.gz" for pair in FILES.values() for n in pair]
    if not REAL_MNIST_DIR or not all((Path(REAL_MNIST_DIR) / n).is_file() for n in names):
        pytest.skip("real MNIST not found: set MNIST_DIR to a directory with the four IDX .gz files")
    return Path(REAL_MNIST_DIR)


@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_real_mnist(monkeypatch, split, n):
    monkeypatch.setenv("MNIST_DIR", str(_real_dir()))
    images, labels = load_mnist(split)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    counts = np.bincount(labels, minlength=10)
    assert len(counts) == 10 and counts.min() > 0.08 * n and counts.max() < 0.12 * n
    if split == "train":
        assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_real_mnist_sha256():
    d = _real_dir()
    for name, expected in datasets.SHA256.items():
        assert hashlib.sha256(gzip.decompress((d / f"{name}.gz").read_bytes())).hexdigest() == expected


def test_progress_falls_back_to_a_stderr_bar_without_tqdm(monkeypatch, capsys):
    from tinygrad_cnn import progress
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    bar = progress.progress(200, "x.gz", unit="B", delay=0)
    assert isinstance(bar, progress._Bar)
    bar.last -= 1  # as if the previous redraw were a second ago
    bar.update(50)
    bar.close()
    err = capsys.readouterr().err
    assert "x.gz: 50/200 (25%)" in err and "B/s, ETA" in err
