"""Softmax, log-softmax and the losses, with PyTorch's names, options and reductions.

The default cross-entropy (class indices, mean, no weight, no smoothing, nothing ignored) is one
fused op, the training hot path; every other case is written with Tensor ops, so it has
derivatives of every order. A loss that is exactly zero is +0.0, never -0.0."""
import warnings

import numpy as np

from ..tensor import Function, Tensor, _apply, _lift, register
from .common import class_indices, normalize_axis, value
from .elementwise import Exp, maximum, where


def _log_softmax(x, axis):
    if x.size == 0:  # an empty dim: nothing to normalize (and log of its empty sum would warn)
        return x.copy()
    shifted = x - x.max(axis=axis, keepdims=True)  # the largest logit becomes 0: exp cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        e = np.exp(x - x.max(axis=axis, keepdims=True, initial=-np.inf))  # initial: an empty dim is fine
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
    (softmax - onehot) / N, with no log of a probability that may have underflowed to 0.
    `labels` must already be checked: integers of shape (N,) in [0, classes) (cross_entropy does)."""

    @staticmethod
    def forward(ctx, logits, labels):
        n = len(logits)
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
    if dim is None and axis is None and x.ndim >= 3:  # F.softmax(x) in PyTorch: not the last dimension
        d = 0 if x.ndim == 3 else 1
        warnings.warn(f"{name}: no dim given; as PyTorch does, dim {d} is used for a {x.ndim}-D input. "
                      f"Pass dim explicitly", stacklevel=3)
    return normalize_axis(name, d, x.ndim, x.shape)


@register()
def softmax(x, dim=None, *, axis=None):
    """Probabilities along dim: without one, the last for inputs of up to 2 dimensions, else
    PyTorch's implicit choice (with its warning). For a loss use log_softmax or cross_entropy:
    log(softmax) is -inf wherever a probability underflows to 0."""
    return _apply(Softmax, x, axis=_dim("softmax", x, dim, axis))


@register()
def log_softmax(x, dim=None, *, axis=None):
    """log(softmax(x)) computed stably: finite for any finite logits."""
    return _apply(LogSoftmax, x, axis=_dim("log_softmax", x, dim, axis))


# ---- argument checks shared by the losses ------------------------------------------------------

def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _reduce(loss, reduction):
    # + 0.0: a loss that is exactly zero is 0.0, not -0.0
    if reduction == "mean":
        return loss.mean() + 0.0
    return (loss.sum() if reduction == "sum" else loss) + 0.0


def _check_reduction(name, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_weight(name, weight, classes, dtype):
    """Per-class weights as a constant array (no gradient flows to them, as in PyTorch)."""
    if weight is None:
        return None
    w = np.asarray(value(weight), dtype=dtype)
    if w.shape != (classes,):
        raise ValueError(f"{name}: weight must have shape ({classes},), one per class, got {w.shape}")
    return w


def _labels(name, x, target, ignore_index, probabilities_allowed):
    """Class-index targets checked against the input: (N,) for (N, C), (N, d1, ...) for
    (N, C, d1, ...), 0-d for (C,); integers in [0, C) or equal to ignore_index."""
    labels = np.asarray(target)
    if x.ndim == 0 or x.ndim == 1 and labels.ndim != 0:
        raise ValueError(f"{name}: expected input (N, classes) or (N, classes, d1, ...) with labels (N,) or "
                         f"(N, d1, ...), or input (classes,) with a 0-d label; got input of shape {x.shape} and "
                         f"labels of shape {labels.shape}")
    expected = () if x.ndim == 1 else x.shape[:1] + x.shape[2:]
    classes = x.shape[0] if x.ndim == 1 else x.shape[1]
    if labels.shape != expected or labels.dtype.kind not in "iu":
        also = f" (or class probabilities of shape {x.shape})" if probabilities_allowed else ""
        raise ValueError(f"{name}: labels must be integers of shape {expected} for scores of shape {x.shape}{also}, "
                         f"got {labels.dtype} of shape {labels.shape}")
    kept = labels[labels != ignore_index]
    if kept.size and (kept.min() < 0 or kept.max() >= classes):
        raise ValueError(f"{name}: labels must lie in [0, {classes}) or equal ignore_index={ignore_index}, got "
                         f"values from {kept.min()} to {kept.max()}")
    return labels, classes


def _classes_last(x):
    """(N, C, d1, ...) -> (N * d1 * ..., C); (C,) -> (1, C)."""
    if x.ndim <= 2:
        return x.reshape(-1, x.shape[-1])
    return x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])


def _nll(logp, labels, classes, weight, ignore_index, reduction, smoothing):
    """-weight[label] * logp[label] per target (ignored ones 0), plus label smoothing's share,
    reduced: 'mean' divides by the summed weights of the targets not ignored, as PyTorch does."""
    flat, t = _classes_last(logp), labels.reshape(-1)
    kept = t != ignore_index
    safe = np.where(kept, t, 0)
    w = kept.astype(logp.dtype) if weight is None else np.where(kept, weight[safe], 0).astype(logp.dtype)
    loss = flat[np.arange(len(t)), safe] * (w * (smoothing - 1))
    if smoothing:
        spread = flat if weight is None else flat * weight
        loss = loss - spread.sum(axis=1) * (kept * (smoothing / classes)).astype(logp.dtype)
    if reduction == "none":
        return loss.reshape(labels.shape) + 0.0
    total = loss.sum()
    return (total / w.sum() if reduction == "mean" else total) + 0.0


def _check_smoothing(name, label_smoothing):
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing!r}")


# ---- classification ------------------------------------------------------------------------------

@register()
def cross_entropy(x, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits x (N, C), (N, C, d1, ...) or (C,), as
    torch.nn.functional.cross_entropy: `target` holds class indices ((N,), (N, d1, ...) or 0-d;
    those equal to ignore_index are left out) or class probabilities (a float tensor shaped like
    x). `weight` weighs each class; label_smoothing mixes each target with the uniform one."""
    n = x._data.shape[0] if x._data.ndim else 0
    if weight is None and reduction == "mean" and not label_smoothing and x._data.ndim == 2 and n and ignore_index < 0:
        labels = class_indices(target)
        if type(labels) is not np.ndarray:
            labels = np.asarray(labels)
        if labels.shape == (n,) and labels.dtype.kind in "iu" and labels.min() >= 0 and \
                labels.max() < x._data.shape[1]:
            return _apply(CrossEntropy, x, labels=labels)  # the fused default case
    _check_reduction("cross_entropy", reduction)
    _check_smoothing("cross_entropy", label_smoothing)
    classes = x.shape[0] if x.ndim == 1 else x.shape[1] if x.ndim else 0
    weight = _class_weight("cross_entropy", weight, classes, x.dtype)
    raw = np.asarray(value(target))
    if raw.dtype.kind == "f" and raw.shape == x.shape and x.ndim:
        if ignore_index != -100:
            raise ValueError(f"cross_entropy: ignore_index={ignore_index} applies to class-index targets, not to "
                             f"class probabilities (a float target of the input's shape {x.shape})")
        return _soft_cross_entropy(x, target, weight, reduction, label_smoothing)
    labels, classes = _labels("cross_entropy", x, class_indices(target), ignore_index, True)
    logp = x.log_softmax(0 if x.ndim == 1 else 1)
    return _nll(logp, labels, classes, weight, ignore_index, reduction, label_smoothing)


def _soft_cross_entropy(x, target, weight, reduction, smoothing):
    """-sum_c weight_c * target_c * log softmax(x)_c; 'mean' averages over the targets (not
    the weights), as PyTorch does. The target may require grad."""
    dim = 0 if x.ndim == 1 else 1
    classes = x.shape[dim]
    target = _lift(target, x)
    if smoothing:
        target = target * (1 - smoothing) + smoothing / classes
    terms = x.log_softmax(dim) * target
    if weight is not None:
        terms = terms * weight.reshape((classes,) + (1,) * (x.ndim - dim - 1))
    return _reduce(-terms.sum(axis=dim), reduction)


def nll_loss(log_probs, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """-log_probs[label] per target (pair with log_softmax), as torch.nn.functional.nll_loss:
    log_probs (N, C), (N, C, d1, ...) or (C,); weight, ignore_index and reduction as in
    cross_entropy."""
    log_probs = _tensor(log_probs)
    _check_reduction("nll_loss", reduction)
    labels, classes = _labels("nll_loss", log_probs, class_indices(target), ignore_index, False)
    weight = _class_weight("nll_loss", weight, classes, log_probs.dtype)
    return _nll(log_probs, labels, classes, weight, ignore_index, reduction, 0.0)


def _same_shape(name, x, target):
    if x.shape != target.shape:
        raise ValueError(f"{name}: the target's shape {target.shape} differs from the input's {x.shape}; they must "
                         f"be the same")


def _weighted(loss, weight, name):
    if weight is None:
        return loss
    try:
        np.broadcast_shapes(np.shape(value(weight)), loss.shape)
    except ValueError:
        raise ValueError(f"{name}: weight of shape {np.shape(value(weight))} does not broadcast to the input's "
                         f"shape {loss.shape}") from None
    return loss * weight


def _smallest_log_argument(dtype):
    """A positive number whose log is below -100 (log(0) itself would give a NaN gradient)."""
    return np.finfo(dtype).smallest_subnormal


def binary_cross_entropy(x, target, weight=None, *, reduction="mean"):
    """-(target * log(x) + (1 - target) * log(1 - x)) for probabilities x in [0, 1], with each
    log clamped at -100 as PyTorch does (so x = 0 or 1 gives a finite loss)."""
    x = _tensor(x)
    target = _lift(target, x)
    _check_reduction("binary_cross_entropy", reduction)
    _same_shape("binary_cross_entropy", x, target)
    if x._data.size and not (x._data.min() >= 0 and x._data.max() <= 1):
        raise ValueError(f"binary_cross_entropy: every element of the input must lie in [0, 1] (probabilities: "
                         f"apply sigmoid, or use binary_cross_entropy_with_logits), got values from "
                         f"{np.nanmin(x._data)} to {np.nanmax(x._data)} in shape {x.shape}")
    tiny = _smallest_log_argument(x.dtype)
    log_x = maximum(maximum(x, tiny).log(), -100.0)
    log_rest = maximum(maximum(1 - x, tiny).log(), -100.0)
    loss = -(target * log_x + (1 - target) * log_rest)
    return _reduce(_weighted(loss, weight, "binary_cross_entropy"), reduction)


def binary_cross_entropy_with_logits(x, target, weight=None, *, reduction="mean", pos_weight=None):
    """binary_cross_entropy(sigmoid(x), target) computed from the logits x without ever forming
    sigmoid(x): (1 - target) * softplus(x) + pos_weight * target * softplus(-x), accurate for
    any logit (a loss of 1e-300 is not rounded to 0; logits of +-1000 are fine)."""
    x = _tensor(x)
    target = _lift(target, x)
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _same_shape("binary_cross_entropy_with_logits", x, target)
    positive = target * x.neg().softplus()
    if pos_weight is not None:
        positive = _weighted(positive, pos_weight, "binary_cross_entropy_with_logits (pos_weight)")
    loss = (1 - target) * x.softplus() + positive
    return _reduce(_weighted(loss, weight, "binary_cross_entropy_with_logits"), reduction)


# ---- regression ----------------------------------------------------------------------------------

def _difference(name, x, target, reduction):
    x = _tensor(x)
    target = _lift(target, x)
    _check_reduction(name, reduction)
    if x.shape != target.shape:
        try:
            np.broadcast_shapes(x.shape, target.shape)
        except ValueError:
            raise ValueError(f"{name}: the input's shape {x.shape} and the target's {target.shape} do not "
                             f"broadcast") from None
        # PyTorch broadcasts too, and warns: it is usually a mistake ((N, 1) against (N,) gives (N, N))
        warnings.warn(f"{name}: the target's shape {target.shape} differs from the input's {x.shape}; they are "
                      f"broadcast together, which is likely not what you want", stacklevel=3)
    return x - target


def mse_loss(x, target, *, reduction="mean"):
    """(x - target) ** 2, reduced."""
    d = _difference("mse_loss", x, target, reduction)
    return _reduce(d * d, reduction)


def l1_loss(x, target, *, reduction="mean"):
    """|x - target|, reduced (the gradient at x == target is 0, as in PyTorch)."""
    return _reduce(_difference("l1_loss", x, target, reduction).abs(), reduction)


def smooth_l1_loss(x, target, *, reduction="mean", beta=1.0):
    """0.5 * d**2 / beta where |d| < beta, else |d| - 0.5 * beta (d = x - target); beta=0 is l1_loss."""
    if not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta!r}")
    d = _difference("smooth_l1_loss", x, target, reduction)
    ad = d.abs()
    if beta == 0:
        return _reduce(ad, reduction)
    return _reduce(where(ad.data < beta, d * d * (0.5 / beta), ad - 0.5 * beta), reduction)


def huber_loss(x, target, *, reduction="mean", delta=1.0):
    """0.5 * d**2 where |d| < delta, else delta * (|d| - 0.5 * delta): delta * smooth_l1_loss(beta=delta)."""
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta!r}")
    d = _difference("huber_loss", x, target, reduction)
    ad = d.abs()
    return _reduce(where(ad.data < delta, d * d * 0.5, (ad - 0.5 * delta) * delta), reduction)
