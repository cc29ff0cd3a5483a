"""Activation functions."""
import numpy as np

from ..tensor import Function, _apply, register
from .common import keep, value


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
