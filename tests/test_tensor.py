"""The Tensor class and the tape: construction, attributes, mixing with Python numbers and numpy
arrays, and the backward walk (ordering, accumulation, no_grad, detach, deep graphs, releasing
saved buffers, retain_graph, memory)."""
import copy
import gc
import pickle
import sys
import weakref

import numpy as np
import pytest

from tinygrad_cnn import Tensor, no_grad, ops
from tinygrad_cnn.tensor import _apply


# ---- construction and attributes ---------------------------------------------------------------

@pytest.mark.parametrize("data, dtype", [
    ([1, 2, 3], np.float32),                          # Python numbers: the default dtype
    (2.5, np.float32),
    (np.arange(3), np.float32),                       # integer arrays too
    (np.zeros(3, np.float64), np.float64),            # floating numpy arrays keep their dtype
    (np.zeros(3, np.float32), np.float32),
    (np.float64(1.5), np.float64),                    # so do numpy floating scalars
])
def test_constructor_dtype(data, dtype):
    t = Tensor(data)
    assert t.dtype == dtype and t.data.dtype == dtype and isinstance(t.data, np.ndarray)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


def test_constructor_explicit_dtype_and_from_tensor():
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor(np.zeros(2), dtype=np.float32).dtype == np.float32
    src = Tensor(np.arange(4.0), requires_grad=True)
    copy = Tensor(src)
    np.testing.assert_array_equal(copy.numpy(), src.numpy())
    assert not copy.requires_grad and copy._ctx is None


def test_attributes():
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.dtype == np.float64 and len(t) == 2
    assert t.requires_grad and t.grad is None and t._ctx is None
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(t.numpy(), np.arange(6.0).reshape(2, 3))
    assert Tensor(3.5).item() == 3.5 and isinstance(Tensor(3.5).item(), float)
    assert Tensor([[7.0]]).item() == 7.0
    assert not Tensor(1.0).requires_grad


def test_repr_shows_values_dtype_and_grad_state():
    leaf = Tensor([1.0, 2.0], requires_grad=True)
    assert repr(leaf) == "Tensor([1., 2.], dtype=float32, requires_grad=True)"
    assert repr(leaf * 2) == "Tensor([2., 4.], dtype=float32, grad_fn=<Mul>)"
    assert repr(Tensor(np.zeros(2))) == "Tensor([0., 0.], dtype=float64)"
    assert "..." in repr(Tensor.zeros(1000))  # large tensors are summarized, not dumped


@pytest.mark.parametrize("make", [Tensor.zeros, Tensor.ones, Tensor.randn, Tensor.uniform])
def test_factory_shapes_dtypes_requires_grad(make):
    assert make(2, 3).shape == (2, 3)
    assert make((2, 3)).shape == (2, 3)      # a tuple works as well as separate ints
    assert make(4).dtype == np.float32       # float32 by default
    t = make(2, dtype=np.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad


@pytest.mark.parametrize("make", [lambda dtype: Tensor.zeros(2, dtype=dtype), lambda dtype: Tensor.full(2, 1, dtype),
                                  lambda dtype: Tensor.eye(2, dtype=dtype), lambda dtype: Tensor.uniform(2, dtype=dtype)],
                         ids=["zeros", "full", "eye", "uniform"])
def test_factories_make_the_integer_and_bool_dtypes_they_are_given(make):
    assert make(np.int64).dtype == np.int64 and make(np.int32).dtype == np.int32 and make(bool).dtype == bool


def test_factory_values():
    np.testing.assert_array_equal(Tensor.zeros(2, 2).numpy(), 0)
    np.testing.assert_array_equal(Tensor.ones(2, 2).numpy(), 1)
    np.random.seed(0)
    n = Tensor.randn(100_000, dtype=np.float64).numpy()
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    u = Tensor.uniform(10_000, low=2.0, high=3.0).numpy()
    assert u.min() >= 2.0 and u.max() < 3.0 and abs(u.mean() - 2.5) < 0.02


# ---- Python numbers and numpy arrays mix with tensors --------------------------------------------

OPERATORS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a ** b,
}
CONSTANTS = {  # all of these are float64 or Python numbers: none may upcast a float32 tensor
    "int": 2,
    "float": 1.5,
    "np.float64": np.float64(1.5),
    "0-d array": np.array(1.5),
    "array": np.array([[0.5], [1.5]]),  # (2, 1): also broadcasts the tensor up to (2, 3)
}


@pytest.mark.parametrize("op", OPERATORS)
@pytest.mark.parametrize("const", CONSTANTS)
@pytest.mark.parametrize("tensor_on_left", [True, False])
def test_constants_mix_on_both_sides_and_keep_float32(op, const, tensor_on_left):
    x = np.array([0.5, 1.0, 2.0])  # positive: fine as a base and as a divisor
    c = CONSTANTS[const]
    t = Tensor(x.astype(np.float32), requires_grad=True)
    f = OPERATORS[op]
    out = f(t, c) if tensor_on_left else f(c, t)
    expected = f(x, c) if tensor_on_left else f(c, x)
    assert isinstance(out, Tensor)
    assert out.dtype == np.float32 and out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    out.sum().backward()
    assert t.grad.dtype == np.float32 and t.grad.shape == t.shape


def test_a_fractional_number_next_to_an_integer_tensor_gives_float32():
    # PyTorch 2.13: tensor([1, 2]) + 2.5 is tensor([3.5, 4.5]) (float32); 2 keeps int64
    i = Tensor(np.array([1, 2]), dtype=np.int64)
    for out, expected in [(i + 2.5, [3.5, 4.5]), (2.5 - i, [1.5, 0.5]), (i * 0.5, [0.5, 1.0]), (i ** 0.5, [1, 2 ** 0.5])]:
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-7)
    assert (i + 2).dtype == np.int64 and (i + 2).tolist() == [3, 4]


def test_float64_tensor_stays_float64_with_python_floats():
    t = Tensor(np.array([1.0, 2.0]))
    assert (t * 0.1).dtype == np.float64
    np.testing.assert_array_equal((t * 0.1).numpy(), np.array([1.0, 2.0]) * 0.1)  # not rounded to float32


def test_matmul_with_numpy_on_either_side():
    a = np.arange(6.0).reshape(2, 3)
    t = Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    out = a @ t
    assert isinstance(out, Tensor) and out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), a @ np.ones((3, 2)))
    out2 = t @ a
    np.testing.assert_array_equal(out2.numpy(), np.ones((3, 2)) @ a)
    (out.sum() + out2.sum()).backward()
    np.testing.assert_array_equal(t.grad, a.sum(0)[:, None] + a.sum(1)[None, :])


# ---- the backward walk ---------------------------------------------------------------------------

def recorder(log, name):
    """An identity op that logs (name, incoming gradient) each time its backward runs."""
    class Record(ops.Function):
        @staticmethod
        def forward(ctx, x):
            return x.copy()

        @staticmethod
        def backward(ctx, grad):
            log.append((name, np.array(grad)))
            return grad
    return Record


def test_x_times_x_sums_both_uses():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_diamond_visits_the_shared_node_once_with_the_summed_gradient():
    """x -> a -> (b = 2a, c = 3a) -> d = b + c: a's backward must run ONCE, after both branches,
    with the sum 2 + 3, and the walk must go in reverse topological order."""
    log = []
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    a = _apply(recorder(log, "a"), x)
    b = _apply(recorder(log, "b"), a * 2)
    c = _apply(recorder(log, "c"), a * 3)
    d = _apply(recorder(log, "d"), b + c)
    d.sum().backward()
    names = [name for name, _ in log]
    assert sorted(names) == ["a", "b", "c", "d"]  # every node exactly once
    assert names[0] == "d" and names[-1] == "a"   # d before the branches, the branches before a
    np.testing.assert_array_equal(dict(log)["a"], [5.0, 5.0])
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])


def test_node_used_directly_and_through_another_path_by_the_same_op():
    """out = a * exp(a): the walk reaches a twice from one op (directly, and through exp) and
    must still run a's backward once, with both contributions summed: (1 + a) * exp(a)."""
    log = []
    x = Tensor(np.array([0.5, 1.0]), requires_grad=True)
    a = _apply(recorder(log, "a"), x)
    out = a * _apply(recorder(log, "e"), a).exp()
    out.sum().backward()
    assert [name for name, _ in log] == ["e", "a"]
    np.testing.assert_allclose(x.grad, (1 + x.numpy()) * np.exp(x.numpy()), rtol=1e-12)


def test_deep_diamonds_are_linear_not_exponential():
    """y = y + y, 60 times: 2**60 paths from y to x. A walk that followed every path would never
    finish; visiting each node once gives d y / d x = 2**60 (exact in float64) instantly."""
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(60):
        y = y + y
    y.backward()
    assert x.grad == 2.0 ** 60


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda t: pickle.loads(pickle.dumps(t))], ids=["deepcopy", "pickle"])
def test_copied_tensors_can_share_a_graph(clone):
    """A copy (e.g. of a model's parameters) is a separate leaf, even used with its original."""
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w2 = clone(w)
    x = Tensor(np.array([3.0, 4.0]))
    (x * w + 2 * x * w2).sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])
    np.testing.assert_array_equal(w2.grad, [6.0, 8.0])


def test_gradients_accumulate_across_backward_calls_until_reset():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()  # a second graph: its gradient adds to the first one
    np.testing.assert_array_equal(x.grad, [3 + 2, 3 + 4])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3, 3])


def test_leaf_grad_is_not_aliased_to_an_internal_buffer():
    """The leaf's .grad must be its own array: accumulating into it must not write into the
    upstream gradient the caller passed in."""
    x = Tensor(np.zeros(3), requires_grad=True)
    upstream = np.ones(3)
    x.backward(upstream)
    x.backward(upstream)
    np.testing.assert_array_equal(upstream, 1)
    np.testing.assert_array_equal(x.grad, 2)


def test_backward_with_explicit_grad_on_non_scalar():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 2
    g = np.arange(6.0).reshape(2, 3) + 1
    y.backward(grad=g)
    np.testing.assert_array_equal(x.grad, 2 * g)
    x.grad = None
    (x * 2).backward(Tensor(g))  # a Tensor works as the seed gradient too
    np.testing.assert_array_equal(x.grad, 2 * g)


def test_backward_without_grad_needs_a_single_element():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        (x * 2).backward()
    (x[:1, :1] * 5).backward()  # shape (1, 1) holds one element: the seed 1 is implied
    assert x.grad[0, 0] == 5 and x.grad.sum() == 5


def test_only_leaves_keep_gradients():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x * 2
    y.sum().backward()
    assert y.grad is None and x.grad is not None


def test_constant_inputs_get_no_gradient():
    x = Tensor(np.ones(2), requires_grad=True)
    c = Tensor(np.full(2, 3.0))
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, 3)


# ---- no_grad and detach --------------------------------------------------------------------------

def test_no_grad_records_nothing_and_restores_state():
    x = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        y = (x * 2).exp().sum()
        assert not y.requires_grad and y._ctx is None
        with no_grad():  # nesting is harmless
            pass
        assert not (x + 1).requires_grad
    z = x * 2  # recording is back on after the block
    assert z.requires_grad and z._ctx is not None
    assert x.requires_grad  # no_grad does not change leaves


def test_no_grad_restores_state_after_an_exception():
    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert (x * 2).requires_grad


def test_no_grad_as_decorator():
    @no_grad()
    def step(t):
        return t * 2

    x = Tensor(np.ones(2), requires_grad=True)
    out = step(x)
    assert not out.requires_grad and out._ctx is None
    np.testing.assert_array_equal(out.numpy(), 2)
    assert (x * 2).requires_grad  # only the decorated call ran without the tape


def test_detach_cuts_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d._ctx is None
    np.testing.assert_array_equal(d.numpy(), x.numpy())
    (x * d).sum().backward()  # d is a constant: the gradient is d, not 2x
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


# ---- deep graphs, releasing buffers, memory --------------------------------------------------------

def test_chain_of_100k_ops_needs_no_recursion():
    """The walk is iterative: a chain far deeper than the recursion limit backpropagates."""
    assert sys.getrecursionlimit() < 100_000
    x = Tensor(np.array(1.5), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = -y  # cheapest op; an even number of negations
    y.backward()
    assert x.grad == 1.0
    del y  # freeing the chain must not recurse either


def graph_ctxs(t):
    """Every ctx of the tape behind t."""
    seen, stack, out = set(), [t], []
    while stack:
        t = stack.pop()
        if t._ctx is not None and id(t) not in seen:
            seen.add(id(t))
            out.append(t._ctx)
            stack.extend(t._ctx.parents)
    return out


def small_net():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 4, 4)), requires_grad=True)
    w = Tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    conv = x.conv2d(w)
    loss = conv.relu().max_pool2d(2).flatten(1).cross_entropy(np.array([1, 0]))
    return x, w, conv, loss


def test_backward_releases_saved_buffers_and_a_second_backward_says_so():
    x, w, conv, loss = small_net()
    ctxs = graph_ctxs(loss)
    assert len(ctxs) == 5
    cols = weakref.ref(conv._ctx.saved[2])  # conv's im2col buffer: referenced by nothing else
    loss.backward()
    assert all(ctx.saved is None and ctx.parents is None for ctx in ctxs)
    assert not [(type(ctx).__name__, name) for ctx in ctxs for name, value in vars(ctx).items()
                if isinstance(value, np.ndarray)]  # no array kept outside `saved` either
    assert cols() is None  # freed although the tensors are all still alive
    first = x.grad.copy()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()
    np.testing.assert_array_equal(x.grad, first)  # the failed call changed nothing


def test_reusing_a_released_subgraph_raises():
    x = Tensor(np.ones(2), requires_grad=True)
    h = x.exp()
    (h * 2).sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 3).sum().backward()


def test_retain_graph_allows_a_second_backward_and_grads_double():
    x, w, conv, loss = small_net()
    loss.backward(retain_graph=True)
    gx, gw = x.grad.copy(), w.grad.copy()
    assert np.abs(gw).sum() > 0
    assert all(ctx.parents is not None for ctx in graph_ctxs(loss))
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * gx, rtol=1e-12)
    np.testing.assert_allclose(w.grad, 2 * gw, rtol=1e-12)
    with pytest.raises(RuntimeError, match="retain_graph"):  # the second call did not retain
        loss.backward()


def test_graph_is_freed_when_the_loss_is_deleted():
    """No reference cycles: once the last tensor of the graph goes, its ctxs and saved arrays go
    too, by reference counting alone (no gc.collect)."""
    gc.disable()
    try:
        x = Tensor(np.ones((2, 3)), requires_grad=True)
        hidden = (x * 2).max(axis=1)
        ctx = weakref.ref(hidden._ctx)
        mask = weakref.ref(hidden._ctx.saved[0])  # Max's private tie mask
        loss = hidden.sum()
        del hidden
        assert ctx() is not None  # kept alive by the loss's tape
        del loss
        assert ctx() is None and mask() is None
    finally:
        gc.enable()


def test_training_loop_does_not_accumulate_live_ctxs():
    def live_ctxs():
        gc.collect()
        return sum(isinstance(o, ops.Function) for o in gc.get_objects())

    x, w, conv, loss = small_net()
    before = None
    for step in range(5):
        loss = x.conv2d(w).relu().max_pool2d(2).flatten(1).cross_entropy(np.array([1, 0]))
        loss.backward()
        w.data -= 0.1 * w.grad
        w.grad = x.grad = None
        if step == 1:
            before = live_ctxs()
    assert live_ctxs() <= before


def test_detach_keeps_the_dtype():
    t = Tensor(np.arange(3), dtype=np.int64)
    assert t.detach().dtype == np.int64


def test_labels_as_a_tensor_are_taken_as_class_indices():
    logits = Tensor(np.random.randn(3, 4), requires_grad=True)
    labels = np.array([3, 0, 2])
    assert logits.cross_entropy(Tensor(labels)).item() == logits.cross_entropy(labels).item()
    with pytest.raises(ValueError, match="cross_entropy: labels must be integers"):
        logits.cross_entropy(Tensor([0.5, 1, 2]))


def test_pow_gradient_at_zero_is_zero_not_nan():
    x = Tensor(np.zeros(2), requires_grad=True)
    y = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** y).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])  # d(x**0)/dx = 0; d(x**2)/dx = 2x = 0
    np.testing.assert_array_equal(y.grad, [0.0, 0.0])  # not 0 * log 0: PyTorch's convention at x = 0


def test_no_grad_decorator_keeps_the_function_name():
    @no_grad()
    def evaluate():
        return Tensor(np.ones(1), requires_grad=True) * 2
    assert evaluate.__name__ == "evaluate" and not evaluate().requires_grad


def test_a_leaf_gradient_is_laid_out_like_its_data():
    """conv2d hands back its input gradient batch-innermost in memory; .grad follows the data."""
    g = np.random.default_rng(3)
    x = Tensor(g.standard_normal((3, 2, 6, 6)), requires_grad=True)
    x.conv2d(Tensor(g.standard_normal((2, 2, 3, 3)))).sum().backward()
    assert x.grad.flags.c_contiguous and x.grad.shape == x.shape
    xt = Tensor(g.standard_normal((6, 6, 2, 3)).transpose(3, 2, 0, 1), requires_grad=True)  # stored in another order
    xt.conv2d(Tensor(g.standard_normal((2, 2, 3, 3)))).sum().backward()
    assert xt.grad.strides == xt.data.strides
