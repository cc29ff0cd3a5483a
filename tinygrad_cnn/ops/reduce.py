"""Reductions: sum, mean, prod, var, std, logsumexp, norm, cumsum, max, min, argmax, argmin, any,
all. Each takes PyTorch's `dim`/`keepdim` or numpy's `axis`/`keepdims`; on a 0-d tensor, dim 0
and -1 mean the tensor itself, as in PyTorch.

Only Sum, Mean, Max and Cumsum are ops of their own; the rest are written with Tensor ops, so
they are differentiable to any order without a backward of their own.
"""
from collections import namedtuple

import numpy as np

from ..tensor import Function, Tensor, _apply, _constant, register
from .common import all_finite, keep, keep_flag, normalize_axis, reduction_axes, value
from .elementwise import maximum, minimum, where
from .shape import broadcast_to, cat, gather


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
        if not x.size:
            ctx.scale = 0.0
            return x.mean(axis=axis, keepdims=keepdims)  # NaN, with numpy's warning
        total = x.sum(axis=axis, keepdims=keepdims)  # sum / count: np.mean's Python layers cost 4x more
        ctx.scale = total.size / x.size
        return total / (x.size // total.size)

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad * ctx.scale, ctx.shape, ctx.axis, ctx.keepdims)


class Max(Function):
    """The largest (smallest=True: the smallest) values, with the gradient shared equally among
    tied extremes (like torch.amax): the symmetric subgradient. A NaN is the maximum, as in
    PyTorch, and takes the gradient. max(dim) routes to one index instead: see _extremum."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, smallest=False):
        ctx.axis, ctx.keepdims, ctx.smallest = axis, keepdims, smallest
        out = (x.min if smallest else x.max)(axis=axis, keepdims=True)
        mask = (x == out) | (np.isnan(x) if x.dtype.kind == "f" else False)
        ctx.save_for_backward(mask / mask.sum(axis=axis, keepdims=True, dtype=x.dtype))
        return out if keepdims else out.reshape(()) if axis is None else out.squeeze(axis)

    @staticmethod
    def backward(ctx, grad):
        share, = ctx.saved
        g = _expand(grad, share.shape, ctx.axis, ctx.keepdims)
        if type(g) is Tensor or not all_finite(g):  # an inf gradient times a share of 0 is 0, as PyTorch
            g = keep(g, value(share) != 0)
        return g * value(share)


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return np.cumsum(x, axis=axis) if x.ndim else x.copy()

    @staticmethod
    def backward(ctx, grad):
        if grad.ndim == 0:
            return grad
        # Each input adds to every output from its position on: the gradient is the sum of the
        # output gradients from there to the end, a cumulative sum taken backwards.
        backwards = (slice(None),) * ctx.axis + (slice(None, None, -1),)
        return Cumsum.apply(grad[backwards], axis=ctx.axis)[backwards]


def _axes_and_keep(name, x, dim, keepdim, axis, keepdims):
    """The reduced axes as a tuple of non-negative ints (all of them for None), and keepdim."""
    axes = reduction_axes(name, dim, axis, x.shape)
    return tuple(range(x.ndim)) if axes is None else axes, keep_flag(name, keepdim, keepdims)


def _reduced_shape(shape, axes, keep):
    return tuple(1 if i in axes else n for i, n in enumerate(shape)) if keep else \
        tuple(n for i, n in enumerate(shape) if i not in axes)


def _reshaped(t, shape):
    return t if t.shape == shape else t.reshape(shape)


def _sum_like(op, name):
    def reduce(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
        axes = reduction_axes(name, dim, axis, x.shape)
        return _apply(op, x, axis=axes, keepdims=keep_flag(name, keepdim, keepdims))
    reduce.__name__ = name
    return reduce


sum = register("sum")(_sum_like(Sum, "sum"))  # noqa: A001 (the Tensor method's name)
mean = register("mean")(_sum_like(Mean, "mean"))


@register()
def prod(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The product of the elements. Computed as a tree of pairwise products: every derivative,
    of any order, is then exact where inputs are 0 (as a sole zero's gradient is the product of
    the others, and with two zeros every gradient is 0), with no out / x to divide 0 by 0."""
    axes, keep = _axes_and_keep("prod", x, dim, keepdim, axis, keepdims)
    rest = [i for i in range(x.ndim) if i not in axes]
    n = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    order = rest + list(axes)
    y = (x if order == sorted(order) else x.permute(*order)).reshape(*[x.shape[i] for i in rest], n)
    width = 1 << (n - 1).bit_length() if n > 1 else 1
    if width != n:  # pad with ones to a power of two (also makes an empty product 1)
        y = cat([y, np.ones(y.shape[:-1] + (width - n,), x.dtype)], -1)
    while width > 1:
        width //= 2
        y = y[..., :width] * y[..., width:]
    return _reshaped(y, _reduced_shape(x.shape, axes, keep))


def _correction(name, unbiased, correction, ddof):
    given = [(k, v) for k, v in (("unbiased", unbiased), ("correction", correction), ("ddof", ddof)) if v is not None]
    if len(given) > 1:
        raise TypeError(f"{name}: got {' and '.join(k for k, _ in given)}; give only one of them")
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1 if not given else given[0][1]


def _spread(name, x, dim, unbiased, keepdim, correction, axis, keepdims, ddof):
    """(x - mean over the axes, the axes, keepdim, degrees of freedom) for var and std."""
    if isinstance(dim, bool):  # PyTorch's var(unbiased) overload: x.var(False)
        dim, unbiased = None, dim if unbiased is None else unbiased
    axes, keep = _axes_and_keep(name, x, dim, keepdim, axis, keepdims)
    n = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    dof = n - _correction(name, unbiased, correction, ddof)
    return x - x.mean(axes, keepdim=True), axes, keep, dof if dof > 0 else 0


def _divide(total, dof):
    # no degrees of freedom left: inf, or NaN for 0 / 0, as PyTorch gives (times inf: no warning)
    return total / dof if dof else total * np.inf


@register()
def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None, ddof=None):
    """Variance over dim, with PyTorch's default correction=1 (Bessel's: divide by N - 1), for
    every spelling, numpy's axis= included; numpy's ddof= is the same as correction=."""
    d, axes, keep, dof = _spread("var", x, dim, unbiased, keepdim, correction, axis, keepdims, ddof)
    return _divide((d * d).sum(axes, keepdim=keep), dof)


@register()
def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None, ddof=None):
    """Standard deviation (see var). Taken as the 2-norm of x - mean, which cannot overflow
    where the variance does, and whose gradient at zero variance is 0, as PyTorch's."""
    d, axes, keep, dof = _spread("std", x, dim, unbiased, keepdim, correction, axis, keepdims, ddof)
    if not dof:  # the result is NaN or inf: through the variance, so that the gradient is NaN too, as PyTorch's
        return _divide((d * d).sum(axes, keepdim=keep), dof) ** 0.5
    return norm(d, 2, axes, keep) / np.sqrt(dof)


@register()
def logsumexp(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """log(sum(exp(x))) over dim (required, as in PyTorch), finite for any finite x."""
    if dim is None and axis is None:
        raise TypeError("logsumexp: dim is required (as in PyTorch), e.g. x.logsumexp(dim=-1)")
    axes, keep = _axes_and_keep("logsumexp", x, dim, keepdim, axis, keepdims)
    # Shift by the largest value (a constant: the formula holds for any shift), so that exp
    # cannot overflow; an infinite largest value would make inf - inf, so shift by 0 there.
    shift = np.asarray(np.max(x._data, axis=axes, keepdims=True, initial=-np.inf))
    shift[~np.isfinite(shift)] = 0
    out = (x - shift).exp().sum(axes, keepdim=True).log() + shift
    return _reshaped(out, _reduced_shape(x.shape, axes, keep))


def _magnitude(x):
    """|x| with PyTorch's gradient sign(x): 0 at 0 and at NaN (NaN * 0 keeps the value NaN)."""
    data = x._data
    return x * ((data > 0).astype(data.dtype) - (data < 0))


def _power(a, p):
    """a ** p for a >= 0, with a gradient of 0 where a is 0 (PyTorch's convention in norm:
    the true derivative there is infinite for p < 1, and 0 * inf would make NaN)."""
    nonzero = value(a) != 0  # NaN included: its gradient stays NaN, as in PyTorch
    return where(nonzero, where(nonzero, a, 1) ** p, 0)


@register()
def norm(x, p="fro", dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The vector p-norm over dim (all elements by default): p = 2 or 'fro' (the default), 1,
    inf, -inf (the largest or smallest |x|, ties sharing the gradient), or any p > 0."""
    if isinstance(p, str) and p == "fro":
        p = 2
    elif isinstance(p, (str, bool)) or not isinstance(p, (int, float, np.integer, np.floating)) \
            or not (p > 0 or p == -np.inf):
        raise ValueError(f"norm: p must be a number > 0, inf, -inf or 'fro', got {p!r} (tensor of shape {x.shape})")
    axes, keep = _axes_and_keep("norm", x, dim, keepdim, axis, keepdims)
    a = _magnitude(x)
    if p in (np.inf, -np.inf):
        if 0 in [x.shape[i] for i in axes]:
            raise ValueError(f"norm: the {p} norm over an empty dimension is undefined (tensor of shape {x.shape})")
        return (amax if p > 0 else amin)(a, axes, keep)
    # |x| ** p overflows or underflows long before the norm does: scale by the largest |x| (a
    # constant; the formula is the norm for any positive scale), or by 1 if that is 0 or not finite.
    scale = np.asarray(np.max(np.abs(x._data), axis=axes, keepdims=True, initial=0))
    scale[~(np.isfinite(scale) & (scale > 0))] = 1
    out = _power(_power(a / scale, p).sum(axes, keepdim=True), 1 / p) * scale
    return _reshaped(out, _reduced_shape(x.shape, axes, keep))


@register()
def cumsum(x, dim=None, *, axis=None):
    """Running sums along dim (required, as in PyTorch)."""
    if dim is not None and axis is not None:
        raise TypeError(f"cumsum: got both dim={dim!r} and axis={axis!r}; they are the same argument")
    if dim is None and axis is None:
        raise TypeError("cumsum: dim is required (as in PyTorch), e.g. x.cumsum(dim=0)")
    return _apply(Cumsum, x, axis=normalize_axis("cumsum", axis if dim is None else dim, x.ndim, x.shape))


values_indices = namedtuple("values_indices", "values indices")


def _extremum(name, smallest):
    def reduce(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """max(): the largest value; max(axis=...) (numpy's form): the largest values; tied
        maxima share the gradient in both. max(dim) (PyTorch's form): a (values, indices) named
        tuple, the gradient going to the index (the first maximum; a NaN is the maximum).
        max(other): the elementwise maximum."""
        if isinstance(dim, (Tensor, np.ndarray)):
            return (minimum if smallest else maximum)(x, dim)
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"{name}: dim must be a single dimension, got {dim!r}: (values, indices) exist only "
                            f"along one; for the values over several use amax/amin or {name}(axis=...)")
        axes = reduction_axes(name, dim, axis, x.shape)
        if x._data.size == 0 and (axes is None or any(x.shape[a] == 0 for a in axes)):
            raise ValueError(f"{name}: cannot reduce an empty tensor of shape {x.shape} over an empty dimension")
        keep = keep_flag(name, keepdim, keepdims)
        if dim is None:
            return _apply(Max, x, axis=axes, keepdims=keep, smallest=smallest)
        indices = (argmin if smallest else argmax)(x, dim, keepdim=True)
        values = gather(x, dim, indices)  # only the chosen element gets the gradient
        return values_indices(values, indices) if keep else values_indices(values.squeeze(dim), indices.squeeze(dim))
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
        if x._data.size == 0 and (axes is None or 0 in [x.shape[a] for a in axes]):
            raise ValueError(f"{name}: cannot take the {name} of an empty tensor of shape {x.shape} "
                             f"over an empty dimension")
        data = x._data
        if axes is None:
            out = np.asarray(numpy_fn(data.reshape(-1)), dtype=np.int64)
            return _constant(out.reshape((1,) * x.ndim) if keep else out)
        if len(axes) > 1:
            raise ValueError(f"{name}: dim must be a single dimension, got {dim if dim is not None else axis}")
        out = numpy_fn(data, axis=axes[0], keepdims=keep)
        return _constant(np.asarray(out, dtype=np.int64))
    arg.__name__ = name
    return arg


argmax = register("argmax")(_arg("argmax", np.argmax))
argmin = register("argmin")(_arg("argmin", np.argmin))


def _logical(name, numpy_fn):
    def reduce(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Whether any (all) elements are nonzero, as a bool tensor (not differentiable)."""
        axes = reduction_axes(name, dim, axis, x.shape)
        return _constant(np.asarray(numpy_fn(x._data, axis=axes, keepdims=keep_flag(name, keepdim, keepdims))))
    reduce.__name__ = name
    return reduce


register("any")(_logical("any", np.any))
register("all")(_logical("all", np.all))
