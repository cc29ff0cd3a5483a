"""The engine: Tensor, the tape it records, and the generic backward walk.

Every op on a Tensor runs its forward (ops.py) and, when a gradient will be needed, keeps the
op's ctx as the result's `_ctx`, with the input tensors as `ctx.parents`: that chain of ctxs
is the tape. `backward()` walks it from the output, latest-created tensor first (a reverse
topological order), and hands each op the gradient of its output; the op's own `backward`
turns it into gradients for its inputs. Nothing here knows about layers, networks or data sets.
"""
import functools
import heapq
import itertools

import numpy as np

from . import ops

_grad_enabled = True
_creation_order = itertools.count()  # each tensor is numbered after its inputs


class no_grad:
    """Context manager (or decorator) under which ops record nothing on the tape."""

    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapped


def _apply(op, *inputs, **kwargs):
    """Run `op` on tensors and, if any input needs a gradient, record it on the tape."""
    ctx = op()
    try:
        out = op.forward(ctx, *[t.data for t in inputs], **kwargs)
    except np.exceptions.AxisError as e:  # an axis argument numpy rejected
        shapes = " and ".join(str(t.data.shape) for t in inputs)
        raise ValueError(f"{op.__name__.lower()}: {e} (input of shape {shapes})") from None
    result = Tensor.__new__(Tensor)
    result.data = out if type(out) is np.ndarray else np.asarray(out)
    result.grad, result._seq = None, next(_creation_order)
    if _grad_enabled and True in [t.requires_grad for t in inputs]:
        ctx.parents = inputs
        result.requires_grad, result._ctx = True, ctx
    else:
        result.requires_grad, result._ctx = False, None
    return result


def _lift(value, like):
    """A Python number or numpy array becomes a constant tensor of `like`'s dtype (no upcast)."""
    if isinstance(value, Tensor) or value is None:
        return value
    const = Tensor.__new__(Tensor)  # not Tensor(...): its checks cost a microsecond on every `x * 2`
    try:
        const.data = np.asarray(value, dtype=like.data.dtype)
    except (TypeError, ValueError):
        raise TypeError(f"cannot combine a Tensor with {type(value).__name__} {value!r}") from None
    const.grad, const.requires_grad, const._ctx, const._seq = None, False, None, next(_creation_order)
    return const


def _binary(op, name, x, y, reverse=False):
    if type(y) is not Tensor:
        y = _lift(y, x)
    if reverse:
        x, y = y, x
    try:
        return _apply(op, x, y)
    except ValueError:  # the only ValueError an elementwise forward raises is numpy's broadcast failure
        raise ValueError(f"{name}: shapes {x.data.shape} and {y.data.shape} cannot be broadcast together") from None


def class_indices(labels):
    """Labels as numpy integers. A Tensor of labels is float32 by default: whole numbers are
    taken as indices; anything else is left for the loss to reject."""
    if not isinstance(labels, Tensor):
        return labels
    data = labels.data
    return data.astype(np.int64) if np.array_equal(data, np.trunc(data)) else data


def _axis(name, axis, shape):
    if not isinstance(axis, (int, np.integer)) or not -len(shape) <= axis < len(shape):
        raise ValueError(f"{name}: dimension {axis!r} is out of range for a tensor of shape {shape}")
    return axis % len(shape)


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


class Tensor:
    """An n-dimensional array that records the ops applied to it, for reverse-mode autograd.

    Floating-point numpy data keeps its dtype (float64 stays float64); anything else (Python
    numbers, lists, integer arrays) becomes float32, the default dtype, unless `dtype` says.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_seq")
    __array_ufunc__ = None  # numpy defers to our operators: ndarray * Tensor -> Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None:
            floating = isinstance(data, (np.ndarray, np.floating)) and data.dtype.kind == "f"
            dtype = data.dtype if floating else np.float32
        try:
            data = np.asarray(data, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Tensor: cannot make a {np.dtype(dtype)} tensor from {type(data).__name__}: {e}") from None
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype {data.dtype}")
        self.data, self.grad, self.requires_grad, self._ctx = data, None, requires_grad, None
        self._seq = next(_creation_order)

    # ---- constructors ----
    @classmethod
    def zeros(cls, *shape, dtype=np.float32, requires_grad=False):
        return cls(np.zeros(_shape_arg(shape), dtype), requires_grad)

    @classmethod
    def ones(cls, *shape, dtype=np.float32, requires_grad=False):
        return cls(np.ones(_shape_arg(shape), dtype), requires_grad)

    @classmethod
    def randn(cls, *shape, dtype=np.float32, requires_grad=False):
        return cls(np.random.standard_normal(_shape_arg(shape)).astype(dtype), requires_grad)

    @classmethod
    def uniform(cls, *shape, low=-1.0, high=1.0, dtype=np.float32, requires_grad=False):
        return cls(np.random.uniform(low, high, _shape_arg(shape)).astype(dtype), requires_grad)

    # ---- plain attributes ----
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    T = property(lambda self: self.permute(*reversed(range(self.ndim))))

    def numpy(self):
        return self.data

    def item(self):
        return self.data.item()

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = f", grad_fn=<{type(self._ctx).__name__}>" if self._ctx else ""
        grad += ", requires_grad=True" if self.requires_grad and not self._ctx else ""
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=50)
        return f"Tensor({body}, dtype={self.dtype}{grad})"

    def detach(self):
        """The same data, cut from the tape: no gradient flows through the result."""
        return Tensor(self.data, dtype=self.dtype)

    # ---- the backward walk ----
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf tensor with requires_grad.

        Each op's saved buffers are released afterwards, unless `retain_graph=True`.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad: none of the tensors it was "
                               "computed from has requires_grad=True, or it was computed under no_grad()")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implied only for a scalar output, but this tensor has "
                                   f"shape {self.shape}; pass backward(grad=...) with an array of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape}, but the tensor has shape {self.shape}")

        # A tensor is always created after its inputs, so taking tensors latest-created first
        # reaches each one only after every tensor computed from it: a reverse topological
        # order, without a separate sort (PyTorch orders its backward the same way).
        # (id breaks ties: copied or unpickled tensors share a _seq, and Tensors do not compare)
        grads, pending = {self: grad}, [(-self._seq, id(self), self)]
        push, pop = heapq.heappush, heapq.heappop
        while pending:
            t = pop(pending)[2]
            g = grads.pop(t)
            ctx = t._ctx
            if ctx is None:  # a leaf: keep the gradient, summed over backward() calls
                if t.grad is None:  # laid out like the data, whatever layout the ops gave g
                    t.grad = np.empty_like(t.data)
                    t.grad[...] = g
                else:
                    t.grad += g
                continue
            if ctx.parents is None:
                raise RuntimeError("backward: trying to go through a graph a second time, but its saved "
                                   "buffers were released by the first backward(); call "
                                   "backward(retain_graph=True) the first time to keep them")
            # Set here, not when the op is recorded: one more live object per recorded op gave
            # the garbage collector a third more work on a long chain (measured).
            ctx.needs_input_grad = [p.requires_grad for p in ctx.parents]
            input_grads = ctx.backward(ctx, g)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            for parent, pg in zip(ctx.parents, input_grads):
                if pg is not None and parent.requires_grad:
                    earlier = grads.get(parent)
                    if earlier is None:
                        grads[parent] = pg
                        push(pending, (-parent._seq, id(parent), parent))
                    else:
                        grads[parent] = earlier + pg
            if not retain_graph:
                ctx.parents = ctx.saved = None

    # ---- arithmetic (Python numbers and numpy arrays mix in as constants) ----
    def __add__(self, other): return _binary(ops.Add, "add", self, other)
    def __radd__(self, other): return _binary(ops.Add, "add", self, other, reverse=True)
    def __sub__(self, other): return _binary(ops.Sub, "sub", self, other)
    def __rsub__(self, other): return _binary(ops.Sub, "sub", self, other, reverse=True)
    def __mul__(self, other): return _binary(ops.Mul, "mul", self, other)
    def __rmul__(self, other): return _binary(ops.Mul, "mul", self, other, reverse=True)
    def __truediv__(self, other): return _binary(ops.Div, "div", self, other)
    def __rtruediv__(self, other): return _binary(ops.Div, "div", self, other, reverse=True)
    def __pow__(self, other): return _binary(ops.Pow, "pow", self, other)
    def __rpow__(self, other): return _binary(ops.Pow, "pow", self, other, reverse=True)
    def __matmul__(self, other): return _apply(ops.MatMul, self, _lift(other, self))
    def __rmatmul__(self, other): return _apply(ops.MatMul, _lift(other, self), self)
    def __neg__(self): return _apply(ops.Neg, self)
    matmul = __matmul__

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return _apply(ops.GetItem, self, index=index)

    # ---- elementwise functions ----
    def exp(self): return _apply(ops.Exp, self)
    def log(self): return _apply(ops.Log, self)
    def relu(self): return _apply(ops.ReLU, self)
    def sigmoid(self): return _apply(ops.Sigmoid, self)
    def tanh(self): return _apply(ops.Tanh, self)

    # ---- reductions ----
    def sum(self, axis=None, keepdims=False): return _apply(ops.Sum, self, axis=axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return _apply(ops.Mean, self, axis=axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return _apply(ops.Max, self, axis=axis, keepdims=keepdims)

    # ---- shapes ----
    def reshape(self, *shape):
        return _apply(ops.Reshape, self, shape=_shape_arg(shape))

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (_axis("flatten", d, self.shape) for d in (start_dim, end_dim))
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {self.shape})")
        return self.reshape(*self.shape[:start], -1, *self.shape[end + 1:])

    def permute(self, *dims):
        return _apply(ops.Permute, self, dims=_shape_arg(dims))

    def transpose(self, dim0, dim1):
        dim0, dim1 = _axis("transpose", dim0, self.shape), _axis("transpose", dim1, self.shape)
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(*dims)

    # ---- neural-network ops ----
    def conv2d(self, weight, bias=None, stride=1, padding=0):
        inputs = (self, _lift(weight, self)) if bias is None else (self, _lift(weight, self), _lift(bias, self))
        return _apply(ops.Conv2d, *inputs, stride=stride, padding=padding)

    def max_pool2d(self, kernel_size=2, stride=None):
        return _apply(ops.MaxPool2d, self, kernel_size=kernel_size, stride=stride)

    def softmax(self, axis=-1):
        """Probabilities. For a loss use log_softmax or cross_entropy: log(softmax) is -inf
        wherever a probability underflows to 0."""
        return _apply(ops.Softmax, self, axis=axis)

    def log_softmax(self, axis=-1):
        """log(softmax(x)) computed stably: finite for any finite logits."""
        return _apply(ops.LogSoftmax, self, axis=axis)

    def cross_entropy(self, labels):
        """Mean over the batch of -log softmax(self)[i, labels[i]]; self is (N, classes) logits."""
        return _apply(ops.CrossEntropy, self, labels=class_indices(labels))
