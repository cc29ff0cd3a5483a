"""gradcheck itself: it passes on correct ops, it FAILS on wrong ones (negative controls, or every
other passing gradcheck in the suite would prove nothing), its report pinpoints the error, it
computes in float64, and it leaves its inputs as it found them."""
import re

import numpy as np
import pytest

from tinygrad_cnn import GradcheckError, Tensor, gradcheck, ops
from tinygrad_cnn.tensor import _apply


# ---- ops with deliberately wrong backwards ----------------------------------------------------

class Square(ops.Function):
    """x**2 with the right backward; subclasses break it in one way each."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        return 2 * ctx.saved[0] * grad


class SquareForgetsX(Square):
    @staticmethod
    def backward(ctx, grad):
        return 2 * grad  # wrong: d(x^2)/dx is 2x, not 2


class SquareWrongAtOneElement(Square):
    @staticmethod
    def backward(ctx, grad):
        g = 2 * ctx.saved[0] * grad
        g[1, 2] += 0.5  # wrong at exactly one element
        return g


class SquareSlightlyOff(Square):
    @staticmethod
    def backward(ctx, grad):
        return 2 * ctx.saved[0] * grad * (1 + 1e-3)  # 0.1% too large


class MulWrongSecond(ops.Mul):
    """x * y with a correct gradient for x and a wrong one (x instead of... x, halved) for y."""

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        return grad * y, grad * x / 2


class SquareNoGrad(Square):
    @staticmethod
    def backward(ctx, grad):
        return None  # forgets to return a gradient at all


def sum_of(op):
    return lambda *xs: _apply(op, *xs).sum()


def numbers(message):
    """The two values a GradcheckError reports, as floats (they may print as np.float64(...))."""
    m = re.search(r"autograd gives (.*), finite differences give (.*)$", message)
    assert m, message
    return [float(re.search(r"[-+0-9.e]+(?=\)?$)", part).group()) for part in m.groups()]


def leaf(a):
    return Tensor(np.asarray(a, np.float64), requires_grad=True)


# ---- passes on correct gradients ----------------------------------------------------------------

@pytest.mark.parametrize("fn, arrays", [
    (sum_of(Square), [np.array([1.0, -2.0, 3.0])]),
    (lambda x, y: (x * y.exp()).sum(), [np.array([[1.0, 2.0]]), np.array([0.5, -0.5])]),
    (lambda x: x.tanh().mean(), [np.linspace(-1, 1, 7).reshape(7, 1)]),
    (lambda x: (x * x).sum() * 0, [np.ones(2)]),  # a zero gradient is a correct gradient too
])
def test_passes_on_correct_gradients(fn, arrays):
    assert gradcheck(fn, *[leaf(a) for a in arrays]) is True


# ---- negative controls: wrong gradients must fail, with a precise report ------------------------

def test_wrong_backward_fails_naming_input_index_and_values():
    x = leaf([3.0, -1.0, 2.0])
    with pytest.raises(GradcheckError) as info:
        gradcheck(sum_of(SquareForgetsX), x)
    message = str(info.value)
    assert "input 0" in message and "index (0,)" in message and "(3,)" in message
    analytic, numeric = numbers(message)
    assert analytic == 2.0                            # what the wrong backward says
    assert numeric == pytest.approx(6.0, rel=1e-6)    # 2x at x = 3, by finite differences


def test_report_names_the_element_that_is_wrong():
    x = leaf(np.arange(1.0, 13.0).reshape(3, 4))
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3, 4\)\) differs at index \(1, 2\)") as info:
        gradcheck(sum_of(SquareWrongAtOneElement), x)
    analytic, numeric = numbers(str(info.value))
    assert analytic == 2 * 7.0 + 0.5 and numeric == pytest.approx(14.0, rel=1e-6)


def test_report_names_the_input_that_is_wrong():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    with pytest.raises(GradcheckError, match=r"input 1 .*index \(0,\)") as info:
        gradcheck(sum_of(MulWrongSecond), x, y)
    analytic, numeric = numbers(str(info.value))
    assert analytic == 0.5 and numeric == pytest.approx(1.0, rel=1e-6)


def test_wrong_input_is_ignored_when_it_does_not_require_grad():
    """Only inputs with requires_grad=True are checked: the same wrong op passes when y is a
    constant (its gradient is never asked for)."""
    assert gradcheck(sum_of(MulWrongSecond), leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0])))


def test_missing_gradient_fails():
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(sum_of(SquareNoGrad), leaf([1.0, 2.0]))


def test_unused_input_is_reported():
    """An input no gradient reaches (typically: fn closes over a copy, not over this tensor)."""
    with pytest.raises(GradcheckError, match=r"input 1 .*not used"):
        gradcheck(lambda x, y: (x * 2).sum(), leaf([1.0]), leaf([2.0]))


def test_tolerances_are_applied():
    x = leaf([1.0, 2.0])
    with pytest.raises(GradcheckError):
        gradcheck(sum_of(SquareSlightlyOff), x)  # 1e-3 relative error > rtol=1e-4
    assert gradcheck(sum_of(SquareSlightlyOff), x, rtol=1e-2)
    assert gradcheck(sum_of(SquareSlightlyOff), x, atol=1e-2)


def test_eps_is_applied():
    """Central differences of x**3 are off by eps**2: invisible at 1e-6, a failure at 0.1."""
    x = leaf([1.0])
    assert gradcheck(lambda x: (x ** 3).sum(), x)
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: (x ** 3).sum(), x, eps=0.1)


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)  # so a bare call inside a test fails it


# ---- float64, and inputs left as they were ------------------------------------------------------

def test_runs_in_float64_for_float32_inputs_and_leaves_them_alone():
    seen = []

    def fn(x, y):
        seen.append((str(x.dtype), str(y.dtype)))
        return (x * y).sum()

    data = np.array([0.1, 0.2, 0.3], np.float32)
    x, y = Tensor(data.copy(), requires_grad=True), Tensor(data.copy())
    assert gradcheck(fn, x, y)
    assert len(seen) == 1 + 2 * 3  # one backward pass, two evaluations per element
    assert set(seen) == {("float64", "float64")}
    # float32 inputs are checked on float64 copies: untouched, and no .grad left behind
    assert x.dtype == np.float32 and x.grad is None
    np.testing.assert_array_equal(x.numpy(), data)


def test_float32_would_be_too_coarse_so_float64_matters():
    """Why gradcheck must upcast: in float32, a 1e-6 step on values near 1 is below the spacing
    of representable numbers and the finite difference is garbage."""
    x = np.float32(1.0)
    assert (x + np.float32(1e-6)) - (x - np.float32(1e-6)) != np.float32(2e-6)
    assert gradcheck(lambda t: (t * t).sum(), Tensor(np.array([1.0, 1.5], np.float32), requires_grad=True))


def test_float64_inputs_are_used_in_place_and_restored():
    """A float64 input is perturbed in place (so fn may close over it, like a model's parameters)
    and afterwards has exactly its old data and its old .grad."""
    w = leaf([0.5, -1.5, 2.0])
    data = w.numpy().copy()
    w.grad = np.array([7.0, 7.0, 7.0])
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    assert gradcheck(lambda _: (x * w * w).sum(), w)  # fn ignores its argument and uses w directly
    np.testing.assert_array_equal(w.numpy(), data)
    np.testing.assert_array_equal(w.grad, [7.0, 7.0, 7.0])


def test_inputs_are_restored_after_a_failure():
    w = leaf([3.0, 4.0])
    with pytest.raises(GradcheckError):
        gradcheck(sum_of(SquareForgetsX), w)
    np.testing.assert_array_equal(w.numpy(), [3.0, 4.0])
    assert w.grad is None


def test_non_tensor_and_integer_inputs_pass_through():
    """Arrays, Python values and integer tensors (labels) reach fn unchanged."""
    labels = Tensor(np.array([2, 0]), dtype=np.int64)
    weights = np.array([1.0, 2.0])
    seen = []

    def fn(logits, labels, weights, scale):
        seen.append((str(labels.dtype), type(weights), scale))
        return logits.cross_entropy(labels) * scale + (logits.sum(axis=0)[:2] * weights).sum()

    assert gradcheck(fn, leaf(np.random.default_rng(0).standard_normal((2, 3))), labels, weights, 3)
    assert set(seen) == {("int64", np.ndarray, 3)}


# ---- misuse -------------------------------------------------------------------------------------

def test_nothing_to_check():
    with pytest.raises(ValueError, match="gradcheck.*requires_grad"):
        gradcheck(lambda x: x.sum(), Tensor(np.ones(2)))


def test_fn_must_return_a_tensor():
    with pytest.raises(ValueError, match="gradcheck: fn must return a Tensor, got float"):
        gradcheck(lambda x: 1.0, leaf([1.0, 2.0]))


def test_non_scalar_output_is_checked_through_a_random_upstream_gradient():
    """A non-scalar output is contracted with random weights: an error in any one output
    element's gradient, even one that a plain sum would cancel, is caught."""
    assert gradcheck(lambda x: _apply(Square, x), leaf(np.arange(6.0).reshape(2, 3)))
    with pytest.raises(GradcheckError, match=r"index \(1, 2\)"):
        gradcheck(lambda x: _apply(SquareWrongAtOneElement, x), leaf(np.arange(6.0).reshape(2, 3)))

    class SwapsItsGradient(Square):  # right under .sum() (all upstream ones), wrong otherwise
        @staticmethod
        def backward(ctx, grad):
            return 2 * ctx.saved[0] * grad[::-1]
    x = np.array([1.0, 2.0])
    assert gradcheck(lambda x: _apply(SwapsItsGradient, x).sum(), leaf(x))
    with pytest.raises(GradcheckError):
        gradcheck(lambda x: _apply(SwapsItsGradient, x), leaf(x))
