"""Ops that move elements without changing them: reshape, permute, broadcast, indexing, cat, and
the ones written with them (split, squeeze, repeat, flip, roll, pad, gather, masked_fill, ...)."""
import math

import numpy as np

from ..tensor import Function, Tensor, _apply, _lift, _shape_arg, register
from .common import normalize_axis, unbroadcast, value
from .elementwise import where


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
    """x broadcast to `shape`, for backward rules: the recorded op on Tensors; on arrays a view,
    or for small results a filled array (np.broadcast_to's Python layers cost 7x more, measured)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if type(x) is Tensor:
        return BroadcastTo.apply(x, shape=shape)
    if math.prod(shape) > 4096:
        return np.broadcast_to(x, shape)
    out = np.empty(shape, x.dtype)
    out[...] = x
    return out


def _index_arrays(index):
    """Tensors inside an index become their arrays; float index tensors are refused."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for p in parts:
        if isinstance(p, Tensor):
            if p.dtype.kind not in "iub":
                raise IndexError(f"getitem: a tensor used as an index must hold integers or bools, got {p.dtype}; "
                                 f"make it with Tensor(indices, dtype=np.int64), or a mask with dtype=bool or by "
                                 f"a comparison (x > 0)")
            p = p._data
        out.append(p)
    return tuple(out) if isinstance(index, tuple) else out[0]


def _is_advanced(index):
    """Whether numpy reads `index` as advanced (an index may repeat): a list, tuple or array in it."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, tuple, np.ndarray)) for p in parts)


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
    shape = x._data.shape
    if not shape:
        return x.reshape(1)
    start, end = normalize_axis("flatten", start_dim, len(shape), shape), normalize_axis("flatten", end_dim, len(shape), shape)
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {shape})")
    return _apply(Reshape, x, shape=shape[:start] + (-1,) + shape[end + 1:])


@register()
def permute(x, *dims):
    return _apply(Permute, x, dims=_shape_arg(dims))


@register("transpose", "swapaxes")
def transpose(x, dim0, dim1):
    """Swap two axes (PyTorch's transpose; numpy's is permute)."""
    dim0, dim1 = normalize_axis("transpose", dim0, x.ndim, x.shape), normalize_axis("transpose", dim1, x.ndim, x.shape)
    dims = list(range(x.ndim))
    if x.ndim:  # a 0-d tensor's dimension 0 (or -1) is the tensor itself, as in PyTorch
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return x.permute(*dims)


@register("t")
def t(x):
    """Transpose of a matrix (of a 0-d or 1-d tensor: a new tensor of the same values), as torch.t."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with at most 2 dimensions, got shape {x.shape}; use transpose or permute")
    return x.permute(*reversed(range(x.ndim)))


register("T")(property(lambda x: x.permute(*reversed(range(x.ndim)))))


@register("expand")
def expand(x, *shape):
    """Broadcast to `shape` without copying; -1 keeps a dimension's size (PyTorch's expand)."""
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    if lead < 0 or -1 in shape[:lead]:
        raise ValueError(f"expand: cannot expand a tensor of shape {x.shape} to {shape}: fewer dimensions, or -1 "
                         f"(keep the size) for a new leading dimension")
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
    return [_lift(t, like) for t in tensors]


def cat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dimension (torch.cat; numpy's concatenate)."""
    tensors = _tensors("cat", tensors)
    if any(t.ndim == 0 for t in tensors):
        raise ValueError(f"cat: a 0-d tensor cannot be joined along a dimension (shapes {[t.shape for t in tensors]}); "
                         f"use stack")
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
    d = normalize_axis("stack", dim if axis is None else axis, tensors[0].ndim + 1, tensors[0].shape)
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
    if dim is None:
        return x._data.shape
    if x.ndim == 0:
        raise IndexError(f"size: a 0-d tensor has no dimension {dim!r}")
    return x._data.shape[normalize_axis("size", dim, x.ndim, x.shape)]


# ---- more shape ops, written with the ops above (so differentiable to any order) -------------------

def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _dim(name, x, dim):
    """One dimension of a tensor that must have one (split, unbind, index_select, ...)."""
    if x.ndim == 0:
        raise IndexError(f"{name}: a 0-d tensor has no dimension {dim!r}")
    return normalize_axis(name, dim, x.ndim, x.shape)


def _dims(name, x, dims):
    """Several distinct dimensions as non-negative ints."""
    out = tuple(normalize_axis(name, d, x.ndim, x.shape) for d in dims)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: dimension {dims} names an axis twice (shape {x.shape})")
    return out


@register()
def unsqueeze(x, dim):
    """Insert a dimension of size 1 at position dim (-1: at the end)."""
    d = normalize_axis("unsqueeze", dim, x.ndim + 1, x.shape)
    return x.reshape(*x.shape[:d], 1, *x.shape[d:])


@register()
def squeeze(x, dim=None):
    """Drop dimensions of size 1: all of them, or those among dim (an int or a tuple); a named
    dimension whose size is not 1 stays, as in PyTorch."""
    dims = range(x.ndim) if dim is None else _dims("squeeze", x, dim if isinstance(dim, (tuple, list)) else (dim,))
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1)))


@register()
def split(x, split_size_or_sections, dim=0):
    """Consecutive pieces along dim: of split_size_or_sections entries each (the last may be
    smaller), or of the sizes in a list, which must add up to the dimension's size."""
    d = _dim("split", x, dim)
    n, size = x.shape[d], split_size_or_sections
    if _is_int(size):
        if size < 0 or size == 0 and n:
            raise ValueError(f"split: split_size must be a positive integer, got {size} "
                             f"(dimension {d} of shape {x.shape})")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if n else [0]
    else:
        sizes = list(size)
        if not all(_is_int(m) and m >= 0 for m in sizes) or np.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} must be non-negative integers adding up to {n}, the size of "
                             f"dimension {d} of shape {x.shape}")
    bounds = np.cumsum([0] + sizes).tolist()
    lead = (slice(None),) * d
    return tuple(x[lead + (slice(a, b),)] for a, b in zip(bounds[:-1], bounds[1:]))


@register()
def chunk(x, chunks, dim=0):
    """At most `chunks` pieces of equal size along dim, the last possibly smaller (torch.chunk)."""
    if not _is_int(chunks) or chunks < 1:
        raise ValueError(f"chunk: chunks must be a positive integer, got {chunks!r}")
    n = x.shape[_dim("chunk", x, dim)]
    return split(x, -(-n // chunks), dim) if n else split(x, [0] * chunks, dim)


@register()
def unbind(x, dim=0):
    """The slices along dim, that dimension removed: x.unbind(0) is tuple(x)."""
    d = _dim("unbind", x, dim)
    lead = (slice(None),) * d
    return tuple(x[lead + (i,)] for i in range(x.shape[d]))


@register()
def expand_as(x, other):
    return x.expand(*np.shape(value(other)))


@register()
def repeat(x, *sizes):
    """Tile the whole tensor sizes[i] times along dimension i (PyTorch's repeat, numpy's tile;
    numpy's repeat is repeat_interleave). Extra leading sizes add dimensions."""
    sizes = _shape_arg(sizes)
    if len(sizes) < x.ndim or not all(_is_int(r) and r >= 0 for r in sizes):
        raise ValueError(f"repeat: expected at least {x.ndim} non-negative integer sizes for a tensor of shape "
                         f"{x.shape}, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    # each dimension n becomes (r, n): r copies side by side, broadcast without copying, then merged
    spread = x.reshape(*[v for n in shape for v in (1, n)])
    tiled = spread.expand(*[v for r, n in zip(sizes, shape) for v in (r, n)])
    return tiled.reshape(*[r * n for r, n in zip(sizes, shape)])


@register()
def repeat_interleave(x, repeats, dim=None):
    """Repeat each entry along dim `repeats` times (an int, or one count per entry), as
    torch.repeat_interleave and numpy's repeat; without dim, over the flattened tensor."""
    if dim is None:
        x, dim = x.reshape(-1), 0
    d = _dim("repeat_interleave", x, dim)
    counts = np.asarray(value(repeats))
    if counts.dtype.kind not in "iu" or counts.ndim > 1 or counts.size not in (1, x.shape[d]) or (counts < 0).any():
        raise ValueError(f"repeat_interleave: repeats must be a non-negative integer or one per entry "
                         f"({x.shape[d]} along dimension {d} of shape {x.shape}), got {repeats!r}")
    return x[(slice(None),) * d + (np.repeat(np.arange(x.shape[d]), counts.reshape(-1)),)]


@register()
def flip(x, *dims):
    """Reverse the order of entries along the given dimensions."""
    if not dims:
        raise TypeError("flip: dims is required, e.g. x.flip(0) or x.flip((0, 1))")
    dims = _dims("flip", x, _shape_arg(dims))
    return x[tuple(slice(None, None, -1) if i in dims else slice(None) for i in range(x.ndim))]


@register()
def roll(x, shifts, dims=None):
    """Shift entries along dims, those pushed off the end coming back at the start; without dims,
    over the flattened tensor (torch.roll)."""
    if dims is None:
        if not _is_int(shifts):
            raise ValueError(f"roll: without dims, shifts must be one integer, got {shifts!r}")
        return roll(x.reshape(-1), shifts, 0).reshape(x.shape)
    shifts, dims = (tuple(v) if isinstance(v, (tuple, list)) else (v,) for v in (shifts, dims))
    if len(shifts) != len(dims) or not all(_is_int(s) for s in shifts):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must be integers, one shift per dimension")
    for s, d in zip(shifts, dims):
        d = _dim("roll", x, d)
        n = x.shape[d]
        s = s % n if n else 0
        if s:
            lead = (slice(None),) * d
            x = cat([x[lead + (slice(n - s, None),)], x[lead + (slice(0, n - s),)]], d)
    return x


def _integer_index(name, index, shape):
    """An index argument (Tensor, array or list) as a numpy integer array, or a clear error."""
    idx = np.asarray(index._data if isinstance(index, Tensor) else index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: the index must hold integers, got {idx.dtype} (tensor of shape {shape}); "
                        f"make it with Tensor(indices, dtype=np.int64)")
    return idx


def _check_range(name, idx, n, d, shape):
    """PyTorch's index arguments count from 0 only (no negative indices, unlike x[-1])."""
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise IndexError(f"{name}: index {bad[0]} is out of range for dimension {d} of size {n} "
                         f"(tensor of shape {shape})")


def _along(idx, d):
    """The numpy index picking idx[p] along axis d, and p itself along every other axis."""
    return tuple(idx if i == d else np.arange(n).reshape((1,) * i + (n,) + (1,) * (idx.ndim - i - 1))
                 for i, n in enumerate(idx.shape))


def _check_along(name, x, d, idx, src=None):
    if idx.ndim != x.ndim or any(m > n for i, (m, n) in enumerate(zip(idx.shape, x.shape)) if i != d) \
            or src is not None and (src.ndim != idx.ndim or any(m > n for m, n in zip(idx.shape, src.shape))):
        also = "" if src is None else f" and no larger than src {src.shape}"
        raise ValueError(f"{name}: index of shape {idx.shape} must have the {x.ndim} dimensions of the input "
                         f"{x.shape}, and be no larger than it outside dimension {d}{also}")
    _check_range(name, idx, x.shape[d] if x.ndim else 1, d, x.shape)


@register()
def gather(x, dim, index):
    """Pick entries along dim by index (torch.gather): for dim=1, out[i, j, k] = x[i, index[i, j, k], k].
    index has x's number of dimensions and is no larger than x outside dim; out has its shape.
    An index that repeats adds up in the gradient."""
    d = normalize_axis("gather", dim, x.ndim, x.shape)
    idx = _integer_index("gather", index, x.shape)
    _check_along("gather", x, d, idx)
    return x[_along(idx, d)]


@register()
def scatter_add(x, dim, index, src):
    """x plus src added where gather would read (torch.scatter_add): for dim=1,
    out[i, index[i, j, k], k] += src[i, j, k]; an index that repeats adds each time."""
    d = normalize_axis("scatter_add", dim, x.ndim, x.shape)
    idx = _integer_index("scatter_add", index, x.shape)
    src = _lift(src, x)
    if src.dtype != x.dtype:
        raise TypeError(f"scatter_add: src is {src.dtype} but the tensor is {x.dtype}; convert one")
    _check_along("scatter_add", x, d, idx, src)
    part = src if src.shape == idx.shape else src[tuple(slice(0, m) for m in idx.shape)]
    return x + _apply(IndexAdd, part, shape=x.shape, index=_along(idx, d))


@register()
def index_select(x, dim, index):
    """The entries at index (a vector of integers) along dim (torch.index_select)."""
    d = _dim("index_select", x, dim)
    idx = _integer_index("index_select", index, x.shape)
    if idx.ndim > 1:
        raise ValueError(f"index_select: the index must be a vector, got shape {idx.shape}")
    _check_range("index_select", idx, x.shape[d], d, x.shape)
    return x[(slice(None),) * d + (idx.reshape(-1),)]


@register()
def masked_fill(x, mask, value):
    """x with `value` where the bool mask (broadcast to x's shape) holds, e.g. -inf at masked
    attention scores. The gradient flows to x elsewhere, and to value if it is a 0-d tensor."""
    m = np.asarray(mask._data if isinstance(mask, Tensor) else mask)
    if m.dtype != bool:
        raise TypeError(f"masked_fill: the mask must be bool, got {m.dtype} of shape {m.shape}; "
                        f"make one with a comparison, e.g. x > 0")
    try:
        fits = np.broadcast_shapes(m.shape, x.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"masked_fill: a mask of shape {m.shape} does not broadcast to the tensor's shape {x.shape}")
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        value = value.to(x.dtype)  # the result keeps x's dtype, as in PyTorch
    return where(m, value, x)


_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(x, pad, mode="constant", value=None):
    """torch.nn.functional.pad: pad = (before, after) for the last dimension, then for the one
    before it, and so on; a negative amount crops. mode: 'constant' (with value, default 0),
    'reflect' (mirrored, the edge not repeated), 'replicate' (the edge repeated) or 'circular'."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) > 2 * x.ndim or not all(_is_int(p) for p in pad):
        raise ValueError(f"pad: expected an even number of integers, at most 2 per dimension of the input "
                         f"{x.shape}, got {pad}")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    if mode != "constant" and value is not None:
        raise ValueError(f"pad: mode {mode!r} takes no value (it copies entries of the input)")
    widths = {x.ndim - 1 - k: (pad[2 * k], pad[2 * k + 1]) for k in range(len(pad) // 2)}
    sizes = {d: x.shape[d] + a + b for d, (a, b) in widths.items()}
    if any(n < 0 for n in sizes.values()):
        raise ValueError(f"pad: cropping {pad} leaves a negative size (input {x.shape})")
    if mode == "constant":
        return _pad_constant(x, widths, 0 if value is None else value)
    for d, (before, after) in widths.items():
        n = x.shape[d]
        positions = np.arange(-before, n + after)
        if mode == "reflect" and (before >= n or after >= n) or mode == "replicate" and n == 0 \
                or mode == "circular" and (before > n or after > n):
            raise ValueError(f"pad: padding {(before, after)} is too large for mode {mode!r} along dimension {d} "
                             f"of size {n} (input {x.shape})")
        if mode == "reflect":  # -1 -> 1, n -> n - 2
            positions = np.abs(positions)
            positions = np.where(positions >= n, 2 * (n - 1) - positions, positions)
        elif mode == "replicate":
            positions = np.clip(positions, 0, n - 1)
        else:
            positions = positions % n if n else positions
        x = x[(slice(None),) * d + (positions,)]
    return x


def _pad_constant(x, widths, fill):
    """Crop the negative amounts, place the rest in zeros (IndexAdd), and put fill around it."""
    crop = tuple(slice(max(-widths[d][0], 0), x.shape[d] - max(-widths[d][1], 0)) if d in widths else slice(None)
                 for d in range(x.ndim))
    x = x[crop] if any(c != slice(None) for c in crop) else x
    inside = tuple(slice(max(widths[d][0], 0), max(widths[d][0], 0) + x.shape[d]) if d in widths else slice(None)
                   for d in range(x.ndim))
    shape = tuple(n + max(widths[d][0], 0) + max(widths[d][1], 0) if d in widths else n for d, n in enumerate(x.shape))
    if shape == x.shape:
        return x
    out = _apply(IndexAdd, x, shape=shape, index=inside)
    if fill == 0:
        return out
    border = np.ones(shape, bool)
    border[inside] = False
    return where(border, fill, out)


def embedding(indices, weight, padding_idx=None):
    """weight[indices], with no gradient reaching row padding_idx (torch.nn.functional.embedding)."""
    index = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if index.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {index.dtype} of shape {index.shape}; "
                        f"make them with Tensor(ids, dtype=np.int64) or a numpy integer array")
    n = weight.shape[0]
    if index.size and (index.min() < 0 or index.max() >= n):
        bad = index.min() if index.min() < 0 else index.max()
        raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings (indices of shape {index.shape}, "
                         f"weight of shape {weight.shape})")
    out = weight[index]
    if padding_idx is not None:
        pad = index == padding_idx
        if pad.any():  # those rows' values, but as constants: no gradient flows to the padding row
            from .elementwise import where
            out = where(pad[..., None], weight.detach()[padding_idx], out)
    return out
