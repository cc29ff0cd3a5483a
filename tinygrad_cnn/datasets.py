"""MNIST loader: parses the four standard gzipped IDX files into uint8 numpy arrays.

Where the files are looked for, in order:
  1. ``load_mnist(data_dir=...)``
  2. ``$MNIST_DIR``
  3. the per-user cache ``$XDG_CACHE_HOME/tinygrad_cnn/mnist`` (default ``~/.cache/...``)

A directory given through 1 or 2 is only read, never downloaded into: it may be
read-only or shared, and naming it means "the data is here", so a missing file
there is reported rather than silently fetched. Only the cache is filled from
``MIRRORS``, and a download is kept only if the sha256 of its decompressed bytes
matches ``SHA256``. Files already on disk are checked structurally (magic,
shapes, counts, label range) but not hashed, so same-format data sets such as
Fashion-MNIST can be dropped in under the same file names.
"""
import gzip
import hashlib
import http.client
import io
import os
import struct
import tempfile
import urllib.request
import zlib
from pathlib import Path

import mnist
import numpy as np

from .progress import progress

MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
FILES = {  # split -> (images, labels); on disk each name has a ".gz" suffix
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SHA256 = {  # of the decompressed bytes, so a re-compressed mirror copy still verifies
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # ubyte data, 3 resp. 1 dims
TIMEOUT = 30  # seconds per connection attempt


class MNISTError(ValueError):
    """An MNIST file is corrupt, truncated or not the expected IDX file."""


class MNISTNotFoundError(MNISTError):
    """MNIST files are missing and could not be downloaded."""


def _open_url(url):
    # Module-level so tests can swap in a fake; file:// URLs work as mirrors too.
    return urllib.request.urlopen(url, timeout=TIMEOUT)


def load_mnist(split="train", data_dir=None):
    """Return ``(images, labels)``: uint8 arrays of shape (N, 28, 28) and (N,)."""
    if split not in FILES:
        raise ValueError(f"unknown MNIST split {split!r}; valid splits: {', '.join(map(repr, FILES))}")
    user_dir = data_dir if data_dir is not None else os.environ.get("MNIST_DIR") or None
    directory = Path(user_dir if user_dir is not None else _cache_dir()).expanduser().absolute()
    names = FILES[split]
    missing = [n for n in names if not (directory / f"{n}.gz").is_file()]
    if missing:
        source = "data_dir" if data_dir is not None else "$MNIST_DIR" if user_dir else None
        _provide(missing, directory, source)
    img_path, lbl_path = (directory / f"{n}.gz" for n in names)
    images = _read_idx(img_path, IMAGES_MAGIC)
    labels = _read_idx(lbl_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise MNISTError(f"{img_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise MNISTError(f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise MNISTError(f"{lbl_path}: label {labels[bad]} at index {bad} is outside 0..9")
    return images, labels


def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):  # the XDG spec says to ignore relative values
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygrad_cnn" / "mnist"


def _read_idx(path, magic):
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as e:
        raise MNISTError(f"{path}: not a readable gzip file or truncated ({e})") from None
    if len(raw) < 4:
        raise MNISTError(f"{path}: truncated, only {len(raw)} bytes after decompression (no IDX header)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        kind = "images (ubyte, 3-D)" if magic == IMAGES_MAGIC else "labels (ubyte, 1-D)"
        raise MNISTError(f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} for IDX {kind}")
    try:
        data = mnist.parse_idx(io.BytesIO(raw))
    except struct.error:  # parse_idx unpacks the dimension sizes without a length check
        raise MNISTError(f"{path}: truncated IDX header") from None
    except mnist.IdxDecodeError as e:
        raise MNISTError(f"{path}: corrupt or truncated IDX data: {e}") from None
    return data.astype(np.uint8, copy=False)


def _provide(missing, directory, source):
    """Download ``missing`` into the cache ``directory``, or raise MNISTNotFoundError."""
    failures = []
    if source is None:
        for name in missing:
            failures = _download(name, directory)
            if failures:  # stop: the other files would only repeat the same failures
                break
        missing = [n for n in missing if not (directory / f"{n}.gz").is_file()]
        if not missing:
            return
    where = f"{directory} (from {source})" if source else f"{directory} (the download cache)"
    if not directory.is_dir():
        where += ", which does not exist"
    lines = [f"MNIST files missing: {', '.join(n + '.gz' for n in missing)}", f"  looked in {where}"]
    if source:
        lines.append(f"  not downloaded: {source} is only read, never written to")
    else:
        lines.append("  download failed from every mirror:")
        lines += [f"    {f}" for f in failures]
    all_files = ", ".join(f"{n}.gz" for pair in FILES.values() for n in pair)
    lines.append(f"To provide them, put the four files ({all_files}) in a directory and set "
                 f"MNIST_DIR to it or pass load_mnist(data_dir=...), or put them in {_cache_dir()}")
    raise MNISTNotFoundError("\n".join(lines))


def _download(name, directory):
    """Fetch ``name`` from the first mirror that gives verified bytes; return failures."""
    failures = []
    for mirror in MIRRORS:
        url = mirror.rstrip("/") + f"/{name}.gz"
        try:
            _fetch(url, directory, name)
            return []
        except (OSError, EOFError, zlib.error, http.client.HTTPException, MNISTError) as e:
            failures.append(f"{url}: {e}")
    return failures


def _fetch(url, directory, name):
    directory.mkdir(parents=True, exist_ok=True)
    # The temp file lives next to the target so os.replace is atomic, and has a
    # name that is never mistaken for a finished file.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, _open_url(url) as resp:
            bar = progress(int(resp.headers.get("Content-Length") or 0), f"{name}.gz", unit="B", delay=0)
            try:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
        digest = hashlib.sha256(gzip.decompress(Path(tmp).read_bytes())).hexdigest()
        if digest != SHA256[name]:
            raise MNISTError(f"sha256 mismatch (got {digest[:12]}..., expected {SHA256[name][:12]}...)")
        os.replace(tmp, directory / f"{name}.gz")
    except BaseException:  # including KeyboardInterrupt: never leave a partial file
        Path(tmp).unlink(missing_ok=True)
        raise
