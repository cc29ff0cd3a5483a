"""Edge values as PyTorch has them (issue 12): inf and NaN through masked backwards, sigmoid's
far tail, extreme divisors, 0-d reductions, and the sign of a zero loss. Expected numbers marked
"torch" were measured with PyTorch 2.13 (CPU) on the same inputs."""
import numpy as np
import pytest

from tinygrad_cnn import Tensor, functional as F


def test_inf_upstream_gradient_through_relu_is_zero_where_relu_is_flat():
    x = Tensor(np.array([-1.0, 4.0], np.float32), requires_grad=True)
    (x.relu() ** 0.5).sum().backward()  # d sqrt(u)/du is inf at u = relu(-1) = 0
    np.testing.assert_array_equal(x.grad, [0.0, 0.25])  # torch: [0., 0.25], not [nan, 0.25]


def test_nan_upstream_gradient_through_relu_stays_where_relu_passes():
    x = Tensor(np.array([-1.0, 4.0]), requires_grad=True)
    x.relu().backward(np.array([np.nan, np.nan]))
    assert x.grad[0] == 0.0 and np.isnan(x.grad[1])


def test_relu_at_nan_passes_the_gradient():
    x = Tensor(np.array([np.nan, 2.0, -3.0]), requires_grad=True)
    out = x.relu()
    assert np.isnan(out.data[0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 0.0])  # torch: [1., 1., 0.]: the NaN stays visible


@pytest.mark.parametrize("dtype, x, expected", [
    (np.float32, -10.0, 4.539787187241018e-05),   # torch float32
    (np.float32, -20.0, 2.06115369216775e-09),    # torch float32 (0.5 * tanh(x / 2) + 0.5 gave 0)
    (np.float32, -88.0, 6.054601485195952e-39),   # torch float32: a subnormal, still nonzero
    (np.float64, -38.0, 3.1391327920480296e-17),  # torch float64
    (np.float64, -100.0, 3.7200759760208356e-44),  # torch float64
])
def test_sigmoid_far_tail(dtype, x, expected):
    out = Tensor(np.array([x], dtype)).sigmoid().data[0]
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=4 * np.finfo(dtype).eps if out >= np.finfo(dtype).tiny else 1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_accurate_to_a_few_ulp_across_the_range(dtype):
    x = np.concatenate([-np.logspace(-8, np.log10(80 if dtype == np.float32 else 700), 400),
                        np.logspace(-8, 2, 200), [0.0]]).astype(dtype)
    reference = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    out = Tensor(x).sigmoid().data
    tiny = np.finfo(dtype).tiny
    normal = reference >= tiny
    ulps = np.abs(out[normal] - reference[normal]) / (np.finfo(dtype).eps * reference[normal])
    assert ulps.max() <= 4


def test_log_of_sigmoid_stays_finite_with_a_finite_gradient():
    x = Tensor(np.array([-20.0, -80.0], np.float32), requires_grad=True)
    out = x.sigmoid().log()
    out.sum().backward()
    np.testing.assert_allclose(out.data, [-20.0, -80.0], rtol=1e-5)
    np.testing.assert_allclose(x.grad, [1.0, 1.0], rtol=1e-5)  # torch: 1.0 at -20


def test_division_gradient_does_not_overflow_at_extreme_divisors():
    x = Tensor(np.array(1e-23, np.float32), requires_grad=True)
    y = Tensor(np.array(1e-23, np.float32), requires_grad=True)
    (x / y).backward()
    np.testing.assert_allclose(x.grad, 1e23, rtol=1e-6)   # torch: 1.0000e+23
    np.testing.assert_allclose(y.grad, -1e23, rtol=1e-6)  # torch: -1.0000e+23 (not -inf from y * y)


@pytest.mark.parametrize("axis", [0, -1])
def test_reductions_of_a_0d_tensor_over_dim_0_or_minus_1(axis):
    x = Tensor(np.array(3.0), requires_grad=True)
    total = x.sum(axis=axis) + x.max(axis=axis) + x.mean(axis=axis) + x.sum(axis) + x.mean(axis)
    assert total.shape == ()
    total.backward()
    assert x.grad == 5.0  # torch: x.sum(0) + x.amax(-1) + x.mean(0) has gradient 3.0 with three terms


def test_zero_losses_are_positive_zero():
    logits = Tensor(np.array([[1000.0, -1000.0]], np.float32))
    ce = logits.cross_entropy(np.array([0]))
    nll = F.nll_loss(Tensor(np.array([[0.0, -1.0]], np.float32)), np.array([0]))
    for loss in (ce, nll):
        assert loss.item() == 0.0 and not np.signbit(loss.item())  # torch prints tensor(0.), not -0.


@pytest.mark.parametrize("reduce", [lambda x: x.max(), lambda x: x.min(), lambda x: x.amax(dim=0)],
                         ids=["max", "min", "amax"])
def test_inf_upstream_gradient_through_a_full_max_or_min_is_zero_off_the_extremum(reduce):
    x = Tensor(np.array([1.0, 3.0, -2.0]), requires_grad=True)
    reduce(x).backward(np.array(np.inf))
    extremum = 2 if reduce(Tensor(x.data)).item() == -2.0 else 1
    expected = np.zeros(3)
    expected[extremum] = np.inf
    np.testing.assert_array_equal(x.grad, expected)  # torch: [0., inf, 0.] for max, not NaN beside the inf


@pytest.mark.parametrize("shape, dim", [((0, 3), 0), ((0, 3), 1), ((2, 0), -1), ((0,), 0)])
def test_softmax_over_an_empty_tensor_is_empty(shape, dim):
    for op in (F.softmax, F.log_softmax):  # torch: an empty result of the same shape
        x = Tensor(np.zeros(shape), requires_grad=True)
        out = op(x, dim=dim)
        assert out.shape == shape
        out.sum().backward()
        assert x.grad.shape == shape


# torch 2.13, float64, an inf upstream gradient at x = -1000, -10, -3, 3, 10, 1000
INF_THROUGH_SLOPES = {
    "silu": [np.nan, -np.inf, -np.inf, np.inf, np.inf, np.inf],
    "mish": [np.nan, -np.inf, -np.inf, np.inf, np.inf, np.inf],
    "gelu": [np.nan, -np.inf, -np.inf, np.inf, np.inf, np.inf],
    "hardswish": [0.0, 0.0, 0.0, np.inf, np.inf, np.inf],
}


@pytest.mark.parametrize("name", sorted(INF_THROUGH_SLOPES))
def test_an_inf_gradient_through_x_times_f_of_x_activations_is_scaled_by_the_slope(name):
    # the slope is formed before it meets the gradient: inf only where the slope is exactly 0 or 0 x inf
    x = Tensor(np.array([-1000.0, -10.0, -3.0, 3.0, 10.0, 1000.0]), requires_grad=True)
    with np.errstate(invalid="ignore"):  # inf * 0 at -1000, where torch's answer is NaN as well
        getattr(x, name)().backward(np.full(6, np.inf))
    np.testing.assert_array_equal(x.grad, INF_THROUGH_SLOPES[name])
