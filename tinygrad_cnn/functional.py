"""Functional forms of the Tensor ops, PyTorch style: `F.conv2d(x, w)` is `x.conv2d(w)`.

Every Tensor method that an op family registers (tensor.register) is here too, taking the tensor
as its first argument; numpy arrays and numbers are taken as constants. Functions that are not
methods (losses, cat, stack, where, dropout) are defined in their op family and listed below.
"""
import functools

import numpy as np

from .tensor import REGISTRY, Tensor
from .ops.elementwise import where  # noqa: F401
from .ops.linalg import linear  # noqa: F401
from .ops.loss import (binary_cross_entropy, binary_cross_entropy_with_logits, huber_loss, l1_loss,  # noqa: F401
                       mse_loss, nll_loss, smooth_l1_loss)
from .ops.shape import cat, embedding, pad, stack  # noqa: F401


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _functional(method):
    @functools.wraps(method)
    def function(x, *args, **kwargs):
        return method(_t(x), *args, **kwargs)
    return function


_NOT_FUNCTIONS = {"bool", "float", "int", "double", "half", "long", "type", "dim", "size", "numel", "nelement", "to"}
for _name, _method in list(REGISTRY.items()):
    if not _name.startswith("_") and _name not in globals() and _name not in _NOT_FUNCTIONS \
            and callable(_method) and not isinstance(_method, (classmethod, property)):
        globals()[_name] = _functional(_method)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""
    x = _t(x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = (np.random.random_sample(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * keep
