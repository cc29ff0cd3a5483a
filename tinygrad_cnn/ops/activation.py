"""Activation functions.

ReLU, Sigmoid, Tanh, LeakyReLU, ELU, Softplus, LogSigmoid, NormalCdf, and the x * f(x) family
(SiLU, Mish, exact GELU, Hardswish) are ops of their own (speed, stability at extreme inputs, or
PyTorch's inf gradients); their backward rules use Tensor ops too, and the others are written with
Tensor ops, so all are differentiable to any order. All are finite and accurate across the float range, without overflow
warnings: exp only ever sees arguments that cannot overflow.
"""
import math

import numpy as np

from ..tensor import Function, _apply, _lift, register
from .common import keep, value
from .elementwise import INV_SQRT_2PI, Clamp, Exp, Where, erfc_array, gaussian, unary_op


class ReLU(Function):
    """max(x, 0). The gradient passes where x > 0 and where x is NaN (PyTorch's rule: NaNs stay
    visible), and is exactly 0 elsewhere, even if it is inf or NaN."""

    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        return keep(grad, ~(value(ctx.saved[0]) <= 0))


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        # exp(-|x|) never overflows, and each branch keeps full relative precision: e / (1 + e)
        # for x < 0 does not lose the tiny result to rounding as 1 - 1 / (1 + e) would.
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1, e) / (1 + e)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.saved[0]
        return grad * out * (1 - out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.saved[0]
        return grad * (1 - out * out)


register("relu")(lambda x: _apply(ReLU, x))
register("sigmoid")(lambda x: _apply(Sigmoid, x))
register("tanh")(lambda x: _apply(Tanh, x))


class LeakyReLU(Function):
    """x where x > 0, else negative_slope * x. As in PyTorch, the slope applies at 0 and to NaN."""

    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.slope = negative_slope
        return np.where(x > 0, x, x * negative_slope)

    @staticmethod
    def backward(ctx, grad):
        return Where.apply(value(ctx.saved[0]) > 0, grad, grad * ctx.slope)


class ELU(Function):
    """x where x > 0, else alpha (exp(x) - 1), by expm1: exact for small |x| and for x << 0."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(0, x)))  # (0, x): elu(-0.0) is -0.0

    @staticmethod
    def backward(ctx, grad):
        x = ctx.saved[0]
        positive = value(x) > 0
        # exp(x) from x, not out + alpha (which loses all digits for x << 0); and of the negative
        # part only: exp(large x) would overflow, and differentiated again give inf * 0
        return Where.apply(positive, grad, grad * (ctx.alpha * Exp.apply(Where.apply(positive, 0, x))))


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's switch to the
    linear function). Computed as (max(bx, 0) + log1p(exp(-|bx|))) / beta: exp never overflows
    and the result is exact to the last bits for any x, also with threshold=inf."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        bx = x if beta == 1 else x * beta
        soft = np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))
        return np.where(bx > threshold, x, soft if beta == 1 else soft / beta)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.saved[0]
        bx = x if ctx.beta == 1 else x * ctx.beta
        return Where.apply(value(bx) > ctx.threshold, grad, grad * Sigmoid.apply(bx))


class LogSigmoid(Function):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)): no overflow, exact for any x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad):
        return grad * Sigmoid.apply(-ctx.saved[0])  # 1 - sigmoid(x), without the cancellation


# The standard normal cdf, for the exact gelu; from erfc, so that it is exact far in the lower tail.
NormalCdf = unary_op("NormalCdf", lambda x: (0.5 * erfc_array(-x, half=True)).astype(x.dtype),
                     x=lambda g, x: g * (INV_SQRT_2PI * gaussian(x, 0.5)))

# x * f(x) activations as ops of their own: the backward forms the slope first and then multiplies
# it into the gradient, as PyTorch does, so an inf gradient where the slope is not 0 stays inf
# (the composite x * f(x) gave inf * 0 = NaN in the product rule's second term).
def _silu_slope(x):
    s = Sigmoid.apply(x)
    return s * (1 + x * (1 - s))


def _mish_slope(x):
    t = Tanh.apply(Softplus.apply(x, beta=1.0, threshold=20.0))
    return t + x * (1 - t * t) * Sigmoid.apply(x)


SiLU = unary_op("SiLU", lambda x: x * Sigmoid.apply(x), x=lambda g, x: g * _silu_slope(x))
Mish = unary_op("Mish", lambda x: x * np.tanh(Softplus.apply(x, beta=1.0, threshold=20.0)),
                x=lambda g, x: g * _mish_slope(x))
GELU = unary_op("GELU", lambda x: x * NormalCdf.apply(x),
                x=lambda g, x: g * (NormalCdf.apply(x) + x * (INV_SQRT_2PI * gaussian(x, 0.5))))


class Hardswish(Function):
    """x * relu6(x + 3) / 6; its slope is exactly 0 up to -3 and 1 from 3 on (PyTorch's rule, even
    for an inf gradient), and x / 3 + 1/2 in between."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * (np.clip(x + 3, 0, 6) / 6)

    @staticmethod
    def backward(ctx, grad):
        x = ctx.saved[0]
        low, high = value(x) <= -3, value(x) >= 3
        return Where.apply(low, 0, Where.apply(high, grad, grad * (x / 3 + 0.5)))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
GELU_TANH_SCALE = 2 * math.sqrt(2 / math.pi)  # 1 + tanh(u) = 2 sigmoid(2u)


def _number(op, name, value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r}") from None


@register()
def leaky_relu(x, negative_slope=0.01):
    return _apply(LeakyReLU, x, negative_slope=_number("leaky_relu", "negative_slope", negative_slope))


@register()
def elu(x, alpha=1.0):
    return _apply(ELU, x, alpha=_number("elu", "alpha", alpha))


@register()
def selu(x):
    return x.elu(SELU_ALPHA) * SELU_SCALE


@register()
def softplus(x, beta=1.0, threshold=20.0):
    return _apply(Softplus, x, beta=_number("softplus", "beta", beta),
                  threshold=_number("softplus", "threshold", threshold))


@register()
def logsigmoid(x):
    return _apply(LogSigmoid, x)


@register()
def gelu(x, approximate="none"):
    """x * Phi(x), Phi the standard normal cdf; approximate='tanh' uses
    Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2, written as a sigmoid, which stays
    exact in the lower tail where 1 + tanh(u) would cancel to 0."""
    if approximate == "none":
        return _apply(GELU, x)
    if approximate == "tanh":
        c = x.clamp(-1e4, 1e4)  # the sigmoid is saturated long before; keeps c**3 finite
        return x * ((c + 0.044715 * c * c * c) * GELU_TANH_SCALE).sigmoid()
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


@register()
def silu(x):
    return _apply(SiLU, x)


@register()
def mish(x):
    return _apply(Mish, x)


@register()
def hardtanh(x, min_val=-1.0, max_val=1.0):
    """x clamped to [min_val, max_val]; unlike clamp, the gradient is 0 at the bounds (PyTorch's rule)."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return Clamp.apply(x, _lift(min_val, x), _lift(max_val, x), strict=True)


@register()
def relu6(x):
    return x.hardtanh(0.0, 6.0)


@register()
def hardsigmoid(x):
    return (x + 3).hardtanh(0.0, 6.0) / 6


@register()
def hardswish(x):
    return _apply(Hardswish, x)


@register()
def softsign(x):
    return x / (1 + x.abs())
