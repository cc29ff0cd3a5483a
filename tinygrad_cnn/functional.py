"""Functional forms of the Tensor ops, PyTorch style: `F.conv2d(x, w)` is `x.conv2d(w)`.

Inputs may be Tensors or numpy arrays (taken as constants).
"""
import numpy as np

from . import ops
from .tensor import Tensor, _apply, _lift, class_indices


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def relu(x): return _t(x).relu()
def sigmoid(x): return _t(x).sigmoid()
def tanh(x): return _t(x).tanh()
def exp(x): return _t(x).exp()
def log(x): return _t(x).log()
def softmax(x, axis=-1): return _t(x).softmax(axis)
def log_softmax(x, axis=-1): return _t(x).log_softmax(axis)
def matmul(x, y): return _t(x) @ y
def flatten(x, start_dim=0, end_dim=-1): return _t(x).flatten(start_dim, end_dim)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    return _t(x).conv2d(weight, bias, stride, padding)


def max_pool2d(x, kernel_size=2, stride=None):
    return _t(x).max_pool2d(kernel_size, stride)


def linear(x, weight, bias=None):
    """x @ weight.T + bias, with weight shaped (out_features, in_features) as in PyTorch."""
    x = _t(x)
    return _apply(ops.Linear, x, *[_lift(p, x) for p in (weight, bias) if p is not None])


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[i, labels[i]]: the stable way to write
    -log(softmax(logits))[labels], which is -inf once a probability underflows to 0."""
    return _t(logits).cross_entropy(labels)


def nll_loss(log_probs, labels):
    """Mean of -log_probs[i, labels[i]] (pair with log_softmax)."""
    log_probs = _t(log_probs)
    if log_probs.ndim != 2:
        raise ValueError(f"nll_loss: expected log-probabilities of shape (N, classes), got {log_probs.shape}")
    labels = ops.check_labels("nll_loss", class_indices(labels), log_probs.shape)
    return -log_probs[np.arange(len(labels)), labels].mean()


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""
    x = _t(x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    keep = (np.random.random_sample(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * keep
