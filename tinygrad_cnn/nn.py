"""Layers, PyTorch style: a Module owns Tensors (parameters) and sub-modules, found by walking
its attributes, so a model is a plain class with a `forward`."""
import os
import tempfile
import zipfile

import numpy as np

from . import functional as F
from .tensor import Tensor


class Module:
    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):  # a plain list of layers works like ModuleList
                yield from ((f"{name}.{i}", m) for i, m in enumerate(value) if isinstance(m, Module))

    def named_parameters(self, prefix=""):
        """Every Tensor attribute, frozen ones (requires_grad=False) included, so that they are
        saved and loaded too; optimizers skip parameters without a gradient."""
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self):
        """Each parameter once, even if shared by two layers (or an optimizer would step it twice)."""
        return list({id(p): p for _, p in self.named_parameters()}.values())

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, dtype):
        """Cast every parameter to `dtype` in place (e.g. np.float64 for a gradcheck)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def state_dict(self):
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        params = dict(self.named_parameters())
        problems = [f"missing: {', '.join(sorted(set(params) - set(state)))}" if set(params) - set(state) else "",
                    f"unexpected: {', '.join(sorted(set(state) - set(params)))}" if set(state) - set(params) else ""]
        problems += [f"{name} has shape {np.shape(state[name])}, expected {p.shape}"
                     for name, p in params.items() if name in state and np.shape(state[name]) != p.shape]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        for name, p in params.items():
            p.data = np.array(state[name], dtype=p.dtype)

    def __repr__(self):
        children = "".join(f"\n  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children())
        return f"{type(self).__name__}({self.extra_repr()}{children}{chr(10) if children else ''})"

    def extra_repr(self):
        return ""


def _init_weight(shape, fan_in, init):
    """'kaiming': He-uniform, keeps the activation variance through ReLU layers.
    'tutorial': the from-scratch tutorial's randn / fan_in (its conv: randn / 9)."""
    if init == "kaiming":
        bound = np.sqrt(6.0 / fan_in)
        return np.random.uniform(-bound, bound, shape).astype(np.float32)
    if init == "tutorial":
        return (np.random.standard_normal(shape) / fan_in).astype(np.float32)
    raise ValueError(f"unknown init {init!r}: use 'kaiming' or 'tutorial'")


class Linear(Module):
    """y = x @ weight.T + bias, weight shaped (out_features, in_features) as in PyTorch."""

    def __init__(self, in_features, out_features, bias=True, init="kaiming"):
        self.in_features, self.out_features = in_features, out_features
        self.weight = Tensor(_init_weight((out_features, in_features), in_features, init), requires_grad=True)
        self.bias = Tensor(np.zeros(out_features, np.float32), requires_grad=True) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, init="kaiming"):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels, self.stride, self.padding = in_channels, out_channels, stride, padding
        # The tutorial divides its 3x3 filters by 9: the kernel area, its fan-in with one channel.
        fan_in = in_channels * kh * kw
        self.weight = Tensor(_init_weight((out_channels, in_channels, kh, kw), fan_in, init), requires_grad=True)
        self.bias = Tensor(np.zeros(out_channels, np.float32), requires_grad=True) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.weight.shape[2:]}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None):
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)


class Dropout(Module):
    """Inverted dropout: active in train(), the identity in eval()."""

    def __init__(self, p=0.5):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    def __init__(self, *layers):
        self.layers = list(layers)

    def named_children(self):
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


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
    """Load weights written by `save` into `module` (shapes and names must match)."""
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
