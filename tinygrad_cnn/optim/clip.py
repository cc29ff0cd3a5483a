"""Gradient clipping, PyTorch's torch.nn.utils.clip_grad_norm_ and clip_grad_value_."""
import math

import numpy as np

from ..tensor import Tensor


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients of `parameters` in place so that their total norm (the `norm_type` norm of
    the vector of each gradient's norm) is at most `max_norm`, and return that norm before scaling
    as a 0-d Tensor. As in PyTorch the scale is max_norm / (norm + 1e-6), capped at 1, and a
    non-finite norm scales to nan/0 unless `error_if_nonfinite` raises instead."""
    params = _parameters(parameters, "clip_grad_norm_")
    _check_bound(max_norm, "clip_grad_norm_", "max_norm")
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(f"clip_grad_norm_: norm_type must be a number or 'inf', got {norm_type!r}") from None
    grads = [q.grad for q in params if q.grad is not None]
    if not grads:
        return Tensor(np.float32(0))
    arrays = [g._data if isinstance(g, Tensor) else np.asarray(g) for g in grads]
    total = _norm(np.array([_norm(a, p) for a in arrays], dtype=np.result_type(*arrays)), p)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, "
                           f"so they cannot be clipped; error_if_nonfinite=False scales them by it anyway")
    scale = np.minimum(total.dtype.type(max_norm) / (total + total.dtype.type(1e-6)), 1)  # keeps a nan
    with np.errstate(invalid="ignore"):  # inf * 0 is nan, as in PyTorch (error_if_nonfinite is the check)
        for q in params:
            if type(q.grad) is np.ndarray:
                q.grad *= scale
            elif q.grad is not None:  # a Tensor grad (create_graph): scaled on the tape
                q.grad = q.grad * float(scale)
    return Tensor(total)


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient of `parameters` elementwise into [-clip_value, clip_value], in place."""
    params = _parameters(parameters, "clip_grad_value_")
    c = _check_bound(clip_value, "clip_grad_value_", "clip_value")
    for q in params:
        if type(q.grad) is np.ndarray:
            np.clip(q.grad, -c, c, out=q.grad)
        elif q.grad is not None:
            q.grad = q.grad.maximum(-c).minimum(c)


def _parameters(parameters, name):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for q in params:
        if not isinstance(q, Tensor):
            raise TypeError(f"{name}: parameters must be Tensors, got {type(q).__name__}")
    return params


def _check_bound(value, name, arg):
    # PyTorch lets a negative bound flip or pin the gradients; that is always a mistake
    try:
        ok = float(value) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name}: {arg} must be a number >= 0, got {value!r}")
    return float(value)


def _norm(x, p):
    """The p-norm of the array x, in its dtype. The sum of powers is taken of x / max|x|: it
    neither overflows nor underflows where the norm itself is representable."""
    a = np.abs(x).ravel()
    if a.size == 0:
        return x.dtype.type(0)
    if p == math.inf:
        return a.max()
    if p == -math.inf:
        return a.min()
    if p == 0:
        return x.dtype.type(np.count_nonzero(a))
    if p < 0:  # zeros make it 0; no scaling needed for that
        with np.errstate(divide="ignore"):
            return x.dtype.type(np.sum(a ** p) ** (1 / p))
    m = a.max()
    if not m or not np.isfinite(m):  # 0, inf or nan: the norm is that
        return m
    return m * x.dtype.type(np.sum((a / m) ** p) ** (1 / p))
