"""Randomized programs: random DAGs of ops (reuse, diamonds, broadcasting, non-contiguous inputs),
checked by float64 gradcheck (first derivatives) and gradgradcheck (second derivatives) with
random upstream gradients. The seed is fixed, so a failure reproduces; the budget keeps it fast."""
import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, gradgradcheck


def smooth(x):
    """Keep values in a range where every op below is smooth and finite."""
    return x.tanh() * 1.5


UNARY = [
    ("tanh", lambda x: x.tanh()),
    ("sigmoid", lambda x: x.sigmoid()),
    ("exp", lambda x: smooth(x).exp()),
    ("log", lambda x: (x * x + 0.5).log()),
    ("square", lambda x: x * x),
    ("neg", lambda x: -x),
    ("pow", lambda x: (x * x + 1.0) ** 1.5),
    ("scale", lambda x: 0.5 * x - 0.25),
    ("reciprocal", lambda x: 1.0 / (x * x + 1.0)),
]


def reduce_op(rng, x):
    if x.ndim == 0:
        return x * 1.0
    axis = int(rng.integers(-x.ndim, x.ndim))
    keep = bool(rng.integers(0, 2))
    kind = rng.choice(["sum", "mean", "max", "softmax", "log_softmax"])
    if kind in ("softmax", "log_softmax"):
        return getattr(x, kind)(axis)
    return getattr(x, kind)(axis=axis, keepdims=keep)


def shape_op(rng, x):
    kind = rng.choice(["T", "reshape", "slice", "index"]) if x.ndim else "reshape"
    if kind == "T":
        return x.T
    if kind == "reshape":
        return x.reshape(-1)
    if kind == "slice":
        return x[tuple(slice(None, None, -1) if i == 0 else slice(None) for i in range(x.ndim))]
    idx = rng.integers(0, x.shape[0], size=x.shape[0] + 1)  # repeats: gradients must add up
    return x[idx]


def broadcastable(a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
        return True
    except ValueError:
        return False


def random_program(seed, n_ops=8):
    """(the leaves, a function of them) for one random DAG."""
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (4,), (1, 4), (3, 1), ()]
    arrays = []
    for _ in range(3):
        shape = shapes[rng.integers(len(shapes))]
        a = rng.standard_normal(shape)
        if a.ndim == 2 and rng.integers(2):  # a non-contiguous input: a transposed copy's view
            a = np.ascontiguousarray(a.T).T
        arrays.append(a)
    plan = []
    for step in range(n_ops):
        kind = rng.choice(["unary", "binary", "binary", "reduce", "shape", "matmul"])
        plan.append((kind, int(rng.integers(1 << 30))))

    def program(*leaves):
        pool = list(leaves)
        for kind, s in plan:
            r = np.random.default_rng(s)
            x = pool[r.integers(len(pool))]
            if kind == "unary":
                out = UNARY[r.integers(len(UNARY))][1](x)
            elif kind == "binary":
                partners = [y for y in pool if broadcastable(x, y)]
                y = partners[r.integers(len(partners))]  # may be x itself: a diamond
                op = r.choice(["+", "-", "*", "/"])
                out = x + y if op == "+" else x - y if op == "-" else x * y if op == "*" else x / (y * y + 1.0)
            elif kind == "reduce":
                out = reduce_op(r, x)
            elif kind == "shape":
                out = shape_op(r, x)
            else:
                partners = [y for y in pool if x.ndim >= 1 and y.ndim >= 1 and y.shape[0] == x.shape[-1]]
                out = x @ partners[r.integers(len(partners))] if partners else x.tanh()
            pool.append(out)
        # every node may matter: several are summed into the last one, a non-scalar output that
        # gradcheck contracts with a random upstream gradient
        total = pool[-1]
        for node in pool[len(leaves):-1:2]:
            total = total + (node * 0.3).sum()
        return total

    return arrays, program


@pytest.mark.parametrize("seed", range(40))
def test_random_program_first_and_second_derivatives(seed):
    arrays, program = random_program(seed)
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    used = [i for i, t in enumerate(leaves) if _reaches(program, leaves, i)]
    for i, t in enumerate(leaves):
        t.requires_grad = i in used
    if not used:
        pytest.skip("this random program ignores its inputs")
    assert gradcheck(program, *leaves)
    assert gradgradcheck(program, *leaves)


def _reaches(program, leaves, i):
    """Whether leaf i influences the output (a random program may ignore an input)."""
    probe = [Tensor(t.data, requires_grad=(j == i)) for j, t in enumerate(leaves)]
    return program(*probe).requires_grad


def test_programs_are_varied():
    """The generator is not degenerate: across the seeds, programs use every kind of op and
    most use more than one input."""
    kinds, multi_input = set(), 0
    for seed in range(40):
        arrays, program = random_program(seed)
        leaves = [Tensor(a, requires_grad=True) for a in arrays]
        out = program(*leaves)
        ops, stack, seen, reached = set(), [out], set(), set()
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            if t._ctx is None:
                reached.add(id(t))
                continue
            ops.add(type(t._ctx).__name__)
            stack.extend(p for p in t._ctx.parents if isinstance(p, Tensor))
        kinds |= ops
        multi_input += sum(id(t) in reached for t in leaves) > 1
    assert {"Add", "Mul", "Div", "Sum", "Mean", "Max", "MatMul", "GetItem", "Permute", "Reshape", "Tanh"} <= kinds
    assert multi_input >= 20
