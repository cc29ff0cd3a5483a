"""Reductions: sum, mean, prod, var, std, logsumexp, norm, cumsum, max, min, argmax, argmin, any,
all. One table, CASES, drives gradcheck, gradgradcheck, forward values against plain numpy and
float32 preservation; the tests after it pin PyTorch's semantics at edge values (numbers
measured with PyTorch 2.13 and hard-coded, as each comment says) and the error messages."""
import math
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck, no_grad

rng = np.random.default_rng(20240610)
inf, nan = math.inf, math.nan


def randn(*shape):
    return np.asarray(rng.standard_normal(shape))


def nonzero(*shape):
    """Away from 0, the kink of |x| (norm with p <= 1), and of moderate size (prod)."""
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 1.5, shape))


def distinct(*shape):
    """Values (and magnitudes) at least ~0.09 apart: no tie that a 1e-6 step could flip."""
    n = int(np.prod(shape))
    return (rng.choice([-1.0, 1.0], n) * (rng.permutation(n) + 1) * 0.1 + rng.uniform(0, 0.01, n)).reshape(shape)


def case(id, fn, ref, *arrays):
    return pytest.param(fn, ref, arrays, id=id)


def lp_norm(p):
    return lambda x, axis=None, keepdims=False: np.sum(np.abs(x) ** p, axis=axis, keepdims=keepdims) ** (1 / p)


def values(out):
    """The values of max(dim) and min(dim), which also return the indices."""
    return out[0] if isinstance(out, tuple) else out


def _cases():
    out = []
    # sum, mean and max on a 0-d tensor: dim 0 and -1 mean the tensor itself, as in PyTorch
    for name in ["sum", "mean", "max", "min", "prod", "logsumexp", "norm"]:
        for dim in [0, -1]:
            for keep in [False, True]:
                fn = (lambda n, d, k: lambda x: values(getattr(x, n)(dim=d, keepdim=k)))(name, dim, keep)
                ref = (lambda x: np.abs(x)) if name == "norm" else (lambda x: x)
                out.append(case(f"{name}-0d-dim={dim}-keepdim={keep}", fn, ref, randn()))
    x = nonzero(2, 3, 4)
    for axis in [None, 0, -1, (0, 2), (-1, 0, 1)]:
        for keep in [False, True]:
            out.append(case(f"prod-{axis}-{keep}", lambda x, a=axis, k=keep: x.prod(a, keepdim=k),
                            lambda x, a=axis, k=keep: np.prod(x, axis=a, keepdims=k), x))
    out += [
        case("prod-numpy-names", lambda x: x.prod(axis=1, keepdims=True), lambda x: np.prod(x, 1, keepdims=True), x),
        case("prod-one-zero", lambda x: x.prod(1), lambda x: np.prod(x, 1), np.array([[2.0, 0, 3, 0.5], [1, 2, 0, 3]])),
        case("prod-two-zeros", lambda x: x.prod(-1), lambda x: np.prod(x, -1),
             np.array([[2.0, 0, 3, 0], [0, 0, 0, 1]])),
        case("prod-size-1", lambda x: x.prod(1), lambda x: np.prod(x, 1), nonzero(3, 1)),
        case("prod-odd-length", lambda x: x.prod(0), lambda x: np.prod(x, 0), nonzero(7, 2)),
        case("prod-empty-dim", lambda x: x.prod(1), lambda x: np.prod(x, 1), np.zeros((2, 0))),
    ]
    x = randn(3, 4, 3)
    for axis, kw, ddof in [(None, {}, 1), (1, {}, 1), (-1, {}, 1), ((0, 2), {}, 1), (1, {"correction": 0}, 0),
                           (-1, {"unbiased": False}, 0), ((0, 2), {"correction": 2}, 2), (None, {"ddof": 0}, 0)]:
        for name in ["var", "std"]:
            out.append(case(f"{name}-{axis}-{kw}", lambda x, n=name, a=axis, kw=kw: getattr(x, n)(a, **kw),
                            lambda x, n=name, a=axis, d=ddof: getattr(np, n)(x, axis=a, ddof=d), x))
    out += [
        case("var-keepdim", lambda x: x.var(1, keepdim=True), lambda x: np.var(x, 1, ddof=1, keepdims=True), x),
        case("std-numpy-names", lambda x: x.std(axis=0, keepdims=True),
             lambda x: np.std(x, 0, ddof=1, keepdims=True), x),
        case("var-positional-unbiased", lambda x: x.var(1, False), lambda x: np.var(x, 1), x),
        case("std-size-1-dim", lambda x: x.std(0, correction=0), lambda x: np.std(x, 0), randn(1, 3)),
    ]
    x = 3 * randn(3, 4, 2)
    for axis in [0, -1, (0, 2), (0, 1, 2)]:
        for keep in [False, True]:
            out.append(case(f"logsumexp-{axis}-{keep}", lambda x, a=axis, k=keep: x.logsumexp(a, keepdim=k),
                            lambda x, a=axis, k=keep: np.log(np.sum(np.exp(x), axis=a, keepdims=k)), x))
    out.append(case("logsumexp-size-1", lambda x: x.logsumexp(1), lambda x: np.log(np.exp(x).sum(1)), randn(3, 1)))
    x = nonzero(3, 4)
    for p in [2, "fro", 1, 3, 0.5, 1.5]:
        ref = lp_norm(2 if p == "fro" else p)
        for axis in [None, 1, -2]:
            out.append(case(f"norm-p={p}-dim={axis}", lambda x, p=p, a=axis: x.norm(p, a),
                            lambda x, r=ref, a=axis: r(x, a), x))
    out += [
        case("norm-default", lambda x: x.norm(), lambda x: np.sqrt(np.sum(x * x)), x),
        case("norm-keepdim", lambda x: x.norm(dim=(0, 1), keepdim=True), lambda x: lp_norm(2)(x, (0, 1), True), x),
        case("norm-inf", lambda x: x.norm(inf, 1), lambda x: np.max(np.abs(x), 1), distinct(3, 4)),
        case("norm-minus-inf", lambda x: x.norm(-inf, 0), lambda x: np.min(np.abs(x), 0), distinct(3, 4)),
        case("norm-inf-all", lambda x: x.norm(inf), lambda x: np.max(np.abs(x)), distinct(3, 4)),
    ]
    x = randn(3, 4)
    for dim in [0, 1, -1, -2]:
        out.append(case(f"cumsum-{dim}", lambda x, d=dim: x.cumsum(d), lambda x, d=dim: np.cumsum(x, d), x))
    out.append(case("cumsum-axis", lambda x: x.cumsum(axis=1), lambda x: np.cumsum(x, 1), x))
    out.append(case("cumsum-0d", lambda x: x.cumsum(0), lambda x: x, randn()))
    x = distinct(3, 4, 2)
    for dim in [0, 1, -1]:
        for keep in [False, True]:
            out.append(case(f"max-dim={dim}-{keep}", lambda x, d=dim, k=keep: x.max(d, k).values,
                            lambda x, d=dim, k=keep: np.max(x, d, keepdims=k), x))
            out.append(case(f"min-dim={dim}-{keep}", lambda x, d=dim, k=keep: x.min(dim=d, keepdim=k)[0],
                            lambda x, d=dim, k=keep: np.min(x, d, keepdims=k), x))
    out += [
        case("max-axis", lambda x: x.max(axis=(0, 2)), lambda x: np.max(x, (0, 2)), x),
        case("amin", lambda x: x.amin(1, keepdim=True), lambda x: np.min(x, 1, keepdims=True), x),
        case("max-all", lambda x: x.max(), np.max, x),
        case("max-other", lambda x, y: x.max(y), np.maximum, distinct(3, 4), distinct(4)),
        case("min-other", lambda x, y: x.min(y), np.minimum, distinct(3, 4), distinct(3, 1)),
    ]
    return out


CASES = _cases()
DIFFERENTIABLE = [c for c in CASES if "empty" not in c.id]


@pytest.mark.parametrize("fn, ref, arrays", DIFFERENTIABLE)
def test_gradcheck(fn, ref, arrays):
    assert gradcheck(fn, *[Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("fn, ref, arrays", DIFFERENTIABLE)
def test_gradgradcheck(fn, ref, arrays):
    assert gradgradcheck(fn, *[Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_forward_matches_numpy(fn, ref, arrays):
    out = fn(*[Tensor(a) for a in arrays])
    expected = np.asarray(ref(*arrays))
    assert out.dtype == np.float64 and out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_float32_in_float32_out(fn, ref, arrays):
    xs = [Tensor(a, dtype=np.float32, requires_grad=True) for a in arrays]
    out = fn(*xs)
    assert out.dtype == np.float32
    out.sum().backward()
    for x in xs:
        assert x.grad.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref(*arrays), rtol=2e-5, atol=1e-6)


# ---- 0-d tensors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("dim", [0, -1])
def test_0d_dim_forward_and_backward(name, dim):
    x = Tensor(np.array(3.0), requires_grad=True)
    out = getattr(x, name)(dim)
    if name == "max":  # PyTorch: torch.tensor(3.).max(0) == (values=tensor(3.), indices=tensor(0))
        out, index = out
        assert index.shape == () and index.dtype == np.int64 and index.item() == 0
    assert out.shape == () and out.item() == 3.0
    (out * 2).backward()
    assert x.grad.shape == () and x.grad == 2.0
    assert values(getattr(x, name)(dim, keepdim=True)).shape == ()


@pytest.mark.parametrize("name", ["sum", "mean", "max", "prod", "var", "any"])
def test_0d_dim_out_of_range(name):
    # PyTorch: "Dimension out of range (expected to be in range of [-1, 0], but got 1)"
    with pytest.raises(ValueError, match=rf"{name}: dimension 1 is out of range for a tensor of shape \(\)"):
        getattr(Tensor(np.array(3.0)), name)(1)


# ---- prod --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("values, grad", [
    ([2.0, 0.0, 3.0, 4.0], [0.0, 24.0, 0.0, 0.0]),  # PyTorch 2.13: one zero gets the product of the others
    ([2.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]),   # PyTorch 2.13: two zeros, every gradient 0
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
])
def test_prod_gradient_with_zeros(values, grad):
    x = Tensor(np.array(values), requires_grad=True)
    x.prod().backward()
    np.testing.assert_array_equal(x.grad, grad)


def test_prod_second_derivative_with_two_zeros():
    # PyTorch 2.13: x = [2, 0, 3, 0]; the row of the Hessian for x[1] is [0, 0, 0, 6]
    x = Tensor(np.array([2.0, 0.0, 3.0, 0.0]), requires_grad=True)
    g, = autograd.grad(x.prod(), x, create_graph=True)
    np.testing.assert_array_equal(g.data, 0)
    h, = autograd.grad(g[1], x)
    np.testing.assert_array_equal(h.data, [0, 0, 0, 6])


def test_prod_of_an_empty_dimension_is_one():
    x = Tensor(np.zeros((2, 0)), requires_grad=True)
    out = x.prod(1)
    np.testing.assert_array_equal(out.data, [1.0, 1.0])
    out.sum().backward()
    assert x.grad.shape == (2, 0)


# ---- var and std -------------------------------------------------------------------------------------

def test_var_corrections_and_degrees_of_freedom_at_zero():
    # PyTorch 2.13 (with a warning): [1.].var() = nan; [1.].var(correction=0) = 0;
    # [1., 2.].var(correction=3) = inf; [1., 1.].var(correction=2) = nan; 0-d var() = nan
    with np.errstate(invalid="ignore"):
        assert math.isnan(Tensor(np.array([1.0])).var().item())
        assert Tensor(np.array([1.0])).var(correction=0).item() == 0
        assert Tensor(np.array([1.0, 2.0])).var(correction=3).item() == inf
        assert math.isnan(Tensor(np.array([1.0, 1.0])).var(correction=2).item())
        assert math.isnan(Tensor(np.array(3.0)).var().item())
        assert math.isnan(Tensor(np.array([2.0])).std().item())
    # PyTorch 2.13: [1., 2., 4.].var(False) == var(0, False) == var(unbiased=False) == 1.5556
    x = Tensor(np.array([1.0, 2.0, 4.0]))
    for v in (x.var(False), x.var(0, False), x.var(unbiased=False), x.var(correction=0), x.var(ddof=0)):
        assert v.item() == pytest.approx(14 / 9)
    assert x.var(correction=0.5).item() == pytest.approx(4.6667 / 2.5, rel=1e-4)  # PyTorch: 1.8667


def test_std_gradient_at_zero_variance_is_zero():
    # PyTorch 2.13: std of [[2, 2, 2], [1, 2, 3]] over dim 1 has gradient [[0, 0, 0], [-0.5, 0, 0.5]]
    x = Tensor(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 3.0]]), requires_grad=True)
    x.std(1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0, 0], [-0.5, 0, 0.5]], atol=1e-15)
    # and its second derivative stays finite there (PyTorch: the gradient tensor has a grad_fn)
    x = Tensor(np.array([2.0, 2.0, 2.0]), requires_grad=True)
    g, = autograd.grad(x.std(), x, create_graph=True)
    np.testing.assert_array_equal(g.data, 0)


def test_std_with_no_degrees_of_freedom_has_a_nan_gradient():
    # PyTorch 2.13: [2.].std() = nan with gradient [nan]
    x = Tensor(np.array([2.0]), requires_grad=True)
    with np.errstate(invalid="ignore"):
        x.std().backward()
    assert np.isnan(x.grad).all()


def test_std_does_not_overflow_where_the_variance_does():
    # PyTorch 2.13, float32: [1e20, -1e20, 0, 0].std() = 8.1650e+19 while var() = inf
    x = Tensor(np.array([1e20, -1e20, 0.0, 0.0], np.float32))
    assert x.std().dtype == np.float32
    assert x.std().item() == pytest.approx(8.1650e19, rel=1e-4)
    assert Tensor(np.array([3e-30, -3e-30, 0.0, 0.0], np.float32)).std().item() == pytest.approx(2.4495e-30, rel=1e-4)


# ---- logsumexp ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_is_stable_at_plus_minus_1000(dtype):
    x = Tensor(np.array([[1000.0, 1000.0], [-1000.0, -1000.0], [1000.0, -1000.0]], dtype), requires_grad=True)
    out = x.logsumexp(1)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, [1000 + math.log(2), -1000 + math.log(2), 1000], rtol=1e-6)
    out.sum().backward()
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad, [[0.5, 0.5], [0.5, 0.5], [1, 0]], rtol=1e-6)


@pytest.mark.parametrize("values, result, grad", [
    # PyTorch 2.13, logsumexp over dim 0 and its gradient
    ([inf, 1.0], inf, [nan, 0.0]),
    ([-inf, -inf], -inf, [nan, nan]),
    ([-inf, 1.0], 1.0, [0.0, 1.0]),
    ([inf, -inf], inf, [nan, 0.0]),
    ([nan, 1.0], nan, [nan, nan]),
])
def test_logsumexp_at_infinities_as_pytorch(values, result, grad):
    x = Tensor(np.array(values), requires_grad=True)
    with np.errstate(all="ignore"):
        out = x.logsumexp(0)
        out.backward()
    np.testing.assert_array_equal(out.data, result)
    np.testing.assert_array_equal(x.grad, grad)


def test_logsumexp_of_an_empty_dimension_is_minus_inf():
    # PyTorch 2.13: torch.ones(2, 0).logsumexp(1) = [-inf, -inf]
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(Tensor(np.ones((2, 0))).logsumexp(1).data, [-inf, -inf])


# ---- norm --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [2, "fro", 1, 3, 0.5, 1.5, inf, -inf])
def test_norm_gradient_at_the_zero_vector_is_zero(p):
    # PyTorch 2.13: for every p, x.norm(p) at zeros(3) is 0 with gradient [0, 0, 0]
    x = Tensor(np.zeros(3), requires_grad=True)
    out = x.norm(p)
    out.backward()
    assert out.item() == 0
    np.testing.assert_array_equal(x.grad, 0)


@pytest.mark.parametrize("p, result, grad", [
    # PyTorch 2.13: x = [0, 1, -2]: the zero entry gets gradient 0 for every p
    (0.5, 5.8284, [0.0, 2.4142, -1.7071]),
    (1.5, 2.4473, [0.0, 0.6392, -0.9040]),
    (3, 2.0801, [0.0, 0.2311, -0.9245]),
    (1, 3.0, [0.0, 1.0, -1.0]),
    (inf, 2.0, [0.0, 0.0, -1.0]),
])
def test_norm_with_a_zero_entry(p, result, grad):
    x = Tensor(np.array([0.0, 1.0, -2.0]), requires_grad=True)
    out = x.norm(p)
    out.backward()
    assert out.item() == pytest.approx(result, abs=1e-4)
    np.testing.assert_allclose(x.grad, grad, atol=1e-4)


def test_norm_inf_ties_share_the_gradient():
    # PyTorch 2.13: [3, -3, 1].norm(inf) -> gradient [0.5, -0.5, 0]; [1, -1, 3].norm(-inf) -> [0.5, -0.5, 0]
    for p, values in [(inf, [3.0, -3.0, 1.0]), (-inf, [1.0, -1.0, 3.0])]:
        x = Tensor(np.array(values), requires_grad=True)
        x.norm(p).backward()
        np.testing.assert_array_equal(x.grad, [0.5, -0.5, 0])


@pytest.mark.parametrize("p", [2, 3, 0.5])
def test_norm_does_not_overflow_or_underflow(p):
    """A deliberate difference: PyTorch 2.13 gives inf for [1e200, 1e200].norm() in float64 and 0
    for [3e-30, 4e-30].norm() in float32; the norm is representable, so we return it."""
    big = Tensor(np.array([1e200, 1e200]), requires_grad=True)
    out = big.norm(p)
    assert out.item() == pytest.approx(2 ** (1 / p) * 1e200)
    out.backward()
    np.testing.assert_allclose(big.grad, 2 ** (1 / p - 1), rtol=1e-12)
    tiny = Tensor(np.array([3e-30, 4e-30], np.float32))
    assert tiny.norm(p).item() == pytest.approx(float(np.sum(np.array([3.0, 4.0]) ** p) ** (1 / p)) * 1e-30, rel=1e-5)


def test_norm_at_nan_and_inf_as_pytorch():
    # PyTorch 2.13: [nan, 1].norm() = nan, gradient [nan, nan]; [nan, 1].norm(1) gradient [0, 1];
    # [inf, 1].norm() = inf, gradient [nan, 0]; [nan, 1].norm(inf) = nan
    for p, values, result, grad in [(2, [nan, 1.0], nan, [nan, nan]), (1, [nan, 1.0], nan, [0, 1]),
                                    (2, [inf, 1.0], inf, [nan, 0]), (inf, [nan, 1.0], nan, None)]:
        x = Tensor(np.array(values), requires_grad=True)
        with np.errstate(invalid="ignore"):
            out = x.norm(p)
            out.backward()
        np.testing.assert_array_equal(out.data, result)
        if grad is not None:
            np.testing.assert_array_equal(x.grad, grad)


def test_norm_of_an_empty_tensor_is_zero():
    # PyTorch 2.13: torch.ones(0).norm() = 0 and .norm(1) = 0; .norm(inf) is an error
    assert Tensor(np.ones(0)).norm().item() == 0
    assert Tensor(np.ones(0)).norm(1).item() == 0


# ---- cumsum ------------------------------------------------------------------------------------------

def test_cumsum_backward_is_a_reversed_cumsum():
    x = Tensor(np.zeros(4), requires_grad=True)
    (x.cumsum(0) * Tensor(np.array([1.0, 10.0, 100.0, 1000.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [1111, 1110, 1100, 1000])


def test_no_array_is_left_on_a_ctx_after_backward():
    x = Tensor(distinct(3, 4), requires_grad=True)
    outs = [x.cumsum(1), x.max(axis=1), x.amin(0)]
    ctxs = [o._ctx for o in outs]
    sum(o.sum() for o in outs).backward()
    for ctx in ctxs:
        assert not [k for k, v in vars(ctx).items() if isinstance(v, np.ndarray)]
        assert ctx.saved is None


# ---- max and min -------------------------------------------------------------------------------------

def test_max_with_dim_returns_values_and_indices():
    x = Tensor(np.array([[1.0, 5.0], [5.0, 1.0]]))
    for result in (x.max(1), x.max(dim=1), x.max(1, False), x.max(dim=1, keepdim=False)):
        assert type(result).__name__ == "values_indices" and result._fields == ("values", "indices")
        np.testing.assert_array_equal(result.values.data, [5, 5])
        np.testing.assert_array_equal(result.indices.data, [1, 0])
        assert result.indices.dtype == np.int64
    # PyTorch 2.13: x.max(dim=1, keepdim=True) = (values=[[5.], [5.]], indices=[[1], [0]])
    values, indices = x.max(1, True)
    assert values.shape == indices.shape == (2, 1)
    np.testing.assert_array_equal(indices.data, [[1], [0]])
    values, indices = x.min(dim=0)
    np.testing.assert_array_equal(values.data, [1, 1])
    np.testing.assert_array_equal(indices.data, [0, 1])


@pytest.mark.parametrize("batch", [1, 2, 3, 10])
def test_underscore_pred_unpacking_gives_the_indices_at_every_batch_size(batch):
    out = Tensor(distinct(batch, 3))
    _, pred = out.max(1)
    assert pred.shape == (batch,) and pred.dtype == np.int64
    np.testing.assert_array_equal(pred.data, np.argmax(out.data, 1))


def test_max_with_dim_gives_the_gradient_to_the_first_maximum():
    # PyTorch 2.13: [1, 3, 3, 2].max(0).values has gradient [0, 1, 0, 0]; .max() and .amax(0)
    # share it: [0, 0.5, 0.5, 0]
    for fn, grad in [(lambda x: x.max(0).values, [0, 1, 0, 0]), (lambda x: x.max(dim=0)[0], [0, 1, 0, 0]),
                     (lambda x: x.max(), [0, 0.5, 0.5, 0]), (lambda x: x.amax(0), [0, 0.5, 0.5, 0]),
                     (lambda x: x.max(axis=0), [0, 0.5, 0.5, 0])]:
        x = Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
        fn(x).backward()
        np.testing.assert_array_equal(x.grad, grad)
    x = Tensor(np.array([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.min(1).values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])


def test_max_with_dim_nan_wins():
    # PyTorch 2.13: [1, nan, 3, nan].max(0) = (nan, 1), gradient [0, 1, 0, 0]; min(0) = (nan, 1);
    # .max() with no dim shares: [0, 0.5, 0, 0.5]
    for name in ["max", "min"]:
        x = Tensor(np.array([1.0, nan, 3.0, nan]), requires_grad=True)
        values, indices = getattr(x, name)(0)
        assert math.isnan(values.item()) and indices.item() == 1
        values.backward()
        np.testing.assert_array_equal(x.grad, [0, 1, 0, 0])
    x = Tensor(np.array([1.0, nan, 3.0, nan]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0, 0.5, 0, 0.5])


def test_max_with_a_tensor_is_the_elementwise_maximum():
    x = Tensor(np.array([1.0, 5.0, 2.0]), requires_grad=True)
    out = x.max(Tensor(np.array([3.0, 3.0, 2.0])))
    np.testing.assert_array_equal(out.data, [3, 5, 2])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 0.5])  # PyTorch's maximum: a tie gives each side half
    np.testing.assert_array_equal(Tensor(np.array([1.0, 5.0])).min(np.array([3.0, 3.0])).data, [1, 3])


def test_max_over_an_empty_dimension_is_an_error_but_not_over_others():
    # PyTorch 2.13: torch.ones(2, 0).max(0) = (values=[], indices=[]); max(1) is an error
    values, indices = Tensor(np.ones((2, 0))).max(0)
    assert values.shape == indices.shape == (0,)
    with pytest.raises(ValueError, match=r"max: cannot reduce an empty tensor of shape \(2, 0\)"):
        Tensor(np.ones((2, 0))).max(1)


# ---- argmax, argmin, any, all ------------------------------------------------------------------------

def test_argmax_argmin_forms():
    data = distinct(3, 4)
    x = Tensor(data)
    for name, ref in [("argmax", np.argmax), ("argmin", np.argmin)]:
        fn = getattr(x, name)
        for out, expected in [(fn(), ref(data)), (fn(1), ref(data, 1)), (fn(dim=-2), ref(data, 0)),
                              (fn(axis=0), ref(data, 0)), (fn(1, keepdim=True), ref(data, 1, keepdims=True)),
                              (fn(keepdim=True), np.reshape(ref(data), (1, 1)))]:  # PyTorch: shape [1, 1]
            assert out.dtype == np.int64 and not out.requires_grad
            assert out.shape == np.shape(expected)
            np.testing.assert_array_equal(out.data, expected)
    # PyTorch 2.13: [1, nan, 3].argmax() = argmin() = 1; the first of tied maxima
    assert Tensor(np.array([1.0, nan, 3.0])).argmax().item() == 1
    assert Tensor(np.array([1.0, nan, 3.0])).argmin().item() == 1
    assert Tensor(np.array([2.0, 5.0, 5.0])).argmax().item() == 1
    assert Tensor(np.array(3.0)).argmax(0).shape == ()


def test_any_all():
    # PyTorch 2.13: x = [[0, 1], [0, 0]]: any() True, any(1) [True, False], all() False;
    # [nan].any() and .all() True; empty: any() False, all() True
    x = Tensor(np.array([[0.0, 1.0], [0.0, 0.0]]), requires_grad=True)
    assert x.any().dtype == np.bool_ and x.any().item() is True and x.all().item() is False
    np.testing.assert_array_equal(x.any(1).data, [True, False])
    np.testing.assert_array_equal(x.any(dim=1, keepdim=True).data, [[True], [False]])
    np.testing.assert_array_equal(x.all(axis=0).data, [False, False])
    assert x.any(dim=(0, 1)).item() is True and not x.any().requires_grad
    assert Tensor(np.array([nan])).any().item() and Tensor(np.array([nan])).all().item()
    assert not Tensor(np.ones(0)).any().item() and Tensor(np.ones(0)).all().item()
    assert Tensor(np.array(0.0)).any(0).item() is False and Tensor(np.array(2.0)).all(-1).item() is True


# ---- errors ------------------------------------------------------------------------------------------

def z(*shape):
    return Tensor(np.zeros(shape), requires_grad=True)


def s(shape):
    return re.escape(str(tuple(shape)))


ERRORS = [
    ("prod dim", lambda: z(2, 3).prod(2), ValueError, rf"prod: dimension 2 is out of range .*{s((2, 3))}"),
    ("prod dim and axis", lambda: z(2, 3).prod(dim=0, axis=0), TypeError, r"prod: got both dim=0 and axis=0"),
    ("var two corrections", lambda: z(2, 3).var(0, unbiased=True, correction=1), TypeError,
     r"var: got unbiased and correction"),
    ("std correction and ddof", lambda: z(2, 3).std(correction=1, ddof=1), TypeError, r"std: got correction and ddof"),
    ("var dim", lambda: z(2, 3).var(5), ValueError, rf"var: dimension 5 .*{s((2, 3))}"),
    ("logsumexp without dim", lambda: z(2, 3).logsumexp(), TypeError, r"logsumexp: dim is required"),
    ("logsumexp dim", lambda: z(2, 3).logsumexp(-3), ValueError, rf"logsumexp: dimension -3 .*{s((2, 3))}"),
    ("norm p=0", lambda: z(2, 3).norm(0), ValueError, rf"norm: p must be .*got 0 .*{s((2, 3))}"),
    ("norm p<0", lambda: z(2, 3).norm(-1), ValueError, r"norm: p must be .*got -1"),
    ("norm nuc", lambda: z(2, 3).norm("nuc"), ValueError, r"norm: p must be .*got 'nuc'"),
    ("norm inf empty", lambda: z(2, 0).norm(inf, 1), ValueError, rf"norm: the inf norm over an empty .*{s((2, 0))}"),
    ("cumsum without dim", lambda: z(3).cumsum(), TypeError, r"cumsum: dim is required"),
    ("cumsum dim", lambda: z(2, 3).cumsum(2), ValueError, rf"cumsum: dimension 2 .*{s((2, 3))}"),
    ("max tuple dim", lambda: z(2, 3).max(dim=(0, 1)), TypeError, r"max: dim must be a single dimension.*amax"),
    ("min dim", lambda: z(2, 3).min(2), ValueError, rf"min: dimension 2 .*{s((2, 3))}"),
    ("max empty", lambda: z(0).max(), ValueError, rf"max: cannot reduce an empty tensor of shape {s((0,))}"),
    ("argmax tuple", lambda: z(2, 3).argmax(axis=(0, 1)), ValueError, r"argmax: dim must be a single dimension"),
    ("argmin empty", lambda: z(0, 2).argmin(), ValueError, rf"argmin: .*empty tensor of shape {s((0, 2))}"),
    ("any dim", lambda: z(2, 3).any(3), ValueError, rf"any: dimension 3 .*{s((2, 3))}"),
    ("all keepdims twice", lambda: z(2, 3).all(0, keepdim=True, keepdims=True), TypeError, r"all: got both keepdim"),
]


@pytest.mark.parametrize("fn, exc, message", [pytest.param(*e[1:], id=e[0]) for e in ERRORS])
def test_error_message(fn, exc, message):
    with pytest.raises(exc, match=message):
        with no_grad():
            fn()
