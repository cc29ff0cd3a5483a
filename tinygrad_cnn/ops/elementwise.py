"""Elementwise ops with numpy broadcasting: arithmetic, math functions (sqrt, sin, erf, ...),
clamp, maximum/minimum, where, comparisons and boolean logic.

Each backward is written with operators and `Op.apply`, so it runs on numpy arrays (the
first-order walk) and on Tensors (create_graph) alike.
"""
import math

import numpy as np

from ..tensor import Function, Tensor, _apply, _constant, _lift, register
from .common import unbroadcast, value


def _binary(op, name, x, y, reverse=False):
    if type(y) is not Tensor:
        y = _lift(y, x)
        if y._data.dtype is not x._data.dtype and x._data.dtype.kind != "f":  # int + 2.5: float32, as PyTorch
            x = _constant(x._data.astype(y._data.dtype))
    if reverse:
        x, y = y, x
    try:
        return _apply(op, x, y)
    except ValueError as e:  # numpy's broadcast failure; other checks name the op themselves
        if "broadcast" not in str(e) or str(e).startswith(f"{name}:"):
            raise
        raise ValueError(f"{name}: shapes {x.shape} and {y.shape} cannot be broadcast together") from None


class Add(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = x.shape, y.shape
        return x + y

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(grad, ctx.shapes[1])


class Sub(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = x.shape, y.shape
        return x - y

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shapes[0]), unbroadcast(-grad, ctx.shapes[1])


class Mul(Function):
    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        dx = unbroadcast(grad * y, x.shape) if ctx.needs_input_grad[0] else None
        dy = unbroadcast(grad * x, y.shape) if ctx.needs_input_grad[1] else None
        return dx, dy


class Div(Function):
    @staticmethod
    def forward(ctx, x, y):
        out = x / y
        ctx.save_for_backward(y, out)
        ctx.x_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        y, out = ctx.saved
        dx = unbroadcast(grad / y, ctx.x_shape) if ctx.needs_input_grad[0] else None
        # -grad * x / y**2 written so that y**2 cannot overflow or underflow (as PyTorch does)
        dy = unbroadcast(-grad * (out / y), y.shape) if ctx.needs_input_grad[1] else None
        return dx, dy


class Pow(Function):
    @staticmethod
    def forward(ctx, x, y):
        out = x ** y
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, y, out = ctx.saved
        dx = dy = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:  # d(x**0)/dx is 0, also at x = 0 where x**-1 is inf
                dx = unbroadcast(Where.apply(value(y) == 0, 0, grad * y * x ** (y - 1)), x.shape)
            if ctx.needs_input_grad[1]:  # at x = 0, y >= 0: 0, not 0 * log 0 (PyTorch's convention)
                zero = (value(x) == 0) & (value(y) >= 0)
                dy = unbroadcast(Where.apply(zero, 0, grad * out * Log.apply(x)), y.shape)
        return dx, dy


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.saved[0]


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        return grad / ctx.saved[0]


class Where(Function):
    """cond ? x : y, broadcast. `cond` is a constant (bool array or tensor): no gradient."""

    @staticmethod
    def forward(ctx, cond, x, y):
        cond = np.asarray(cond)
        if cond.dtype != bool:
            raise TypeError(f"where: the condition must be a bool tensor or array, got {cond.dtype}")
        ctx.save_for_backward(cond)
        ctx.shapes = np.shape(x), np.shape(y)
        return np.where(cond, x, y)

    @staticmethod
    def backward(ctx, grad):
        cond, = ctx.saved
        cond = value(cond)
        needs = ctx.needs_input_grad
        dx = unbroadcast(Where.apply(cond, grad, 0), ctx.shapes[0]) if needs[1] else None
        dy = unbroadcast(Where.apply(cond, 0, grad), ctx.shapes[1]) if needs[2] else None
        return None, dx, dy


def where(cond, x, y):
    """x where cond holds, else y (broadcast). Gradients flow to x and y, never to cond."""
    cond = value(cond)
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else None
    if like is None:  # numbers and arrays only: Tensor's dtype rules (a Python float is float32)
        x = like = Tensor(x)
    x, y = _lift(x, like), _lift(y, like)
    try:
        return Where.apply(cond, x, y)
    except ValueError:
        raise ValueError(f"where: shapes {np.shape(cond)}, {x.shape} and {y.shape} cannot be broadcast "
                         f"together") from None


# ---- the Tensor API ------------------------------------------------------------------------------

register("where")(lambda x, condition, other: where(condition, x, other))  # torch.Tensor.where: x if cond else other

register("__add__", "add")(lambda x, y: _binary(Add, "add", x, y))
register("__radd__")(lambda x, y: _binary(Add, "add", x, y, reverse=True))
register("__sub__", "sub")(lambda x, y: _binary(Sub, "sub", x, y))
register("__rsub__")(lambda x, y: _binary(Sub, "sub", x, y, reverse=True))
register("__mul__", "mul")(lambda x, y: _binary(Mul, "mul", x, y))
register("__rmul__")(lambda x, y: _binary(Mul, "mul", x, y, reverse=True))
register("__truediv__", "div")(lambda x, y: _binary(Div, "div", x, y))
register("__rtruediv__")(lambda x, y: _binary(Div, "div", x, y, reverse=True))
register("__pow__", "pow")(lambda x, y: _binary(Pow, "pow", x, y))
register("__rpow__")(lambda x, y: _binary(Pow, "pow", x, y, reverse=True))
register("__neg__", "neg")(lambda x: _apply(Neg, x))
register("exp")(lambda x: _apply(Exp, x))
register("log")(lambda x: _apply(Log, x))


class Maximum(Function):
    """Elementwise max (min with smallest=True), with PyTorch's gradient: where x == y each side
    gets half; otherwise the side that lost gets 0, and where either is NaN both get all of it."""

    @staticmethod
    def forward(ctx, x, y, smallest=False):
        ctx.save_for_backward(x, y)
        ctx.smallest = smallest
        return (np.minimum if smallest else np.maximum)(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = (value(a) for a in ctx.saved)
        x_lost, y_lost = (x > y, x < y) if ctx.smallest else (x < y, x > y)
        shared = Where.apply(x == y, grad * 0.5, grad)
        dx = unbroadcast(Where.apply(x_lost, 0, shared), x.shape) if ctx.needs_input_grad[0] else None
        dy = unbroadcast(Where.apply(y_lost, 0, shared), y.shape) if ctx.needs_input_grad[1] else None
        return dx, dy


@register()
def maximum(x, y):
    return _binary(Maximum, "maximum", x, y)


class Minimum(Maximum):
    @staticmethod
    def forward(ctx, x, y):
        return Maximum.forward(ctx, x, y, smallest=True)


@register()
def minimum(x, y):
    return _binary(Minimum, "minimum", x, y)


# ---- math functions of one tensor ------------------------------------------------------------

def unary_op(name, forward, *, x=None, out=None):
    """A Function for `forward` (on arrays), whose backward is the input gradient given by
    `x=lambda grad, x: ...` (a rule in the input) or `out=lambda grad, out: ...` (in the output);
    only that one is saved. Rules use operators and Op.apply, so they differentiate again."""
    rule, uses_output = (out, True) if out is not None else (x, False)

    def forward_(ctx, a, **options):
        result = forward(a, **options)
        ctx.save_for_backward(result if uses_output else a)
        return result

    def backward(ctx, grad):
        return rule(grad, ctx.saved[0])

    return type(name, (Function,), {"forward": staticmethod(forward_), "backward": staticmethod(backward)})


def stepwise_op(name, forward):
    """A Function for a piecewise constant `forward` (floor, sign, ...). Its gradient is exactly
    zero, as in PyTorch (not grad * 0, which is NaN where grad is inf)."""
    def forward_(ctx, a, **options):
        ctx.__dict__.update(options)  # small metadata: round's decimals
        return forward(a, **options)

    def backward(ctx, grad):
        zeros = np.zeros_like(value(grad))
        return _constant(zeros) if type(grad) is Tensor else zeros

    return type(name, (Function,), {"forward": staticmethod(forward_), "backward": staticmethod(backward)})


def _sign(x):
    """-1, 0 or 1 in x's dtype; 0 for NaN (numpy's sign gives NaN) and 0.0 for -0.0, as PyTorch's."""
    return x.copy() if x.dtype == bool else np.subtract(x > 0, x < 0, dtype=x.dtype)


def _rounding(numpy_fn):
    return lambda x, **options: numpy_fn(x, **options) if x.dtype.kind == "f" else x.copy()  # integers are whole


LN2, LN10 = math.log(2), math.log(10)
TWO_OVER_SQRT_PI, INV_SQRT_2PI, SQRT1_2 = 2 / math.sqrt(math.pi), 1 / math.sqrt(2 * math.pi), math.sqrt(0.5)


def gaussian(x, c=1.0):
    """exp(-c x^2) in Tensor ops, for backward rules. x is clamped to +-40, where it is 0 already
    (for c >= 0.5): x*x would overflow for huge x, with a warning, and NaN in a second derivative."""
    x = Clamp.apply(x, -40.0, 40.0)
    return Exp.apply(x * x * -c)


def _over_one_plus_square(g, x):
    """g / (1 + x*x), as g / r / r with r = hypot(x, 1): no overflow (nor its warning) for huge x."""
    r = Hypot.apply(x, 1)
    return g / r / r


Abs = unary_op("Abs", np.abs, x=lambda g, x: g * _sign(value(x)))
Square = unary_op("Square", np.square, x=lambda g, x: g * (2 * x))
Sqrt = unary_op("Sqrt", np.sqrt, out=lambda g, y: g / (2 * y))
Rsqrt = unary_op("Rsqrt", lambda x: 1 / np.sqrt(x), out=lambda g, y: g * (-0.5 * y * y * y))
Reciprocal = unary_op("Reciprocal", lambda x: 1 / x, out=lambda g, y: -g * (y * y))
Log1p = unary_op("Log1p", np.log1p, x=lambda g, x: g / (1 + x))
Expm1 = unary_op("Expm1", np.expm1, x=lambda g, x: g * Exp.apply(x))  # not out + 1: exact for x << 0
Log2 = unary_op("Log2", np.log2, x=lambda g, x: g / (x * LN2))
Log10 = unary_op("Log10", np.log10, x=lambda g, x: g / (x * LN10))
Exp2 = unary_op("Exp2", np.exp2, out=lambda g, y: g * (y * LN2))
Sin = unary_op("Sin", np.sin, x=lambda g, x: g * Cos.apply(x))
Cos = unary_op("Cos", np.cos, x=lambda g, x: -g * Sin.apply(x))
Tan = unary_op("Tan", np.tan, out=lambda g, y: g * (1 + y * y))
Sinh = unary_op("Sinh", np.sinh, x=lambda g, x: g * Cosh.apply(x))
Cosh = unary_op("Cosh", np.cosh, x=lambda g, x: g * Sinh.apply(x))
# 1 - x*x as (1 - x)(1 + x), x*x - 1 as (x - 1)(x + 1): exact near the domain edges +-1
Asin = unary_op("Asin", np.arcsin, x=lambda g, x: g / Sqrt.apply((1 - x) * (1 + x)))
Acos = unary_op("Acos", np.arccos, x=lambda g, x: -g / Sqrt.apply((1 - x) * (1 + x)))
Atan = unary_op("Atan", np.arctan, x=_over_one_plus_square)
Asinh = unary_op("Asinh", np.arcsinh, x=lambda g, x: g / Hypot.apply(x, 1))  # sqrt(x*x + 1), no overflow
Acosh = unary_op("Acosh", np.arccosh, x=lambda g, x: g / Sqrt.apply((x - 1) * (x + 1)))
Atanh = unary_op("Atanh", np.arctanh, x=lambda g, x: g / ((1 - x) * (1 + x)))
Erf = unary_op("Erf", lambda x: erf_array(x).astype(x.dtype), x=lambda g, x: g * (TWO_OVER_SQRT_PI * gaussian(x)))
Erfc = unary_op("Erfc", lambda x: erfc_array(x).astype(x.dtype),
                x=lambda g, x: g * (-TWO_OVER_SQRT_PI * gaussian(x)))
Frac = unary_op("Frac", lambda x: x - np.trunc(x), out=lambda g, y: g)
Floor = stepwise_op("Floor", _rounding(np.floor))
Ceil = stepwise_op("Ceil", _rounding(np.ceil))
Round = stepwise_op("Round", _rounding(np.round))  # halves to even, as PyTorch; decimals=d rounds x * 10**d
Trunc = stepwise_op("Trunc", _rounding(np.trunc))
Sign = stepwise_op("Sign", _sign)


def _method(op, names, exact=False):
    """Register `op` as Tensor method(s). Integer and bool tensors compute in float32, as in PyTorch,
    unless the op is `exact` (abs, square, sign, rounding keep integers)."""
    def method(x):
        if not exact and x._data.dtype.kind != "f":
            x = _constant(x._data.astype(np.float32))
        return _apply(op, x)
    method.__name__ = names.split()[0]
    method.__doc__ = f"Elementwise {method.__name__} (differentiable: see {op.__name__} in ops/elementwise.py)."
    register(*names.split())(method)


for _op, _names in [(Sqrt, "sqrt"), (Rsqrt, "rsqrt"), (Reciprocal, "reciprocal"), (Log1p, "log1p"),
                    (Expm1, "expm1"), (Log2, "log2"), (Log10, "log10"), (Exp2, "exp2"), (Sin, "sin"),
                    (Cos, "cos"), (Tan, "tan"), (Sinh, "sinh"), (Cosh, "cosh"), (Asin, "asin arcsin"),
                    (Acos, "acos arccos"), (Atan, "atan arctan"), (Asinh, "asinh arcsinh"),
                    (Acosh, "acosh arccosh"), (Atanh, "atanh arctanh"), (Erf, "erf"), (Erfc, "erfc"),
                    (Frac, "frac")]:
    _method(_op, _names)
for _op, _names in [(Abs, "abs absolute __abs__"), (Square, "square"), (Sign, "sign"), (Floor, "floor"),
                    (Ceil, "ceil"), (Trunc, "trunc fix")]:
    _method(_op, _names, exact=True)


@register("round")
def round_(x, decimals=0):
    """Round half to even (as PyTorch and numpy); with decimals=d, to d decimal places."""
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    return _apply(Round, x, decimals=int(decimals))


# ---- erf and erfc --------------------------------------------------------------------------------
# numpy has no erf and scipy is not a dependency. Three rational approximations P/Q give erf and
# erfc in float64 to a relative error below 1e-15 (measured against 40-digit values: at most
# 4.5e-16 for erf, 7.2e-16 for erfc, i.e. 2 and 6 units in the last place):
#   |t| < 0.5       erf(t) = t + t P(t^2) / Q(t^2)
#   0.5 <= t < 4    erfc(t) = exp(-t^2) P(t) / Q(t)
#   t >= 4          erfc(t) = exp(-t^2) / t * P(1/t^2) / Q(1/t^2)
# The coefficients (lowest degree first) were fitted for this file: minimax relative error by
# Lawson-weighted least squares on 400 Chebyshev points in 60-digit arithmetic (mpmath); each fit
# is good to below 1e-17. The last two have only positive coefficients: no cancellation.
_ERF_SMALL = ((0.1283791670955126, -0.3182183180040826, -0.045800785812122075, -0.0071909726788329026,
               -0.0002868407807156696),
              (1.0, 0.45107062413539384, 0.08584619126336594, 0.00830622604898301, 0.0003521395974303407))
_ERFC_MID = ((0.9999999999934104, 1.6708671442511809, 1.3973449827541353, 0.7212887072560824,
              0.24477462442779524, 0.05433225569502034, 0.007321788177270887, 0.0004668315006346137,
              1.6466870167798613e-11),
             (1.0, 2.799246311234943, 3.555956204813312, 2.686762070215909, 1.326245596662331,
              0.44033393350419653, 0.0967157084379542, 0.012977495326370972, 0.0008274387725334609))
_ERFC_LARGE = ((0.5641895835477563, 12.237869889956581, 84.59626208789918, 215.69312992773706,
                172.19820390960217, 19.373723885715172),
               (1.0, 22.191059613334158, 160.28850031661563, 447.68207419013896, 443.883770317707,
                104.96251828732184))


def _rational(coefficients, v):
    """P(v) / Q(v) by Horner's rule; coefficients = (P, Q), lowest degree first, of one length."""
    p, q = coefficients
    num, den = v * p[-1], v * q[-1]
    num += p[-2]
    den += q[-2]
    for a, b in zip(p[-3::-1], q[-3::-1]):  # in place: half the memory traffic
        num *= v
        num += a
        den *= v
        den += b
    num /= den
    return num


def _erf_parts(x, half):
    """For float64 x (flat): t = x (x / sqrt(2) if half), the mask |t| < 0.5, erf(t) there, and
    erfc(|t|) elsewhere."""
    x = np.clip(x, -40.0, 40.0)  # erf is +-1 and erfc 0 or 2 beyond; keeps inf from making NaN
    t = x * SQRT1_2 if half else x
    small = np.abs(t) < 0.5
    ts = t[small]
    erf_small = ts + ts * _rational(_ERF_SMALL, ts * ts)
    a = np.abs(t[~small])
    ratio = np.empty_like(a)
    mid = a < 4
    ratio[mid] = _rational(_ERFC_MID, a[mid])
    large = a[~mid]
    ratio[~mid] = _rational(_ERFC_LARGE, 1 / (large * large)) / large
    # exp(-t^2) loses ~t^2 ulp if t^2 is rounded: split |x| into z, exact to 24 bits (so z*z is
    # exact), and the small rest, as exp(-z^2) * exp((z - x)(z + x)) (with factors 1/2 if half)
    v = np.abs(x[~small])
    z = v.astype(np.float32).astype(np.float64)
    c = 0.5 if half else 1.0
    erfc_big = np.exp(z * z * -c) * np.exp((z - v) * (z + v) * c) * ratio
    return t, small, erf_small, erfc_big


def erf_array(x):
    """erf(x) of a numpy array, in float64."""
    x = np.asarray(x, np.float64)
    t, small, erf_small, erfc_big = _erf_parts(x.reshape(-1), False)
    out = np.empty_like(t)
    out[small] = erf_small
    out[~small] = np.copysign(1 - erfc_big, t[~small])
    return out.reshape(x.shape)


def erfc_array(x, half=False):
    """erfc(x) of a numpy array, in float64; erfc(x / sqrt(2)) if half (the normal cdf is
    0.5 erfc(-x / sqrt(2)): computed from x itself, it stays accurate far in the tail)."""
    x = np.asarray(x, np.float64)
    t, small, erf_small, erfc_big = _erf_parts(x.reshape(-1), half)
    out = np.empty_like(t)
    out[small] = 1 - erf_small
    out[~small] = np.where(t[~small] < 0, 2 - erfc_big, erfc_big)
    return out.reshape(x.shape)


# ---- math functions of two tensors -----------------------------------------------------------

class Atan2(Function):
    """atan2(y, x): the angle of the point (x, y). The tensor the method is called on is y."""

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return np.arctan2(y, x)

    @staticmethod
    def backward(ctx, grad):
        y, x = ctx.saved
        r = Hypot.apply(y, x)  # d/dy = x / r^2, as (x / r) / r: r^2 could overflow
        r = Where.apply(value(r) == 0, 1, r)  # at the origin PyTorch's gradient is 0, not 0/0
        dy = unbroadcast(grad * (x / r) / r, y.shape) if ctx.needs_input_grad[0] else None
        dx = unbroadcast(-grad * (y / r) / r, x.shape) if ctx.needs_input_grad[1] else None
        return dy, dx


class Hypot(Function):
    """sqrt(x^2 + y^2) without overflow. At the origin the gradient is 0/0 = NaN, as in PyTorch."""

    @staticmethod
    def forward(ctx, x, y):
        out = np.hypot(x, y)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, y, out = ctx.saved
        dx = unbroadcast(grad * (x / out), x.shape) if ctx.needs_input_grad[0] else None
        dy = unbroadcast(grad * (y / out), y.shape) if ctx.needs_input_grad[1] else None
        return dx, dy


def _no_integer_zero(name, y):
    if y.dtype.kind in "iu" and not np.all(y):
        raise ZeroDivisionError(f"{name}: integer division by zero")


class Remainder(Function):
    """x % y = x - floor(x / y) * y: the sign of the divisor, as Python's % and PyTorch's remainder.
    With `truncate`, fmod: x - trunc(x / y) * y, the sign of the dividend (C's fmod)."""

    @staticmethod
    def forward(ctx, x, y, truncate=False):
        _no_integer_zero("fmod" if truncate else "remainder", y)
        ctx.save_for_backward(x, y)
        ctx.truncate = truncate
        return np.fmod(x, y) if truncate else np.mod(x, y)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        dx = unbroadcast(grad, x.shape) if ctx.needs_input_grad[0] else None
        dy = None
        if ctx.needs_input_grad[1]:  # the quotient is piecewise constant: a constant here
            x, y = value(x), value(y)
            quotient = np.trunc(x / y) if ctx.truncate else np.floor_divide(x, y)
            dy = unbroadcast(-grad * quotient, y.shape)
        return dx, dy


class Fmod(Remainder):
    @staticmethod
    def forward(ctx, x, y):
        return Remainder.forward(ctx, x, y, truncate=True)


register("atan2", "arctan2")(lambda y, x: _binary(Atan2, "atan2", y, x))
register("hypot")(lambda x, y: _binary(Hypot, "hypot", x, y))
register("__mod__", "remainder")(lambda x, y: _binary(Remainder, "remainder", x, y))
register("__rmod__")(lambda x, y: _binary(Remainder, "remainder", x, y, reverse=True))
register("fmod")(lambda x, y: _binary(Fmod, "fmod", x, y))


# ---- clamp ---------------------------------------------------------------------------------------

def _within(x, low, high, strict):
    """Where low <= x <= high (low < x < high if strict); a missing bound always holds, NaN never."""
    above_low = True if low is None else x > low if strict else x >= low
    below_high = True if high is None else x < high if strict else x <= high
    return above_low & below_high


class Clamp(Function):
    """min(max(x, low), high); either bound may be None. As in PyTorch, the gradient goes to x where
    low <= x <= high (low < x < high if `strict`, hardtanh's rule); to high where x > high or
    high < low (then the output is high everywhere); else to low where x < low. A NaN in x or a
    bound gives NaN and no gradient."""

    @staticmethod
    def forward(ctx, x, low, high, strict=False):
        out = x if low is None else np.maximum(low, x)  # (low, x): where equal, x (-0.0 stays -0.0)
        if high is not None:
            out = np.minimum(high, out)
        ctx.save_for_backward(x, low, high)
        ctx.strict = strict
        return out

    @staticmethod
    def backward(ctx, grad):
        x, low, high = (None if s is None else value(s) for s in ctx.saved)
        needs = ctx.needs_input_grad
        # (Where, not keep(): keep's finiteness test warns of overflow for gradients beyond 1e154)
        dx = unbroadcast(Where.apply(_within(x, low, high, ctx.strict), grad, 0), x.shape) if needs[0] else None
        crossed = np.False_ if low is None or high is None else high < low  # (~False would be -1)
        dlow = unbroadcast(Where.apply((x < low) & ~crossed, grad, 0), low.shape) if needs[1] else None
        dhigh = unbroadcast(Where.apply((x > high) | crossed, grad, 0), high.shape) if needs[2] else None
        return dx, dlow, dhigh


@register("clamp", "clip")
def clamp(x, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
    """Limit x to [min, max]; each bound a number or a tensor (broadcast), and either may be None.
    If min > max the result is max, as in PyTorch."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    low, high = _lift(min, x), _lift(max, x)
    try:
        return Clamp.apply(x, low, high)
    except ValueError:
        shapes = ", ".join(str(np.shape(value(b))) for b in (x, low, high) if b is not None)
        raise ValueError(f"clamp: shapes {shapes} cannot be broadcast together") from None


register("clamp_min")(lambda x, min: clamp(x, min=min))  # noqa: A002
register("clamp_max")(lambda x, max: clamp(x, max=max))  # noqa: A002


# ---- comparisons and boolean logic: bool (or integer) tensors, off the tape -----------------------

def _operand(y):
    """y as numpy compares it elementwise (a tensor's array, a Python number, an array), or None
    for anything else. Python numbers stay numbers: compared in the tensor's dtype."""
    if isinstance(y, Tensor):
        return y._data
    if isinstance(y, (int, float)):
        return y
    try:
        y = np.asarray(y)
    except (TypeError, ValueError):
        return None
    return y if y.dtype.kind in "biuf" else None


def _describe(y):
    return f"a tensor of dtype {y.dtype}" if isinstance(y, Tensor) else f"{type(y).__name__} {y!r}"


def _elementwise(name, numpy_op, x, other):
    try:
        return _constant(np.asarray(numpy_op(x._data, other)))
    except ValueError:
        raise ValueError(f"{name}: shapes {x.shape} and {np.shape(other)} cannot be broadcast together") from None


def _comparison(name, numpy_op, operator):
    def compare(x, y):
        other = _operand(y)
        if other is None:
            if operator:  # Python's rule then: x == None is False, x < None a TypeError (as in PyTorch)
                return NotImplemented
            raise TypeError(f"{name}: cannot compare a tensor with {_describe(y)}")
        return _elementwise(name, numpy_op, x, other)
    compare.__name__ = name
    compare.__doc__ = f"Elementwise {name} as a bool tensor (not differentiable)."
    return compare


for _name, _dunder, _aliases, _numpy_op in [("eq", "__eq__", "", np.equal),
                                            ("ne", "__ne__", "not_equal", np.not_equal),
                                            ("lt", "__lt__", "less", np.less),
                                            ("le", "__le__", "less_equal", np.less_equal),
                                            ("gt", "__gt__", "greater", np.greater),
                                            ("ge", "__ge__", "greater_equal", np.greater_equal)]:
    register(_dunder)(_comparison(_name, _numpy_op, operator=True))
    register(_name, *_aliases.split())(_comparison(_name, _numpy_op, operator=False))


def _bitwise(name, numpy_op):
    def op(x, y):
        other = _operand(y)
        if other is None or x._data.dtype.kind not in "biu" or np.asarray(other).dtype.kind not in "biu":
            raise TypeError(f"{name}: needs bool tensors (logical) or integer tensors (bitwise), got a tensor "
                            f"of dtype {x.dtype} and {_describe(y)}; for other dtypes use logical_and, "
                            f"logical_or or logical_xor")
        return _elementwise(name, numpy_op, x, other)
    op.__name__ = name
    return op


register("__and__", "__rand__", "bitwise_and")(_bitwise("bitwise_and", np.bitwise_and))
register("__or__", "__ror__", "bitwise_or")(_bitwise("bitwise_or", np.bitwise_or))
register("__xor__", "__rxor__", "bitwise_xor")(_bitwise("bitwise_xor", np.bitwise_xor))


@register("__invert__", "bitwise_not")
def invert(x):
    """~x: logical not of a bool tensor, bitwise not of an integer tensor."""
    if x._data.dtype.kind not in "biu":
        raise TypeError(f"~ (bitwise_not): needs a bool or integer tensor, got {x.dtype}; for a float tensor "
                        f"use logical_not()")
    return _constant(np.invert(x._data))


def _logical(name, numpy_op):
    def op(x, y):
        other = _operand(y)
        if other is None:
            raise TypeError(f"{name}: cannot combine a tensor with {_describe(y)}")
        return _elementwise(name, numpy_op, x, other)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} of the truth values (nonzero is True), as a bool tensor."
    return op


register("logical_and")(_logical("logical_and", np.logical_and))
register("logical_or")(_logical("logical_or", np.logical_or))
register("logical_xor")(_logical("logical_xor", np.logical_xor))
register("logical_not")(lambda x: _constant(np.logical_not(x._data)))
register("isnan")(lambda x: _constant(np.isnan(x._data)))
register("isinf")(lambda x: _constant(np.isinf(x._data)))
register("isfinite")(lambda x: _constant(np.isfinite(x._data)))


@register()
def equal(x, y):
    """True if y has x's shape and the same elements (torch.equal): a Python bool."""
    other = _operand(y)
    if other is None:
        raise TypeError(f"equal: cannot compare a tensor with {_describe(y)}")
    return np.shape(other) == x.shape and bool(np.array_equal(x._data, other))


@register()
def isclose(x, y, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|x - y| <= atol + rtol |y| elementwise, as a bool tensor."""
    other = _operand(y)
    if other is None:
        raise TypeError(f"isclose: cannot compare a tensor with {_describe(y)}")
    return _elementwise("isclose", lambda a, b: np.isclose(a, b, rtol, atol, equal_nan), x, other)


@register()
def allclose(x, y, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether isclose holds everywhere: a Python bool."""
    return bool(isclose(x, y, rtol, atol, equal_nan)._data.all())
