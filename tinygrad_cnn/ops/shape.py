"""Ops that move elements without changing them: reshape, permute, broadcast, indexing."""
import numpy as np

from ..tensor import Function, Tensor, _apply, _shape_arg, register
from .common import normalize_axis, unbroadcast, value


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        # x may be laid out unusually (a conv's output keeps the batch innermost in memory): its
        # gradient goes back in that layout, because the op before computes several times
        # faster on operands laid out alike. (x is kept only as the model of that layout.)
        if not x.flags.c_contiguous:
            ctx.save_for_backward(x)
        try:
            return x.reshape(shape)
        except (ValueError, TypeError):
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                             f"({x.size} elements) into shape {shape}") from None

    @staticmethod
    def backward(ctx, grad):
        if not ctx.saved or type(grad) is Tensor:
            return grad.reshape(ctx.shape)
        dx = np.empty_like(ctx.saved[0], dtype=grad.dtype)
        dx[...] = grad.reshape(ctx.shape)
        return dx


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        if sorted(d + x.ndim if -x.ndim <= d < 0 else d for d in dims) != list(range(x.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} axes of shape {x.shape}")
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        return Permute.apply(grad, dims=tuple(np.argsort([d % grad.ndim for d in ctx.dims])))


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: a tensor of shape {x.shape} cannot be broadcast to {shape}") from None

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shape)


def broadcast_to(x, shape):
    """np.broadcast_to on arrays, the recorded op on Tensors: for backward rules."""
    return x if x.shape == tuple(shape) else BroadcastTo.apply(x, shape=tuple(shape))


def _index_arrays(index):
    """Tensors inside an index become their arrays; float index tensors are refused."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, Tensor):
            if p.dtype.kind not in "iub":
                raise IndexError(f"getitem: a tensor used as an index must hold integers or bools, got {p.dtype}; "
                                 f"make it with Tensor(indices, dtype=np.int64)")
            p = p._data
        out.append(p)
    return tuple(out) if isinstance(index, tuple) else out[0]


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) for p in parts)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        return IndexAdd.apply(grad, shape=ctx.shape, index=ctx.index)


class IndexAdd(Function):
    """zeros(shape) with `src` added at `index`: GetItem's backward (and this one's is GetItem)."""

    @staticmethod
    def forward(ctx, src, shape, index):
        ctx.index = index
        out = np.zeros(shape, src.dtype)
        if _is_advanced(index):
            np.add.at(out, index, src)  # an index may repeat: each occurrence adds
        else:
            out[index] = src
        return out

    @staticmethod
    def backward(ctx, grad):
        return GetItem.apply(grad, index=ctx.index)


# ---- the Tensor API ------------------------------------------------------------------------------

@register("reshape")
def reshape(x, *shape):
    return _apply(Reshape, x, shape=_shape_arg(shape))


@register()
def view(x, *shape):
    """reshape (numpy arrays have no separate notion of a view that must be contiguous)."""
    return reshape(x, *shape)


@register()
def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    start, end = (normalize_axis("flatten", d, x.ndim, x.shape) for d in (start_dim, end_dim))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {x.shape})")
    return x.reshape(*x.shape[:start], -1, *x.shape[end + 1:])


@register()
def permute(x, *dims):
    return _apply(Permute, x, dims=_shape_arg(dims))


@register("transpose", "swapaxes")
def transpose(x, dim0, dim1):
    """Swap two axes (PyTorch's transpose; numpy's is permute)."""
    dim0, dim1 = normalize_axis("transpose", dim0, x.ndim, x.shape), normalize_axis("transpose", dim1, x.ndim, x.shape)
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return x.permute(*dims)


@register("t")
def t(x):
    """Transpose of a matrix (0-d and 1-d tensors are returned as they are), as torch.t."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with at most 2 dimensions, got shape {x.shape}; use transpose or permute")
    return x if x.ndim < 2 else x.permute(1, 0)


register("T")(property(lambda x: x.permute(*reversed(range(x.ndim)))))


@register("expand")
def expand(x, *shape):
    """Broadcast to `shape` without copying; -1 keeps a dimension's size (PyTorch's expand)."""
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand a tensor of shape {x.shape} to fewer dimensions {shape}")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    return _apply(BroadcastTo, x, shape=shape)


@register("broadcast_to")
def broadcast_to_method(x, shape):
    return _apply(BroadcastTo, x, shape=tuple(shape))


@register("__getitem__")
def getitem(x, index):
    return _apply(GetItem, x, index=_index_arrays(index))


class Cat(Function):
    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.bounds = tuple(np.cumsum([0] + [x.shape[axis] for x in xs]).tolist())
        ctx.axis = axis
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        lead = (slice(None),) * ctx.axis
        return tuple(GetItem.apply(grad, index=lead + (slice(a, b),)) if needed else None
                     for a, b, needed in zip(ctx.bounds[:-1], ctx.bounds[1:], ctx.needs_input_grad))


def _tensors(name, tensors):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name}: expected a non-empty sequence of tensors")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    if like is None:
        return [Tensor(t) for t in tensors]
    from ..tensor import _lift
    return [_lift(t, like) for t in tensors]


def cat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dimension (torch.cat; numpy's concatenate)."""
    tensors = _tensors("cat", tensors)
    d = normalize_axis("cat", dim if axis is None else axis, tensors[0].ndim, tensors[0].shape)
    shapes = [t.shape for t in tensors]
    if any(len(s) != len(shapes[0]) or s[:d] + s[d + 1:] != shapes[0][:d] + shapes[0][d + 1:] for s in shapes):
        raise ValueError(f"cat: shapes {shapes} differ outside dimension {d}")
    return _apply(Cat, *tensors, axis=d)


def stack(tensors, dim=0, *, axis=None):
    """Join tensors of equal shape along a new dimension (torch.stack)."""
    tensors = _tensors("stack", tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    d = normalize_axis("stack", dim if axis is None else axis, tensors[0].ndim + 1)
    shape = tensors[0].shape
    return cat([t.reshape(*shape[:d], 1, *shape[d:]) for t in tensors], d)


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class Cast(Function):
    """A dtype conversion between floating types; the gradient goes back in the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return Cast.apply(grad, dtype=ctx.dtype)


register("clone")(lambda x: _apply(Clone, x))


@register("to", "type")
def to(x, dtype):
    """A copy converted to `dtype` (the same tensor if it already is). Conversions between
    floating types are differentiable; to an integer or bool type they leave the tape."""
    dtype = np.dtype(dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind == "f" and x.dtype.kind == "f":
        return _apply(Cast, x, dtype=dtype)
    from ..tensor import _constant
    return _constant(x._data.astype(dtype))


register("float")(lambda x: to(x, np.float32))
register("double")(lambda x: to(x, np.float64))
register("half")(lambda x: to(x, np.float16))
register("long")(lambda x: to(x, np.int64))
register("int")(lambda x: to(x, np.int32))
register("bool")(lambda x: to(x, np.bool_))
register("numel")(lambda x: int(x._data.size))
register("dim")(lambda x: x._data.ndim)
register("nelement")(lambda x: int(x._data.size))


@register()
def size(x, dim=None):
    """The shape (PyTorch's size()); size(dim) is one dimension's length."""
    return x._data.shape if dim is None else x._data.shape[normalize_axis("size", dim, x.ndim, x.shape)]
