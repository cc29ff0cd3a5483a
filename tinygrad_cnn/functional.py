"""Functional forms of the Tensor ops, PyTorch style: `F.conv2d(x, w)` is `x.conv2d(w)`.

Inputs may be Tensors or numpy arrays (taken as constants).
"""
import numpy as np

from .tensor import Tensor
from .ops.linalg import linear  # noqa: F401
from .ops.loss import nll_loss  # noqa: F401
from .ops import conv, loss, shape


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def relu(x): return _t(x).relu()
def sigmoid(x): return _t(x).sigmoid()
def tanh(x): return _t(x).tanh()
def exp(x): return _t(x).exp()
def log(x): return _t(x).log()
def softmax(x, dim=None, *, axis=None): return loss.softmax(_t(x), dim, axis=axis)
def log_softmax(x, dim=None, *, axis=None): return loss.log_softmax(_t(x), dim, axis=axis)
def matmul(x, y): return _t(x) @ y
def flatten(x, start_dim=0, end_dim=-1): return shape.flatten(_t(x), start_dim, end_dim)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return conv.conv2d(_t(x), weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return conv.conv_transpose2d(_t(x), weight, bias, stride, padding, output_padding, groups, dilation)


def max_pool2d(x, kernel_size=2, stride=None, padding=0):
    return conv.max_pool2d(_t(x), kernel_size, stride, padding)


def avg_pool2d(x, kernel_size=2, stride=None, padding=0, count_include_pad=True):
    return conv.avg_pool2d(_t(x), kernel_size, stride, padding, count_include_pad)


def adaptive_avg_pool2d(x, output_size):
    return conv.adaptive_avg_pool2d(_t(x), output_size)


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[i, labels[i]]: the stable way to write
    -log(softmax(logits))[labels], which is -inf once a probability underflows to 0."""
    return _t(logits).cross_entropy(labels)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""
    x = _t(x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = (np.random.random_sample(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * keep
