"""Saving and loading a module's state_dict (parameters and persistent buffers) as .npz; and
the gradient clipping helpers where PyTorch users look for them (torch.nn.utils)."""
import os
import tempfile
import zipfile

import numpy as np

from ..optim.clip import clip_grad_norm_, clip_grad_value_  # noqa: F401  (defined with the optimizers)


def save(module, path):
    """Write module.state_dict() to `path` as .npz, atomically: a crash leaves the old file or
    none, never a half-written one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **module.state_dict())
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a saved model need not be
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(module, path):
    """Load weights written by `save` into `module` (names and shapes must match)."""
    try:
        archive = np.load(os.fspath(path))
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array (.npy), not named arrays (.npz)")
        with archive:
            state = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no weights file at {path}") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"load: {path} is not a readable .npz weights file ({e})") from None
    module.load_state_dict(state)
    return module
