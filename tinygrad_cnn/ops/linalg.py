"""Matrix products: matmul and the fused linear layer."""
from ..tensor import Function, Tensor, _apply, _lift, register
from .common import check_same_dtype, unbroadcast


class MatMul(Function):
    @staticmethod
    def forward(ctx, x, y):
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {x.shape} and {y.shape}")
        check_same_dtype("matmul", x, y)
        inner = y.shape[0] if y.ndim == 1 else y.shape[-2]
        if x.shape[-1] != inner:
            raise ValueError(f"matmul: inner dimensions differ: {x.shape} @ {y.shape} "
                             f"({x.shape[-1]} != {inner})")
        ctx.save_for_backward(x, y)
        try:
            return x @ y
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {x.shape} and {y.shape} do not broadcast") from None

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        # Treat 1-D operands as a row (x) or a column (y) matrix, like numpy does.
        x2 = x[None, :] if x.ndim == 1 else x
        y2 = y[:, None] if y.ndim == 1 else y
        if y.ndim == 1:
            grad = grad[..., None]
        if x.ndim == 1:
            grad = grad[..., None, :]
        dx = unbroadcast(grad @ y2.swapaxes(-1, -2), x2.shape).reshape(x.shape) if ctx.needs_input_grad[0] else None
        dy = unbroadcast(x2.swapaxes(-1, -2) @ grad, y2.shape).reshape(y.shape) if ctx.needs_input_grad[1] else None
        return dx, dy


class Linear(Function):
    """x @ weight.T + bias as one op (PyTorch's layout: weight is (out_features, in_features)).
    Fusing saves two recorded ops per layer, which is most of a small network's overhead."""

    @staticmethod
    def forward(ctx, x, w, *bias):
        if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} does not fit weight of shape {w.shape} "
                             f"(expected weight (out_features, {x.shape[-1] if x.ndim else '?'}))")
        if bias and bias[0].shape != (w.shape[0],):
            raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {bias[0].shape}")
        check_same_dtype("linear", x, w)
        out = x @ w.T
        if bias:
            out += bias[0]
        ctx.save_for_backward(x, w)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved
        needs = ctx.needs_input_grad
        dx = grad @ w if needs[0] else None
        g2 = grad.reshape(-1, w.shape[0])
        dw = g2.T @ x.reshape(-1, w.shape[1]) if needs[1] else None
        if len(needs) == 2:
            return dx, dw
        return dx, dw, g2.sum(axis=0) if needs[2] else None


register("__matmul__", "matmul")(lambda x, y: _apply(MatMul, x, _lift(y, x)))
register("__rmatmul__")(lambda x, y: _apply(MatMul, _lift(y, x), x))


def linear(x, weight, bias=None):
    """x @ weight.T + bias, with weight shaped (out_features, in_features) as in PyTorch."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    return _apply(Linear, x, *[_lift(p, x) for p in (weight, bias) if p is not None])
