"""Every op: forward values against plain numpy, gradients against float64 finite differences,
and float32 in -> float32 out (values and gradients).

One table, CASES, lists every op on several shapes as (fn, numpy reference, input arrays). It
drives three tests: gradcheck in float64, forward values vs the numpy reference, and dtype
preservation in float32. Hypothesis adds random broadcastable shape pairs and random
conv / pool geometries. Inputs are kept away from kinks (relu at 0, ties in max) so that finite
differences are meaningful.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from tinygrad_cnn import Tensor, functional as F, gradcheck, gradgradcheck, no_grad

rng = np.random.default_rng(20240601)


# ---- input generators (numpy, float64) ---------------------------------------------------------
# They always return an ndarray, even for shape (): Tensor(np.float64 scalar) would be float32.

def randn(*shape):
    return np.asarray(rng.standard_normal(shape))


def positive(*shape):
    """For log, x ** 0.5 and the base of x ** y."""
    return np.asarray(rng.uniform(0.5, 2.0, shape))


def nonzero(*shape):
    """Away from 0: denominators, and relu inputs (its kink is at 0)."""
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape))


def distinct(*shape):
    """All values at least ~0.09 apart, so max / max_pool have no ties a 1e-6 step could flip."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.1 + rng.uniform(0, 0.01, n)).reshape(shape)


def labels(n, classes, values=None):
    return np.asarray(values if values is not None else rng.integers(0, classes, n), dtype=np.int64)


# ---- naive numpy references --------------------------------------------------------------------

def conv2d_ref(x, w, b=None, stride=1, padding=0):
    """Direct loop over output positions (no im2col), one einsum per position."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    _, _, h, wd = xp.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((x.shape[0], o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out if b is None else out + b[:, None, None]


def max_pool2d_ref(x, k=2, s=None):
    s = k if s is None else s
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
    return out


def max_pool2d_grad_ref(x, grad, k=2, s=None):
    """Backward by the tie rule: each window's gradient goes to its FIRST max in row-major order."""
    s = k if s is None else s
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*grad.shape):
        window = x[n, c, i * s:i * s + k, j * s:j * s + k]
        a, b = np.unravel_index(np.argmax(window), window.shape)  # np.argmax returns the first max
        dx[n, c, i * s + a, j * s + b] += grad[n, c, i, j]
    return dx


def softmax_ref(x, axis=-1):
    e = np.exp(x)  # unshifted: a different formula from the op's, fine for moderate logits
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_ref(x, axis=-1):
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def cross_entropy_ref(x, y):
    return -np.mean(log_softmax_ref(x, 1)[np.arange(len(y)), y])


def seeded_dropout(x, p=0.3):
    np.random.seed(0)  # the same mask on every call: gradcheck needs a deterministic function
    return F.dropout(x, p)


# ---- the table of cases ------------------------------------------------------------------------

def case(id, fn, ref, *arrays):
    return pytest.param(fn, ref, arrays, id=id)


def same(fn):
    """The lambda works on numpy arrays as well, so it is its own reference."""
    return fn


BINARY = {  # name -> (op, generator for x, generator for y)
    "add": (lambda x, y: x + y, randn, randn),
    "sub": (lambda x, y: x - y, randn, randn),
    "mul": (lambda x, y: x * y, randn, randn),
    "div": (lambda x, y: x / y, randn, nonzero),
    "pow": (lambda x, y: x ** y, positive, randn),
}
SHAPE_PAIRS = [
    ((3,), (3,)),
    ((2, 3), (3,)),        # leading axis added to y
    ((3,), (2, 3)),        # leading axis added to x
    ((2, 1, 4), (3, 1)),   # both sides stretched and a leading axis added
    ((1, 3), (2, 1)),
    ((2, 3), (1, 1)),
    ((), (2, 3)),          # a 0-d tensor on either side
    ((2, 3), ()),
]
C23 = nonzero(2, 3)  # a numpy constant that broadcasts a (3,) tensor up to (2, 3)
MIXED = [  # Python scalars and numpy arrays on either side: (id, fn, generator, shape)
    ("x+2.5", lambda x: x + 2.5, randn, (2, 3)),
    ("2.5+x", lambda x: 2.5 + x, randn, (2, 3)),
    ("x-2.5", lambda x: x - 2.5, randn, (2, 3)),
    ("2.5-x", lambda x: 2.5 - x, randn, (2, 3)),
    ("x*-1.5", lambda x: x * -1.5, randn, (2, 3)),
    ("3*x", lambda x: 3 * x, randn, (2, 3)),
    ("x/2.5", lambda x: x / 2.5, randn, (2, 3)),
    ("2.5/x", lambda x: 2.5 / x, nonzero, (2, 3)),
    ("x**2", lambda x: x ** 2, randn, (2, 3)),
    ("x**3", lambda x: x ** 3, randn, (2, 3)),
    ("x**0.5", lambda x: x ** 0.5, positive, (2, 3)),
    ("2**x", lambda x: 2 ** x, randn, (2, 3)),
    ("neg", lambda x: -x, randn, (2, 3)),
    ("C+x", lambda x: C23 + x, randn, (3,)),
    ("x+C", lambda x: x + C23, randn, (3,)),
    ("C-x", lambda x: C23 - x, randn, (3,)),
    ("x-C", lambda x: x - C23, randn, (3,)),
    ("C*x", lambda x: C23 * x, randn, (3,)),
    ("x/C", lambda x: x / C23, randn, (3,)),
    ("C/x", lambda x: C23 / x, nonzero, (3,)),
]
UNARY = {  # name -> (method, numpy reference, generator)
    "exp": (lambda x: x.exp(), np.exp, randn),
    "log": (lambda x: x.log(), np.log, positive),
    "relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), nonzero),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), lambda *s: 3 * randn(*s)),
    "tanh": (lambda x: x.tanh(), np.tanh, randn),
}
AXES = [None, 0, -1, (0, 2), (0, 1, 2)]
IDX4 = np.arange(4)
INDEXES = [  # id -> index into a (4, 5) tensor
    ("int", 1),
    ("negative-int", -1),
    ("slice", slice(1, 3)),
    ("step", (slice(None), slice(None, None, 2))),
    ("negative-slices", (slice(-2, None), slice(1, -1))),
    ("scalar", (1, -2)),
    ("ellipsis", (Ellipsis, 0)),
    ("newaxis", (None, slice(1, None))),
    ("rows-repeated", np.array([0, 2, 0, 0])),
    ("labels-style", (IDX4, np.array([1, 1, 3, 1]))),
    ("pairs-repeated", (np.array([0, 0, 3, 0]), np.array([1, 1, 4, 1]))),
    ("slice+array-repeated", (slice(1, None), [0, 0, 2])),
]
MATMUL_SHAPES = [
    ((4,), (4,)),
    ((4,), (4, 3)),
    ((3, 4), (4,)),
    ((2, 3), (3, 4)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),       # batched @ 2-D: the 2-D side is broadcast over the batch
    ((3, 4), (2, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
    ((2, 1, 2, 3), (3, 3, 2)),  # batch axes broadcast on both sides
]
CONV_GEOMETRIES = [  # (N, C, H, W), (O, kh, kw), stride, padding
    ((1, 1, 5, 5), (1, 3, 3), 1, 0),
    ((2, 2, 5, 5), (3, 3, 3), 1, 0),   # several in and out channels, a batch
    ((1, 2, 7, 7), (2, 3, 3), 2, 0),   # odd size, stride 2
    ((1, 2, 8, 7), (2, 2, 2), 3, 0),   # stride 3 leaves rows and columns unused
    ((2, 1, 5, 5), (2, 3, 3), 1, 1),   # padding 1
    ((1, 2, 4, 5), (3, 3, 2), 2, 2),   # padding 2, non-square kernel, stride 2
    ((1, 3, 5, 6), (2, 2, 3), 1, 0),   # non-square kernel
    ((1, 1, 3, 3), (1, 5, 5), 1, 1),   # kernel larger than the input, but it fits once padded
    ((2, 3, 3, 4), (2, 1, 1), 1, 0),   # 1x1 kernel
    ((3, 1, 8, 8), (2, 3, 3), 1, 0),   # small weight, many positions: its gradient is summed by rows
]
POOL_GEOMETRIES = [  # (N, C, H, W), kernel, stride
    ((1, 1, 4, 4), 2, None),
    ((2, 2, 4, 6), 2, None),
    ((1, 2, 5, 7), 2, None),   # odd sizes: the last row and column are dropped (floor)
    ((1, 1, 6, 6), 3, None),
    ((1, 2, 5, 5), 3, 2),      # overlapping windows
    ((1, 1, 6, 5), 3, 1),
    ((1, 1, 7, 8), 2, 3),      # stride > kernel: gaps between windows
]


def _cases():
    out = []
    for name, (op, gx, gy) in BINARY.items():
        for sx, sy in SHAPE_PAIRS:
            out.append(case(f"{name}-{sx}-{sy}", op, same(op), gx(*sx), gy(*sy)))
    for id, fn, gen, shape in MIXED:
        out.append(case(id, fn, same(fn), gen(*shape)))
    for name, (fn, ref, gen) in UNARY.items():
        for shape in [(5,), (2, 3), (2, 1, 3)]:
            out.append(case(f"{name}-{shape}", fn, ref, gen(*shape)))
    for name in ["sum", "mean", "max"]:
        for axis in AXES:
            for keepdims in [False, True]:
                fn = (lambda name, axis, keepdims: lambda x: getattr(x, name)(axis=axis, keepdims=keepdims))(
                    name, axis, keepdims)
                out.append(case(f"{name}-axis={axis}-keepdims={keepdims}", fn, same(fn), distinct(2, 3, 4)))
        fn = (lambda name: lambda x: getattr(x, name)())(name)
        out.append(case(f"{name}-1d", fn, same(fn), distinct(5)))
    x = randn(2, 3, 4)
    out += [
        case("reshape-(6,4)", lambda x: x.reshape(6, 4), lambda x: x.reshape(6, 4), x),
        case("reshape-tuple-(4,-1)", lambda x: x.reshape((4, -1)), lambda x: x.reshape(4, -1), x),
        case("reshape-(24,)", lambda x: x.reshape(24), lambda x: x.reshape(24), x),
        case("flatten", lambda x: x.flatten(), lambda x: x.reshape(-1), x),
        case("flatten-1", lambda x: x.flatten(1), lambda x: x.reshape(2, -1), x),
        case("flatten-0-1", lambda x: x.flatten(0, 1), lambda x: x.reshape(6, 4), x),
        case("reshape-of-permuted", lambda x: x.permute(2, 0, 1).reshape(4, 6),
             lambda x: x.transpose(2, 0, 1).reshape(4, 6), x),  # a copying reshape
        case("permute", lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), x),
        case("transpose", lambda x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2), x),
        case("T-3d", lambda x: x.T, lambda x: x.T, x),
        case("T-2d", lambda x: x.T, lambda x: x.T, randn(3, 4)),
    ]
    for id, index in INDEXES:
        fn = (lambda index: lambda x: x[index])(index)
        out.append(case(f"getitem-{id}", fn, same(fn), randn(4, 5)))
    for sx, sy in MATMUL_SHAPES:
        fn = lambda x, y: x @ y
        out.append(case(f"matmul-{sx}@{sy}", fn, same(fn), randn(*sx), randn(*sy)))
    for (n, c, h, w), (o, kh, kw), stride, padding in CONV_GEOMETRIES:
        geo = f"{(n, c, h, w)}-{(o, c, kh, kw)}-s{stride}-p{padding}"
        x, wt, b = randn(n, c, h, w), randn(o, c, kh, kw), randn(o)
        out.append(case(f"conv2d-{geo}", (lambda s, p: lambda x, w: x.conv2d(w, stride=s, padding=p))(
            stride, padding), (lambda s, p: lambda x, w: conv2d_ref(x, w, None, s, p))(stride, padding), x, wt))
        out.append(case(f"conv2d-bias-{geo}", (lambda s, p: lambda x, w, b: x.conv2d(w, b, s, p))(
            stride, padding), (lambda s, p: lambda x, w, b: conv2d_ref(x, w, b, s, p))(stride, padding), x, wt, b))
    for shape, k, s in POOL_GEOMETRIES:
        out.append(case(f"max_pool2d-{shape}-k{k}-s{s}", (lambda k, s: lambda x: x.max_pool2d(k, s))(k, s),
                        (lambda k, s: lambda x: max_pool2d_ref(x, k, s))(k, s), distinct(*shape)))
    for shape, axis in [((4,), -1), ((3, 4), 0), ((3, 4), 1), ((3, 4), -1), ((2, 3, 4), 1)]:
        x = 2 * randn(*shape)
        out.append(case(f"softmax-{shape}-axis={axis}", (lambda a: lambda x: x.softmax(a))(axis),
                        (lambda a: lambda x: softmax_ref(x, a))(axis), x))
        out.append(case(f"log_softmax-{shape}-axis={axis}", (lambda a: lambda x: x.log_softmax(a))(axis),
                        (lambda a: lambda x: log_softmax_ref(x, a))(axis), x))
    for n, k, ys in [(4, 5, [0, 3, 3, 1]), (1, 3, [2]), (6, 2, None)]:  # repeated labels, N=1, binary
        y = labels(n, k, ys)
        out.append(case(f"cross_entropy-({n},{k})", (lambda y: lambda x: x.cross_entropy(y))(y),
                        (lambda y: lambda x: cross_entropy_ref(x, y))(y), 2 * randn(n, k)))
    y = labels(4, 3)
    out += [
        case("F.conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
             lambda x, w, b: conv2d_ref(x, w, b, 2, 1), randn(2, 2, 5, 5), randn(3, 2, 3, 3), randn(3)),
        case("F.max_pool2d", lambda x: F.max_pool2d(x, 3, 2), lambda x: max_pool2d_ref(x, 3, 2),
             distinct(1, 2, 5, 5)),
        case("F.linear", F.linear, lambda x, w, b: x @ w.T + b, randn(4, 3), randn(2, 3), randn(2)),
        case("F.linear-nobias", F.linear, lambda x, w: x @ w.T, randn(4, 3), randn(2, 3)),
        case("F.linear-3d", F.linear, lambda x, w, b: x @ w.T + b, randn(2, 4, 3), randn(2, 3), randn(2)),
        case("F.linear-1d", F.linear, lambda x, w: x @ w.T, randn(3), randn(2, 3)),
        case("F.cross_entropy", lambda x: F.cross_entropy(x, y), lambda x: cross_entropy_ref(x, y), randn(4, 3)),
        case("F.nll_loss", lambda x: F.nll_loss(F.log_softmax(x, axis=1), y),
             lambda x: cross_entropy_ref(x, y), randn(4, 3)),
        case("F.relu", F.relu, lambda x: np.maximum(x, 0), nonzero(2, 3)),
        case("F.sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), randn(2, 3)),
        case("F.tanh", F.tanh, np.tanh, randn(2, 3)),
        case("F.exp", F.exp, np.exp, randn(2, 3)),
        case("F.log", F.log, np.log, positive(2, 3)),
        case("F.softmax", lambda x: F.softmax(x, 0), lambda x: softmax_ref(x, 0), randn(3, 4)),
        case("F.log_softmax", lambda x: F.log_softmax(x, 0), lambda x: log_softmax_ref(x, 0), randn(3, 4)),
        case("F.matmul", F.matmul, lambda x, y: x @ y, randn(2, 3), randn(3, 2)),
        case("F.flatten", lambda x: F.flatten(x, 1), lambda x: x.reshape(2, -1), randn(2, 3, 2)),
        case("F.dropout", seeded_dropout, None, randn(4, 5)),  # forward values: see test_dropout_*
    ]
    return out


CASES = _cases()


def check_grad(fn, *arrays):
    """gradcheck fn's output, contracted with fixed random weights so every output element (and
    its position) matters: a plain .sum() would hide e.g. a transposed or shuffled gradient."""
    inputs = [Tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    with no_grad():
        shape = fn(*inputs).shape
    weights = np.random.default_rng(7).standard_normal(shape)
    assert gradcheck(lambda *xs: (fn(*xs) * weights).sum(), *inputs)


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_gradcheck(fn, ref, arrays):
    check_grad(fn, *arrays)


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_gradgradcheck(fn, ref, arrays):
    """Second derivatives: autograd differentiating its own backward (create_graph=True) against
    finite differences of the first derivative, with a random upstream gradient."""
    inputs = [Tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    assert gradgradcheck(fn, *inputs)


@pytest.mark.parametrize("fn, ref, arrays", [c for c in CASES if c.values[1] is not None])
def test_forward_matches_numpy(fn, ref, arrays):
    out = fn(*[Tensor(a) for a in arrays])  # float64 in, so compare tightly
    assert isinstance(out, Tensor) and out.dtype == np.float64
    expected = ref(*arrays)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_float32_in_float32_out(fn, ref, arrays):
    """No silent upcast, forward or backward. The op's own backward is called directly as well,
    because the engine casts a leaf's gradient to the leaf's dtype and would hide an upcast."""
    inputs = [Tensor(np.asarray(a, np.float32), requires_grad=True) for a in arrays]
    out = fn(*inputs)
    assert out.dtype == np.float32
    ctx = out._ctx
    ctx.needs_input_grad = [p.requires_grad for p in ctx.parents]  # as the engine sets it
    input_grads = ctx.backward(ctx, np.ones_like(out.data))
    for g in input_grads if isinstance(input_grads, tuple) else (input_grads,):
        assert g is None or g.dtype == np.float32
    out.backward(np.ones_like(out.data))
    for t in inputs:
        assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape


# ---- hypothesis: random shapes and geometries ----------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**32 - 1))
def test_binary_ops_broadcast_random_shapes(shapes, op, seed):
    fn, gx, gy = BINARY[op]
    global rng  # the generators draw from the module's rng: reseed it from hypothesis's seed
    rng = np.random.default_rng(seed)
    (sx, sy) = shapes.input_shapes
    x, y = gx(*sx), gy(*sy)
    out = fn(Tensor(x), Tensor(y))
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.numpy(), fn(x, y), rtol=1e-12)
    check_grad(fn, x, y)


@st.composite
def conv_geometry(draw):
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * padding), 6))
    w = draw(st.integers(max(1, kw - 2 * padding), 6))
    return (n, c, h, w), (o, c, kh, kw), stride, padding, draw(st.booleans())


@settings(max_examples=15, deadline=None)
@given(geometry=conv_geometry(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_random_geometry(geometry, seed):
    xs, ws, stride, padding, with_bias = geometry
    g = np.random.default_rng(seed)
    arrays = [g.standard_normal(xs), g.standard_normal(ws)] + ([g.standard_normal(ws[0])] if with_bias else [])
    fn = lambda x, w, *b: x.conv2d(w, *b, stride=stride, padding=padding)
    out = fn(*[Tensor(a) for a in arrays])
    expected = conv2d_ref(arrays[0], arrays[1], arrays[2] if with_bias else None, stride, padding)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    check_grad(fn, *arrays)


@settings(max_examples=15, deadline=None)
@given(k=st.integers(1, 3), s=st.integers(1, 4), h=st.integers(3, 7), w=st.integers(3, 7),
       seed=st.integers(0, 2**32 - 1))
def test_max_pool2d_random_geometry(k, s, h, w, seed):
    global rng  # the generators draw from the module's rng: reseed it from hypothesis's seed
    rng = np.random.default_rng(seed)
    x = distinct(1, 2, h, w)
    fn = lambda x: x.max_pool2d(k, s)
    np.testing.assert_array_equal(fn(Tensor(x)).numpy(), max_pool2d_ref(x, k, s))
    check_grad(fn, x)


# ---- op-specific behaviour ---------------------------------------------------------------------

@pytest.mark.parametrize("shape, k, s", POOL_GEOMETRIES)
def test_max_pool2d_all_equal_input_routes_each_window_to_one_position(shape, k, s):
    """Tie rule: a window's gradient goes to exactly ONE position, its first max in row-major
    order (the window's top-left when all values tie), never split or copied to every tie."""
    x = Tensor(np.full(shape, 0.5, np.float32), requires_grad=True)
    out = x.max_pool2d(k, s)
    out.sum().backward()
    expected = max_pool2d_grad_ref(x.numpy(), np.ones(out.shape, np.float32), k, s)
    np.testing.assert_array_equal(x.grad, expected)
    assert x.grad.sum() == out.data.size  # one unit of gradient per window, no more
    first = np.zeros(shape[2:])
    step = k if s is None else s
    first[:out.shape[2] * step:step, :out.shape[3] * step:step] = 1  # every window's top-left
    np.testing.assert_array_equal(x.grad[0, 0], first)


@pytest.mark.parametrize("shape, k, s", POOL_GEOMETRIES)
def test_max_pool2d_ties_against_loop_reference(shape, k, s):
    """Mostly-tied integer input, random upstream gradient: matches the first-max loop rule."""
    g = np.random.default_rng(3)
    x = Tensor(g.integers(0, 2, shape).astype(np.float64), requires_grad=True)
    out = x.max_pool2d(k, s)
    upstream = g.standard_normal(out.shape)
    out.backward(upstream)
    np.testing.assert_allclose(x.grad, max_pool2d_grad_ref(x.numpy(), upstream, k, s), rtol=1e-12)


def test_max_pool2d_tie_goes_to_first_in_row_major_order():
    x = Tensor(np.array([[[[0.0, 5.0], [5.0, 1.0]]]]), requires_grad=True)
    x.max_pool2d(2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[0, 1], [0, 0]])


def test_max_reduction_ties_share_the_gradient():
    """Max (the reduction) documents the symmetric subgradient: tied maxima share equally."""
    x = Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0, 0.5, 0.5, 0])


def test_repeated_integer_indices_accumulate():
    """t[np.arange(N), labels] and friends: each occurrence of an index adds its gradient."""
    x = Tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 0, 1])

    m = Tensor(np.zeros((2, 3)), requires_grad=True)
    (m[np.array([0, 1, 0]), np.array([2, 2, 2])] * Tensor(np.array([1.0, 10.0, 100.0]))).sum().backward()
    np.testing.assert_array_equal(m.grad, [[0, 0, 101], [0, 0, 10]])


def test_tiny_cnn_end_to_end():
    """conv -> relu -> pool -> flatten -> matmul -> cross_entropy: gradcheck in float64, and
    float32 all the way through (loss and every parameter gradient)."""
    g = np.random.default_rng(5)
    x, w, b, fc = g.standard_normal((2, 1, 6, 6)), g.standard_normal((2, 1, 3, 3)), g.standard_normal(2), \
        g.standard_normal((8, 3))
    y = np.array([2, 0])

    def net(x, w, b, fc):
        return x.conv2d(w, b, padding=0).relu().max_pool2d(2).flatten(1).matmul(fc).cross_entropy(y)

    # relu/pool kinks are hit with probability ~0 for continuous random data and eps=1e-6
    assert gradcheck(net, *[Tensor(a, requires_grad=True) for a in (x, w, b, fc)])
    params = [Tensor(a.astype(np.float32), requires_grad=True) for a in (x, w, b, fc)]
    loss = net(*params)
    loss.backward()
    assert loss.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in params)


@pytest.mark.parametrize("layout", ["contiguous", "channels-last", "batch-innermost", "strided-view"])
def test_conv_and_pool_accept_any_memory_layout(layout):
    """conv2d and max_pool2d work in their input's memory order (conv2d reads a batch-innermost
    input without copying it), so check NCHW views of other memory orders, and strided slices."""
    base = randn(2, 3, 10, 6)
    x = {"contiguous": np.ascontiguousarray(base[:, :, :5]),
         "channels-last": np.ascontiguousarray(base[:, :, :5].transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
         "batch-innermost": np.ascontiguousarray(base[:, :, :5].transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2),
         "strided-view": base[:, :, ::2]}[layout]
    np.testing.assert_array_equal(x, base[:, :, :5] if layout != "strided-view" else base[:, :, ::2])
    w = randn(2, 3, 2, 3)
    for padding in (0, 1):
        out = Tensor(x).conv2d(Tensor(w), padding=padding)
        np.testing.assert_allclose(out.numpy(), conv2d_ref(x, w, None, 1, padding), rtol=1e-10, atol=1e-12)
        check_grad(lambda x, w: x.conv2d(w, padding=padding), x, w)
    np.testing.assert_array_equal(Tensor(x).max_pool2d(2).numpy(), max_pool2d_ref(x, 2))
    check_grad(lambda x: x.max_pool2d(2), x + np.arange(x.size).reshape(x.shape) * 1e-3)  # no ties


def test_stacked_convs_and_pools():
    """Layer outputs are views with unusual strides (conv returns CHWN memory): feeding them into
    the next conv / pool, and their gradients back, must still be right."""
    g = np.random.default_rng(11)
    arrays = [g.standard_normal(s) for s in [(2, 2, 7, 7), (3, 2, 3, 3), (3,), (2, 3, 3, 3), (2,)]]

    def net(x, w1, b1, w2, b2):
        h = x.conv2d(w1, b1, padding=1).tanh()            # (2, 3, 7, 7)
        h = h.conv2d(w2, b2, stride=2, padding=1)         # (2, 2, 4, 4)
        return h.max_pool2d(3, 1).conv2d(w2[:, :2], padding=1)  # overlapping pool, then conv again

    check_grad(net, *arrays)


# ---- numerical stability -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_is_stable_for_huge_logits(dtype):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 0.0, 1000.0]], dtype)
    upstream = np.array([[0.5, -1.0, 2.0], [1.0, 3.0, -0.5]], dtype)

    x = Tensor(logits, requires_grad=True)
    out = x.softmax(axis=1)
    out.backward(upstream)
    np.testing.assert_array_equal(out.numpy(), [[1, 0, 0], [0, 0, 1]])
    assert out.dtype == dtype and np.isfinite(x.grad).all()
    np.testing.assert_allclose(x.grad, 0, atol=1e-30)  # a saturated softmax has zero Jacobian

    x = Tensor(logits, requires_grad=True)
    out = x.log_softmax(axis=1)
    out.backward(upstream)
    np.testing.assert_array_equal(out.numpy(), [[0, -2000, -1000], [-2000, -1000, 0]])
    assert out.dtype == dtype and np.isfinite(x.grad).all()
    # d/dx of log_softmax contracted with u: u - softmax * sum(u)
    np.testing.assert_allclose(x.grad, upstream - np.array([[1, 0, 0], [0, 0, 1]]) * upstream.sum(1, keepdims=True))

    for y, expected in [([0, 2], 0.0), ([1, 0], 2000.0), ([2, 1], (1000.0 + 1000.0) / 2)]:
        x = Tensor(logits, requires_grad=True)
        loss = x.cross_entropy(np.array(y))
        loss.backward()
        assert loss.dtype == dtype and loss.item() == expected
        onehot = np.eye(3)[y]
        np.testing.assert_allclose(x.grad, (np.array([[1, 0, 0], [0, 0, 1]]) - onehot) / 2)


def test_log_softmax_of_equal_huge_logits():
    out = Tensor(np.array([[1000.0, 1000.0], [-1000.0, -1000.0]], np.float32)).log_softmax(1)
    np.testing.assert_allclose(out.numpy(), -np.log(2), rtol=1e-6)


def test_softmax_without_dim_uses_pytorchs_implicit_dimension():
    # PyTorch 2.13: F.softmax(x) and F.log_softmax(x) without dim warn and use dim 0 for a 3-D
    # input and dim 1 for a 4-D one (not the last); for 1-D and 2-D inputs that is the last one
    for shape, dim in [((2, 3, 4), 0), ((2, 3, 4, 5), 1)]:
        x = randn(*shape)
        expected = np.exp(x) / np.exp(x).sum(axis=dim, keepdims=True)
        with pytest.warns(UserWarning, match=f"softmax: no dim given; as PyTorch does, dim {dim} is used"):
            np.testing.assert_allclose(F.softmax(Tensor(x)).numpy(), expected, rtol=1e-12)
        with pytest.warns(UserWarning, match=f"log_softmax: no dim given; as PyTorch does, dim {dim} is used"):
            np.testing.assert_allclose(Tensor(x).log_softmax().numpy(), np.log(expected), rtol=1e-12)


# ---- functional forms --------------------------------------------------------------------------

@pytest.mark.parametrize("functional, method, arrays", [
    (lambda x, w: F.conv2d(x, w, stride=2, padding=1), lambda x, w: x.conv2d(w, stride=2, padding=1),
     (randn(1, 2, 5, 5), randn(3, 2, 3, 3))),
    (lambda x: F.max_pool2d(x, 3, 2), lambda x: x.max_pool2d(3, 2), (distinct(1, 1, 5, 5),)),
    (lambda x: F.cross_entropy(x, [0, 2]), lambda x: x.cross_entropy(np.array([0, 2])), (randn(2, 3),)),
    (lambda x: F.softmax(x), lambda x: x.softmax(), (randn(2, 3),)),
])
def test_functional_matches_method(functional, method, arrays):
    results = []
    for f in (functional, method):
        inputs = [Tensor(a, requires_grad=True) for a in arrays]
        out = f(*inputs)
        out.backward(np.ones(out.shape))
        results.append((out.numpy(), [t.grad for t in inputs]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for g0, g1 in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(g0, g1)


def test_functional_takes_numpy_arrays_as_constants():
    out = F.linear(np.ones((2, 3)), np.ones((4, 3)), np.arange(4.0))
    assert isinstance(out, Tensor) and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), 3 + np.arange(4.0)[None].repeat(2, 0))


def test_nll_loss_of_log_softmax_equals_cross_entropy():
    logits = randn(5, 4)
    y = np.array([3, 0, 0, 2, 3])
    a, b = Tensor(logits, requires_grad=True), Tensor(logits, requires_grad=True)
    nll = F.nll_loss(F.log_softmax(a, axis=1), y)
    ce = F.cross_entropy(b, y)
    nll.backward()
    ce.backward()
    np.testing.assert_allclose(nll.item(), ce.item(), rtol=1e-12)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-15)


def test_dropout_with_fixed_seed():
    x = Tensor(np.ones((100, 100), np.float32), requires_grad=True)
    np.random.seed(42)
    out = F.dropout(x, p=0.25)
    np.random.seed(42)
    again = F.dropout(x, p=0.25)
    np.testing.assert_array_equal(out.numpy(), again.numpy())  # the same seed, the same mask
    kept = out.numpy() != 0
    # inverted dropout: survivors are scaled by 1/(1-p), so the expectation is unchanged
    np.testing.assert_allclose(out.numpy()[kept], 1 / 0.75, rtol=1e-6)
    assert out.dtype == np.float32
    assert abs(kept.mean() - 0.75) < 0.02  # 10,000 draws: 0.02 is > 4 standard deviations
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, out.numpy())  # d(x*mask)/dx = mask, and x is all ones


@pytest.mark.parametrize("kwargs", [dict(training=False), dict(p=0.0)])
def test_dropout_identity_when_disabled(kwargs):
    x = Tensor(randn(3, 4), requires_grad=True)
    out = F.dropout(x, **kwargs)
    np.testing.assert_array_equal(out.numpy(), x.numpy())
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, 1)
