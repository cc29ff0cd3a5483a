"""export: the tape written out as numpy code computes the tape's values and gradients (to 1e-12
in float64), for the tutorial network, the deep model and random programs, and it is a function:
other inputs give what the tape gives on them."""
import ast
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor, autograd, export, functional as F, tensor as engine
from tinygrad_cnn.autograd import Function

DEMO = Path(__file__).resolve().parent.parent / "demos" / "mnist_cnn.py"
spec = importlib.util.spec_from_file_location("mnist_cnn_demo_for_export", DEMO)
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)

TOL = dict(rtol=1e-12, atol=1e-12)


def assert_matches(fn, loss, leaves, arrays=None, grad=None):
    """fn(**arrays) gives loss's value and, under each leaf's name, the tape's gradient."""
    value, grads = fn(**(arrays or {}))
    tape = autograd.grad(loss, list(leaves.values()), grad_outputs=grad, retain_graph=True)
    np.testing.assert_allclose(value, loss.data, **TOL)
    assert sorted(grads) == sorted(leaves)
    for (name, _), g in zip(leaves.items(), tape):
        assert grads[name].shape == g.shape, name
        np.testing.assert_allclose(grads[name], g.data, **TOL, err_msg=name)


def mnist_like(rng, n):
    """Images with a flat background, as MNIST's: max-pool windows tie there."""
    x = np.where(rng.random((n, 1, 28, 28)) < 0.7, 0.0, rng.random((n, 1, 28, 28))) - 0.5
    return x, rng.integers(0, 10, n)


def tutorial_step(rng, n, dtype=np.float64):
    model = demo.tutorial_net().to(dtype)
    x, y = mnist_like(rng, n)
    image = Tensor(x.astype(dtype))
    loss = model(image).cross_entropy(y)
    return model, image, y, loss


# ---- the two networks of the demo -------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 3])
def test_tutorial_network_matches_the_tape(n):
    model, image, label, loss = tutorial_step(np.random.default_rng(n), n)
    fn = export.to_function(loss, model, inputs={"image": image, "label": label})
    assert list(fn.arguments) == ["image", "label", "p0_weight", "p3_weight", "p3_bias"]
    assert_matches(fn, loss, dict(model.named_parameters()))


def test_the_export_is_a_function_of_its_inputs():
    """Other images, labels and weights give the tape's results on them: masks and max-pool
    choices are computed from the data, not baked in."""
    rng = np.random.default_rng(5)
    model, image, label, loss = tutorial_step(rng, 2)
    fn = export.to_function(loss, model, inputs={"image": image, "label": label})
    x2, y2 = mnist_like(rng, 2)
    for p in model.parameters():
        p.data = p.data + rng.standard_normal(p.shape) * 0.1
    loss2 = model(Tensor(x2)).cross_entropy(y2)
    arrays = {"image": x2, "label": y2, **{n: p.data for n, p in zip(["p0_weight", "p3_weight", "p3_bias"],
                                                                         model.parameters())}}
    assert_matches(fn, loss2, dict(model.named_parameters()), arrays)


def test_deep_network_with_dropout_matches_the_tape():
    rng = np.random.default_rng(2)
    np.random.seed(2)
    model = demo.deep_net().to(np.float64)
    x, y = mnist_like(rng, 2)
    image = Tensor(x)
    loss = model(image).cross_entropy(y)
    fn = export.to_function(loss, model, inputs={"x": image, "labels": y})
    mask = fn.arguments["dropout_mask"]  # the mask this step drew is an argument
    assert mask.shape == (2, 128) and set(np.unique(mask)) == {0.0, 1 / 0.75}
    assert_matches(fn, loss, dict(model.named_parameters()))
    # a mask of ones is no dropout: the tape in eval mode
    model.eval()
    assert_matches(fn, model(image).cross_entropy(y), dict(model.named_parameters()), {"dropout_mask": np.ones((2, 128))})


def test_float32_stays_float32():
    model, image, label, loss = tutorial_step(np.random.default_rng(1), 2, np.float32)
    value, grads = export.to_function(loss, model, inputs={"image": image, "label": label})()
    loss.backward()
    assert value.dtype == np.float32
    for name, p in model.named_parameters():
        assert grads[name].dtype == np.float32
        np.testing.assert_allclose(grads[name], p.grad, rtol=1e-5, atol=1e-7)


def test_the_tutorial_export_reads_like_the_tutorials_backprop():
    model, image, label, loss = tutorial_step(np.random.default_rng(0), 1)
    source = export.to_source(loss, model, inputs={"image": image, "label": label}, name="tutorial_step")
    assert "def tutorial_step(image, label, p0_weight, p3_weight, p3_bias):" in source
    # one commented block per op, forward then backward in the engine's order
    blocks = [re.match(r"# (backward of )?(\w+)", line.strip()) for line in source.splitlines()]
    names = [b.group(1, 2) for b in blocks if b]
    assert names == [(None, "conv2d"), (None, "max_pool2d"), (None, "reshape"), (None, "linear"),
                     (None, "cross_entropy")] + [("backward of ", op) for op in
                                                 ["cross_entropy", "linear", "reshape", "max_pool2d", "conv2d"]]
    assert "# conv2d 3x3: image (1, 1, 28, 28), p0_weight (8, 1, 3, 3) -> conv (1, 8, 26, 26)" in source
    assert "# max_pool2d 2x2, stride 2: conv (1, 8, 26, 26) -> pool (1, 8, 13, 13)" in source
    assert "d_p3_weight = d_linear.T @ reshape" in source
    assert "d_p0_weight = (rows @ cols.T).reshape(8, 1, 3, 3)" in source


def test_the_source_is_self_contained():
    model, image, label, loss = tutorial_step(np.random.default_rng(0), 1)
    fn = export.to_function(loss, model, inputs={"image": image, "label": label})
    tree = ast.parse(fn.source)
    imported = {(n.module if isinstance(n, ast.ImportFrom) else n.names[0].name) for n in ast.walk(tree)
                if isinstance(n, (ast.Import, ast.ImportFrom))}
    assert imported <= {"numpy", "tinygrad_cnn.ops.conv"}
    assert [type(n) for n in tree.body] == [ast.Import, ast.ImportFrom, ast.FunctionDef]
    namespace = {}
    exec(fn.source, namespace)  # runs with nothing but what it imports
    value, grads = namespace[fn.name](**fn.arguments)
    np.testing.assert_allclose(value, loss.data, **TOL)


# ---- the chain rule spelled out ---------------------------------------------------------------------

def test_forks_are_summed_and_broadcasts_undone_explicitly():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal((1, 3)), requires_grad=True)
    c = Tensor(rng.standard_normal(3), requires_grad=True)
    h = (x + b).tanh()
    loss = ((h * h + c) * x).sum()  # x and h are each used twice; b and c are broadcast
    fn = export.to_function(loss, inputs={"x": x, "b": b, "c": c})
    assert "d_x = d_x + " in fn.source and "x feeds several ops: add up" in fn.source
    assert "undo the broadcast of (1, 3) to (4, 3)" in fn.source
    assert "undo the broadcast of (3,) to (4, 3)" in fn.source
    assert_matches(fn, loss, {"x": x, "b": b, "c": c})


def test_the_backward_runs_in_the_engines_order():
    """The backward blocks come in the order the engine visits the ops (seen through its tracer)."""
    program = random_program(11)
    loss, leaves = program()
    seen = []

    class Tracer:
        def forward(self, op, inputs, kwargs, run):
            return run()

        def backward(self, ctx, output, grad, run):
            seen.append(export.TEMPLATES[type(ctx)].name)
            return run()

    fn = export.to_function(loss, inputs=leaves)
    previous = engine._tracer
    engine.set_tracer(Tracer())
    try:
        autograd.grad(loss, list(leaves.values()), retain_graph=True)
    finally:
        engine.set_tracer(previous)
    blocks = [line.split("backward of ")[1].split(":")[0] for line in fn.source.splitlines() if "# backward of" in line]
    same = {"min": "max", "minimum": "maximum"}  # a template may name its op by what it computes
    assert len(seen) > 20 and [same.get(b, b) for b in blocks] == [same.get(b, b) for b in seen]


def test_constants_become_literals_or_arguments():
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    small, large = np.array([1.5, -2.0, 0.25]), rng.standard_normal((5, 3))
    loss = ((x * small + 2.5) * large - 1).sum()
    fn = export.to_function(loss, inputs={"x": x})
    assert "np.array([1.5, -2.0, 0.25], dtype=np.float64)" in fn.source and "+ 2.5" in fn.source
    assert list(fn.arguments) == ["x", "mul_y"] and fn.arguments["mul_y"] is large
    assert_matches(fn, loss, {"x": x})
    other = rng.standard_normal((5, 3))  # the large constant is an argument: give another one
    assert_matches(fn, ((x * small + 2.5) * other - 1).sum(), {"x": x}, {"mul_y": other})


def test_a_non_scalar_output_takes_its_gradient_as_an_argument():
    rng = np.random.default_rng(6)
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    out = x.exp() * x
    upstream = rng.standard_normal((2, 3))
    fn = export.to_function(out, inputs={"x": x}, grad=upstream)
    assert list(fn.arguments) == ["x", "d_out"]
    assert_matches(fn, out, {"x": x}, grad=upstream)


def test_tapes_made_by_create_graph_export_too():
    """A gradient penalty: the tape holds the backward ops of conv, max-pool, relu, indexing and
    linear, and a third-order tape the backward of those. (The masks their backward drew are
    constants of such a tape, so arguments of the export.)"""
    rng = np.random.default_rng(7)
    x = Tensor(rng.standard_normal((2, 2, 6, 6)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    fc = Tensor(rng.standard_normal((4, 12)), requires_grad=True)
    h = x.conv2d(w, padding=1).max_pool2d(2, padding=1).relu().reshape(2, -1)[:, :12]
    loss = F.linear(h, fc).cross_entropy(np.array([1, 3]))
    gx, gw = autograd.grad(loss, [x, w], create_graph=True)
    penalty = (gx * gx).sum() + (gw * gw).sum()
    fn = export.to_function(penalty, inputs={"x": x, "w": w, "fc": fc})
    for op in ["conv_transpose2d", "conv2d_weight_grad", "pool_scatter", "scattered"]:
        assert op in fn.source
    assert_matches(fn, penalty, {"x": x, "w": w, "fc": fc})
    # third order: the backward of max-pool's backward (pool_gather)
    y = x.max_pool2d(3, stride=2, padding=1)
    g1, = autograd.grad((y * y).sum(), x, create_graph=True)
    g2, = autograd.grad((g1 * g1 * g1).sum(), x, create_graph=True)
    fn = export.to_function((g2 * g2).sum(), inputs={"x": x})
    assert "# pool_gather" in fn.source
    assert_matches(fn, (g2 * g2).sum(), {"x": x})


def test_the_source_runs_as_a_file(tmp_path):
    rng = np.random.default_rng(8)
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    loss = (x.float().exp().double() * x).sum()  # casts: float32 in between
    fn = export.to_function(loss, inputs={"x": x}, name="step")
    fn.save(tmp_path / "step.py")
    spec = importlib.util.spec_from_file_location("exported_step", tmp_path / "step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    value, grads = module.step(x.data)
    np.testing.assert_allclose(value, loss.data, **TOL)
    np.testing.assert_allclose(grads["x"], autograd.grad(loss, x)[0].data, **TOL)


# ---- every elementwise math op ------------------------------------------------------------------------

MATH = {  # method call, and the interval its input is drawn from (away from poles and kinks)
    "abs": (lambda x: x.abs(), (-2, 2)), "square": (lambda x: x.square(), (-2, 2)),
    "sqrt": (lambda x: x.sqrt(), (0.5, 2)), "rsqrt": (lambda x: x.rsqrt(), (0.5, 2)),
    "reciprocal": (lambda x: x.reciprocal(), (0.5, 2)), "log1p": (lambda x: x.log1p(), (-0.5, 2)),
    "expm1": (lambda x: x.expm1(), (-2, 2)), "log2": (lambda x: x.log2(), (0.5, 2)),
    "log10": (lambda x: x.log10(), (0.5, 2)), "exp2": (lambda x: x.exp2(), (-2, 2)),
    "sin": (lambda x: x.sin(), (-2, 2)), "cos": (lambda x: x.cos(), (-2, 2)), "tan": (lambda x: x.tan(), (-1, 1)),
    "sinh": (lambda x: x.sinh(), (-2, 2)), "cosh": (lambda x: x.cosh(), (-2, 2)),
    "asin": (lambda x: x.asin(), (-0.9, 0.9)), "acos": (lambda x: x.acos(), (-0.9, 0.9)),
    "atan": (lambda x: x.atan(), (-2, 2)), "asinh": (lambda x: x.asinh(), (-2, 2)),
    "acosh": (lambda x: x.acosh(), (1.5, 3)), "atanh": (lambda x: x.atanh(), (-0.9, 0.9)),
    "erf": (lambda x: x.erf(), (-3, 3)), "erfc": (lambda x: x.erfc(), (-3, 3)), "frac": (lambda x: x.frac(), (-3, 3)),
    "floor": (lambda x: x.floor() * x, (-3, 3)), "ceil": (lambda x: x.ceil() * x, (-3, 3)),
    "trunc": (lambda x: x.trunc() * x, (-3, 3)), "sign": (lambda x: x.sign() * x, (-3, 3)),
    "round": (lambda x: x.round() * x + x.round(decimals=1), (-3, 3)),
    "atan2": (lambda x: x.atan2(x.flip(0) * 2), (-2, 2)), "hypot": (lambda x: x.hypot(x[:1] + 1), (-2, 2)),
    "remainder": (lambda x: (x * 3) % (x[:1].abs() + 0.5), (-2, 2)), "fmod": (lambda x: (x * 3).fmod(0.7), (-2, 2)),
    "clamp": (lambda x: x.clamp(-0.5, 0.5) + x.clamp(min=0.2) + x.clamp(max=x.flip(1)), (-2, 2)),
    "clamp crossed bounds": (lambda x: x.clamp(x[:1], x[:1] - 1), (-2, 2)),
    "sigmoid": (lambda x: x.sigmoid(), (-3, 3)),
    "leaky_relu": (lambda x: x.leaky_relu(0.1), (-2, 2)), "elu": (lambda x: x.elu(0.7), (-2, 2)),
    "selu": (lambda x: x.selu(), (-2, 2)), "softplus": (lambda x: x.softplus() + x.softplus(2.0, 1.0), (-2, 2)),
    "logsigmoid": (lambda x: x.logsigmoid(), (-3, 3)), "gelu": (lambda x: x.gelu(), (-3, 3)),
    "gelu tanh": (lambda x: x.gelu(approximate="tanh"), (-3, 3)), "silu": (lambda x: x.silu(), (-3, 3)),
    "mish": (lambda x: x.mish(), (-3, 3)), "hardtanh": (lambda x: x.hardtanh(-0.5, 0.5), (-2, 2)),
    "relu6": (lambda x: (x * 4).relu6(), (-2, 2)), "hardsigmoid": (lambda x: (x * 2).hardsigmoid(), (-2, 2)),
    "hardswish": (lambda x: (x * 2).hardswish(), (-2, 2)), "softsign": (lambda x: x.softsign(), (-2, 2)),
}


@pytest.mark.parametrize("name", sorted(MATH))
def test_every_math_op_matches_the_tape(name):
    f, (low, high) = MATH[name]
    rng = np.random.default_rng(len(name))
    x = Tensor(rng.uniform(low, high, (3, 4)), requires_grad=True)
    out = f(x)
    loss = (out * rng.standard_normal(out.shape)).sum()
    fn = export.to_function(loss, inputs={"x": x})
    assert_matches(fn, loss, {"x": x})


def _column_doubled(x):
    out = x.clone()
    out[:, 0] = out[:, 0] * 2
    return out * out


def _used_before_the_change(x):
    b = x * 1
    c = b + 0
    b.add_(1)
    return c * b


@pytest.mark.parametrize("program", [_column_doubled, _used_before_the_change])
def test_ops_that_used_a_tensor_before_a_recorded_in_place_change_match_the_tape(program):
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    loss = (program(x) * rng.standard_normal((2, 3))).sum()
    assert_matches(export.to_function(loss, inputs={"x": x}), loss, {"x": x})


def test_a_write_at_a_repeated_index_matches_the_tape():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    v = Tensor(rng.standard_normal(3), requires_grad=True)
    h = x * 1
    h[[0, 0, 2], [1, 1, 3]] = v * v  # (0, 1) is written twice: the second value stays
    loss = (h.tanh() * rng.standard_normal((3, 4))).sum()
    fn = export.to_function(loss, inputs={"x": x, "v": v})
    assert_matches(fn, loss, {"x": x, "v": v})
    assert autograd.grad(loss, v, retain_graph=True)[0].data[0] == 0  # the overwritten value


# ---- random programs --------------------------------------------------------------------------------

def _broadcasts(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _fits(shape, target):
    return _broadcasts(shape, target) and np.broadcast_shapes(shape, target) == tuple(target)


def _leaves_of(t):
    found, stack, seen = [], [t], {id(t)}
    while stack:
        t = stack.pop()
        if t._ctx is None:
            found.append(t)
            continue
        for p in t._ctx.parents:
            if isinstance(p, Tensor) and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return found


def random_program(seed, n_ops=30):
    """A random DAG of many op types, with reuse (diamonds), broadcasting and constants. Returns
    run(leaf values=None) -> (loss, {name: leaf}): the same program on any leaf values."""
    rng = np.random.default_rng(seed)
    values, leaves, steps = [], [], []

    def new_leaf(shape):
        values.append(rng.standard_normal(shape))
        leaves.append(Tensor(values[-1], requires_grad=True))
        k = len(values) - 1
        return lambda leaves: leaves[k]

    def pick(pool, ok=lambda t: True):
        idx = [i for i, t in enumerate(pool) if ok(t)]
        weights = np.arange(1, len(idx) + 1, dtype=float)  # recent tensors more often: long chains
        return int(rng.choice(idx, p=weights / weights.sum())) if idx else None

    def axis_of(t):
        return int(rng.integers(-t.ndim, t.ndim))

    def unary(pool, i):
        f = [lambda t: -t, lambda t: t.tanh(), lambda t: t.sigmoid(), lambda t: t.relu(), lambda t: t.tanh().exp(),
             lambda t: (t * t + 0.5).log(), lambda t: (t * t + 0.5) ** 1.5, lambda t: t ** 2, lambda t: t.clone(),
             lambda t: t / 3.0, lambda t: 2.0 - t][int(rng.integers(11))]
        return lambda pool, leaves: f(pool[i])

    def binary(pool, i):
        j = pick(pool, lambda t: _broadcasts(t.shape, pool[i].shape))
        mask = rng.random(np.broadcast_shapes(pool[i].shape, pool[j].shape)) > 0.5
        f = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (b * b + 1),
             lambda a, b: a.maximum(b), lambda a, b: a.minimum(b), lambda a, b: F.where(mask, a, b),
             lambda a, b: (a * a + 0.5) ** b.tanh()][int(rng.integers(8))]
        return lambda pool, leaves: f(pool[i], pool[j])

    def constant(pool, i):
        shape = pool[i].shape
        c = rng.standard_normal(shape[int(rng.integers(len(shape) + 1)):])  # small (a literal) or large (an argument)
        f = [lambda t: t + c, lambda t: c * t, lambda t: t - 1.5, lambda t: 0.5 * t][int(rng.integers(4))]
        return lambda pool, leaves: f(pool[i])

    def reduce(pool, i):
        t = pool[i]
        name = ["sum", "mean", "max", "min", "cumsum"][int(rng.integers(5))]
        if name == "cumsum":
            axis = axis_of(t) if t.ndim else 0
            return lambda pool, leaves: pool[i].cumsum(axis)
        choices = [None] + ([axis_of(t), (0, -1) if t.ndim >= 2 else 0] if t.ndim else [])
        axis, keep = choices[int(rng.integers(len(choices)))], bool(rng.integers(2))
        return lambda pool, leaves: getattr(pool[i], name)(axis=axis, keepdims=keep)

    def reshape(pool, i):
        t = pool[i]
        if t.ndim >= 2 and rng.integers(2):
            perm = tuple(int(d) for d in rng.permutation(t.ndim))
            return lambda pool, leaves: pool[i].permute(*perm)
        shape = (2, -1) if t.ndim == 1 and t.shape[0] % 2 == 0 else (-1,)
        return lambda pool, leaves: pool[i].reshape(*shape)

    def expand(pool, i):
        shape = (2,) + tuple(3 if n == 1 else n for n in pool[i].shape)
        return lambda pool, leaves: pool[i].expand(*shape)

    def index(pool, i):
        t = pool[i]
        if t.ndim == 0:
            return None
        choices = [slice(1, None), (Ellipsis, 0), (slice(None), None), slice(None, None, 2),
                   np.array([0, t.shape[0] - 1, 0]), rng.random(t.shape) > 0.3]
        idx = choices[int(rng.integers(len(choices)))]
        return lambda pool, leaves: pool[i][idx]

    def join(pool, i):
        j = pick(pool, lambda t: t.shape == pool[i].shape)
        if pool[i].ndim == 0:
            return lambda pool, leaves: F.stack([pool[i], pool[j]])
        axis = axis_of(pool[i])
        return lambda pool, leaves: F.cat([pool[i], pool[j], pool[i]], dim=axis)

    def matmul(pool, i):
        t = pool[i]
        if t.ndim == 0:
            return None
        kind = int(rng.integers(3))
        w = new_leaf((t.shape[-1],) if kind == 0 else (t.shape[-1], 3) if kind == 1 else (3, t.shape[-1]))
        if kind == 2:
            b = new_leaf((3,))
            return lambda pool, leaves: F.linear(pool[i], w(leaves), b(leaves))
        if rng.integers(2) and t.ndim >= 2:  # a matrix on the left of a batch
            v = new_leaf((2, t.shape[-2]))
            return lambda pool, leaves: v(leaves) @ pool[i]
        return lambda pool, leaves: pool[i] @ w(leaves)

    def softmax(pool, i):
        t = pool[i]
        if t.ndim == 0:
            return None
        axis = axis_of(t)
        labels = rng.integers(0, t.shape[-1], int(np.prod(t.shape[:-1])))
        f = [lambda t: t.softmax(axis), lambda t: t.log_softmax(axis),
             lambda t: t.reshape(-1, t.shape[-1]).cross_entropy(labels)][int(rng.integers(3))]
        return lambda pool, leaves: f(pool[i])

    def setitem(pool, i):
        t = pool[i]
        if t.ndim == 0:
            return None
        v = pick(pool, lambda u: _fits(u.shape, t.shape[1:]))

        def f(pool, leaves):
            out = pool[i] * 1.0
            out[0] = pool[v] if v is not None else 0.5  # in place, on the tape
            return out
        return f

    def image(pool, i):
        x = new_leaf((2, 4, 7, 6))
        return lambda pool, leaves: x(leaves) * 1.0

    def conv(pool, i):
        i = pick(pool, lambda t: t.ndim == 4 and min(t.shape[2:]) >= 3)
        if i is None:
            return None
        t = pool[i]
        c, kind = t.shape[1], int(rng.integers(5))
        if kind == 0:  # stride, padding, dilation, groups
            groups = 2 if c % 2 == 0 and rng.integers(2) else 1
            w, b = new_leaf((4, c // groups, 2, 3)), new_leaf((4,))
            opts = dict(stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                        dilation=int(rng.integers(1, 3)) if min(t.shape[2:]) >= 5 else 1, groups=groups)
            return lambda pool, leaves: pool[i].conv2d(w(leaves), b(leaves), **opts)
        if kind == 1:
            k = int(rng.integers(2, 4))
            opts = dict(kernel_size=k, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, k // 2 + 1)))
            return lambda pool, leaves: pool[i].max_pool2d(**opts)
        if kind == 2:
            return lambda pool, leaves: pool[i].avg_pool2d(2, 1)
        if kind == 3:
            w = new_leaf((c, 3, 2, 2))
            return lambda pool, leaves: pool[i].conv_transpose2d(w(leaves), stride=2)
        mask_seed = int(rng.integers(1 << 30))

        def dropout(pool, leaves):
            np.random.seed(mask_seed)  # the same mask on every run
            return F.dropout(pool[i], 0.3, training=True)
        return dropout

    makers = [unary] * 3 + [binary] * 4 + [constant, reduce, reshape, expand, index, join, matmul, softmax,
                                           setitem, image, conv, conv, conv]
    new_leaf((3, 4)), new_leaf((1, 4))
    pool = list(leaves)
    while len(steps) < n_ops:
        step = makers[int(rng.integers(len(makers)))](pool, pick(pool))
        if step is None:
            continue
        out = step(pool, leaves)
        if out.requires_grad and out.data.size:
            pool.append(out)
            steps.append(step)
    weights = [rng.standard_normal(t.shape) for t in pool]

    def run(leaf_values=None):
        leaves = [Tensor(v, requires_grad=True) for v in (values if leaf_values is None else leaf_values)]
        pool = leaves[:2]
        for step in steps:
            pool.append(step(pool, leaves))
        loss = sum((t * w).sum() for t, w in zip(pool, weights))
        used = {id(t) for t in _leaves_of(loss)}
        return loss, {f"a{k}": t for k, t in enumerate(leaves) if id(t) in used}
    run.values = values
    return run


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_match_the_tape(seed):
    program = random_program(seed)
    loss, leaves = program()
    fn = export.to_function(loss, inputs=leaves)
    assert_matches(fn, loss, leaves)
    # and on other leaf values, the tape's results on those
    rng = np.random.default_rng(100 + seed)
    other = [rng.standard_normal(np.shape(v)) for v in program.values]
    loss2, leaves2 = program(other)
    assert_matches(fn, loss2, leaves2, {name: t.data for name, t in leaves2.items()})


# ---- errors -----------------------------------------------------------------------------------------

def test_an_op_without_a_template_is_a_clear_error():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            return 3 * grad * ctx.saved[0] ** 2

    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(NotImplementedError, match="no code template for op.*Cube"):
        export.to_source(Cube.apply(x).sum())


def test_export_errors():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    loss = (x * 2).sum()
    with pytest.raises(ValueError, match="not computed by recorded ops"):
        export.to_source(Tensor(np.ones(3)).sum())
    with pytest.raises(ValueError, match=r"output has shape \(2, 3\).*pass grad="):
        export.to_source(x * 2)
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), but the output has shape \(2, 3\)"):
        export.to_source(x * 2, grad=np.ones(3))
    with pytest.raises(ValueError, match="input.*label.*not found"):
        export.to_source(loss, inputs={"x": x, "label": np.zeros(2)})
    with pytest.raises(ValueError, match="cannot be a variable name"):
        export.to_source(loss, inputs={"my x": x})
    with pytest.raises(ValueError, match="must be a Python identifier"):
        export.to_source(loss, name="two words")
    with pytest.raises(TypeError, match="unknown argument.*y.*takes x"):
        export.to_function(loss, inputs={"x": x})(y=np.ones(2))
    h = x * 2
    h.register_hook(lambda g: g * 2)
    with pytest.raises(NotImplementedError, match="hook"):
        export.to_source(h.sum())
    loss.backward()
    with pytest.raises(RuntimeError, match="released by backward"):
        export.to_source(loss)


def test_every_op_has_a_template():
    """A new op needs a template to be exported (one entry in export.py)."""
    from tinygrad_cnn import ops

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    missing = sorted(c.__name__ for c in subclasses(Function) if c.__module__.startswith(ops.__name__)
                     and c not in export.TEMPLATES)
    assert missing == []
