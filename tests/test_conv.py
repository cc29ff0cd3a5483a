"""Convolution and pooling beyond the basic geometries of test_ops.py: tuple strides, 'same' and
'valid' padding, dilation, groups (depthwise too), conv_transpose2d, max-pool padding, dilation
and ceil_mode, avg_pool2d, adaptive_avg_pool2d; their edge values against PyTorch, and their errors.

Every reference below is a direct loop over output (or, for the transposed convolution, input)
positions in plain numpy, written from the PyTorch documentation's definitions, not from our code.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinygrad_cnn import Tensor, autograd, functional as F, gradcheck, gradgradcheck
from tinygrad_cnn.ops import conv as conv_ops

rng = np.random.default_rng(20240610)


def randn(*shape, gen=None):
    return (gen or rng).standard_normal(shape)


def generator(data):
    """A hypothesis test's own numpy generator: how many examples it runs must not change the
    data of the tests after it."""
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))


def distinct(*shape):
    """All values at least ~0.09 apart: no ties a finite-difference step could flip."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.1 + rng.uniform(0, 0.01, n)).reshape(shape)


def two(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---- references --------------------------------------------------------------------------------

def same_padding(k, d):
    """(before, after): PyTorch puts the odd unit after (measured with torch 2.13: a 4x4 kernel
    with padding='same' reads one row above and two below each output position)."""
    total = d * (k - 1)
    return total // 2, total - total // 2


def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    (sh, sw), (dh, dw) = two(stride), two(dilation)
    o, cg, kh, kw = w.shape
    if padding == "same":
        (pt, pb), (pl, pr) = same_padding(kh, dh), same_padding(kw, dw)
    elif padding == "valid":
        pt = pb = pl = pr = 0
    else:
        (pt, pl) = two(padding)
        pb, pr = pt, pl
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((x.shape[0], o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for g in range(groups):
                patch = xp[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                out[:, g * og:(g + 1) * og, i, j] = np.einsum("nchw,ochw->no", patch, w[g * og:(g + 1) * og])
    return out if b is None else out + b[:, None, None]


def conv_transpose2d_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Each input pixel scatters the kernel, scaled by its value, into the output; the result is
    then cropped by `padding` on each side and extended by `output_padding` at the end."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = two(stride), two(padding), two(output_padding), two(dilation)
    n, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = cin // groups
    full = np.zeros((n, og * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oph, (wd - 1) * sw + dw * (kw - 1) + 1 + opw))
    for i in range(h):
        for j in range(wd):
            for g in range(groups):
                added = np.einsum("nc,cohw->nohw", x[:, g * cg:(g + 1) * cg, i, j], w[g * cg:(g + 1) * cg])
                full[:, g * og:(g + 1) * og, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw] += added
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = full[:, :, ph:ph + oh, pw:pw + ow]
    return out if b is None else out + b[:, None, None]


def pooled_size(size, k, s, p, d=1, ceil_mode=False):
    """PyTorch's documented formula; with ceil_mode a window may run off the end only if it
    starts inside the input or the left padding."""
    exact = (size + 2 * p - d * (k - 1) - 1) / s
    out = (math.ceil(exact) if ceil_mode else math.floor(exact)) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d_ref(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, upstream=None):
    """(output, input gradient for `upstream`). Each window is the list of its elements inside
    the input, in row-major order; its gradient goes to its first maximum, or, if it holds a
    NaN, to its last NaN (PyTorch 2.13's rule, measured)."""
    (kh, kw), (ph, pw), (dh, dw) = two(kernel), two(padding), two(dilation)
    sh, sw = (kh, kw) if stride is None else two(stride)
    n, c, h, w = x.shape
    oh, ow = pooled_size(h, kh, sh, ph, dh, ceil_mode), pooled_size(w, kw, sw, pw, dw, ceil_mode)
    out, dx = np.empty((n, c, oh, ow)), np.zeros(x.shape)
    for b, ch, i, j in np.ndindex(n, c, oh, ow):
        cells = [(r, q) for r in range(i * sh - ph, i * sh - ph + dh * kh, dh)
                 for q in range(j * sw - pw, j * sw - pw + dw * kw, dw) if 0 <= r < h and 0 <= q < w]
        if not cells:  # dilation can leave a window entirely in the padding: torch 2.13 gives -inf, no gradient
            out[b, ch, i, j] = -np.inf
            continue
        values = [x[b, ch, r, q] for r, q in cells]
        nans = [t for t, v in enumerate(values) if np.isnan(v)]
        best = nans[-1] if nans else int(np.argmax(values))  # np.argmax: the first maximum
        out[b, ch, i, j] = values[best]
        if upstream is not None:
            dx[(b, ch) + cells[best]] += upstream[b, ch, i, j]
    return out, dx


def avg_pool2d_ref(x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """The divisor counts the window's elements inside the input, plus, with count_include_pad,
    those in the padding (but not those past it, which only ceil_mode's last window has)."""
    (kh, kw), (ph, pw) = two(kernel), two(padding)
    sh, sw = (kh, kw) if stride is None else two(stride)
    n, c, h, w = x.shape
    oh, ow = pooled_size(h, kh, sh, ph, 1, ceil_mode), pooled_size(w, kw, sw, pw, 1, ceil_mode)
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows, cols = range(i * sh - ph, i * sh - ph + kh), range(j * sw - pw, j * sw - pw + kw)
            inside_r, inside_c = [r for r in rows if 0 <= r < h], [q for q in cols if 0 <= q < w]
            total = x[:, :, inside_r][:, :, :, inside_c].sum(axis=(2, 3))
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = len([r for r in rows if r < h + ph]) * len([q for q in cols if q < w + pw])
            else:
                divisor = len(inside_r) * len(inside_c)
            out[:, :, i, j] = total / divisor
    return out


def adaptive_avg_pool2d_ref(x, oh, ow):
    h, w = x.shape[2:]
    out = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
            c0, c1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


def check_op(fn, ref, arrays, second_order=None, rtol=1e-10, gradgrad=True):
    """Forward against the reference (float64), gradcheck, gradgradcheck (of `second_order`,
    default fn: pass a nonlinear composition for ops that are linear in their one input, whose
    second derivative is zero), and float32 in -> float32 out, values and gradients."""
    out = fn(*[Tensor(a) for a in arrays])
    expected = ref(*arrays)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=1e-12)
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(fn, *ts)
    assert not gradgrad or gradgradcheck(second_order or fn, *ts)
    ts32 = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out32 = fn(*ts32)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32.numpy(), expected, rtol=1e-4, atol=1e-4)
    (out32 * Tensor(np.ones(out32.shape, np.float32))).sum().backward()
    assert all(t.grad.dtype == np.float32 for t in ts32)


# ---- conv2d ------------------------------------------------------------------------------------

CONV_CASES = [  # x shape, weight shape, stride, padding, dilation, groups
    ((2, 2, 5, 4), (3, 2, 3, 2), (2, 1), (1, 0), 1, 1),         # tuple stride and padding
    ((1, 2, 5, 6), (2, 2, 2, 4), 1, "same", 1, 1),              # even kernel: padding after > before
    ((1, 2, 7, 6), (2, 2, 2, 3), 1, "same", (3, 2), 1),         # dilated even kernel, 'same'
    ((1, 2, 7, 6), (2, 2, 3, 3), (1, 2), "valid", (2, 1), 1),   # dilation with tuple stride
    ((1, 4, 4, 4), (4, 2, 3, 3), 1, 1, 1, 2),                   # groups, several channels per group
    ((1, 3, 5, 4), (3, 1, 3, 3), (2, 2), 1, 1, 3),              # depthwise
    ((1, 3, 5, 5), (6, 1, 2, 2), 1, "same", 2, 3),              # depthwise, channel multiplier 2
    ((1, 2, 4, 4), (3, 2, 1, 1), 2, 0, 1, 1),                   # 1x1 kernel, stride past the edge
]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv2d(xs, ws, stride, padding, dilation, groups, bias):
    arrays = [randn(*xs), randn(*ws)] + ([randn(ws[0])] if bias else [])
    check_op(lambda x, w, *b: F.conv2d(x, w, *b, stride=stride, padding=padding, dilation=dilation, groups=groups),
             lambda x, w, *b: conv2d_ref(x, w, *(b or [None]), stride, padding, dilation, groups), arrays,
             gradgrad=not bias)  # a bias adds linearly: nothing more for a second derivative to check


def test_conv2d_same_keeps_the_size_and_pads_after():
    x, w = np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = w[0, 0, 0, 0] = 1
    out = Tensor(x).conv2d(Tensor(w), padding="same").numpy()
    assert out.shape == x.shape
    expected = np.zeros((5, 5))
    expected[1, 1] = 1  # one row and column of padding before (torch 2.13 gives the same)
    np.testing.assert_array_equal(out[0, 0], expected)


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_conv2d_random_geometry(data):
    draw = lambda s: data.draw(s)
    groups = draw(st.sampled_from([1, 2, 3]))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw, dh, dw = (draw(st.integers(1, 3)) for _ in range(4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", 0, 1, (1, 0), (0, 2)] + (["same"] if stride == (1, 1) else [])))
    ph, pw = (0, 0) if isinstance(padding, str) else two(padding)
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 7))
    gen = generator(data)
    arrays = [randn(2, cg * groups, h, w, gen=gen), randn(og * groups, cg, kh, kw, gen=gen), randn(og * groups, gen=gen)]
    fn = lambda x, w, b: F.conv2d(x, w, b, stride, padding, (dh, dw), groups)
    np.testing.assert_allclose(fn(*map(Tensor, arrays)).numpy(),
                               conv2d_ref(*arrays, stride, padding, (dh, dw), groups), rtol=1e-10, atol=1e-12)
    assert gradcheck(fn, *[Tensor(a, requires_grad=True) for a in arrays])


def test_conv2d_empty_batch():
    x, w = Tensor(np.zeros((0, 2, 5, 5)), requires_grad=True), Tensor(randn(3, 2, 3, 3), requires_grad=True)
    out = x.conv2d(w, padding=1)
    assert out.shape == (0, 3, 5, 5)
    out.sum().backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape and not w.grad.any()


# ---- conv_transpose2d ------------------------------------------------------------------------------

TRANSPOSE_CASES = [  # x shape, weight shape (in, out/groups, kh, kw), stride, padding, output_padding, groups, dilation
    ((2, 2, 3, 3), (2, 3, 3, 3), 2, 1, 1, 1, 1),
    ((1, 4, 3, 4), (4, 1, 2, 3), (2, 1), (0, 1), (1, 0), 2, 1),
    ((1, 2, 3, 3), (2, 2, 3, 3), 1, 1, 2, 1, 3),                 # output_padding 2 >= stride: allowed by dilation 3
    ((1, 2, 3, 3), (2, 1, 3, 3), 1, 0, (2, 0), 1, (3, 1)),       # ... and rows past every kernel's reach
    ((2, 3, 3, 2), (3, 2, 2, 2), (3, 2), 0, (2, 1), 3, 1),       # depthwise, two outputs per channel
]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("xs, ws, stride, padding, output_padding, groups, dilation", TRANSPOSE_CASES)
def test_conv_transpose2d(xs, ws, stride, padding, output_padding, groups, dilation, bias):
    arrays = [randn(*xs), randn(*ws)] + ([randn(ws[1] * groups)] if bias else [])
    check_op(lambda x, w, *b: F.conv_transpose2d(x, w, *(b or [None]), stride, padding, output_padding, groups,
                                                   dilation),
             lambda x, w, *b: conv_transpose2d_ref(x, w, *(b or [None]), stride, padding, output_padding, groups,
                                                   dilation),
             arrays, gradgrad=not bias)


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_conv_transpose2d_random_geometry(data):
    draw = lambda s: data.draw(s)
    groups, cg, og = draw(st.sampled_from([1, 2])), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw, sh, sw, dh, dw = (draw(st.integers(1, 3)) for _ in range(6))
    ph, pw = draw(st.integers(0, (dh * (kh - 1)) // 2)), draw(st.integers(0, (dw * (kw - 1)) // 2))
    oph, opw = draw(st.integers(0, max(sh, dh) - 1)), draw(st.integers(0, max(sw, dw) - 1))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    gen = generator(data)
    arrays = [randn(2, cg * groups, h, w, gen=gen), randn(cg * groups, og, kh, kw, gen=gen), randn(og * groups, gen=gen)]
    args = ((sh, sw), (ph, pw), (oph, opw), groups, (dh, dw))
    fn = lambda x, w, b: F.conv_transpose2d(x, w, b, *args)
    np.testing.assert_allclose(fn(*map(Tensor, arrays)).numpy(), conv_transpose2d_ref(*arrays, *args),
                               rtol=1e-10, atol=1e-12)
    assert gradcheck(fn, *[Tensor(a, requires_grad=True) for a in arrays])


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> with the same stride, padding, dilation, groups."""
    x, w = randn(2, 4, 7, 6), randn(6, 2, 3, 2)
    args = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    y = randn(*Tensor(x).conv2d(Tensor(w), **args).shape)
    back = Tensor(y).conv_transpose2d(Tensor(w), output_padding=(0, 0), **args).numpy()
    assert back.shape == x.shape
    np.testing.assert_allclose((conv2d_ref(x, w, None, **args) * y).sum(), (x * back).sum(), rtol=1e-10)


# ---- max_pool2d ------------------------------------------------------------------------------------

POOL_CASES = [  # x shape, kernel, stride, padding, dilation, ceil_mode
    ((1, 2, 6, 5), (3, 2), None, 0, 1, False),          # non-square kernel, stride = kernel
    ((1, 2, 6, 7), (2, 3), (1, 2), 0, 1, False),        # tuple stride, overlapping rows
    ((2, 1, 5, 5), 3, 1, 1, 1, False),                  # overlapping windows with padding
    ((1, 2, 7, 6), 2, (2, 3), (1, 0), 1, False),        # padding on one axis
    ((1, 2, 7, 7), 2, 1, 0, (2, 3), False),             # dilation
    ((2, 1, 5, 6), 2, 2, 0, 1, True),                   # ceil_mode: a last partial window
    ((1, 2, 6, 7), 3, 2, 1, 1, True),                   # ceil_mode with padding
    ((1, 1, 7, 8), (3, 2), (3, 2), (1, 1), (1, 2), True),
    ((1, 1, 2, 2), 3, 2, 0, 1, True),                   # a kernel larger than the input, kept by ceil_mode
]


@pytest.mark.parametrize("xs, kernel, stride, padding, dilation, ceil_mode", POOL_CASES)
def test_max_pool2d(xs, kernel, stride, padding, dilation, ceil_mode):
    fn = lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    x = distinct(*xs)
    check_op(fn, lambda x: max_pool2d_ref(x, kernel, stride, padding, dilation, ceil_mode)[0], [x],
             second_order=lambda x: fn(x) * fn(x))  # through PoolScatter's backward, PoolGather
    upstream = randn(*fn(Tensor(x)).shape)
    t = Tensor(x, requires_grad=True)
    fn(t).backward(upstream)
    np.testing.assert_allclose(t.grad, max_pool2d_ref(x, kernel, stride, padding, dilation, ceil_mode, upstream)[1],
                               rtol=1e-12)


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_max_pool2d_random_geometry_with_ties(data):
    """Small integers: most windows tie, so the first-maximum rule is exercised everywhere."""
    draw = lambda s: data.draw(s)
    kh, kw, sh, sw, dh, dw = (draw(st.integers(1, 3)) for _ in range(6))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 7))
    gen = generator(data)
    x = gen.integers(0, 3, (2, 2, h, w)).astype(np.float64)
    args = ((kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode)
    t = Tensor(x, requires_grad=True)
    y = t.max_pool2d(*args)
    upstream = randn(*y.shape, gen=gen)
    out, dx = max_pool2d_ref(x, *args, upstream=upstream)
    np.testing.assert_array_equal(y.numpy(), out)
    y.backward(upstream)
    np.testing.assert_allclose(t.grad, dx, rtol=1e-12, atol=1e-15)


# Edge values. The expected gradients are what torch 2.13's max_pool2d gives (measured in
# float32 and float64); the references above encode the same rules independently.

def pool_grad(x, upstream, *args, create_graph=False):
    t = Tensor(np.asarray(x, np.float64), requires_grad=True)
    out = t.max_pool2d(*args)
    (g,) = autograd.grad(out, [t], grad_outputs=np.asarray(upstream, np.float64), create_graph=create_graph)
    return out.numpy(), g.numpy()


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 1)])
def test_max_pool2d_non_finite_upstream_leaves_exact_zeros(bad, kernel, stride):
    """An inf or NaN upstream gradient reaches the maxima only: everywhere else exactly 0, never
    inf * 0 = NaN. torch 2.13 on [[1, 4], [3, 2]] with an inf upstream: [[0, inf], [0, 0]]."""
    x = distinct(1, 2, 5, 5)
    upstream = randn(*Tensor(x).max_pool2d(kernel, stride).shape)
    upstream[0, 0, 0, 0] = bad
    _, grad = pool_grad(x, upstream, kernel, stride)
    expected = max_pool2d_ref(x, kernel, stride, upstream=upstream)[1]
    np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-12)  # NaN and inf where expected has them
    no_max = max_pool2d_ref(x, kernel, stride, upstream=np.ones(upstream.shape))[1] == 0
    assert no_max.any() and (grad[no_max] == 0).all()  # exact zeros, not NaN
    assert np.count_nonzero(np.isnan(grad)) == (1 if np.isnan(bad) else 0)
    _, grad = pool_grad([[[[1, 4], [3, 2]]]], [[[[bad]]]], 2)
    np.testing.assert_array_equal(grad, [[[[0, bad], [0, 0]]]])


@pytest.mark.parametrize("create_graph", [False, True])
def test_max_pool2d_nan_window_routes_its_gradient_to_its_last_nan(create_graph):
    nan = np.nan
    # torch 2.13: output NaN, and the gradient at the LAST NaN in row-major order
    out, grad = pool_grad([[[[1, nan], [nan, 2]]]], [[[[5]]]], 2, create_graph=create_graph)
    assert np.isnan(out).all()
    np.testing.assert_array_equal(grad, [[[[0, 0], [5, 0]]]])
    _, grad = pool_grad([[[[nan, 1], [3, nan]]]], [[[[5]]]], 2, create_graph=create_graph)
    np.testing.assert_array_equal(grad, [[[[0, 0], [0, 5]]]])
    _, grad = pool_grad([[[[nan, 1, 3, 0]]]], [[[[5]]]], (1, 4), create_graph=create_graph)
    np.testing.assert_array_equal(grad, [[[[5, 0, 0, 0]]]])


@pytest.mark.parametrize("create_graph", [False, True])
def test_max_pool2d_ties_go_to_the_first_maximum(create_graph):
    inf = np.inf
    # torch 2.13: [[2, 2], [2, 1]] -> [[1, 0], [0, 0]]; [[inf, inf], [1, 2]] -> [[1, 0], [0, 0]]
    _, grad = pool_grad([[[[2, 2], [2, 1]]]], [[[[1]]]], 2, create_graph=create_graph)
    np.testing.assert_array_equal(grad, [[[[1, 0], [0, 0]]]])
    _, grad = pool_grad([[[[inf, inf], [1, 2]]]], [[[[1]]]], 2, create_graph=create_graph)
    np.testing.assert_array_equal(grad, [[[[1, 0], [0, 0]]]])


@pytest.mark.parametrize("create_graph", [False, True])
def test_max_pool2d_padding_never_takes_the_gradient(create_graph):
    """A window of -infs reaching into the -inf padding: its first element inside the input takes
    the gradient. torch 2.13, 3x3 of -inf, kernel 2, stride 2, padding 1, upstream [[1, 2], [3, 4]]:
    gradient [[1, 2, 0], [3, 4, 0], [0, 0, 0]]."""
    out, grad = pool_grad(np.full((1, 1, 3, 3), -np.inf), [[[[1, 2], [3, 4]]]], 2, 2, 1, create_graph=create_graph)
    assert (out == -np.inf).all()
    np.testing.assert_array_equal(grad, [[[[1, 2, 0], [3, 4, 0], [0, 0, 0]]]])


@pytest.mark.parametrize("xs, kernel, stride, padding, dilation, ceil_mode", POOL_CASES)
def test_max_pool2d_fast_and_general_backward_agree_on_finite_data(xs, kernel, stride, padding, dilation, ceil_mode):
    """Finite data takes the fast path (a first-maximum mask multiplied in); create_graph takes
    the general one (PoolScatter). With ties everywhere, they must give identical gradients."""
    x = rng.integers(0, 3, xs).astype(np.float64)
    args = (kernel, stride, padding, dilation, ceil_mode)
    upstream = randn(*Tensor(x).max_pool2d(*args).shape)
    _, fast = pool_grad(x, upstream, *args)
    _, general = pool_grad(x, upstream, *args, create_graph=True)
    np.testing.assert_array_equal(fast, general)


def test_max_pool2d_finite_backward_takes_the_fast_path(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the general path was taken on finite data")
    monkeypatch.setattr(conv_ops.PoolScatter, "apply", refuse)
    t = Tensor(randn(2, 3, 6, 6), requires_grad=True)
    t.max_pool2d(3, 2, 1).sum().backward()
    assert np.isfinite(t.grad).all()
    with pytest.raises(AssertionError, match="general path"):
        t.max_pool2d(2).backward(np.full((2, 3, 3, 3), np.inf))


# ---- avg_pool2d ------------------------------------------------------------------------------------

AVG_CASES = [  # x shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((1, 2, 6, 5), 2, None, 0, False, True, None),
    ((1, 2, 5, 6), (2, 3), (1, 2), 0, False, True, None),
    ((1, 2, 5, 5), 3, 2, 1, False, True, None),
    ((1, 2, 5, 5), 3, 2, 1, False, False, None),
    ((1, 2, 6, 6), 3, 2, 1, True, True, None),      # ceil_mode: the padding counts, the overhang does not
    ((1, 2, 6, 7), 3, 2, 1, True, False, None),
    ((1, 1, 5, 6), (2, 3), 2, (1, 0), True, True, None),
    ((1, 2, 5, 5), 3, 2, 1, False, True, 4),
]


@pytest.mark.parametrize("xs, kernel, stride, padding, ceil_mode, count_include_pad, divisor", AVG_CASES)
def test_avg_pool2d(xs, kernel, stride, padding, ceil_mode, count_include_pad, divisor):
    fn = lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    check_op(fn, lambda x: avg_pool2d_ref(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor),
             [randn(*xs)], second_order=lambda x: fn(x) * fn(x))


def test_avg_pool2d_count_include_pad_values():
    """Ones, 4x4, kernel 3, stride 1, padding 1 (values as torch 2.13 gives them)."""
    x = Tensor(np.ones((1, 1, 4, 4)))
    np.testing.assert_allclose(x.avg_pool2d(3, 1, 1).numpy()[0, 0, 0], [4 / 9, 6 / 9, 6 / 9, 4 / 9])
    np.testing.assert_allclose(x.avg_pool2d(3, 1, 1, count_include_pad=False).numpy(), np.ones((1, 1, 4, 4)))
    # ceil_mode, 6x6, kernel 3, stride 2, padding 1: torch's last row is [1/3, 1/2, 1/2, 1/4]
    np.testing.assert_allclose(Tensor(np.ones((1, 1, 6, 6))).avg_pool2d(3, 2, 1, True).numpy()[0, 0, -1],
                               [1 / 3, 1 / 2, 1 / 2, 1 / 4])


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_avg_pool2d_random_geometry(data):
    draw = lambda s: data.draw(s)
    kh, kw, sh, sw = (draw(st.integers(1, 3)) for _ in range(4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    ceil_mode, count_include_pad = draw(st.booleans()), draw(st.booleans())
    h, w = draw(st.integers(max(1, kh - 2 * ph), 7)), draw(st.integers(max(1, kw - 2 * pw), 7))
    args = ((kh, kw), (sh, sw), (ph, pw), ceil_mode, count_include_pad)
    x = randn(2, 2, h, w, gen=generator(data))
    np.testing.assert_allclose(Tensor(x).avg_pool2d(*args).numpy(), avg_pool2d_ref(x, *args), rtol=1e-10)
    assert gradcheck(lambda x: x.avg_pool2d(*args), Tensor(x, requires_grad=True))


# ---- adaptive_avg_pool2d -----------------------------------------------------------------------------

@pytest.mark.parametrize("xs, size", [
    ((1, 2, 6, 4), (3, 2)),      # sizes that divide
    ((1, 2, 7, 5), (3, 4)),      # that do not: windows of different lengths, overlapping
    ((1, 2, 5, 6), (None, 4)),   # None keeps that dimension
    ((1, 2, 5, 6), (2, None)),
    ((2, 2, 5, 4), 1),           # global
    ((1, 2, 5, 4), (1, 1)),
    ((1, 1, 3, 2), (5, 4)),      # larger than the input
])
def test_adaptive_avg_pool2d(xs, size):
    oh, ow = two(size)
    oh, ow = xs[2] if oh is None else oh, xs[3] if ow is None else ow
    fn = lambda x: F.adaptive_avg_pool2d(x, size)
    check_op(fn, lambda x: adaptive_avg_pool2d_ref(x, oh, ow), [randn(*xs)], second_order=lambda x: fn(x) * fn(x))


# ---- errors -----------------------------------------------------------------------------------------

def z(*shape):
    return Tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("call, message", [
    (lambda: z(1, 4, 5, 5).conv2d(z(2, 2, 3, 3), groups=0), r"conv2d: groups must be an int >= 1, got 0"),
    (lambda: z(1, 4, 5, 5).conv2d(z(2, 2, 3, 3), groups=1.5), r"conv2d: groups .* got 1\.5"),
    (lambda: z(1, 4, 5, 5).conv2d(z(3, 2, 3, 3), groups=2), r"conv2d: the weight \(3, 2, 3, 3\) has 3 out channels, "
                                                           r"not divisible by groups=2"),
    (lambda: z(1, 3, 5, 5).conv2d(z(4, 2, 3, 3), groups=2), r"conv2d: input \(1, 3, 5, 5\) has 3 channels, but the "
                                                           r"weight \(4, 2, 3, 3\) expects 4 \(groups=2\)"),
    (lambda: z(1, 3, 5, 5).conv2d(z(2, 2, 3, 3)), r"conv2d: input \(1, 3, 5, 5\) has 3 channels.*expects 2"),
    (lambda: z(1, 1, 5, 5).conv2d(z(1, 1, 3, 3), stride=(1, 0)), r"conv2d: stride and dilation must be >= 1, "
                                                                r"got stride=\(1, 0\)"),
    (lambda: z(1, 1, 5, 5).conv2d(z(1, 1, 3, 3), dilation=0), r"conv2d: .*dilation=0"),
    (lambda: z(1, 1, 5, 5).conv2d(z(1, 1, 3, 3), stride=2, padding="same"),
     r"conv2d: padding='same' needs stride 1.*stride=2"),
    (lambda: z(1, 1, 5, 5).conv2d(z(1, 1, 3, 3), padding="full"), r"conv2d: padding must be .*'full'"),
    (lambda: z(1, 1, 5, 5).conv2d(z(1, 1, 3, 3), stride=(1, 2, 3)), r"conv2d: stride must be an int or a pair"),
    (lambda: z(1, 1, 4, 5).conv2d(z(1, 1, 3, 3), dilation=2), r"conv2d: kernel \(3, 3\) \(dilation \(2, 2\)\) is "
                                                             r"larger than the padded input \(4, 5\)"),
    (lambda: z(1, 1, 5, 5).conv2d(z(1, 3, 3)), r"conv2d: expected a 4-D .* weight \(1, 3, 3\)"),
    (lambda: z(1, 1, 5, 5).conv2d(z(2, 1, 3, 3), z(1)), r"conv2d: bias must have shape \(2,\), got \(1,\)"),
    (lambda: z(1, 1, 5, 5).conv2d(z(2, 1, 3, 3), Tensor(np.zeros(2))), r"conv2d: .*different dtypes.*float32.*float64"),
    (lambda: z(1, 1, 5, 5).conv2d(Tensor(np.zeros((2, 1, 3, 3)))), r"conv2d: .*different dtypes"),
    # conv_transpose2d
    (lambda: z(1, 2, 3, 3).conv_transpose2d(z(2, 1, 3, 3), stride=2, output_padding=2),
     r"conv_transpose2d: output_padding must be >= 0 and smaller than the stride or the dilation, got "
     r"output_padding=2 with stride=2, dilation=1"),
    (lambda: z(1, 2, 3, 3).conv_transpose2d(z(2, 1, 3, 3), output_padding=-1), r"conv_transpose2d: output_padding"),
    (lambda: z(1, 3, 3, 3).conv_transpose2d(z(2, 1, 3, 3)), r"conv_transpose2d: input \(1, 3, 3, 3\) has 3 channels, "
                                                           r"but the weight \(2, 1, 3, 3\) expects 2"),
    (lambda: z(1, 3, 3, 3).conv_transpose2d(z(3, 1, 3, 3), groups=2), r"conv_transpose2d: the input's 3 channels are "
                                                                     r"not divisible by groups=2"),
    (lambda: z(1, 2, 3, 3).conv_transpose2d(z(2, 1, 3, 3), groups=0), r"conv_transpose2d: groups must be"),
    (lambda: z(1, 2, 3, 3).conv_transpose2d(z(2, 1, 3, 3), stride=0), r"conv_transpose2d: stride and dilation .*stride=0"),
    (lambda: z(1, 2, 1, 1).conv_transpose2d(z(2, 1, 3, 3), padding=2), r"conv_transpose2d: the output size \(-1, -1\) "
                                                                      r"is not positive"),
    (lambda: z(1, 2, 3, 3).conv_transpose2d(z(2, 3, 3)), r"conv_transpose2d: expected a 4-D .*weight \(2, 3, 3\)"),
    (lambda: z(1, 2, 3, 3).conv_transpose2d(z(2, 2, 3, 3), z(2), groups=2), r"conv_transpose2d: bias must have "
                                                                           r"shape \(4,\), got \(2,\)"),
    # pools
    (lambda: z(1, 1, 6, 6).max_pool2d(3, padding=2), r"max_pool2d: padding 2 must be at most half the kernel size "
                                                     r"\(3, 3\)"),
    (lambda: z(1, 1, 6, 6).max_pool2d((2, 4), padding=(1, 3)), r"max_pool2d: padding \(1, 3\) must be at most half"),
    (lambda: z(1, 1, 6, 6).avg_pool2d(2, padding=2), r"avg_pool2d: padding 2 must be at most half"),
    (lambda: z(1, 1, 6, 6).max_pool2d(2, dilation=0), r"max_pool2d: .*dilation=0"),
    (lambda: z(1, 1, 6, 6).max_pool2d(2, (2, 0)), r"max_pool2d: .*stride=\(2, 0\)"),
    (lambda: z(1, 1, 4, 6).max_pool2d(3, dilation=2), r"max_pool2d: kernel 3x3 \(dilation \(2, 2\)\) is larger than "
                                                      r"the input's padded spatial size \(4, 6\)"),
    (lambda: z(1, 1, 1, 6).max_pool2d(3, 2, ceil_mode=True), r"max_pool2d: kernel 3x3 is larger"),
    (lambda: z(1, 1, 4, 4).avg_pool2d(5), r"avg_pool2d: kernel 5x5 is larger"),
    (lambda: z(1, 1, 4, 4).avg_pool2d(2, divisor_override=0), r"avg_pool2d: divisor_override must be a nonzero int, got 0"),
    (lambda: z(4, 4).avg_pool2d(2), r"avg_pool2d: expected a 4-D NCHW input, got shape \(4, 4\)"),
    (lambda: z(1, 1, 4, 4).adaptive_avg_pool2d((2, 2, 2)), r"adaptive_avg_pool2d: output_size must be .*\(2, 2, 2\)"),
    (lambda: z(1, 1, 4, 4).adaptive_avg_pool2d(0), r"adaptive_avg_pool2d: output_size .* got 0 \(input \(1, 1, 4, 4\)\)"),
    (lambda: z(1, 4, 4).adaptive_avg_pool2d(2), r"adaptive_avg_pool2d: expected a 4-D NCHW input, got shape \(1, 4, 4\)"),
])
def test_errors_name_the_op_and_the_shapes(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
