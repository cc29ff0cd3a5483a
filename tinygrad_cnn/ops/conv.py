"""Convolution and pooling on NCHW tensors, with the batch innermost in memory.

A convolution copies its input once into (C, H, W, N) order, builds the column matrix
(C*kh*kw rows, OH*OW*N columns) one kernel position at a time, and does one matmul, whose
output is (O, OH, OW, N) in memory behind an NCHW view. Every spatial slice that a pool or the
next conv then takes is a run of N contiguous numbers, which numpy copies and compares several
times faster than the stride-2 elements of an NCHW window.

Three ops close under differentiation: Conv2d (x, w -> y), ConvTranspose (the input gradient:
g, w -> dx) and ConvWeight (the weight gradient: x, g -> dw); each one's backward is the other
two. Max-pool's backward is PoolScatter, whose backward is PoolGather, and back.
"""
import functools
from collections import namedtuple

import numpy as np

from ..tensor import Function, Tensor, _apply, _constant, _lift, register
from .common import all_finite, check_same_dtype, pair, value
from .shape import IndexAdd

Geometry = namedtuple("Geometry", "n c h w o kh kw sh sw pt pb pl pr dh dw groups oh ow")
# A pool's: also the padded input's shape (None without padding), whether windows overlap, and
# whether they tile the padded input exactly (worked out once, not at every backward)
PoolGeometry = namedtuple("PoolGeometry", Geometry._fields + ("padded_shape", "overlap", "tiled"))


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


def _cached(cached, *args):
    try:
        return cached(*args)
    except TypeError:  # a list among the arguments: as a tuple; anything else unhashable is refused unhashed
        args = tuple(_hashable(a) for a in args)
        try:
            return cached(*args)
        except TypeError:
            return cached.__wrapped__(*args)


def conv_geometry(name, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Check a convolution's arguments and work out its sizes, or say clearly what is wrong.
    Remembered: a model calls it with the same few arguments every step."""
    return _cached(_conv_geometry, name, tuple(x_shape), tuple(w_shape), stride, padding, dilation, groups)


@functools.lru_cache(maxsize=1024)
def _conv_geometry(name, x_shape, w_shape, stride, padding, dilation, groups):
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"{name}: expected a 4-D NCHW input and a 4-D (out, in/groups, kh, kw) weight, "
                         f"got input {x_shape} and weight {w_shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{name}: groups must be an int >= 1, got {groups!r}")
    n, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    if c != cg * groups:
        raise ValueError(f"{name}: input {x_shape} has {c} channels, but the weight {w_shape} expects {cg * groups}"
                         + (f" (groups={groups})" if groups > 1 else ""))
    if o % groups:
        raise ValueError(f"{name}: the weight {w_shape} has {o} out channels, not divisible by groups={groups}")
    (sh, sw), (dh, dw) = pair(name, stride, "stride"), pair(name, dilation, "dilation")
    if min(sh, sw, dh, dw) < 1:
        raise ValueError(f"{name}: stride and dilation must be >= 1, got stride={stride!r}, dilation={dilation!r}")
    if isinstance(padding, str):
        if padding == "valid":
            pt = pb = pl = pr = 0
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(f"{name}: padding='same' needs stride 1 (as in PyTorch), got stride={stride!r}")
            pt, pl = dh * (kh - 1) // 2, dw * (kw - 1) // 2
            pb, pr = dh * (kh - 1) - pt, dw * (kw - 1) - pl
        else:
            raise ValueError(f"{name}: padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
    else:
        (pt, pl) = pair(name, padding, "padding")
        pb, pr = pt, pl
        if min(pt, pl) < 0:
            raise ValueError(f"{name}: padding must be >= 0, got padding={padding!r}")
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if span_h > h + pt + pb or span_w > w + pl + pr:
        raise ValueError(f"{name}: kernel {(kh, kw)} (dilation {(dh, dw)}) is larger than the padded input "
                         f"{(h + pt + pb, w + pl + pr)} (input {x_shape})")
    oh, ow = (h + pt + pb - span_h) // sh + 1, (w + pl + pr - span_w) // sw + 1
    return Geometry(n, c, h, w, o, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, groups, oh, ow)


@functools.lru_cache(maxsize=256)
def _offsets(kh, kw, sh, sw, dh, dw, oh, ow):
    """For each position (i, j) inside a window: the height and width slices that pick it out
    of all oh x ow windows at once."""
    return tuple((i, j, slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
                 for i in range(kh) for j in range(kw))


def window_offsets(g):
    return _offsets(g.kh, g.kw, g.sh, g.sw, g.dh, g.dw, g.oh, g.ow)


def im2col(x, g):
    """(C*kh*kw, OH*OW*N) columns of an NCHW array, batch innermost."""
    xt = x.transpose(1, 2, 3, 0)  # (C, H, W, N): free when x came from a conv
    if g.pt or g.pb or g.pl or g.pr:
        padded = np.zeros((g.c, g.h + g.pt + g.pb, g.w + g.pl + g.pr, g.n), x.dtype)
        padded[:, g.pt:g.pt + g.h, g.pl:g.pl + g.w] = xt
        xt = padded
    else:
        xt = np.ascontiguousarray(xt)  # one transposing copy beats kh*kw gathering ones
    cols = np.empty((g.c, g.kh, g.kw, g.oh, g.ow, g.n), x.dtype)
    for i, j, hs, ws in window_offsets(g):
        cols[:, i, j] = xt[:, hs, ws]
    return cols.reshape(g.c * g.kh * g.kw, -1)


def col2im(dcols, g):
    """The adjoint of im2col: each kernel position adds its block of columns back where it was
    read from. Returns an NCHW view of (C, H, W, N) memory."""
    dcols = dcols.reshape(g.c, g.kh, g.kw, g.oh, g.ow, g.n)
    dxt = np.zeros((g.c, g.h + g.pt + g.pb, g.w + g.pl + g.pr, g.n), dcols.dtype)
    for i, j, hs, ws in window_offsets(g):
        dxt[:, hs, ws] += dcols[:, i, j]
    return dxt[:, g.pt:g.pt + g.h, g.pl:g.pl + g.w].transpose(3, 0, 1, 2)


def as_rows(y):
    """An NCHW output (or its gradient) as an (O, OH*OW*N) matrix: free in a conv's layout."""
    return y.transpose(1, 2, 3, 0).reshape(y.shape[1], -1)


def _grouped(g, a, b):
    """a @ b per group: a (G*p, q), b (G*q, r) -> (G*p, r). One matmul when groups == 1."""
    if g.groups == 1:
        return a @ b
    k = g.groups
    return np.matmul(a.reshape(k, -1, a.shape[1]), b.reshape(k, -1, b.shape[1])).reshape(-1, b.shape[1])


def conv_forward(x, w, g, cols=None):
    cols = im2col(x, g) if cols is None else cols
    out = _grouped(g, w.reshape(g.o, -1), cols)
    return out.reshape(g.o, g.oh, g.ow, g.n).transpose(3, 0, 1, 2), out


def conv_input_grad(grad_rows, w, g):
    wt = w.reshape(g.groups, g.o // g.groups, -1).transpose(0, 2, 1).reshape(-1, g.o // g.groups)
    return col2im(_grouped(g, wt, grad_rows), g)


def conv_weight_grad(grad_rows, cols, g):
    """grad_rows @ cols.T per group. Its inner dimension runs over every output position: when the
    result is small next to one output row's share of it, it is summed over one product per
    output row instead, which OpenBLAS runs 3-5x faster than one long product (measured)."""
    shape = (g.o, g.c // g.groups, g.kh, g.kw)
    if g.groups > 1:
        k = g.groups
        rows = grad_rows.reshape(k, -1, grad_rows.shape[1])
        return np.matmul(rows, cols.reshape(k, -1, cols.shape[1]).transpose(0, 2, 1)).reshape(shape)
    (o, positions), k = grad_rows.shape, cols.shape[0]
    if o * k > positions // g.oh:
        return (grad_rows @ cols.T).reshape(shape)
    grad_by_row = grad_rows.reshape(o, g.oh, -1).transpose(1, 0, 2)
    return (grad_by_row @ cols.reshape(k, g.oh, -1).transpose(1, 2, 0)).sum(axis=0).reshape(shape)


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, *bias, geometry):
        check_same_dtype("conv2d", x, w)
        cols = im2col(x, geometry)
        out, flat = conv_forward(x, w, geometry, cols)
        if bias:
            check_same_dtype("conv2d", x, bias[0])  # else += would silently round a float64 bias
            flat += bias[0][:, None]
        ctx.save_for_backward(x, w, cols)  # cols: for the first-order weight gradient only
        ctx.geometry = geometry
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w, cols = ctx.saved
        g, needs = ctx.geometry, ctx.needs_input_grad
        if type(grad) is not Tensor:  # the first-order walk: straight numpy, reusing the columns
            rows = as_rows(grad)
            dx = conv_input_grad(rows, w, g) if needs[0] else None
            dw = conv_weight_grad(rows, cols, g) if needs[1] else None
            db = rows.sum(axis=1) if len(needs) == 3 and needs[2] else None
        else:  # create_graph: as ops with backwards of their own
            dx = ConvTranspose.apply(grad, w, geometry=g) if needs[0] else None
            dw = ConvWeight.apply(x, grad, geometry=g, cols=value(cols)) if needs[1] else None
            db = grad.sum(axis=(0, 2, 3)) if len(needs) == 3 and needs[2] else None
        return (dx, dw) if len(needs) == 2 else (dx, dw, db)


class ConvTranspose(Function):
    """The gradient of a convolution with respect to its input (also conv_transpose2d)."""

    @staticmethod
    def forward(ctx, grad, w, geometry):
        check_same_dtype("conv_transpose2d", grad, w)
        ctx.save_for_backward(grad, w)
        ctx.geometry = geometry
        return conv_input_grad(as_rows(grad), w, geometry)

    @staticmethod
    def backward(ctx, gg):
        grad, w = ctx.saved
        g, needs = ctx.geometry, ctx.needs_input_grad
        return (Conv2d.apply(gg, w, geometry=g) if needs[0] else None,
                ConvWeight.apply(gg, grad, geometry=g) if needs[1] else None)


class ConvWeight(Function):
    """The gradient of a convolution with respect to its weight."""

    @staticmethod
    def forward(ctx, x, grad, geometry, cols=None):
        ctx.save_for_backward(x, grad)
        ctx.geometry = geometry
        return conv_weight_grad(as_rows(grad), im2col(x, geometry) if cols is None else cols, geometry)

    @staticmethod
    def backward(ctx, gw):
        x, grad = ctx.saved
        g, needs = ctx.geometry, ctx.needs_input_grad
        return (ConvTranspose.apply(grad, gw, geometry=g) if needs[0] else None,
                Conv2d.apply(x, gw, geometry=g) if needs[1] else None)


@register()
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of an NCHW input with an (out, in/groups, kh, kw) weight, as
    torch.nn.functional.conv2d: stride, padding (int, pair, 'same', 'valid'), dilation, groups."""
    weight = _lift(weight, x)
    g = conv_geometry("conv2d", x._data.shape, weight._data.shape, stride, padding, dilation, groups)
    if bias is not None:
        bias = _lift(bias, x)
        if bias.shape != (g.o,):
            raise ValueError(f"conv2d: bias must have shape ({g.o},), got {bias.shape}")
        return _apply(Conv2d, x, weight, bias, geometry=g)
    return _apply(Conv2d, x, weight, geometry=g)


@register()
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The adjoint of conv2d (a "deconvolution"), as torch.nn.functional.conv_transpose2d: weight
    is (in, out/groups, kh, kw), and each input pixel adds the kernel, scaled by it, into the output."""
    name = "conv_transpose2d"
    weight = _lift(weight, x)
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D NCHW input and a 4-D (in, out/groups, kh, kw) weight, "
                         f"got input {x.shape} and weight {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{name}: groups must be an int >= 1, got {groups!r}")
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"{name}: input {x.shape} has {x.shape[1]} channels, but the weight {weight.shape} "
                         f"expects {weight.shape[0]} (its first dimension)")
    if x.shape[1] % groups:
        raise ValueError(f"{name}: the input's {x.shape[1]} channels are not divisible by groups={groups} "
                         f"(input {x.shape}, weight {weight.shape})")
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (pair(name, v, what) for v, what in [
        (stride, "stride"), (padding, "padding"), (output_padding, "output_padding"), (dilation, "dilation")])
    if min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{name}: stride and dilation must be >= 1 and padding >= 0, got stride={stride!r}, "
                         f"padding={padding!r}, dilation={dilation!r}")
    if not (0 <= oph < max(sh, dh) and 0 <= opw < max(sw, dw)):
        raise ValueError(f"{name}: output_padding must be >= 0 and smaller than the stride or the dilation, got "
                         f"output_padding={output_padding!r} with stride={stride!r}, dilation={dilation!r}")
    n, _, hin, win = x.shape
    kh, kw = weight.shape[2:]
    h = (hin - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    w = (win - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if h < 1 or w < 1:
        raise ValueError(f"{name}: the output size {(h, w)} is not positive (input {x.shape}, weight {weight.shape}, "
                         f"stride={stride!r}, padding={padding!r})")
    if bias is not None:
        bias = _lift(bias, x)
        if bias.shape != (weight.shape[1] * groups,):
            raise ValueError(f"{name}: bias must have shape ({weight.shape[1] * groups},), got {bias.shape}")
        check_same_dtype(name, x, bias)
    g = conv_geometry(name, (n, weight.shape[1] * groups, h, w), weight.shape, (sh, sw), (ph, pw), (dh, dw), groups)
    if (g.oh, g.ow) != (hin, win):
        # An output_padding of a stride or more (allowed when the dilation is larger) gives the
        # convolution that this is the adjoint of more output rows than x has: zeros.
        x = _apply(IndexAdd, x, shape=(n, x.shape[1], g.oh, g.ow), index=np.s_[:, :, :hin, :win])
    out = _apply(ConvTranspose, x, weight, geometry=g)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


# ---- max pooling -----------------------------------------------------------------------------

def pool_geometry(name, x_shape, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    return _cached(_pool_geometry, name, tuple(x_shape), kernel_size, stride, padding, dilation, ceil_mode)


@functools.lru_cache(maxsize=1024)
def _pool_geometry(name, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    if len(x_shape) != 4:
        raise ValueError(f"{name}: expected a 4-D NCHW input, got shape {x_shape}")
    kh, kw = pair(name, kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else pair(name, stride, "stride")
    (ph, pw), (dh, dw) = pair(name, padding, "padding"), pair(name, dilation, "dilation")
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{name}: kernel_size, stride and dilation must be >= 1 and padding >= 0, got kernel_size="
                         f"{kernel_size!r}, stride={stride!r}, padding={padding!r}, dilation={dilation!r}")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{name}: padding {padding!r} must be at most half the kernel size {(kh, kw)} (as in PyTorch)")
    n, c, h, w = x_shape
    (oh, pb), (ow, pr) = _pooled_size(h, kh, sh, ph, dh, ceil_mode), _pooled_size(w, kw, sw, pw, dw, ceil_mode)
    if oh < 1 or ow < 1:
        dilated = f" (dilation {(dh, dw)})" if (dh, dw) != (1, 1) else ""
        raise ValueError(f"{name}: kernel {kh}x{kw}{dilated} is larger than the input's padded spatial size "
                         f"{(h + 2 * ph, w + 2 * pw)}")
    padded_shape = (n, c, h + ph + pb, w + pw + pr) if ph or pb or pw or pr else None
    overlap = (kh - 1) * dh >= sh or (kw - 1) * dw >= sw  # else each window ends before the next begins
    tiled = not overlap and (sh, sw) == (kh, kw) and (oh * kh, ow * kw) == (h + ph + pb, w + pw + pr)
    return PoolGeometry(n, c, h, w, c, kh, kw, sh, sw, ph, pb, pw, pr, dh, dw, c, oh, ow, padded_shape, overlap, tiled)


def _pooled_size(size, k, s, p, d, ceil_mode):
    """The number of windows along one axis, and the padding after the input that they need:
    more than p when ceil_mode keeps a last window that runs past it."""
    span = d * (k - 1) + 1
    out = (size + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside the input or the left padding
        out -= 1
    return out, max(p, (out - 1) * s + span - size - p)


def _padded(x, g, fill):
    """x inside a border of `fill` as wide as the pool's padding, in x's memory layout."""
    if g.padded_shape is None:
        return x
    out = np.full_like(x, fill, shape=g.padded_shape)
    out[:, :, g.pt:g.pt + g.h, g.pl:g.pl + g.w] = x
    return out


def _inside(g, i, j):
    """Whether element (i, j) of each window lies in the input rather than its padding: (OH, OW)."""
    rows = i * g.dh + g.sh * np.arange(g.oh) - g.pt
    cols = j * g.dw + g.sw * np.arange(g.ow) - g.pl
    return ((rows >= 0) & (rows < g.h))[:, None] & ((cols >= 0) & (cols < g.w))


def _winners(windows, out, g):
    """For each window, the position (index into windows) that takes its gradient: the first
    maximum in row-major order, or, if the window holds a NaN, its last NaN (PyTorch's rules).
    Padding never takes it, even in a window of -infs: its first element inside does (as PyTorch)."""
    choice = np.zeros(out.shape, np.intp)
    found = np.zeros(out.shape, bool)
    for k, (window, (i, j, _, _)) in enumerate(zip(windows, window_offsets(g))):
        first = (window == out) & ~found
        if g.padded_shape:
            first &= _inside(g, i, j)
        choice[first] = k
        found |= first
        choice[np.isnan(window)] = k
    return choice


class MaxPool2d(Function):
    """Each window's gradient goes to one position: its first maximum in row-major order, as
    in PyTorch. (The tutorial copies it to every tied position; on MNIST's flat background most
    windows tie, so the two differ there. This one is the subgradient of the max.)

    Windows are walked by position, not by pixel: slice (i, j) of the input holds element (i, j)
    of every window at once, for any kernel, stride, dilation and padding (-inf)."""

    @staticmethod
    def forward(ctx, x, geometry):
        g = geometry
        xp = _padded(x, g, -np.inf)
        # One contiguous copy per window position, in x's memory layout (whichever order its
        # axes are stored in): the max and the whole backward then run on contiguous arrays
        # whose layouts match, which numpy does several times faster than strided ones.
        windows = [xp[:, :, hs, ws].copy(order="K") for _, _, hs, ws in window_offsets(g)]
        out = windows[0].copy() if len(windows) == 1 else np.maximum(windows[0], windows[1])
        for window in windows[2:]:
            np.maximum(out, window, out=out)
        ctx.geometry = g
        # x as the model of dx's memory layout; out where the engine sees it, so that an in-place
        # change to the output raises at backward instead of moving each window's maximum
        ctx.save_for_backward(x, out, windows)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out, windows = ctx.saved
        out, g = value(out), ctx.geometry
        if type(grad) is Tensor or not all_finite(grad) or g.padded_shape is not None and not all_finite(out):
            # create_graph, an inf or NaN gradient, or a padded window of -inf (whose first
            # maximum may be padding): by the general op, which never multiplies an inf by 0
            return PoolScatter.apply(grad, choice=_winners(windows, out, g), geometry=g)
        # Finite: each window's first maximum by a mask multiplied into dx. (Padding is -inf, so
        # never a finite window's maximum.)
        x = value(x)
        if g.padded_shape is not None:
            dx = np.zeros_like(x, dtype=grad.dtype, shape=g.padded_shape)
        else:
            dx = np.empty_like(x, dtype=grad.dtype) if g.tiled else np.zeros_like(x, dtype=grad.dtype)
        taken = np.zeros_like(out, bool)  # windows whose maximum has had its gradient
        for window, (_, _, hs, ws) in zip(windows, window_offsets(g)):
            first = window == out
            first &= ~taken
            if g.overlap:
                dx[:, :, hs, ws] += grad * first
            else:
                np.multiply(grad, first, out=dx[:, :, hs, ws])
            taken |= first
        if not taken.all():  # a window holding a NaN (its maximum) matched nothing: the general op
            return PoolScatter.apply(grad, choice=_winners(windows, out, g), geometry=g)
        return dx if g.padded_shape is None else dx[:, :, g.pt:g.pt + g.h, g.pl:g.pl + g.w]


class PoolScatter(Function):
    """Each window's value added at its chosen position (max-pool's backward)."""

    @staticmethod
    def forward(ctx, grad, choice, geometry):
        g = ctx.geometry = geometry
        ctx.save_for_backward(choice)
        dx = np.zeros_like(grad, shape=g.padded_shape or (g.n, g.c, g.h, g.w))
        for k, (_, _, hs, ws) in enumerate(window_offsets(g)):
            dx[:, :, hs, ws] += np.where(choice == k, grad, 0)
        return dx[:, :, g.pt:g.pt + g.h, g.pl:g.pl + g.w]

    @staticmethod
    def backward(ctx, gg):
        return PoolGather.apply(gg, choice=value(ctx.saved[0]), geometry=ctx.geometry)


class PoolGather(Function):
    """Each window's chosen position's value (PoolScatter's adjoint)."""

    @staticmethod
    def forward(ctx, x, choice, geometry):
        g = ctx.geometry = geometry
        ctx.save_for_backward(choice)
        xp = _padded(x, g, 0)
        out = np.zeros(choice.shape, x.dtype)
        for k, (_, _, hs, ws) in enumerate(window_offsets(g)):
            np.copyto(out, xp[:, :, hs, ws], where=choice == k)
        return out

    @staticmethod
    def backward(ctx, grad):
        return PoolScatter.apply(grad, choice=value(ctx.saved[0]), geometry=ctx.geometry)


@register()
def max_pool2d(x, kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over each kernel_size window, as torch.nn.functional.max_pool2d: padding is -inf,
    dilation spreads a window's elements apart, and ceil_mode keeps a last, partial window
    when it starts inside the input or its left padding."""
    g = pool_geometry("max_pool2d", x._data.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return _apply(MaxPool2d, x, geometry=g)


# ---- average pooling, composed of convolutions and matrix products -------------------------------

def _window_sizes(size, k, s, p, out, count_include_pad):
    """How many elements each window along one axis averages, as PyTorch counts them: with
    count_include_pad, the padding too (but not ceil_mode's part of a window past it)."""
    start = s * np.arange(out) - p
    end = np.minimum(start + k, size + p)
    if not count_include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return end - start


@register()
def avg_pool2d(x, kernel_size=2, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window, as torch.nn.functional.avg_pool2d: a depthwise convolution with a
    constant 1/(kh*kw) kernel, so its gradients of every order come from conv2d's; windows that
    average fewer elements (padding left out, ceil_mode's last ones) are scaled by a constant."""
    g = pool_geometry("avg_pool2d", x.shape, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer))
                                         or isinstance(divisor_override, bool) or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a nonzero int, got {divisor_override!r}")
    kernel = np.full((g.c, 1, g.kh, g.kw), 1 / (g.kh * g.kw), x.dtype)
    out = _apply(Conv2d, x, _constant(kernel), geometry=g)
    if divisor_override is not None:
        scale = np.asarray(g.kh * g.kw / divisor_override)
    else:
        counts = np.outer(_window_sizes(g.h, g.kh, g.sh, g.pt, g.oh, count_include_pad),
                          _window_sizes(g.w, g.kw, g.sw, g.pl, g.ow, count_include_pad))
        scale = g.kh * g.kw / counts
    return out if (scale == 1).all() else out * _constant(scale.astype(x.dtype))


def _averaging_matrix(size, out_size, dtype):
    """Row i averages input positions floor(i*size/out) .. ceil((i+1)*size/out) - 1 (PyTorch's windows)."""
    i, j = np.arange(out_size)[:, None], np.arange(size)
    start, end = i * size // out_size, -(-(i + 1) * size // out_size)
    return (((j >= start) & (j < end)) / (end - start)).astype(dtype)


@register()
def adaptive_avg_pool2d(x, output_size):
    """Average pooling to a fixed output size, as torch.nn.functional.adaptive_avg_pool2d
    (None in output_size keeps that dimension). Written as A_h @ x @ A_w.T."""
    if x.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d: expected a 4-D NCHW input, got shape {x.shape}")
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(sizes) != 2 or not all(s is None or isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                  and s >= 1 for s in sizes):
        raise ValueError(f"adaptive_avg_pool2d: output_size must be a positive int or a pair of positive ints "
                         f"(or None), got {output_size!r} (input {x.shape})")
    oh, ow = (x.shape[2 + i] if s is None else int(s) for i, s in enumerate(sizes))
    if (oh, ow) == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True)
    a_h = _constant(_averaging_matrix(x.shape[2], oh, x.dtype))
    a_w = _constant(_averaging_matrix(x.shape[3], ow, x.dtype).T.copy())
    return a_h @ x @ a_w
