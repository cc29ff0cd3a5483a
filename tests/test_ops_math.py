"""Elementwise math, activations, comparisons and boolean logic.

Every op on several shapes (0-d, size-1, broadcasting for binary ops): float64 gradcheck and
gradgradcheck, forward values against plain numpy / math formulas, float32 in -> float32 out
(values and gradients). Then edge values (0, +-inf, NaN, domain edges) against numbers measured
with PyTorch 2.13 in float64 and hard-coded here, accuracy at extreme inputs against
high-precision references (decimal, math.erf, mpmath values hard-coded), and the error messages.
"""
import math
import warnings
from decimal import Decimal, localcontext

import numpy as np
import pytest

from tinygrad_cnn import Tensor, functional as F, gradcheck, gradgradcheck

rng = np.random.default_rng(20240917)
nan, inf = math.nan, math.inf


# ---- input generators (float64 ndarrays, also for shape ()) ------------------------------------------

def randn(*shape):
    return np.asarray(rng.standard_normal(shape))


def wide(*shape):
    return 3 * randn(*shape)


def positive(*shape):
    return np.asarray(rng.uniform(0.5, 2.0, shape))


def nonzero(*shape):
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape))


def uniform(low, high):
    return lambda *shape: np.asarray(rng.uniform(low, high, shape))


def off_grid(*shape):
    """At least 0.1 from every integer and half-integer: floor, round, frac are smooth there."""
    return np.asarray(rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.4, shape) + rng.choice([0.0, 0.5], shape))


def avoiding(*kinks, spread=4.0):
    """Uniform in [-spread, spread], moved at least 0.05 away from each kink."""
    def generate(*shape):
        x = rng.uniform(-spread, spread, shape)
        for k in kinks:
            x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
        return np.asarray(x)
    return generate


erf_ref = np.vectorize(math.erf)
erfc_ref = np.vectorize(math.erfc)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


# ---- the cases: (id, fn, plain numpy/math reference, generator per input) ------------------------

UNARY = [
    ("abs", lambda x: x.abs(), np.abs, nonzero),
    ("abs()", lambda x: abs(x), np.abs, nonzero),
    ("absolute", lambda x: x.absolute(), np.abs, nonzero),
    ("sign", lambda x: x.sign(), np.sign, nonzero),
    ("sqrt", lambda x: x.sqrt(), lambda a: a ** 0.5, positive),
    ("rsqrt", lambda x: x.rsqrt(), lambda a: a ** -0.5, positive),
    ("square", lambda x: x.square(), lambda a: a * a, randn),
    ("reciprocal", lambda x: x.reciprocal(), lambda a: 1 / a, nonzero),
    ("log1p", lambda x: x.log1p(), lambda a: np.log(1 + a), uniform(-0.8, 3.0)),
    ("expm1", lambda x: x.expm1(), lambda a: np.exp(a) - 1, randn),
    ("log2", lambda x: x.log2(), lambda a: np.log(a) / np.log(2), positive),
    ("log10", lambda x: x.log10(), lambda a: np.log(a) / np.log(10), positive),
    ("exp2", lambda x: x.exp2(), lambda a: np.exp(a * np.log(2)), randn),
    ("sin", lambda x: x.sin(), np.sin, randn),
    ("cos", lambda x: x.cos(), np.cos, randn),
    ("tan", lambda x: x.tan(), lambda a: np.sin(a) / np.cos(a), uniform(-1.2, 1.2)),
    ("sinh", lambda x: x.sinh(), lambda a: (np.exp(a) - np.exp(-a)) / 2, randn),
    ("cosh", lambda x: x.cosh(), lambda a: (np.exp(a) + np.exp(-a)) / 2, randn),
    ("asin", lambda x: x.asin(), np.arcsin, uniform(-0.9, 0.9)),
    ("arcsin", lambda x: x.arcsin(), np.arcsin, uniform(-0.9, 0.9)),
    ("acos", lambda x: x.acos(), np.arccos, uniform(-0.9, 0.9)),
    ("arccos", lambda x: x.arccos(), np.arccos, uniform(-0.9, 0.9)),
    ("atan", lambda x: x.atan(), np.arctan, wide),
    ("arctan", lambda x: x.arctan(), np.arctan, wide),
    ("asinh", lambda x: x.asinh(), lambda a: np.log(a + np.sqrt(a * a + 1)), wide),
    ("arcsinh", lambda x: x.arcsinh(), lambda a: np.log(a + np.sqrt(a * a + 1)), wide),
    ("acosh", lambda x: x.acosh(), lambda a: np.log(a + np.sqrt(a * a - 1)), uniform(1.2, 4.0)),
    ("arccosh", lambda x: x.arccosh(), lambda a: np.log(a + np.sqrt(a * a - 1)), uniform(1.2, 4.0)),
    ("atanh", lambda x: x.atanh(), lambda a: 0.5 * np.log((1 + a) / (1 - a)), uniform(-0.9, 0.9)),
    ("arctanh", lambda x: x.arctanh(), lambda a: 0.5 * np.log((1 + a) / (1 - a)), uniform(-0.9, 0.9)),
    ("erf", lambda x: x.erf(), erf_ref, wide),
    ("erfc", lambda x: x.erfc(), erfc_ref, wide),
    ("floor", lambda x: x.floor(), lambda a: a - np.fmod(a, 1) - (a < 0), off_grid),
    ("ceil", lambda x: x.ceil(), lambda a: a - np.fmod(a, 1) + (a > 0), off_grid),
    ("round", lambda x: x.round(), lambda a: np.floor(a + 0.5), off_grid),
    ("round-decimals", lambda x: x.round(decimals=1), lambda a: np.floor(10 * a + 0.5) / 10, off_grid),
    ("trunc", lambda x: x.trunc(), lambda a: a - np.fmod(a, 1), off_grid),
    ("fix", lambda x: x.fix(), lambda a: a - np.fmod(a, 1), off_grid),
    ("frac", lambda x: x.frac(), lambda a: np.fmod(a, 1), off_grid),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), lambda a: np.minimum(np.maximum(a, -0.5), 0.5),
     avoiding(-0.5, 0.5, spread=1)),
    ("clamp-min", lambda x: x.clamp(min=-0.5), lambda a: np.maximum(a, -0.5), avoiding(-0.5, spread=1)),
    ("clamp-max", lambda x: x.clamp(max=0.5), lambda a: np.minimum(a, 0.5), avoiding(0.5, spread=1)),
    ("clip", lambda x: x.clip(-0.5, 0.5), lambda a: np.minimum(np.maximum(a, -0.5), 0.5),
     avoiding(-0.5, 0.5, spread=1)),
    ("clamp-crossed", lambda x: x.clamp(0.5, -0.5), lambda a: np.full_like(a, -0.5), randn),  # min > max: max
    ("clamp_min", lambda x: x.clamp_min(0.2), lambda a: np.maximum(a, 0.2), avoiding(0.2, spread=1)),
    ("clamp_max", lambda x: x.clamp_max(0.2), lambda a: np.minimum(a, 0.2), avoiding(0.2, spread=1)),
    ("x%1.5", lambda x: x % 1.5, lambda a: a - np.floor(a / 1.5) * 1.5, avoiding(-3, -1.5, 0, 1.5, 3)),
    ("2.5%x", lambda x: 2.5 % x, lambda a: 2.5 - np.floor(2.5 / a) * a, nonzero),
    ("atan2-number", lambda x: x.atan2(0.5), lambda a: np.arctan(a / 0.5), randn),
    ("F.erf", F.erf, erf_ref, randn),
    ("F.sqrt", F.sqrt, lambda a: a ** 0.5, positive),
    ("F.clamp", lambda x: F.clamp(x, max=0.3), lambda a: np.minimum(a, 0.3), avoiding(0.3, spread=1)),
]

ACTIVATIONS = [
    ("relu", lambda x: x.relu(), lambda a: np.maximum(a, 0), nonzero),
    ("sigmoid", lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), wide),
    ("tanh", lambda x: x.tanh(), np.tanh, randn),
    ("leaky_relu", lambda x: x.leaky_relu(), lambda a: np.where(a > 0, a, 0.01 * a), nonzero),
    ("leaky_relu-0.2", lambda x: F.leaky_relu(x, 0.2), lambda a: np.where(a > 0, a, 0.2 * a), nonzero),
    ("relu6", lambda x: x.relu6(), lambda a: np.minimum(np.maximum(a, 0), 6), avoiding(0, 6, spread=8)),
    ("elu", lambda x: x.elu(), lambda a: np.where(a > 0, a, np.exp(a) - 1), lambda *s: 2 * nonzero(*s)),
    ("elu-alpha", lambda x: F.elu(x, alpha=0.5), lambda a: np.where(a > 0, a, 0.5 * (np.exp(a) - 1)), nonzero),
    ("selu", lambda x: x.selu(), lambda a: SELU_SCALE * np.where(a > 0, a, SELU_ALPHA * (np.exp(a) - 1)), nonzero),
    ("gelu", lambda x: x.gelu(), lambda a: a * (1 + erf_ref(a / np.sqrt(2))) / 2, wide),
    ("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda a: a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3))) / 2, wide),
    ("silu", lambda x: x.silu(), lambda a: a / (1 + np.exp(-a)), wide),
    ("softplus", lambda x: x.softplus(), lambda a: np.log(1 + np.exp(a)), wide),
    ("softplus-beta-threshold", lambda x: F.softplus(x, 2.0, 3.0),
     lambda a: np.where(2 * a > 3, a, np.log(1 + np.exp(2 * a)) / 2), avoiding(1.5, spread=3)),
    ("hardswish", lambda x: x.hardswish(), lambda a: a * np.minimum(np.maximum(a + 3, 0), 6) / 6,
     avoiding(-3, 3, spread=5)),
    ("mish", lambda x: x.mish(), lambda a: a * np.tanh(np.log(1 + np.exp(a))), wide),
    ("hardtanh", lambda x: x.hardtanh(), lambda a: np.minimum(np.maximum(a, -1), 1), avoiding(-1, 1, spread=2)),
    ("hardtanh-bounds", lambda x: F.hardtanh(x, -0.5, 2.0), lambda a: np.minimum(np.maximum(a, -0.5), 2),
     avoiding(-0.5, 2, spread=3)),
    ("hardsigmoid", lambda x: x.hardsigmoid(), lambda a: np.minimum(np.maximum(a / 6 + 0.5, 0), 1),
     avoiding(-3, 3, spread=5)),
    ("logsigmoid", lambda x: x.logsigmoid(), lambda a: -np.log(1 + np.exp(-a)), wide),
    ("softsign", lambda x: x.softsign(), lambda a: a / (1 + np.abs(a)), nonzero),
]

BINARY = [
    ("atan2", lambda y, x: y.atan2(x), lambda a, b: np.arctan(a / b) + np.pi * (b < 0) * np.sign(a), nonzero, nonzero),
    ("arctan2", lambda y, x: y.arctan2(x), np.arctan2, nonzero, nonzero),
    ("F.atan2", F.atan2, np.arctan2, nonzero, nonzero),
    ("hypot", lambda x, y: x.hypot(y), lambda a, b: np.sqrt(a * a + b * b), nonzero, nonzero),
    ("remainder", lambda x, y: x % y, lambda a, b: a - np.floor(a / b) * b, wide, nonzero),
    ("remainder-method", lambda x, y: x.remainder(y), lambda a, b: a - np.floor(a / b) * b, wide, nonzero),
    ("fmod", lambda x, y: x.fmod(y), lambda a, b: a - np.trunc(a / b) * b, wide, nonzero),
    ("maximum", lambda x, y: x.maximum(y), lambda a, b: np.where(a > b, a, b), randn, randn),
    ("minimum", lambda x, y: x.minimum(y), lambda a, b: np.where(a < b, a, b), randn, randn),
    ("clamp-tensor-min", lambda x, lo: x.clamp(min=lo), lambda a, lo: np.where(a > lo, a, lo), randn, randn),
    ("clamp-tensor-max", lambda x, hi: x.clamp(max=hi), lambda a, hi: np.where(a < hi, a, hi), randn, randn),
]
SHAPE_PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((), (2, 3)), ((2, 3), ()), ((1,), ())]
UNARY_SHAPES = [(), (1,), (2, 3)]
ALIASES = {"abs()", "absolute", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "fix", "clip", "F.sqrt"}
MASK = np.array([[True, False, True], [False, False, True]])


def case(id, fn, ref, *arrays):
    return pytest.param(fn, ref, arrays, id=id)


def _cases():
    out = []
    for id, fn, ref, gen in UNARY + ACTIVATIONS:
        shapes = UNARY_SHAPES[-1:] if id in ALIASES else UNARY_SHAPES  # an alias is the same function
        out += [case(f"{id}-{shape}", fn, ref, gen(*shape)) for shape in shapes]
    for id, fn, ref, gx, gy in BINARY:
        out += [case(f"{id}-{sx}-{sy}", fn, ref, gx(*sx), gy(*sy)) for sx, sy in SHAPE_PAIRS]
    clamp = lambda x, lo, hi: x.clamp(lo, hi)  # noqa: E731
    clamp_ref = lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi)  # noqa: E731
    out += [
        case("clamp-tensors", clamp, clamp_ref, wide(2, 3), uniform(-1.5, -0.5)(3), uniform(0.5, 1.5)(2, 1)),
        case("clamp-tensors-0d", clamp, clamp_ref, wide(2, 3), uniform(-1.5, -0.5)(), uniform(0.5, 1.5)()),
        case("clamp-tensors-crossed", clamp, clamp_ref, wide(2, 3), uniform(0.5, 1.5)(3), uniform(-1.5, -0.5)(2, 1)),
        case("where", lambda x, y: F.where(MASK, x, y), lambda a, b: np.where(MASK, a, b), randn(2, 3), randn(3)),
        case("where-tensor-mask", lambda x, y: F.where(Tensor(MASK, dtype=bool), x, y),
             lambda a, b: np.where(MASK, a, b), randn(2, 1), randn()),
        case("where-number", lambda x: F.where(MASK, x, 0.5), lambda a: np.where(MASK, a, 0.5), randn(3)),
        case("atan2-quadrants", lambda y, x: y.atan2(x), np.arctan2, np.array([1.0, -1.0, 1.0, -1.0]),
             np.array([1.0, 1.0, -1.0, -1.0])),
    ]
    return out


CASES = _cases()


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_gradcheck(fn, ref, arrays):
    assert gradcheck(fn, *[Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_gradgradcheck(fn, ref, arrays):
    assert gradgradcheck(fn, *[Tensor(a, requires_grad=True) for a in arrays])


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_forward_matches_plain_formula(fn, ref, arrays):
    out = fn(*[Tensor(a) for a in arrays])
    expected = ref(*arrays)
    assert out.dtype == np.float64 and out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_float32_in_float32_out(fn, ref, arrays):
    """Values and gradients stay float32. The gradient is read where it arrives at a non-leaf
    (x + 0, retain_grad): a leaf's .grad is cast to the leaf's dtype and would hide an upcast."""
    leaves = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    inputs = [x + 0 for x in leaves]
    for x in inputs:
        x.retain_grad()
    out = fn(*inputs)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    for x in inputs:
        assert x.grad is not None and x.grad.dtype == np.float32 and x.grad.shape == x.shape


# ---- edge values, measured with PyTorch 2.13 (float64) -------------------------------------------
# Each entry: (values, gradients) of op(x).backward(ones) at the inputs EDGE (or EDGE_ACT), printed
# by torch and pasted here. Zeros are compared with their sign.

EDGE = [-inf, -2.5, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.5, inf, nan]
TORCH_MATH = {
    "abs": (
        [inf, 2.5, 1.0, 0.5, 0.0, 0.0, 0.5, 1.0, 2.5, inf, nan],
        [-1.0, -1.0, -1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]),
    "sign": (
        [-1.0, -1.0, -1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "sqrt": (
        [nan, nan, nan, nan, -0.0, 0.0, 0.7071067811865476, 1.0, 1.5811388300841898, inf, nan],
        [nan, nan, nan, nan, -inf, inf, 0.7071067811865475, 0.5, 0.31622776601683794, 0.0, nan]),
    "rsqrt": (
        [nan, nan, nan, nan, -inf, inf, 1.414213562373095, 1.0, 0.6324555320336759, 0.0, nan],
        [nan, nan, nan, nan, inf, -inf, -1.4142135623730947, -0.5, -0.1264911064067352, -0.0, nan]),
    "square": (
        [inf, 6.25, 1.0, 0.25, 0.0, 0.0, 0.25, 1.0, 6.25, inf, nan],
        [-inf, -5.0, -2.0, -1.0, -0.0, 0.0, 1.0, 2.0, 5.0, inf, nan]),
    "reciprocal": (
        [-0.0, -0.4, -1.0, -2.0, -inf, inf, 2.0, 1.0, 0.4, 0.0, nan],
        [-0.0, -0.16000000000000003, -1.0, -4.0, -inf, -inf, -4.0, -1.0, -0.16000000000000003, -0.0, nan]),
    "log1p": (
        [nan, nan, -inf, -0.6931471805599453, -0.0, 0.0, 0.4054651081081644, 0.6931471805599453,
         1.252762968495368, inf, nan],
        [-0.0, -0.6666666666666666, inf, 2.0, 1.0, 1.0, 0.6666666666666666, 0.5, 0.2857142857142857, 0.0, nan]),
    "expm1": (
        [-1.0, -0.9179150013761012, -0.6321205588285577, -0.3934693402873666, -0.0, 0.0, 0.6487212707001282,
         1.7182818284590453, 11.182493960703473, inf, nan],
        [0.0, 0.08208499862389884, 0.36787944117144233, 0.6065306597126334, 1.0, 1.0, 1.6487212707001282,
         2.7182818284590455, 12.182493960703473, inf, nan]),
    "log2": (
        [nan, nan, nan, nan, -inf, -inf, -1.0, 0.0, 1.3219280948873624, inf, nan],
        [-0.0, -0.5770780163555853, -1.4426950408889634, -2.8853900817779268, -inf, inf, 2.8853900817779268,
         1.4426950408889634, 0.5770780163555853, 0.0, nan]),
    "log10": (
        [nan, nan, nan, nan, -inf, -inf, -0.3010299956639812, 0.0, 0.3979400086720376, inf, nan],
        [-0.0, -0.17371779276130075, -0.43429448190325187, -0.8685889638065037, -inf, inf, 0.8685889638065037,
         0.43429448190325187, 0.17371779276130075, 0.0, nan]),
    "exp2": (
        [0.0, 0.17677669529663687, 0.5, 0.7071067811865475, 1.0, 1.0, 1.414213562373095, 2.0, 5.656854249492381,
         inf, nan],
        [0.0, 0.12253226793356839, 0.34657359027997264, 0.49012907173427356, 0.6931471805599453,
         0.6931471805599453, 0.9802581434685471, 1.3862943611198906, 3.921032573874189, inf, nan]),
    "sin": (
        [nan, -0.5984721441039565, -0.8414709848078965, -0.479425538604203, -0.0, 0.0, 0.479425538604203,
         0.8414709848078965, 0.5984721441039565, nan, nan],
        [nan, -0.8011436155469337, 0.5403023058681398, 0.8775825618903728, 1.0, 1.0, 0.8775825618903728,
         0.5403023058681398, -0.8011436155469337, nan, nan]),
    "cos": (
        [nan, -0.8011436155469337, 0.5403023058681398, 0.8775825618903728, 1.0, 1.0, 0.8775825618903728,
         0.5403023058681398, -0.8011436155469337, nan, nan],
        [nan, 0.5984721441039565, 0.8414709848078965, 0.479425538604203, 0.0, -0.0, -0.479425538604203,
         -0.8414709848078965, -0.5984721441039565, nan, nan]),
    "tan": (
        [nan, 0.7470222972386603, -1.5574077246549023, -0.5463024898437905, -0.0, 0.0, 0.5463024898437905,
         1.5574077246549023, -0.7470222972386603, nan, nan],
        [nan, 1.5580423125717253, 3.42551882081476, 1.2984464104095248, 1.0, 1.0, 1.2984464104095248,
         3.42551882081476, 1.5580423125717253, nan, nan]),
    "sinh": (
        [-inf, -6.0502044810397875, -1.1752011936438014, -0.5210953054937474, -0.0, 0.0, 0.5210953054937474,
         1.1752011936438014, 6.0502044810397875, inf, nan],
        [inf, 6.132289479663686, 1.5430806348152437, 1.1276259652063807, 1.0, 1.0, 1.1276259652063807,
         1.5430806348152437, 6.132289479663686, inf, nan]),
    "cosh": (
        [inf, 6.132289479663686, 1.5430806348152437, 1.1276259652063807, 1.0, 1.0, 1.1276259652063807,
         1.5430806348152437, 6.132289479663686, inf, nan],
        [-inf, -6.0502044810397875, -1.1752011936438014, -0.5210953054937474, -0.0, 0.0, 0.5210953054937474,
         1.1752011936438014, 6.0502044810397875, inf, nan]),
    "asin": (
        [nan, nan, -1.5707963267948966, -0.5235987755982989, -0.0, 0.0, 0.5235987755982989, 1.5707963267948966,
         nan, nan, nan],
        [nan, nan, inf, 1.1547005383792517, 1.0, 1.0, 1.1547005383792517, inf, nan, nan, nan]),
    "acos": (
        [nan, nan, 3.141592653589793, 2.0943951023931957, 1.5707963267948966, 1.5707963267948966,
         1.0471975511965976, 0.0, nan, nan, nan],
        [nan, nan, -inf, -1.1547005383792517, -1.0, -1.0, -1.1547005383792517, -inf, nan, nan, nan]),
    "atan": (
        [-1.5707963267948966, -1.1902899496825317, -0.7853981633974483, -0.4636476090008061, -0.0, 0.0,
         0.4636476090008061, 0.7853981633974483, 1.1902899496825317, 1.5707963267948966, nan],
        [0.0, 0.13793103448275862, 0.5, 0.8, 1.0, 1.0, 0.8, 0.5, 0.13793103448275862, 0.0, nan]),
    "asinh": (
        [-inf, -1.6472311463710958, -0.881373587019543, -0.48121182505960347, -0.0, 0.0, 0.48121182505960347,
         0.881373587019543, 1.6472311463710958, inf, nan],
        [0.0, 0.3713906763541037, 0.7071067811865475, 0.8944271909999159, 1.0, 1.0, 0.8944271909999159,
         0.7071067811865475, 0.3713906763541037, 0.0, nan]),
    "acosh": (
        [nan, nan, nan, nan, nan, nan, nan, 0.0, 1.566799236972411, inf, nan],
        [0.0, 0.4364357804719848, inf, nan, nan, nan, nan, inf, 0.4364357804719848, 0.0, nan]),
    "atanh": (
        [nan, nan, -inf, -0.5493061443340549, -0.0, 0.0, 0.5493061443340549, inf, nan, nan, nan],
        [-0.0, -0.19047619047619047, inf, 1.3333333333333333, 1.0, 1.0, 1.3333333333333333, inf,
         -0.19047619047619047, -0.0, nan]),
    "erf": (
        [-1.0, -0.999593047982555, -0.8427007929497149, -0.5204998778130465, -0.0, 0.0, 0.5204998778130465,
         0.8427007929497149, 0.999593047982555, 1.0, nan],
        [0.0, 0.00217828423035271, 0.4151074974205947, 0.8787825789354448, 1.1283791670955126,
         1.1283791670955126, 0.8787825789354448, 0.4151074974205947, 0.00217828423035271, 0.0, nan]),
    "erfc": (
        [2.0, 1.999593047982555, 1.8427007929497148, 1.5204998778130465, 1.0, 1.0, 0.4795001221869535,
         0.15729920705028513, 0.0004069520174449589, 0.0, nan],
        [-0.0, -0.00217828423035271, -0.4151074974205947, -0.8787825789354448, -1.1283791670955126,
         -1.1283791670955126, -0.8787825789354448, -0.4151074974205947, -0.00217828423035271, -0.0, nan]),
    "floor": (
        [-inf, -3.0, -1.0, -1.0, -0.0, 0.0, 0.0, 1.0, 2.0, inf, nan],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "ceil": (
        [-inf, -2.0, -1.0, -0.0, -0.0, 0.0, 1.0, 1.0, 3.0, inf, nan],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "round": (
        [-inf, -2.0, -1.0, -0.0, -0.0, 0.0, 0.0, 1.0, 2.0, inf, nan],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "trunc": (
        [-inf, -2.0, -1.0, -0.0, -0.0, 0.0, 0.0, 1.0, 2.0, inf, nan],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "frac": (
        [nan, -0.5, 0.0, -0.5, 0.0, 0.0, 0.5, 0.0, 0.5, nan, nan],
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    "relu": (
        [0.0, 0.0, 0.0, 0.0, -0.0, 0.0, 0.5, 1.0, 2.5, inf, nan],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    "sigmoid": (
        [0.0, 0.07585818002124355, 0.2689414213699951, 0.3775406687981454, 0.5, 0.5, 0.6224593312018546,
         0.7310585786300049, 0.9241418199787566, 1.0, nan],
        [0.0, 0.07010371654510815, 0.19661193324148185, 0.2350037122015945, 0.25, 0.25, 0.2350037122015945,
         0.19661193324148185, 0.07010371654510807, 0.0, nan]),
    "tanh": (
        [-1.0, -0.9866142981514303, -0.7615941559557649, -0.46211715726000974, -0.0, 0.0, 0.46211715726000974,
         0.7615941559557649, 0.9866142981514303, 1.0, nan],
        [0.0, 0.02659222668316057, 0.41997434161402614, 0.7864477329659274, 1.0, 1.0, 0.7864477329659274,
         0.41997434161402614, 0.02659222668316057, 0.0, nan]),
}

EDGE_ACT = [-inf, -1000.0, -10.0, -3.0, -1.0, -0.0, 0.0, 1.0, 3.0, 6.0, 20.0, 1000.0, inf]
TORCH_ACT = {
    "leaky_relu": (
        [-inf, -10.0, -0.1, -0.03, -0.01, -0.0, 0.0, 1.0, 3.0, 6.0, 20.0, 1000.0, inf],
        [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    "elu": (
        [-1.0, -1.0, -0.9999546000702375, -0.950212931632136, -0.6321205588285577, -0.0, 0.0, 1.0, 3.0, 6.0,
         20.0, 1000.0, inf],
        [0.0, 0.0, 4.5399929762484854e-05, 0.049787068367863944, 0.36787944117144233, 1.0, 1.0, 1.0, 1.0, 1.0,
         1.0, 1.0, 1.0]),
    "selu": (
        [-1.7580993408473766, -1.7580993408473766, -1.7580195232607867, -1.6705687287671118, -1.1113307378125625,
         -0.0, 0.0, 1.0507009873554805, 3.1521029620664414, 6.304205924132883, 21.014019747109607,
         1050.7009873554805, inf],
        [0.0, 0.0, 7.981758658994182e-05, 0.08753061208026487, 0.646768603034814, 1.7580993408473766,
         1.7580993408473766, 1.0507009873554805, 1.0507009873554805, 1.0507009873554805, 1.0507009873554805,
         1.0507009873554805, 1.0507009873554805]),
    "gelu": (
        [nan, -0.0, -0.0, -0.00404969409489031, -0.15865525393145702, -0.0, 0.0, 0.841344746068543,
         2.99595030590511, 5.999999994080474, 20.0, 1000.0, inf],
        [nan, 0.0, -7.694598626706419e-22, -0.01194564720418392, -0.08331547058768635, 0.5, 0.5,
         1.0833154705876864, 1.011945647204184, 1.0000000354687093, 1.0, 1.0, nan]),
    "gelu-tanh": (
        [nan, -0.0, -0.0, -0.0036373920817729943, -0.1588080093917233, -0.0, 0.0, 0.8411919906082768,
         2.996362607918227, 5.9999999999156035, 20.0, 1000.0, inf],
        [nan, 0.0, 0.0, -0.011584166630969648, -0.08296408384578258, 0.5, 0.5, 1.0829640838457826,
         1.0115841666309695, 1.0000000007709977, 1.0, 1.0, nan]),
    "silu": (
        [nan, -0.0, -0.0004539786870243439, -0.14227761953270035, -0.2689414213699951, -0.0, 0.0,
         0.7310585786300049, 2.8577223804672998, 5.985164261060192, 19.999999958776925, 1000.0, inf],
        [nan, -0.0, -0.00040856020865708237, -0.08810410601516962, 0.07232948812851325, 0.5, 0.5,
         0.9276705118714869, 1.0881041060151693, 1.0123264325915249, 1.0000000391619202, 1.0, nan]),
    "mish": (
        [nan, -0.0, -0.0004539889918567469, -0.1456474612756246, -0.30340146137410895, -0.0, 0.0,
         0.8650983882673103, 2.9865350049679575, 5.999926634065252, 20.0, 1000.0, inf],
        [nan, 0.0, -0.0004085797869029919, -0.09339311453232084, 0.059216755877395014, 0.6, 0.6,
         1.0490362200997922, 1.0211069109294435, 1.00013414050621, 1.0, 1.0, nan]),
    "softplus": (
        [0.0, 0.0, 4.539889921686465e-05, 0.04858735157374206, 0.31326168751822286, 0.6931471805599453,
         0.6931471805599453, 1.3132616875182228, 3.048587351573742, 6.00247568513773, 20.000000002061153, 1000.0,
         inf],
        [0.0, 0.0, 4.5397868702434395e-05, 0.04742587317756679, 0.2689414213699951, 0.5, 0.5, 0.7310585786300049,
         0.9525741268224333, 0.9975273768433652, 0.9999999979388464, 1.0, 1.0]),
    "logsigmoid": (
        [-inf, -1000.0, -10.000045398899218, -3.048587351573742, -1.3132616875182228, -0.6931471805599453,
         -0.6931471805599453, -0.31326168751822286, -0.04858735157374206, -0.0024756851377304495,
         -2.061153620314381e-09, 0.0, 0.0],
        [1.0, 1.0, 0.9999546021312976, 0.9525741268224333, 0.7310585786300049, 0.5, 0.5, 0.2689414213699951,
         0.04742587317756679, 0.0024726231566347748, 2.0611536181902033e-09, 0.0, 0.0]),
    "hardtanh": (
        [-1.0, -1.0, -1.0, -1.0, -1.0, -0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    "relu6": (
        [0.0, 0.0, 0.0, 0.0, 0.0, -0.0, 0.0, 1.0, 3.0, 6.0, 6.0, 6.0, 6.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
    "hardsigmoid": (
        [0.0, 0.0, 0.0, 0.0, 0.3333333333333333, 0.5, 0.5, 0.6666666666666666, 1.0, 1.0, 1.0, 1.0, 1.0],
        [0.0, 0.0, 0.0, 0.0, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.0,
         0.0, 0.0, 0.0, 0.0]),
    "hardswish": (
        [nan, -0.0, -0.0, -0.0, -0.3333333333333333, -0.0, 0.0, 0.6666666666666666, 3.0, 6.0, 20.0, 1000.0, inf],
        [0.0, 0.0, 0.0, 0.0, 0.16666666666666669, 0.5, 0.5, 0.8333333333333333, 1.0, 1.0, 1.0, 1.0, 1.0]),
    "softsign": (
        [nan, -0.999000999000999, -0.9090909090909091, -0.75, -0.5, -0.0, 0.0, 0.5, 0.75, 0.8571428571428571,
         0.9523809523809523, 0.999000999000999, nan],
        [nan, 9.98002996005021e-07, 0.008264462809917356, 0.0625, 0.25, 1.0, 1.0, 0.25, 0.0625,
         0.020408163265306117, 0.0022675736961451226, 9.98002996005021e-07, nan]),
}
# Where we deliberately differ from PyTorch: {(op, x): (value, gradient)}, exact values from mpmath
# (100 digits) unless said. PyTorch's gelu computes 1 + erf(x / sqrt 2) and 1 + tanh(u), which
# cancel to 0 in the lower tail; its gelu-tanh gradient overflows (x**3) to NaN at +-inf.
BETTER_THAN_TORCH = {
    ("gelu", -10.0): (-7.619853024160526e-23, -7.618400096464814e-22),      # torch: -0.0, -7.6946e-22
    ("gelu", -3.0): (-0.0040496940948902835, -0.011945647204183927),        # torch: 1e-14 off
    ("gelu-tanh", -10.0): (-1.204092348209806e-37, -2.7576380638540315e-36),  # torch: -0.0, 0.0
    ("gelu-tanh", -3.0): (-0.003637392081773019, -0.011584166630969726),    # torch: 1e-14 off
    ("gelu-tanh", -inf): (nan, 0.0),   # torch: nan, nan. The limit of the gradient is 0 ...
    ("gelu-tanh", inf): (inf, 1.0),    # ... and 1 here
    ("hardsigmoid", -1.0): (1 / 3, 1 / 6),  # torch's gradient is 1/6 rounded to float32, in float64 too
    ("hardsigmoid", -0.0): (0.5, 1 / 6),
    ("hardsigmoid", 0.0): (0.5, 1 / 6),
    ("hardsigmoid", 1.0): (2 / 3, 1 / 6),
}


MATH_DEVIATIONS = {
    # acosh's gradient 1/sqrt((x - 1)(x + 1)), exact near x = 1, is -inf at x = -1, where acosh
    # itself is NaN; torch's 1/sqrt(x*x - 1) is +inf there
    ("acosh", -1.0): (nan, -inf),
    # the hot-path ReLU (np.maximum(x, 0)) is left as it is: relu(-0.0) is 0.0, torch's -0.0
    ("relu", -0.0): (0.0, 0.0),
}


def assert_same(got, expected, rtol=2e-15):
    """Equal to a few ulp (ours and torch's libm may differ by that), NaN where NaN, and zeros
    with the same sign."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=0)
    zero = expected == 0
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(expected[zero]))


def values_and_grads(fn, xs, dtype=np.float64):
    x = Tensor(np.array(xs, dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrt(-1), log(0), inf - inf: numpy warns, as for log and exp
        y = fn(x)
        y.backward(np.ones(y.shape, dtype))
    return y.numpy(), x.grad


@pytest.mark.parametrize("name", sorted(TORCH_MATH))
def test_math_edge_values_match_pytorch(name):
    values, grads = values_and_grads(lambda x: getattr(x, name)(), EDGE)
    expected_values, expected_grads = (np.array(v) for v in TORCH_MATH[name])
    for i, x in enumerate(EDGE):
        if (name, x) in MATH_DEVIATIONS:
            expected_values[i], expected_grads[i] = MATH_DEVIATIONS[name, x]
    assert_same(values, expected_values)
    # tanh's gradient 1 - tanh(x)**2 cancels ~1.5 digits near |x| = 2.5, in torch as in ours
    assert_same(grads, expected_grads, rtol=2e-14 if name == "tanh" else 2e-15)


@pytest.mark.parametrize("name", sorted(TORCH_ACT))
def test_activation_edge_values_match_pytorch(name):
    fn = (lambda x: x.gelu(approximate="tanh")) if name == "gelu-tanh" else (lambda x: getattr(x, name)())
    values, grads = values_and_grads(fn, EDGE_ACT)
    expected_values, expected_grads = (np.array(v) for v in TORCH_ACT[name])
    for i, x in enumerate(EDGE_ACT):
        if (name, x) in BETTER_THAN_TORCH:
            expected_values[i], expected_grads[i] = BETTER_THAN_TORCH[name, x]
    # gelu-tanh at -10: exp(-87) amplifies the ~1 ulp rounding of its argument 87 times (3e-15)
    assert_same(values, expected_values, rtol=4e-15 if name == "gelu-tanh" else 2e-15)
    # gradients of 0 at the far ends come as -0.0 or 0.0 depending on the formula: not compared by sign
    np.testing.assert_allclose(grads, expected_grads, rtol=4e-15 if name == "gelu-tanh" else 2e-15, atol=0)


def test_nan_inputs_give_nan_values_and_pytorchs_vectorized_nan_gradients():
    """A NaN in gives NaN out. PyTorch's gradient at NaN differs between its vectorized loop and
    its scalar one (e.g. hardtanh 0 or 1, elu and hardswish NaN or 1, depending on the tensor's
    length); ours is the vectorized one, measured at length 16 and hard-coded here."""
    expected = {"hardtanh": 0.0, "relu6": 0.0, "hardsigmoid": 0.0, "elu": nan, "selu": nan, "leaky_relu": 0.01,
                "relu": 1.0, "softplus": nan, "logsigmoid": nan, "sigmoid": nan, "tanh": nan, "gelu": nan,
                "silu": nan, "mish": nan, "softsign": nan, "hardswish": nan}
    for name, grad in expected.items():
        values, grads = values_and_grads(lambda x: getattr(x, name)(), [nan] * 16)
        assert np.isnan(values).all(), name
        np.testing.assert_array_equal(grads, grad, err_msg=name)


# ---- accuracy at extreme inputs ----------------------------------------------------------------------

def high_precision(fn, xs):
    """fn on Decimals at 60 digits, for each float of xs (converted exactly)."""
    with localcontext() as context:
        context.prec = 60
        return [fn(Decimal(float(x))) for x in xs]


def log1p_hp(e):
    return e - e * e / 2 + e * e * e / 3 if e < Decimal("1e-20") else (1 + e).ln()


def tanh_hp(s):  # s >= 0
    return s - s * s * s / 3 if s < Decimal("1e-20") else (1 - (-2 * s).exp()) / (1 + (-2 * s).exp())


def relative_error_in_eps(got, reference):
    """|got - reference| / |reference|, in units of got's machine epsilon."""
    eps = Decimal(float(np.finfo(got.dtype).eps))
    return np.array([float(abs(Decimal(float(g)) - r) / abs(r) / eps) for g, r in zip(got, reference)])


REFERENCES = {  # name -> (high-precision formula, float64 range, float32 range): results stay normal floats
    "sigmoid": (lambda x: 1 / (1 + (-x).exp()), (-708, 40), (-87, 17)),
    "softplus": (lambda x: log1p_hp(x.exp()), (-708, 19), (-87, 19)),
    "logsigmoid": (lambda x: -log1p_hp((-x).exp()), (-1000, 708), (-1000, 87)),
    "silu": (lambda x: x / (1 + (-x).exp()), (-700, 40), (-80, 17)),
    "mish": (lambda x: x * tanh_hp(log1p_hp(x.exp())), (-700, 40), (-80, 17)),
    "elu": (lambda x: x.exp() - 1, (-40, -0.001), (-17, -0.001)),
}
# relative error bounds in eps: about half an eps per rounding of each formula (sigmoid: exp, 1 + e,
# the division; silu and mish one more product)
MAX_EPS = {"sigmoid": 2, "softplus": 2, "logsigmoid": 2, "elu": 1, "silu": 2.5, "mish": 2.5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activations_are_accurate_across_the_float_range(name, dtype):
    formula, range64, range32 = REFERENCES[name]
    low, high = range64 if dtype == np.float64 else range32
    x = np.concatenate([np.linspace(low, high, 300), rng.uniform(-5, 5, 200).clip(low, high)]).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = getattr(Tensor(x), name)().numpy()
    assert got.dtype == dtype
    errors = relative_error_in_eps(got, high_precision(formula, x))
    assert errors.max() <= MAX_EPS[name], f"{name}: {errors.max()} eps at x = {x[errors.argmax()]}"


def test_sigmoid_tails_and_its_log():
    np.testing.assert_allclose(Tensor(np.float32(-20)).sigmoid().numpy(), 2.0611537e-09, rtol=1e-7)  # torch's
    for dtype, low in [(np.float64, -708.0), (np.float32, -87.0)]:
        x = np.linspace(low, 40, 1000).astype(dtype)
        logs = Tensor(x).sigmoid().log().numpy()
        assert np.isfinite(logs).all() and logs.dtype == dtype
        negative = x < 0  # there sigmoid is small, and exact: so is its log (above 0, log(1 - tiny) is 0 or -ulp)
        exact = -np.log1p(np.exp(-x[negative].astype(np.float64)))
        np.testing.assert_allclose(logs[negative], exact, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softplus_and_logsigmoid_are_exact_at_plus_minus_1000(dtype):
    x = Tensor(np.array([-1000.0, 1000.0], dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(x.softplus().numpy(), [0.0, 1000.0])  # exp(-1000) underflows even in float64
        np.testing.assert_array_equal(x.logsigmoid().numpy(), [-1000.0, 0.0])
        x.softplus().sum().backward()
        np.testing.assert_array_equal(x.grad, [0.0, 1.0])
        assert x.softplus().dtype == x.logsigmoid().dtype == dtype


def test_elu_and_expm1_gradients_are_exact_far_below_zero():
    """exp(x), not out + 1 (which PyTorch uses for expm1: 9.35918e-14 at -30, 2e-4 off)."""
    x = Tensor(np.array([-30.0, -100.0, -700.0]), requires_grad=True)
    x.expm1().sum().backward()
    np.testing.assert_allclose(x.grad, np.exp(x.numpy()), rtol=1e-15)
    x.grad = None
    x.elu(alpha=2.0).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(x.numpy()), rtol=1e-15)


def test_gelu_lower_tail_matches_mpmath():
    """Phi(x) from erfc, computed from x itself: exact far below zero, where PyTorch's 1 + erf(x/sqrt2)
    is 0. Reference values: mpmath at 100 digits."""
    x = Tensor(np.array([-5.0, -10.0, -30.0]), requires_grad=True)
    y = x.gelu()
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [-1.4332578593959695e-06, -7.619853024160526e-23, -1.472014178144456e-196],
                               rtol=2e-15)
    np.testing.assert_allclose(x.grad, [-7.146946001792295e-06, -7.618400096464814e-22, -4.416031690708495e-195],
                               rtol=2e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_overflow_warnings_and_finite_results_at_the_ends_of_the_float_range(dtype):
    big = np.finfo(dtype).max / 2  # selu(max) itself would overflow
    x = Tensor(np.array([-big, -1e30, -1000.0, -100.0, 100.0, 1000.0, 1e30, big], dtype), requires_grad=True)
    calls = {name: (lambda name: lambda x: getattr(x, name)())(name) for name in TORCH_ACT if name != "gelu-tanh"}
    calls.update({"gelu-tanh": lambda x: x.gelu(approximate="tanh"), "sigmoid": lambda x: x.sigmoid(),
                  "tanh": lambda x: x.tanh(), "erf": lambda x: x.erf(), "erfc": lambda x: x.erfc(),
                  "asinh": lambda x: x.asinh(), "atan": lambda x: x.atan()})
    for name, fn in calls.items():
        x.grad = None
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = fn(x)
            y.backward(np.ones(y.shape, dtype))
        assert y.dtype == x.grad.dtype == dtype, name
        assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad).all(), name


def test_erf_and_erfc_against_the_math_module():
    """Many points, both tails: within 1e-15 (erf) and 1.5e-15 (erfc) relative of math.erf/erfc,
    which are themselves within about 1 ulp. (Against 40-digit values ours are within 4.5e-16 and
    7.2e-16.) Where erfc is subnormal only an absolute error of a few subnormal units is possible."""
    g = np.random.default_rng(3)
    x = np.concatenate([g.uniform(-6, 6, 20000), g.uniform(-27.5, 27.5, 5000), [0.5, -0.5, 4.0, -4.0],
                        g.choice([-1, 1], 3000) * 10.0 ** g.uniform(-300, 0, 3000)])
    erf, erfc = Tensor(x).erf().numpy(), Tensor(x).erfc().numpy()
    np.testing.assert_allclose(erf, erf_ref(x), rtol=1e-15, atol=0)
    normal = np.abs(erfc_ref(x)) >= np.finfo(np.float64).tiny
    np.testing.assert_allclose(erfc[normal], erfc_ref(x[normal]), rtol=1.5e-15, atol=0)
    np.testing.assert_allclose(erfc[~normal], erfc_ref(x[~normal]), rtol=0, atol=1e-320)
    # deep tail, values from mpmath
    np.testing.assert_allclose(Tensor(np.array([10.0, 20.0, 26.0])).erfc().numpy(),
                               [2.088487583762545e-45, 5.395865611607901e-176, 5.663192408856143e-296], rtol=2e-15)


def test_erf_edges_and_float32():
    x = Tensor(np.array([0.0, -0.0, inf, -inf, nan, 1e-300, -1e-300]))
    assert_same(x.erf().numpy(), [0.0, -0.0, 1.0, -1.0, nan, 1.1283791670955126e-300, -1.1283791670955126e-300])
    assert_same(x.erfc().numpy(), [1.0, 1.0, 0.0, 2.0, nan, 1.0, 1.0])
    x32 = np.random.default_rng(4).uniform(-5, 5, 5000).astype(np.float32)
    for name, ref in [("erf", erf_ref), ("erfc", erfc_ref)]:
        got = getattr(Tensor(x32), name)().numpy()
        assert got.dtype == np.float32
        # correctly rounded from float64, where float32's gap is larger than both errors
        np.testing.assert_array_equal(got, ref(x32.astype(np.float64)).astype(np.float32))


# ---- clamp, maximum/minimum: PyTorch's gradient rules (numbers measured with torch 2.13) -----------

def clamp_grads(x, low, high):
    tensors = [None if v is None else Tensor(np.array(v, np.float64), requires_grad=True) for v in (x, low, high)]
    out = tensors[0].clamp(tensors[1], tensors[2])
    out.backward(np.ones(out.shape))
    return [out.numpy()] + [None if t is None else t.grad for t in tensors]


def test_clamp_gradient_rules():
    # bounds are inclusive for x; NaN in x gives NaN and no gradient
    x = Tensor(np.array([-2.0, -1, 0, 1, 2, nan]), requires_grad=True)
    y = x.clamp(-1, 1)
    y.backward(np.ones(6))
    assert_same(y.numpy(), [-1.0, -1.0, 0.0, 1.0, 1.0, nan])
    assert_same(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    # min > max: the result is max everywhere, and x gets no gradient
    x = Tensor(np.array([-2.0, -1, 0, 1, 2]), requires_grad=True)
    y = x.clamp(1, -1)
    y.backward(np.ones(5))
    assert_same(y.numpy(), [-1.0] * 5)
    assert_same(x.grad, [0.0] * 5)
    # tensor bounds: the gradient goes to what was chosen; max wins when min > max
    out, dx, dlow, dhigh = clamp_grads([0.0, 1.0, 2.0, 3.0, 1.0, 5.0, 0.0, 2.0], [1.0, 1, 1, 1, 2, 2, 2, 1],
                                       [2.0, 2, 2, 2, 1, 1, 1, 1])
    assert_same(out, [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    assert_same(dx, [0.0, 1, 1, 0, 0, 0, 0, 0])
    assert_same(dlow, [1.0, 0, 0, 0, 0, 0, 0, 0])
    assert_same(dhigh, [0.0, 0, 0, 1, 1, 1, 1, 1])
    # ties with a single tensor bound go to x; NaN in x or in the bound: NaN, no gradient anywhere
    out, dx, dlow, _ = clamp_grads([0.0, 1.0, 2.0, nan, 1.0], [1.0, 1, 1, 1, nan], None)
    assert_same(out, [1.0, 1.0, 2.0, nan, nan])
    assert_same(dx, [0.0, 1, 1, 0, 0])
    assert_same(dlow, [1.0, 0, 0, 0, 0])
    out, dx, _, dhigh = clamp_grads([0.0, 1.0, 2.0, nan], None, [1.0, 1, 1, 1])
    assert_same(dx, [1.0, 1, 0, 0])
    assert_same(dhigh, [0.0, 0, 1, 0])
    # min == max and x below: PyTorch gives the gradient to no one (its min needs min < max);
    # ours goes to min, which is what the output is (deliberate difference)
    out, dx, dlow, dhigh = clamp_grads([0.0, 1.0, 2.0], [1.0, 1, 1], [1.0, 1, 1])
    assert_same(dx, [0.0, 1, 0])
    assert_same(dlow, [1.0, 0, 0])   # torch: [0, 0, 0]
    assert_same(dhigh, [0.0, 0, 1])


def test_clamp_broadcasts_bounds_and_keeps_dtype():
    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    low = Tensor(np.array([1.0, 2.0, 0.0], np.float32), requires_grad=True)
    y = x.clamp(low, 4.0)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), [[1, 2, 2], [3, 4, 4]])
    y.backward(np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(low.grad, [1, 1, 0])  # summed over the broadcast axis
    np.testing.assert_array_equal(x.grad, [[0, 0, 1], [1, 1, 0]])
    assert x.clamp(np.float64(0.5)).dtype == np.float32  # a numpy float64 number does not upcast


def test_hardtanh_family_is_strict_at_the_bounds():
    """hardtanh (and relu6, hardsigmoid) pass no gradient at the bounds, unlike clamp (torch)."""
    x = Tensor(np.array([-1.0, 1.0, 0.0, 6.0]), requires_grad=True)
    x.hardtanh().backward(np.ones(4))
    np.testing.assert_array_equal(x.grad, [0, 0, 1, 0])
    x.grad = None
    x.relu6().backward(np.ones(4))
    np.testing.assert_array_equal(x.grad, [0, 1, 0, 0])
    x.grad = None
    x.clamp(-1, 1).backward(np.ones(4))
    np.testing.assert_array_equal(x.grad, [1, 1, 1, 0])


def test_maximum_minimum_ties_and_nan_gradients():
    """Ties share the gradient; a NaN on either side gives it to both (PyTorch)."""
    for name, values in [("maximum", [1.0, 2.0, nan, nan]), ("minimum", [1.0, 1.0, nan, nan])]:
        x = Tensor(np.array([1.0, 2.0, nan, nan]), requires_grad=True)
        y = Tensor(np.array([1.0, 1.0, 1.0, nan]), requires_grad=True)
        out = getattr(x, name)(y)
        out.backward(np.ones(4))
        assert_same(out.numpy(), values)
        assert_same(x.grad, [0.5, 1.0 if name == "maximum" else 0.0, 1.0, 1.0])
        assert_same(y.grad, [0.5, 0.0 if name == "maximum" else 1.0, 1.0, 1.0])


def test_atan2_and_hypot_at_the_origin_and_far_out():
    y = Tensor(np.array([0.0, 1e300, 1e-300, 3.0]), requires_grad=True)
    x = Tensor(np.array([0.0, 1e300, 1e-300, 4.0]), requires_grad=True)
    y.atan2(x).backward(np.ones(4))
    # at the origin 0, as PyTorch; far out the exact values, where torch's 1/(x*x + y*y) gives 0
    assert_same(y.grad, [0.0, 5e-301, 5e299, 0.16])
    assert_same(x.grad, [-0.0, -5e-301, -5e299, -0.12])
    y.grad = x.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0/0
        y.hypot(x).backward(np.ones(4))
    assert_same(y.grad, [nan, 2 ** -0.5, 2 ** -0.5, 0.6])  # NaN at the origin, as PyTorch
    assert_same(x.grad, [nan, 2 ** -0.5, 2 ** -0.5, 0.8])


def test_remainder_and_fmod_signs():
    x, y = np.array([5.5, -5.5, 5.5, -5.5, 3.0, -3.0]), np.array([2.0, 2.0, -2.0, -2.0, 1.5, 1.5])
    assert_same((Tensor(x) % Tensor(y)).numpy(), [1.5, 0.5, -0.5, -1.5, 0.0, 0.0])  # torch: sign of y
    assert_same(Tensor(x).fmod(Tensor(y)).numpy(), [1.5, -1.5, 1.5, -1.5, 0.0, -0.0])  # sign of x
    assert_same((-5.5 % Tensor(np.array([2.0]))).numpy(), [0.5])
    a = Tensor(x, requires_grad=True)
    b = Tensor(y, requires_grad=True)
    (a % b).backward(np.ones(6))
    assert_same(a.grad, [1.0] * 6)
    assert_same(b.grad, [-2.0, 3.0, 3.0, -2.0, -2.0, 2.0])  # -floor(x / y), torch's numbers


def test_round_halves_to_even_and_decimals():
    x = Tensor(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 1.2345, 0.125]))
    np.testing.assert_array_equal(x.round().numpy(), [0.0, 2.0, 2.0, -0.0, -2.0, 1.0, 0.0])
    np.testing.assert_array_equal(x.round(decimals=2).numpy(), [0.5, 1.5, 2.5, -0.5, -2.5, 1.23, 0.12])  # torch's
    np.testing.assert_array_equal(Tensor(np.array([15.0, 1.5])).round(decimals=-1).numpy(), [20.0, 0.0])


def test_zero_gradient_ops_give_exact_zeros_even_for_inf_upstream():
    x = Tensor(np.array([0.3, -1.7, 2.5]), requires_grad=True)
    for name in ["floor", "ceil", "round", "trunc", "sign"]:
        x.grad = None
        getattr(x, name)().backward(np.array([inf, nan, 1.0]))
        np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0], err_msg=name)


def test_integer_tensors():
    i = Tensor(np.array([-3, 0, 4]), dtype=np.int64)
    assert i.abs().dtype == i.square().dtype == i.sign().dtype == i.floor().dtype == np.int64
    np.testing.assert_array_equal(i.abs().numpy(), [3, 0, 4])
    np.testing.assert_array_equal(i.sign().numpy(), [-1, 0, 1])
    np.testing.assert_array_equal(i.floor().numpy(), [-3, 0, 4])
    assert i.abs().sqrt().dtype == i.sin().dtype == i.erf().dtype == np.float32  # as PyTorch: default float dtype
    np.testing.assert_array_equal((i % 3).numpy(), [0, 0, 1])
    np.testing.assert_array_equal(i.fmod(3).numpy(), [0, 0, 1])
    np.testing.assert_array_equal(i.clamp(-1, 2).numpy(), [-1, 0, 2])
    assert (i % 3).dtype == i.clamp(-1, 2).dtype == np.int64
    with pytest.raises(ZeroDivisionError, match="remainder: integer division by zero"):
        i % 0
    with pytest.raises(ZeroDivisionError, match="fmod: integer division by zero"):
        i.fmod(Tensor(np.array([1, 0, 1]), dtype=np.int64))


# ---- comparisons and boolean logic -------------------------------------------------------------------

def test_comparisons_with_every_kind_of_operand_on_either_side():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    for other in [Tensor(np.array([3.0, 2.0, 1.0])), np.array([3.0, 2.0, 1.0]), [3.0, 2.0, 1.0]]:
        for op, expected in [("__eq__", [0, 1, 0]), ("__ne__", [1, 0, 1]), ("__lt__", [1, 0, 0]),
                             ("__le__", [1, 1, 0]), ("__gt__", [0, 0, 1]), ("__ge__", [0, 1, 1])]:
            out = getattr(x, op)(other)
            assert isinstance(out, Tensor) and out.dtype == bool and not out.requires_grad
            np.testing.assert_array_equal(out.numpy(), np.array(expected, bool))
    arr = np.array([3.0, 2.0, 1.0])
    for out, expected in [(arr == x, [0, 1, 0]), (arr < x, [0, 0, 1]), (arr >= x, [1, 1, 0]),
                          (2 < x, [0, 0, 1]), (2 == x, [0, 1, 0]), (2.5 >= x, [1, 1, 0]), (x != 2, [1, 0, 1]),
                          (np.float64(2.0) == x, [0, 1, 0]), (x > np.float32(1.5), [0, 1, 1])]:
        assert isinstance(out, Tensor) and out.dtype == bool, type(out)
        np.testing.assert_array_equal(out.numpy(), np.array(expected, bool))
    # a Python number is compared in the tensor's dtype, as in PyTorch: float32(0.1) == 0.1
    assert (Tensor(np.array([0.1], np.float32)) == 0.1).numpy().all()


def test_comparison_with_none_or_a_string_and_broadcast_errors():
    x = Tensor(np.array([1.0, 2.0]))
    assert (x == None) is False and (x != None) is True  # noqa: E711 (PyTorch's behaviour is the point)
    assert (None == x) is False  # noqa: E711
    assert (x == "a") is False and (x != "a") is True
    with pytest.raises(TypeError):
        x < "a"
    with pytest.raises(TypeError):
        x < None
    with pytest.raises(TypeError, match="eq: cannot compare a tensor with str 'a'"):
        x.eq("a")
    with pytest.raises(ValueError, match=r"lt: shapes \(2,\) and \(3,\) cannot be broadcast together"):
        x < Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"eq: shapes \(2,\) and \(3,\) cannot be broadcast together"):
        x == np.ones(3)


def test_comparison_methods_and_aliases():
    x, y = Tensor(np.array([1.0, 2.0, 3.0])), Tensor(np.array([2.0, 2.0, 2.0]))
    for names, expected in [(["eq"], [0, 1, 0]), (["ne", "not_equal"], [1, 0, 1]), (["lt", "less"], [1, 0, 0]),
                            (["le", "less_equal"], [1, 1, 0]), (["gt", "greater"], [0, 0, 1]),
                            (["ge", "greater_equal"], [0, 1, 1])]:
        for name in names:
            np.testing.assert_array_equal(getattr(x, name)(y).numpy(), np.array(expected, bool))
            np.testing.assert_array_equal(getattr(F, name)(x, 2.0).numpy(), np.array(expected, bool))
    assert x.equal(Tensor(np.array([1.0, 2.0, 3.0]))) is True
    assert x.equal(y) is False and x.equal(Tensor(np.ones(2))) is False
    np.testing.assert_array_equal(x.isclose(x + 1e-9).numpy(), [True] * 3)
    np.testing.assert_array_equal(Tensor(np.array([nan])).isclose(nan, equal_nan=True).numpy(), [True])
    assert x.allclose(x + 1e-9) is True and x.allclose(y) is False


def test_bitwise_and_logical_operators():
    b, c = Tensor(np.array([True, True, False, False])), Tensor(np.array([True, False, True, False]))
    b, c = b.bool(), c.bool()
    for out, expected in [(b & c, [1, 0, 0, 0]), (b | c, [1, 1, 1, 0]), (b ^ c, [0, 1, 1, 0]), (~b, [0, 0, 1, 1]),
                          (True & b, [1, 1, 0, 0]), (b | False, [1, 1, 0, 0]), (np.array(True) ^ b, [0, 0, 1, 1])]:
        assert out.dtype == bool
        np.testing.assert_array_equal(out.numpy(), np.array(expected, bool))
    assert (b & 1).dtype == np.int64  # a bool tensor with an int: integers, as PyTorch
    i = Tensor(np.array([1, 2, 3]), dtype=np.int64)
    np.testing.assert_array_equal((i & 1).numpy(), [1, 0, 1])
    np.testing.assert_array_equal((i | 4).numpy(), [5, 6, 7])
    np.testing.assert_array_equal((2 ^ i).numpy(), [3, 0, 1])
    np.testing.assert_array_equal((~i).numpy(), [-2, -3, -4])
    assert (Tensor(np.array([1, 2]), dtype=np.int32) & 1).dtype == np.int32
    np.testing.assert_array_equal((~Tensor(np.array([1], np.uint8), dtype=np.uint8)).numpy(), [254])
    f = Tensor(np.array([0.0, 1.5, nan]))
    for out, expected in [(f.logical_not(), [1, 0, 0]), (f.logical_and(b[:3]), [0, 1, 0]),
                          (f.logical_or(0), [0, 1, 1]), (f.logical_xor(c[:3]), [1, 1, 0]),
                          (F.logical_and(f, f), [0, 1, 1])]:
        assert out.dtype == bool
        np.testing.assert_array_equal(out.numpy(), np.array(expected, bool))


def test_isnan_isinf_isfinite():
    x = Tensor(np.array([1.0, inf, -inf, nan, 0.0]))
    np.testing.assert_array_equal(x.isnan().numpy(), [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(x.isinf().numpy(), [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(x.isfinite().numpy(), [1, 0, 0, 0, 1])
    i = Tensor(np.array([1, 2]), dtype=np.int64)
    assert not i.isnan().numpy().any() and not i.isinf().numpy().any() and i.isfinite().numpy().all()
    assert x.isnan().dtype == bool


def test_a_bool_tensor_is_a_mask_for_indexing_and_where():
    x = Tensor(np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]), requires_grad=True)
    mask = x > 0
    picked = x[mask]
    np.testing.assert_array_equal(picked.numpy(), [1.0, 3.0, 5.0])
    (picked * Tensor(np.array([1.0, 2.0, 3.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 0, 2], [0, 3, 0]])
    x.grad = None
    y = F.where(mask, x, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), [[1, 0, 3], [0, 5, 0]])
    np.testing.assert_array_equal(x.grad, mask.numpy())
    np.testing.assert_array_equal(x[~mask].numpy(), [-2.0, -4.0, -6.0])
    np.testing.assert_array_equal(x[(x > 0) & (x < 4)].numpy(), [1.0, 3.0])


def test_where_with_numbers_uses_the_default_dtype():
    assert F.where(np.array([True, False]), 1.0, 0.0).dtype == np.float32  # as PyTorch
    x = Tensor(np.array([1.0, 2.0], np.float32))
    assert F.where(np.array([True, False]), x, 0.5).dtype == np.float32
    assert F.where(np.array([True, False]), 0.5, x).dtype == np.float32


# ---- errors --------------------------------------------------------------------------------------------

X = Tensor(np.array([1.0, 2.0, 3.0]))
ERRORS = [
    (lambda: X.gelu(approximate="bad"), ValueError, "gelu: approximate must be 'none' or 'tanh', got 'bad'"),
    (lambda: F.leaky_relu(X, "x"), TypeError, "leaky_relu: negative_slope must be a number, got str 'x'"),
    (lambda: F.elu(X, alpha="a"), TypeError, "elu: alpha must be a number, got str 'a'"),
    (lambda: X.softplus(beta=None), TypeError, "softplus: beta must be a number, got NoneType None"),
    (lambda: X.clamp(), ValueError, "clamp: at least one of min and max must be given"),
    (lambda: X.clip(None, None), ValueError, "clamp: at least one of min and max must be given"),
    (lambda: X.clamp(Tensor(np.ones(2))), ValueError, r"clamp: shapes \(3,\), \(2,\) cannot be broadcast together"),
    (lambda: X.clamp(0, Tensor(np.ones((2, 2)))), ValueError, r"clamp: shapes \(3,\), \(\), \(2, 2\) cannot be"),
    (lambda: X.hardtanh(1.0, -1.0), ValueError, r"hardtanh: min_val \(1.0\) cannot be greater than max_val \(-1.0\)"),
    (lambda: X.round(decimals=1.5), TypeError, "round: decimals must be an int, got 1.5"),
    (lambda: X.atan2(Tensor(np.ones(2))), ValueError, r"atan2: shapes \(3,\) and \(2,\) cannot be broadcast together"),
    (lambda: X.hypot(np.ones((2, 2))), ValueError, r"hypot: shapes \(3,\) and \(2, 2\) cannot be broadcast together"),
    (lambda: X % Tensor(np.ones(2)), ValueError, r"remainder: shapes \(3,\) and \(2,\) cannot be broadcast together"),
    (lambda: X.fmod(Tensor(np.ones(2))), ValueError, r"fmod: shapes \(3,\) and \(2,\) cannot be broadcast together"),
    (lambda: X.minimum(Tensor(np.ones(2))), ValueError, r"minimum: shapes \(3,\) and \(2,\) cannot be broadcast"),
    (lambda: ~X, TypeError, r"~ \(bitwise_not\): needs a bool or integer tensor, got float64; for a float tensor "
                            r"use logical_not\(\)"),
    (lambda: X & X, TypeError, "bitwise_and: needs bool tensors .* got a tensor of dtype float64 and a tensor"),
    (lambda: (X > 1) | 1.5, TypeError, "bitwise_or: needs bool tensors .* dtype bool and float 1.5"),
    (lambda: (X > 1) ^ (X > Tensor(np.ones(2))), ValueError, r"gt: shapes \(3,\) and \(2,\) cannot be broadcast"),
    (lambda: (X > 1) & Tensor(np.ones(2)).bool(), ValueError, r"bitwise_and: shapes \(3,\) and \(2,\) cannot be"),
    (lambda: X.logical_and("a"), TypeError, "logical_and: cannot combine a tensor with str 'a'"),
    (lambda: X.logical_or(np.ones(2)), ValueError, r"logical_or: shapes \(3,\) and \(2,\) cannot be broadcast"),
    (lambda: F.where(X, X, X), TypeError, "where: the condition must be a bool tensor or array, got float64"),
    (lambda: X.isclose("a"), TypeError, "isclose: cannot compare a tensor with str 'a'"),
]


@pytest.mark.parametrize("fn, exception, message", ERRORS)
def test_error_messages(fn, exception, message):
    with pytest.raises(exception, match=message):
        fn()
