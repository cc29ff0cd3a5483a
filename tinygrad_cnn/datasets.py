"""MNIST loader: parses the four standard IDX files into uint8 numpy arrays.

Each file may be gzipped (``train-images-idx3-ubyte.gz``, as downloaded) or not (as ``gunzip``
leaves it: ``train-images-idx3-ubyte``, or Kaggle's ``train-images.idx3-ubyte``).

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
Fashion-MNIST can be dropped in under the same file names. A file in the cache
that fails those checks is deleted and downloaded again.
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
FILES = {  # split -> (images, labels); on disk see _names_on_disk()
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
MAGICS = (IMAGES_MAGIC, LABELS_MAGIC)  # in the order of FILES' pairs
TIMEOUT = 30  # seconds per connection attempt


class MNISTError(ValueError):
    """An MNIST file is corrupt, truncated or not the expected IDX file."""


class MNISTNotFoundError(MNISTError):
    """MNIST files are missing and could not be downloaded.

    Besides the message it carries the facts, for callers that phrase their own: ``missing`` (the
    file names, without ".gz"), ``directory``, ``source`` ("data_dir", "$MNIST_DIR", or None for
    the download cache), ``found`` (the names the directory holds; None if it is not a directory),
    ``failures`` (one "url: error" per failed download) and ``notes`` (e.g. a corrupt copy deleted).
    """

    def __init__(self, message, missing, directory, source, found, failures=(), notes=()):
        super().__init__(message)
        self.missing, self.directory, self.source = list(missing), directory, source
        self.found, self.failures, self.notes = found, list(failures), list(notes)


def _open_url(url):
    # Module-level so tests can swap in a fake; file:// URLs work as mirrors too.
    return urllib.request.urlopen(url, timeout=TIMEOUT)


def load_mnist(split="train", data_dir=None):
    """Return ``(images, labels)``: uint8 arrays of shape (N, 28, 28) and (N,).

    Raises MNISTNotFoundError when files are missing (and could not be downloaded), MNISTError when
    one is corrupt, and OSError (such as PermissionError) when one cannot be read."""
    if split not in FILES:
        raise ValueError(f"unknown MNIST split {split!r}; valid splits: {', '.join(map(repr, FILES))}")
    user_dir = data_dir if data_dir is not None else os.environ.get("MNIST_DIR") or None
    directory = Path(user_dir if user_dir is not None else _cache_dir()).expanduser().absolute()
    source = "data_dir" if data_dir is not None else "$MNIST_DIR" if user_dir else None
    names = FILES[split]
    missing = [n for n in names if _find(directory, n) is None]
    if missing:
        _provide(missing, directory, source)
    images, labels = (_read_or_refetch(directory, n, magic, source) for n, magic in zip(names, MAGICS))
    if len(images) != len(labels):
        img_path, lbl_path = (_find(directory, n) for n in names)
        raise MNISTError(f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels")
    return images, labels


def _names_on_disk(name):
    """The names a file may have on disk: gzipped, gunzipped, and Kaggle's dotted variant."""
    return f"{name}.gz", name, name.replace("-idx", ".idx")


def _find(directory, name):
    # A directory we may not search raises PermissionError (an OSError): is_file() hides only "not found".
    return next((p for p in (directory / n for n in _names_on_disk(name)) if p.is_file()), None)


def _cache_dir():
    base = os.environ.get("XDG_CACHE_HOME")
    if not base or not os.path.isabs(base):  # the XDG spec says to ignore relative values
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygrad_cnn" / "mnist"


def _read_or_refetch(directory, name, magic, source):
    path = _find(directory, name)
    try:
        return _read_idx(path, magic)
    except MNISTError as e:
        if source is not None:  # a directory the user named is only read, never repaired
            raise
        # Our own cache: a damaged copy (a disk error, a file put there by hand) is replaced.
        try:
            path.unlink()
        except OSError:
            raise MNISTError(f"{e}; delete {path} to have it downloaded again") from None
        _provide([name], directory, None, notes=[f"deleted the corrupt cached copy {e}"])
        return _read_idx(_find(directory, name), magic)


def _read_idx(path, magic):
    raw = path.read_bytes()  # an unreadable file is an OSError naming it, not a corrupt file
    # Decide by content, not name: browsers often gunzip a download but keep its .gz name.
    if raw[:2] == b"\x1f\x8b" or path.suffix == ".gz" and raw[:3] != b"\0\0\x08":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise MNISTError(f"{path}: not a readable gzip file or truncated ({e})") from None
    if len(raw) < 4:
        raise MNISTError(f"{path}: truncated, only {len(raw)} bytes after decompression (no IDX header)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        kind = "images (ubyte, 3-D)" if magic == IMAGES_MAGIC else "labels (ubyte, 1-D)"
        raise MNISTError(f"{path}: wrong magic number 0x{found:08x}, expected 0x{magic:08x} for IDX {kind}")
    try:
        data = mnist.parse_idx(io.BytesIO(raw)).astype(np.uint8, copy=False)
    except struct.error:  # parse_idx unpacks the dimension sizes without a length check
        raise MNISTError(f"{path}: truncated IDX header") from None
    except mnist.IdxDecodeError as e:
        raise MNISTError(f"{path}: corrupt or truncated IDX data: {e}") from None
    if magic == IMAGES_MAGIC and data.shape[1:] != (28, 28):
        raise MNISTError(f"{path}: images are {data.shape[1]}x{data.shape[2]}, expected 28x28")
    if magic == LABELS_MAGIC and data.size and data.max() > 9:
        bad = int(np.argmax(data > 9))
        raise MNISTError(f"{path}: label {data[bad]} at index {bad} is outside 0..9")
    return data


def _listing(directory):
    """What `directory` holds, for messages; None if it is not a directory (an unreadable one raises)."""
    return sorted(os.listdir(directory)) if directory.is_dir() else None


def _provide(missing, directory, source, notes=()):
    """Download ``missing`` into the cache ``directory``, or raise MNISTNotFoundError."""
    failures = []
    if source is None:
        for name in missing:
            failures = _download(name, directory)
            if failures:  # stop: the other files would only repeat the same failures
                break
        missing = [n for n in missing if _find(directory, n) is None]
        if not missing:
            return
    found = _listing(directory)
    where = f"{directory} (from {source})" if source else f"{directory} (the download cache)"
    if found is None:
        where += ", which is not a directory" if directory.exists() else ", which does not exist"
    lines = [f"MNIST files missing: {', '.join(n + '.gz' for n in missing)} (or the same without .gz)",
             f"  looked in {where}"]
    if found is not None:
        lines.append(f"  found there: {_summary(found)}" if found else "  the directory is empty")
    lines += [f"  {note}" for note in notes]
    if source:
        lines.append(f"  not downloaded: {source} is only read, never written to")
    else:
        lines.append("  download failed from every mirror:")
        lines += [f"    {f}" for f in failures]
    all_files = ", ".join(f"{n}.gz" for pair in FILES.values() for n in pair)
    lines.append(f"To provide them, put the four files ({all_files}; gzipped or not) in a directory and set "
                 f"MNIST_DIR to it or pass load_mnist(data_dir=...), or put them in {_cache_dir()}")
    raise MNISTNotFoundError("\n".join(lines), missing, directory, source, found, failures, notes)


def _summary(names, limit=8):
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


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
