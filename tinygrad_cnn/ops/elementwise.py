"""Elementwise ops with numpy broadcasting: arithmetic, exp and log, comparisons, where.

Each backward is written with operators and `Op.apply`, so it runs on numpy arrays (the
first-order walk) and on Tensors (create_graph) alike.
"""
import numpy as np

from ..tensor import Function, Tensor, _apply, _constant, _lift, register
from .common import unbroadcast, value


def _binary(op, name, x, y, reverse=False):
    if type(y) is not Tensor:
        y = _lift(y, x)
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


@register()
def where(cond, x, y):
    """x where cond holds, else y (broadcast). Gradients flow to x and y, never to cond."""
    cond = value(cond)
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else None
    if like is None:
        return _constant(np.where(cond, x, y))
    x, y = _lift(x, like), _lift(y, like)
    try:
        return Where.apply(cond, x, y)
    except ValueError:
        raise ValueError(f"where: shapes {np.shape(cond)}, {x.shape} and {y.shape} cannot be broadcast "
                         f"together") from None


# ---- comparisons: bool tensors, off the tape --------------------------------------------------

def _compare(name, numpy_op):
    def compare(x, y):
        if y is None:
            return name == "ne"
        try:
            return _constant(np.asarray(numpy_op(x._data, value(y) if isinstance(y, Tensor) else y)))
        except ValueError:
            raise ValueError(f"{name}: shapes {x.shape} and {np.shape(value(y))} cannot be broadcast together") \
                from None
    compare.__name__ = name
    compare.__doc__ = f"Elementwise {name} as a bool tensor (not differentiable)."
    return compare


eq = register("__eq__", "eq")(_compare("eq", np.equal))
ne = register("__ne__", "ne")(_compare("ne", np.not_equal))
lt = register("__lt__", "lt")(_compare("lt", np.less))
le = register("__le__", "le")(_compare("le", np.less_equal))
gt = register("__gt__", "gt")(_compare("gt", np.greater))
ge = register("__ge__", "ge")(_compare("ge", np.greater_equal))


# ---- the Tensor API ------------------------------------------------------------------------------

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


@register()
def minimum(x, y):
    if type(y) is not Tensor:
        y = _lift(y, x)
    return _apply(Maximum, x, y, smallest=True)
