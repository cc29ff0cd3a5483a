"""Softmax, log-softmax and the losses built on them."""
import numpy as np

from ..tensor import Function, Tensor, _apply, register
from .common import check_labels, class_indices, normalize_axis
from .elementwise import Exp


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)  # the largest logit becomes 0: exp cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.saved[0]
        return out * (grad - (grad * out).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        out = _log_softmax(x, axis)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad - Exp.apply(ctx.saved[0]) * grad.sum(axis=ctx.axis, keepdims=True)


class CrossEntropy(Function):
    """Mean over the batch of -log softmax(logits)[label], fused: the gradient is
    (softmax - onehot) / N, with no log of a probability that may have underflowed to 0."""

    @staticmethod
    def forward(ctx, logits, labels):
        if logits.ndim != 2:
            raise ValueError(f"cross_entropy: expected logits of shape (N, classes), got {logits.shape}")
        n = len(logits)
        labels = check_labels("cross_entropy", labels, logits.shape)
        logp = _log_softmax(logits, 1)
        ctx.save_for_backward(logits, logp, labels)  # logp: for the first-order gradient only
        # + 0.0 turns the -0.0 of a zero loss into 0.0, as PyTorch prints it
        return np.asarray(-logp[np.arange(n), labels].sum() / n + 0.0)

    @staticmethod
    def backward(ctx, grad):
        logits, logp, labels = ctx.saved
        n = len(logits)
        if type(grad) is not Tensor:
            d = np.exp(logp)
            d[np.arange(n), labels] -= 1
            d *= grad / n
            return d
        onehot = np.zeros(logits.shape, logits.dtype)
        onehot[np.arange(n), labels._data] = 1
        return (Softmax.apply(logits, axis=1) - onehot) * (grad / n)


def _dim(name, x, dim, axis):
    if dim is not None and axis is not None:
        raise TypeError(f"{name}: got both dim={dim!r} and axis={axis!r}; they are the same argument")
    d = -1 if dim is None and axis is None else dim if dim is not None else axis
    return normalize_axis(name, d, x.ndim, x.shape)


@register()
def softmax(x, dim=None, *, axis=None):
    """Probabilities along dim (default the last). For a loss use log_softmax or cross_entropy:
    log(softmax) is -inf wherever a probability underflows to 0."""
    return _apply(Softmax, x, axis=_dim("softmax", x, dim, axis))


@register()
def log_softmax(x, dim=None, *, axis=None):
    """log(softmax(x)) computed stably: finite for any finite logits."""
    return _apply(LogSoftmax, x, axis=_dim("log_softmax", x, dim, axis))


@register()
def cross_entropy(x, labels):
    """Mean over the batch of -log softmax(self)[i, labels[i]]; self is (N, classes) logits."""
    return _apply(CrossEntropy, x, labels=class_indices(labels))


def nll_loss(log_probs, labels):
    """Mean of -log_probs[i, labels[i]] (pair with log_softmax)."""
    log_probs = log_probs if isinstance(log_probs, Tensor) else Tensor(log_probs)
    if log_probs.ndim != 2:
        raise ValueError(f"nll_loss: expected log-probabilities of shape (N, classes), got {log_probs.shape}")
    labels = check_labels("nll_loss", class_indices(labels), log_probs.shape)
    return -log_probs[np.arange(len(labels)), labels].mean() + 0.0
