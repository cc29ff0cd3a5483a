"""Autograd beyond first order: create_graph, autograd.grad, the functional helpers, custom ops,
hooks and in-place safety."""
import numpy as np
import pytest

from tinygrad_cnn import GradcheckError, Tensor, autograd, functional as F, gradcheck, gradgradcheck, no_grad, optim
from tinygrad_cnn.autograd import Function, once_differentiable

rng = np.random.default_rng(9)


def leaf(*shape, scale=1.0):
    return Tensor(rng.standard_normal(shape) * scale, requires_grad=True)


def fd_gradient(f, x, eps=1e-6):
    """Central differences of a scalar numpy function f at the array x."""
    g = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


# ---- higher-order gradients --------------------------------------------------------------------

def test_derivatives_of_x_cubed_to_the_third_order():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    g1, = autograd.grad((x ** 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g1.data, 3 * x.data ** 2)
    g2, = autograd.grad(g1.sum(), x, create_graph=True)
    np.testing.assert_allclose(g2.data, 6 * x.data)
    g3, = autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g3.data, 6.0)


def test_backward_create_graph_gives_a_differentiable_grad_tensor():
    x = Tensor(np.array([0.5, 1.5]), requires_grad=True)
    x.tanh().sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    first = x.grad
    x.grad = None
    first.sum().backward()  # d/dx of tanh'(x) = -2 tanh(x) (1 - tanh(x)^2)
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad, -2 * t * (1 - t * t))


def test_first_order_grad_stays_a_numpy_array():
    x = leaf(3)
    (x * x).sum().backward()
    assert type(x.grad) is np.ndarray


def test_gradient_penalty_through_a_cnn():
    """d/dw of ||d loss / d x||^2 for a conv -> pool -> linear net, against finite differences:
    every op on the way (conv2d, max_pool2d, linear, cross_entropy) differentiates its backward."""
    x = Tensor(rng.standard_normal((2, 1, 6, 6)), requires_grad=True)
    fc = Tensor(rng.standard_normal((3, 8)))
    y = np.array([0, 2])

    def penalty(w):
        loss = F.linear(x.conv2d(w).tanh().max_pool2d(2).flatten(1), fc).cross_entropy(y)
        gx, = autograd.grad(loss, x, create_graph=True)
        return (gx * gx).sum()

    w = Tensor(rng.standard_normal((2, 1, 3, 3)), requires_grad=True)
    penalty(w).backward()
    numeric = fd_gradient(lambda wd: penalty(Tensor(wd, requires_grad=True)).item(), w.data.copy())
    np.testing.assert_allclose(w.grad, numeric, rtol=1e-5, atol=1e-7)


def test_hessian_of_a_small_model_against_finite_differences():
    """The full Hessian of a tiny MLP's loss with respect to its first weight matrix."""
    x, y = rng.standard_normal((4, 3)), np.array([0, 1, 1, 0])
    w2 = rng.standard_normal((2, 5))

    def loss(w1):
        return F.linear(F.linear(Tensor(x), w1).tanh(), Tensor(w2)).cross_entropy(y)

    w1 = rng.standard_normal((5, 3))
    h = autograd.hessian(loss, Tensor(w1)).data
    assert h.shape == (5, 3, 5, 3)

    def grad_at(w):
        t = Tensor(w, requires_grad=True)
        loss(t).backward()
        return t.grad

    numeric = np.zeros_like(h)
    eps = 1e-6
    for i in np.ndindex(5, 3):
        wp, wm = w1.copy(), w1.copy()
        wp[i] += eps
        wm[i] -= eps
        numeric[(slice(None), slice(None)) + i] = (grad_at(wp) - grad_at(wm)) / (2 * eps)
    np.testing.assert_allclose(h, numeric, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(h.reshape(15, 15), h.reshape(15, 15).T, atol=1e-12)  # symmetric


# ---- autograd.grad -------------------------------------------------------------------------------

def test_grad_leaves_dot_grad_alone_and_visits_only_what_is_needed():
    a, b = leaf(3), leaf(3)
    calls = []

    class Spy(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, grad):
            calls.append(1)
            return grad

    out = (a * 2).sum() + Spy.apply(b).sum()
    ga, = autograd.grad(out, a)
    np.testing.assert_array_equal(ga.data, 2.0)
    assert a.grad is None and b.grad is None
    assert calls == []  # b's branch does not lead to a: never visited


def test_grad_with_grad_outputs_and_several_inputs():
    a, b = leaf(2, 3), leaf(3)
    out = a * b
    u = rng.standard_normal((2, 3))
    ga, gb = autograd.grad(out, (a, b), grad_outputs=u)
    np.testing.assert_allclose(ga.data, u * b.data)
    np.testing.assert_allclose(gb.data, (u * a.data).sum(0))


def test_grad_of_a_non_leaf_input():
    x = leaf(3)
    h = x * 3
    out = (h * h).sum()
    gh, = autograd.grad(out, h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


def test_grad_unused_input():
    a, b = leaf(2), leaf(2)
    out = (a * 2).sum()
    with pytest.raises(RuntimeError, match="input 1 .* was not used.*allow_unused=True"):
        autograd.grad(out, (a, b), retain_graph=True)
    ga, gb = autograd.grad(out, (a, b), allow_unused=True)
    assert gb is None and np.array_equal(ga.data, [2.0, 2.0])


def test_grad_keeps_the_graph_when_creating_one_and_frees_it_otherwise():
    x = leaf(3)
    out = (x.exp()).sum()
    autograd.grad(out, x, create_graph=True)
    autograd.grad(out, x)  # still there: retain_graph defaults to create_graph
    with pytest.raises(RuntimeError, match="retain_graph"):
        autograd.grad(out, x)


def test_grad_errors():
    x = Tensor(np.ones(2))
    with pytest.raises(RuntimeError, match="input 0 is not a Tensor that requires grad"):
        autograd.grad((x * 2).sum(), x)
    y = leaf(2)
    with pytest.raises(RuntimeError, match="scalar"):
        autograd.grad(y * 2, y)
    with pytest.raises(ValueError, match="grad_outputs"):
        autograd.grad([y.sum(), y.sum()], y, grad_outputs=[None])


# ---- functional helpers ----------------------------------------------------------------------------

def test_jacobian_vjp_hvp_against_finite_differences():
    def f(x):
        return (x * x).tanh() * x.sum()

    x0 = rng.standard_normal(4)
    jac = autograd.jacobian(f, Tensor(x0)).data
    assert jac.shape == (4, 4)
    for k in range(4):
        np.testing.assert_allclose(jac[k], fd_gradient(lambda z: (np.tanh(z * z) * z.sum())[k], x0), rtol=1e-6)

    v = rng.standard_normal(4)
    out, vj = autograd.vjp(f, Tensor(x0), v)
    np.testing.assert_allclose(out.data, np.tanh(x0 * x0) * x0.sum())
    np.testing.assert_allclose(vj.data, v @ jac, rtol=1e-10)

    def g(x):
        return (x * x * x).sum() + (x[0] * x[1]).tanh()

    value, hv = autograd.hvp(g, Tensor(x0), v)
    hess = autograd.hessian(g, Tensor(x0)).data
    np.testing.assert_allclose(hv.data, hess @ v, rtol=1e-10)
    numeric_h = np.stack([fd_gradient(lambda z: autograd.jacobian(g, Tensor(z)).data[i], x0) for i in range(4)])
    np.testing.assert_allclose(hess, numeric_h, rtol=1e-5, atol=1e-7)


def test_jacobian_of_several_inputs_and_of_a_constant_function():
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    ja, jb = autograd.jacobian(lambda x, y: x * y, (Tensor(a), Tensor(b)))
    np.testing.assert_allclose(ja.data, np.diag(b))
    np.testing.assert_allclose(jb.data, np.diag(a))
    np.testing.assert_array_equal(autograd.jacobian(lambda x: Tensor(np.ones(2)), Tensor(a)).data, np.zeros((2, 3)))


# ---- custom ops ---------------------------------------------------------------------------------------

class Cube(Function):
    """x ** 3 with a backward written in Tensor-compatible operations: differentiable again."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return 3 * x * x * grad


class NumpyCos(Function):
    """cos with a plain-numpy backward, declared once-differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return -np.sin(x) * grad


class Scale(Function):
    """x * k for a Python number k passed positionally, with needs_input_grad respected."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, grad):
        assert ctx.needs_input_grad == [True, False]
        return grad * ctx.k, None


def test_custom_function_first_and_second_order():
    x = leaf(3, 2)
    assert gradcheck(Cube.apply, x)
    assert gradgradcheck(Cube.apply, x)
    assert gradcheck(NumpyCos.apply, x)
    assert gradcheck(lambda x: Scale.apply(x, 2.5), x)
    np.testing.assert_allclose(Scale.apply(x, 2.5).data, 2.5 * x.data)


def test_once_differentiable_refuses_a_second_derivative_by_name():
    x = leaf(3)
    g, = autograd.grad(NumpyCos.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, -np.sin(x.data))  # the first derivative is fine
    with pytest.raises(RuntimeError, match="NumpyCos.backward is marked @once_differentiable"):
        g.sum().backward()
    # every other road to the second derivative meets the same error, never a silent zero
    refused = pytest.raises(RuntimeError, match="NumpyCos.backward is marked @once_differentiable")
    with refused:
        autograd.grad(g.sum(), x)
    with refused:
        autograd.hvp(lambda t: NumpyCos.apply(t).sum(), x, Tensor(np.ones(3)))
    with refused:
        gradgradcheck(NumpyCos.apply, x)


def test_a_numpy_backward_without_the_decorator_says_what_to_do():
    class BadCos(NumpyCos):
        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            return -np.sin(x) * grad
    x = leaf(3)
    with pytest.raises(TypeError, match="BadCos.backward failed with create_graph=True.*once_differentiable"):
        autograd.grad(BadCos.apply(x).sum(), x, create_graph=True)


def test_gradgradcheck_fails_on_a_wrong_second_derivative():
    """Negative control: a backward that is right to first order but treats x as a constant
    (numpy values) has the wrong second derivative, and gradgradcheck must say so."""
    class CubeFrozen(Cube):
        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            values = x.numpy() if isinstance(x, Tensor) else x
            return 3 * values * values * grad
    x = leaf(4)
    assert gradcheck(CubeFrozen.apply, x)
    with pytest.raises(GradcheckError, match="gradgradcheck: second derivative of input 0"):
        gradgradcheck(CubeFrozen.apply, x)


def test_custom_function_on_arrays_is_just_the_forward():
    out = Cube.apply(np.array([2.0]))
    assert isinstance(out, np.ndarray) and out[0] == 8.0


# ---- hooks -----------------------------------------------------------------------------------------------

def test_retain_grad_and_hooks():
    x = leaf(3)
    h = x * 2
    h.retain_grad()
    seen = []
    handle = h.register_hook(lambda g: seen.append(np.array(g)))
    x.register_hook(lambda g: g * 10)  # replaces the leaf's gradient
    (h * h).sum().backward(retain_graph=True)
    np.testing.assert_allclose(h.grad, 2 * h.data)
    np.testing.assert_allclose(seen[0], 2 * h.data)
    np.testing.assert_allclose(x.grad, 10 * 2 * 2 * h.data)
    handle.remove()
    x.grad = h.grad = None
    (h * 3).sum().backward()
    assert len(seen) == 1  # removed
    np.testing.assert_allclose(h.grad, 3.0)


def test_hook_with_a_wrong_shape_is_refused():
    x = leaf(3)
    x.register_hook(lambda g: np.ones(2))
    with pytest.raises(ValueError, match=r"returned a gradient of shape \(2,\) for a tensor of shape \(3,\)"):
        (x * 2).sum().backward()


def test_hooks_need_a_tensor_that_requires_grad():
    with pytest.raises(RuntimeError, match="register_hook"):
        Tensor(np.ones(2)).register_hook(print)
    with pytest.raises(RuntimeError, match="retain_grad"):
        Tensor(np.ones(2)).retain_grad()


# ---- in-place safety -------------------------------------------------------------------------------------

def test_writing_into_data_after_forward_raises_at_backward():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = (x * x).sum()
    x.data *= 2
    with pytest.raises(RuntimeError, match=r"input \(float64, shape \(3,\)\) of op Mul was changed in place"):
        y.backward()


def test_an_optimizer_step_before_a_retained_backward_raises():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="Mul was changed in place"):
        loss.backward()


@pytest.mark.parametrize("change", [
    lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(), lambda t: t.copy_(np.ones(3)),
    lambda t: t.__iadd__(1), lambda t: t.__setitem__(0, 5.0), lambda t: t.sub_(1), lambda t: t.div_(2),
], ids=["add_", "mul_", "zero_", "copy_", "+=", "setitem", "sub_", "div_"])
def test_in_place_ops_on_a_saved_tensor_make_backward_raise(change):
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = (x * x).sum()
    with no_grad():
        change(x)
    with pytest.raises(RuntimeError, match="Mul was changed in place"):
        y.backward()


def test_an_op_that_saved_nothing_is_not_disturbed():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x + 1).sum()
    with no_grad():
        x.add_(1)
    y.backward()  # Add saves no values: its gradient does not depend on x
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_recorded_in_place_ops_give_the_right_gradient():
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    h = a * 2
    h += a            # 3a
    h.mul_(a)         # 3a^2
    h[0] = a[1] * 10  # [20 a1, 3 a1^2, 3 a2^2]
    h.sum().backward()
    np.testing.assert_allclose(h.data, [20.0, 12.0, 27.0])
    np.testing.assert_allclose(a.grad, [0.0, 10 + 6 * 2.0, 6 * 3.0])
    assert gradcheck(lambda a: (lambda h: (h.add_(a), h.mul_(a), h)[-1])(a * 2), Tensor(a.data, requires_grad=True))


def test_in_place_ops_on_a_max_pool_output():
    """Max-pool's backward reads its output (each window's maximum): a recorded in-place op on it
    must leave that untouched, and an unrecorded one must raise, not move the gradient."""
    x_data = np.arange(-16.0, 0.0).reshape(1, 1, 4, 4)  # each window's maximum is its last element
    x = Tensor(x_data, requires_grad=True)
    y = x.max_pool2d(2)
    y.mul_(2)
    y.sum().backward()
    expected = np.zeros((4, 4))
    expected[1::2, 1::2] = 2
    np.testing.assert_array_equal(x.grad[0, 0], expected)
    x = Tensor(x_data, requires_grad=True)
    y = x.max_pool2d(2)
    with no_grad():
        y.mul_(-1)
    with pytest.raises(RuntimeError, match="output .* of op MaxPool2d was changed in place"):
        y.sum().backward()


def _column_doubled(x):
    out = x.clone()
    out[:, 0] = out[:, 0] * 2  # reads the old out (GetItem), then rebuilds it (SetItem)
    return out * out


def _used_before_the_change(a):
    b = a * 1
    c = b + 0     # uses b before the change
    b.add_(1)
    return c * b


def _added_its_own_column(x):
    out = x * 1
    out += out[:, :1]  # out + out[:, :1], the right side read before anything is written
    return out * out


@pytest.mark.parametrize("program, expected", [
    # PyTorch 2.13 gives the same gradients for the first two (x = [[1, 2], [3, 4]], a = [1, 2, 3, 4])
    (_column_doubled, [[8.0, 4.0], [24.0, 8.0]]),
    (_used_before_the_change, [3.0, 5.0, 7.0, 9.0]),
    # x + x[:, :1] squared: d/dx00 = 2 * 2x00 * 2 + 2 (x01 + x00) = 14 at row 0. (PyTorch's += reads
    # out[:, :1] while writing out, so its forward is [[2, 4], [6, 10]] and its gradient differs)
    (_added_its_own_column, [[14.0, 6.0], [38.0, 14.0]]),
])
def test_an_op_that_used_a_tensor_before_a_recorded_in_place_change_gets_the_old_version(program, expected):
    data = np.array([[1.0, 2.0], [3.0, 4.0]]) if program is not _used_before_the_change else np.arange(1.0, 5.0)
    x = Tensor(data, requires_grad=True)
    program(x).sum().backward()
    np.testing.assert_allclose(x.grad, expected)
    x = Tensor(rng.standard_normal(data.shape), requires_grad=True)
    assert gradcheck(program, x) and gradgradcheck(program, x)
    g, = autograd.grad(program(x).sum(), x)  # autograd.grad finds its way through the old versions too
    x.grad = None
    program(x).sum().backward()
    np.testing.assert_allclose(g.data, x.grad)


def test_an_op_that_saved_a_value_a_recorded_in_place_op_then_changed_raises():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = a * 1
    z = h * h     # Mul saved h's values
    h.mul_(3)
    with pytest.raises(RuntimeError, match=r"input \(float64, shape \(2,\)\) of op Mul was changed in place"):
        (z + h).sum().backward()


def test_setitem_is_checked_to_second_order():
    def write(x, v):
        h = x * 1
        h[1:, ::2] = v * v
        h[[0, 0], 1] = v[0, :2] * 3  # a repeated index: the last write wins, the other gets no gradient
        return h.tanh()
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    v = Tensor(rng.standard_normal((2, 2)), requires_grad=True)
    assert gradcheck(write, x, v) and gradgradcheck(write, x, v)


def test_in_place_on_a_leaf_that_requires_grad_needs_no_grad():
    w = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="add_: a leaf tensor that requires grad"):
        w.add_(1)
    with no_grad():
        w.add_(1)
    np.testing.assert_array_equal(w.data, [2.0, 2.0])


def test_in_place_write_into_an_incompatible_tensor_is_refused():
    t = Tensor(np.zeros(3))
    with pytest.raises(ValueError, match=r"copy_: a source of shape \(2,\) cannot be broadcast to \(3,\)"):
        t.copy_(np.ones(2))
    with pytest.raises(ValueError, match="add_"):
        t.add_(np.ones((2, 3)))


def test_tensor_shares_memory_with_its_array_and_clone_does_not():
    a = np.zeros(3)
    t = Tensor(a)
    assert np.shares_memory(t.data, a)
    assert not np.shares_memory(t.clone().data, a)
