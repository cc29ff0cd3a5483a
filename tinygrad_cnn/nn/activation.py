"""Activation layers: each calls its function in tinygrad_cnn.functional."""
import warnings

from .. import functional as F
from ..tensor import Tensor
from .module import Module


class ReLU(Module):
    def __init__(self, inplace=False):  # inplace is accepted and ignored: results are never in place
        pass

    def forward(self, x):
        return (x if isinstance(x, Tensor) else Tensor(x)).relu()  # the method, not F.relu: one call less


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha=1.0, inplace=False):
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(Module):
    """approximate='none' (the exact erf form) or 'tanh'."""

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    def __init__(self, inplace=False):
        pass

    def forward(self, x):
        return F.silu(x)


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        if not min_val < max_val:
            raise ValueError(f"Hardtanh: min_val must be below max_val, got {min_val} and {max_val}")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}"


def _elementwise(name, function, doc):
    """A parameter-free layer that applies F.<function>."""
    def forward(self, x):
        return getattr(F, function)(x)
    return type(name, (Module,), {"__doc__": doc, "__init__": lambda self, inplace=False: None, "forward": forward,
                                  "__module__": __name__})


ReLU6 = _elementwise("ReLU6", "relu6", "min(max(x, 0), 6)")
SELU = _elementwise("SELU", "selu", "scale * elu(x, alpha) with the self-normalizing constants")
Mish = _elementwise("Mish", "mish", "x * tanh(softplus(x))")
Hardsigmoid = _elementwise("Hardsigmoid", "hardsigmoid", "clamp(x / 6 + 1/2, 0, 1)")
Hardswish = _elementwise("Hardswish", "hardswish", "x * hardsigmoid(x)")
LogSigmoid = _elementwise("LogSigmoid", "logsigmoid", "log(sigmoid(x)), stable: -softplus(-x)")
Softsign = _elementwise("Softsign", "softsign", "x / (1 + |x|)")


def _softmax_dim(name, dim, x):
    if dim is not None:
        return dim
    warnings.warn(f"{name}: no dim given; as PyTorch does, dim {0 if x.ndim in (0, 1, 3) else 1} is used for a "
                  f"{x.ndim}-D input. Pass dim explicitly", stacklevel=3)
    return 0 if x.ndim in (0, 1, 3) else 1


class Softmax(Module):
    def __init__(self, dim=None):
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, _softmax_dim("Softmax", self.dim, x))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim=None):
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, _softmax_dim("LogSoftmax", self.dim, x))

    def extra_repr(self):
        return f"dim={self.dim}"
