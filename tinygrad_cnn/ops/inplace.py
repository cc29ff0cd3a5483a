"""In-place ops with PyTorch's names: add_, mul_, zero_, copy_, x[i] = v, +=, ...

Each writes its result into the tensor's own memory (so views and aliases see it) and marks the
tensor changed: a later backward through an op that saved the old values raises. While
recording, the change is itself recorded (Tensor._inplace); on a leaf that requires grad it is
an error, as in PyTorch, unless made under no_grad().
"""
import numpy as np

from ..tensor import Function, Tensor, _apply, _lift, register
from .common import keep, unbroadcast, value
from .elementwise import Where
from .shape import GetItem, _index_arrays, _is_advanced


class SetItem(Function):
    """x with x[index] replaced by v (broadcast to the indexed shape)."""

    @staticmethod
    def forward(ctx, x, v, index):
        out = x.copy()
        try:
            out[index] = v
        except (IndexError, ValueError) as e:
            raise type(e)(f"setitem: {e} (tensor of shape {x.shape}, value of shape {np.shape(v)})") from None
        mask = np.zeros(x.shape, bool)
        mask[index] = True
        ctx.save_for_backward(mask, _last_writes(x.shape, index) if _is_advanced(index) else None)
        ctx.index, ctx.v_shape = index, np.shape(v)
        return out

    @staticmethod
    def backward(ctx, grad):
        mask, won = (value(s) for s in ctx.saved)
        dx = Where.apply(mask, 0, grad) if ctx.needs_input_grad[0] else None
        dv = None
        if ctx.needs_input_grad[1]:
            dv = GetItem.apply(grad, index=ctx.index)
            if won is not None:  # a repeated index: only the value written last is in the result
                dv = keep(dv, won)
            if dv.ndim < len(ctx.v_shape):  # numpy dropped v's leading 1s when it wrote v in
                dv = dv.reshape((1,) * (len(ctx.v_shape) - dv.ndim) + dv.shape)
            dv = unbroadcast(dv, ctx.v_shape)
        return dx, dv


def _last_writes(shape, index):
    """For an index that may repeat a position: which of the written slots numpy wrote last (the
    one that stays), or None when no position repeats."""
    written = np.empty(shape, np.int8)[index].shape
    slots = np.arange(int(np.prod(written))).reshape(written)
    winner = np.full(shape, -1, np.intp)
    winner[index] = slots
    won = winner[index] == slots
    return None if won.all() else won


def _operand(x, other):
    return other if isinstance(other, Tensor) else _lift(other, x)


def _scaled(x, other, alpha):
    other = _operand(x, other)
    return other if alpha == 1 else other * alpha


register("add_", "__iadd__")(lambda x, other, alpha=1: x._inplace("add_", lambda t: t + _scaled(x, other, alpha), other))
register("sub_", "__isub__")(lambda x, other, alpha=1: x._inplace("sub_", lambda t: t - _scaled(x, other, alpha), other))
register("mul_", "__imul__")(lambda x, other: x._inplace("mul_", lambda t: t * _operand(x, other), other))
register("div_", "__itruediv__")(lambda x, other: x._inplace("div_", lambda t: t / _operand(x, other), other))
register("pow_", "__ipow__")(lambda x, other: x._inplace("pow_", lambda t: t ** _operand(x, other), other))
register("neg_")(lambda x: x._inplace("neg_", lambda t: -t))
register("exp_")(lambda x: x._inplace("exp_", lambda t: t.exp()))
register("relu_")(lambda x: x._inplace("relu_", lambda t: t.relu()))
register("sigmoid_")(lambda x: x._inplace("sigmoid_", lambda t: t.sigmoid()))
register("tanh_")(lambda x: x._inplace("tanh_", lambda t: t.tanh()))


@register()
def zero_(x):
    """Fill with zeros. The result depends on nothing, so no gradient flows back through it."""
    return x._inplace("zero_", lambda t: Tensor(np.zeros_like(t._data)))


@register()
def fill_(x, fill_value):
    return x._inplace("fill_", lambda t: Tensor(np.full_like(t._data, value(fill_value))))


@register()
def copy_(x, src):
    """Copy src's values (broadcast) into this tensor; the gradient flows to src."""
    src = _operand(x, src)
    try:
        np.broadcast_shapes(src.shape, x.shape)
    except ValueError:
        raise ValueError(f"copy_: a source of shape {src.shape} cannot be broadcast to {x.shape}") from None
    return x._inplace("copy_", lambda t: src.expand(*x.shape) if src.shape != x.shape else src + 0, src)


@register()
def uniform_(x, a=0.0, b=1.0):
    """Fill with uniform random numbers in [a, b) (initialization, as torch.Tensor.uniform_)."""
    return x._inplace("uniform_", lambda t: Tensor(np.random.uniform(a, b, t.shape).astype(t.dtype)))


@register()
def normal_(x, mean=0.0, std=1.0):
    """Fill with normal random numbers (initialization, as torch.Tensor.normal_)."""
    return x._inplace("normal_", lambda t: Tensor(np.random.normal(mean, std, t.shape).astype(t.dtype)))


@register("__setitem__")
def setitem(x, index, v):
    """x[index] = v, recorded like any in-place op (the gradient flows to v)."""
    index = _index_arrays(index)
    v = _operand(x, v)
    return x._inplace("setitem", lambda t: _apply(SetItem, t, v, index=index), v)
