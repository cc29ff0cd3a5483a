"""Reductions: sum, mean, max, min, argmax, argmin. Each takes PyTorch's `dim`/`keepdim` or
numpy's `axis`/`keepdims`."""
from collections import namedtuple

import numpy as np

from ..tensor import Function, Tensor, _apply, _constant, register
from .common import keep_flag, reduction_axes, value
from .shape import broadcast_to


def _expand(grad, shape, axis, keepdims):
    """Give a reduced gradient back its reduced axes, broadcast against `shape`."""
    if axis is not None and not keepdims:
        grad = grad.reshape(tuple(1 if i in axis else n for i, n in enumerate(shape)))
    elif axis is None and grad.ndim != len(shape):
        grad = grad.reshape((1,) * len(shape))
    return broadcast_to(grad, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad, ctx.shape, ctx.axis, ctx.keepdims)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        out = x.mean(axis=axis, keepdims=keepdims)
        ctx.scale = out.size / x.size if x.size else 0.0
        return out

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad * ctx.scale, ctx.shape, ctx.axis, ctx.keepdims)


class Max(Function):
    """Ties share the gradient equally (like torch.amax): the symmetric subgradient. A NaN is
    the maximum, as in PyTorch, and takes the gradient."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, smallest=False):
        ctx.axis, ctx.keepdims = axis, keepdims
        out = (x.min if smallest else x.max)(axis=axis, keepdims=True)
        mask = (x == out) | (np.isnan(x) if x.dtype.kind == "f" else False)
        ctx.save_for_backward(mask / mask.sum(axis=axis, keepdims=True, dtype=x.dtype))
        return out if keepdims else out.reshape(()) if axis is None else out.squeeze(axis)

    @staticmethod
    def backward(ctx, grad):
        share, = ctx.saved
        return _expand(grad, share.shape, ctx.axis, ctx.keepdims) * value(share)


def _sum_like(op, name):
    def reduce(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
        axes = reduction_axes(name, dim, axis, x.shape)
        return _apply(op, x, axis=axes, keepdims=keep_flag(name, keepdim, keepdims))
    reduce.__name__ = name
    return reduce


sum = register("sum")(_sum_like(Sum, "sum"))  # noqa: A001 (the Tensor method's name)
mean = register("mean")(_sum_like(Mean, "mean"))

values_indices = namedtuple("values_indices", "values indices")


def _extremum(name, smallest):
    def reduce(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """max(): the largest value. max(dim) (PyTorch's form): (values, indices) along dim.
        max(axis=...) (numpy's form): the values only. max(other): the elementwise maximum."""
        if isinstance(dim, (Tensor, np.ndarray)):
            from .elementwise import minimum, maximum
            return (minimum if smallest else maximum)(x, dim)
        axes = reduction_axes(name, dim, axis, x.shape)
        if x._data.size == 0 and (axes is None or any(x.shape[a] == 0 for a in axes)):
            raise ValueError(f"{name}: cannot reduce an empty tensor of shape {x.shape} over an empty dimension")
        keep = keep_flag(name, keepdim, keepdims)
        values = _apply(Max, x, axis=axes, keepdims=keep, smallest=smallest)
        if dim is None:
            return values
        if isinstance(dim, (tuple, list)):
            raise ValueError(f"{name}: dim must be a single dimension when indices are returned; "
                             f"use amax/amin for several")
        return values_indices(values, (argmin if smallest else argmax)(x, dim, keep))
    reduce.__name__ = name
    return reduce


max = register("max")(_extremum("max", False))  # noqa: A001
min = register("min")(_extremum("min", True))  # noqa: A001


@register("amax")
def amax(x, dim=None, keepdim=False):
    return x.max(axis=dim, keepdims=keepdim)


@register("amin")
def amin(x, dim=None, keepdim=False):
    return x.min(axis=dim, keepdims=keepdim)


def _arg(name, numpy_fn):
    def arg(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Indices of the first extreme value (int64 tensor, not differentiable); over the
        flattened tensor when no dim is given, as in PyTorch."""
        axes = reduction_axes(name, dim, axis, x.shape)
        keep = keep_flag(name, keepdim, keepdims)
        if x._data.size == 0:
            raise ValueError(f"{name}: cannot take the {name} of an empty tensor of shape {x.shape}")
        data = x._data
        if axes is None:
            out = np.asarray(numpy_fn(data.reshape(-1)))
            return _constant(out.reshape((1,) * x.ndim) if keep else out)
        if len(axes) > 1:
            raise ValueError(f"{name}: dim must be a single dimension, got {dim if dim is not None else axis}")
        out = numpy_fn(data, axis=axes[0], keepdims=keep)
        return _constant(np.asarray(out, dtype=np.int64))
    arg.__name__ = name
    return arg


argmax = register("argmax")(_arg("argmax", np.argmax))
argmin = register("argmin")(_arg("argmin", np.argmin))
