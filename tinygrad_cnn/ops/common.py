"""Helpers the op families share: argument checks, and the few backward building blocks that
must work on numpy arrays (the first-order walk) and on Tensors (under create_graph)."""
import numpy as np

from ..tensor import Tensor


def value(x):
    """The numpy values of a Tensor or array: for masks and indices, whose derivative is zero."""
    return x._data if isinstance(x, Tensor) else x


def unbroadcast(grad, shape):
    """Sum `grad` back to `shape`: undo numpy broadcasting of an input of that shape."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=tuple(range(lead)) + stretched).reshape(shape)


def all_finite(a, b=None):
    """Whether arrays a (and b) hold no inf or NaN. (A dot product would be cheaper on an idle
    machine, but it warns on inf * 0 and runs on every BLAS thread, which a busy machine makes
    slow: measured 18x slower than this under load.)"""
    return bool(np.isfinite(a).all()) and (b is None or bool(np.isfinite(b).all()))


def keep(grad, mask):
    """`grad` where `mask` holds, else exactly 0, as PyTorch's masked backwards give it: an inf or
    NaN gradient at a masked-out position is dropped, not turned into NaN by inf * 0."""
    from .elementwise import Where
    if type(grad) is not Tensor and all_finite(grad):
        return grad * mask  # several times faster than np.where on a random mask (measured)
    return Where.apply(mask, grad, 0)


def check_same_dtype(name, x, w):
    """Matrix products do not promote: a float64 batch would silently make a float32 model's
    whole training step float64 (and slower). PyTorch refuses too."""
    if x.dtype != w.dtype:
        raise TypeError(f"{name}: operands have different dtypes, {x.dtype} {x.shape} and {w.dtype} {w.shape}; "
                        f"convert one, e.g. Tensor(data, dtype=np.float32) or model.to(np.float64)")


def check_labels(name, labels, scores_shape):
    """Class indices for (N, classes) scores: integers of shape (N,), each in [0, classes)."""
    labels = np.asarray(labels)
    n, classes = scores_shape
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels must be integers of shape ({n},) for scores of shape {scores_shape}, "
                         f"got {labels.dtype} of shape {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{name}: labels must lie in [0, {classes}), got values from "
                         f"{labels.min()} to {labels.max()}")
    return labels


def class_indices(labels):
    """Labels as numpy integers. A Tensor of labels is float32 by default: whole numbers are
    taken as indices; anything else is left for the loss to reject."""
    if not isinstance(labels, Tensor):
        return labels
    data = labels._data
    if data.dtype.kind in "iu":
        return data
    return data.astype(np.int64) if np.array_equal(data, np.trunc(data)) else data


def normalize_axis(name, axis, ndim, shape=None):
    """One axis as a non-negative int, or a clear error naming the op and the shape."""
    n = ndim or 1
    if type(axis) is int and -n <= axis < n:
        return axis % n
    if isinstance(axis, Tensor):
        axis = int(axis)
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"{name}: dimension {axis!r} is out of range for a tensor of shape "
                         f"{shape if shape is not None else ndim}")
    return int(axis) % max(ndim, 1)


def reduction_axes(name, dim, axis, shape):
    """PyTorch's `dim` or numpy's `axis` (not both) as None or a tuple of non-negative ints. On a
    0-d tensor, dim 0 and -1 mean the tensor itself, as in PyTorch."""
    if dim is not None and axis is not None:
        raise TypeError(f"{name}: got both dim={dim!r} and axis={axis!r}; they are the same argument")
    axes = axis if dim is None else dim
    if axes is None:
        return None
    axes = tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)
    if len(shape) == 0:
        for a in axes:
            normalize_axis(name, a, 0, shape)
        return None
    out = tuple(normalize_axis(name, a, len(shape), shape) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: dimension {axes} names an axis twice (shape {shape})")
    return out


def keep_flag(name, keepdim, keepdims):
    if keepdims is not None and keepdim:
        raise TypeError(f"{name}: got both keepdim and keepdims; they are the same argument")
    return bool(keepdims if keepdims is not None else keepdim)


def pair(name, value, what):
    """An int or a pair of ints, as (height, width)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name}: {what} must be an int or a pair of ints, got {value!r}")
