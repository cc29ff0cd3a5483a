"""Every differentiable op: a forward and a backward on numpy arrays, side by side.

An op instance is the `ctx` of one call: `forward` keeps what `backward` will need
(`ctx.save_for_backward(...)` for arrays, plain attributes for small metadata), and
`backward(ctx, grad)` returns the gradient for each input (None where not needed). The
engine in tensor.py sets `ctx.needs_input_grad` before `backward` runs, so an op can skip
gradients nobody asked for. Ops never modify the incoming `grad` in place.
"""
import functools

import numpy as np


class Function:
    saved = ()

    def save_for_backward(self, *arrays):
        self.saved = arrays


def unbroadcast(grad, shape):
    """Sum `grad` back to `shape`: undo numpy broadcasting of an input of that shape."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=tuple(range(lead)) + stretched).reshape(shape)


def check_same_dtype(name, x, w):
    """Matrix products do not promote: a float64 batch would silently make a float32 model's
    whole training step float64 (and slower). PyTorch refuses too."""
    if x.dtype != w.dtype:
        raise TypeError(f"{name}: operands have different dtypes, {x.dtype} {x.shape} and {w.dtype} {w.shape}; "
                        f"convert one, e.g. Tensor(data, dtype=np.float32) or model.to(np.float64)")


def check_labels(name, labels, scores_shape):
    """Class indices for (N, classes) scores: integers of shape (N,), each in [0, classes)."""
    labels = np.asarray(labels)
    n, classes = scores_shape
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: labels must be integers of shape ({n},) for scores of shape {scores_shape}, "
                         f"got {labels.dtype} of shape {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{name}: labels must lie in [0, {classes}), got values from "
                         f"{labels.min()} to {labels.max()}")
    return labels


# ---- elementwise, with broadcasting -------------------------------------------------------

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
        ctx.save_for_backward(x, y)
        return x / y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved
        dx = unbroadcast(grad / y, x.shape) if ctx.needs_input_grad[0] else None
        dy = unbroadcast(-grad * x / (y * y), y.shape) if ctx.needs_input_grad[1] else None
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
                dx = unbroadcast(np.where(y == 0, 0, grad * y * x ** (y - 1)), x.shape)
            if ctx.needs_input_grad[1]:  # at x = 0, y >= 0: 0, not 0 * log 0 (PyTorch's convention)
                dy = unbroadcast(np.where((x == 0) & (y >= 0), 0, grad * out * np.log(x)), y.shape)
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


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad * (ctx.saved[0] > 0)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        out = 0.5 * np.tanh(0.5 * x) + 0.5  # never overflows, unlike 1 / (1 + exp(-x))
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


# ---- reductions ---------------------------------------------------------------------------

def _expand(grad, shape, axis, keepdims):
    """Give a reduced gradient back its reduced axes so it broadcasts against `shape`."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)
    return np.broadcast_to(grad, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad, ctx.shape, ctx.axis, ctx.keepdims)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        out = x.mean(axis=axis, keepdims=keepdims)
        ctx.scale = out.size / x.size if x.size else 0.0
        return out

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad * ctx.scale, ctx.shape, ctx.axis, ctx.keepdims)


class Max(Function):
    """Ties share the gradient equally (like torch.amax): the symmetric subgradient."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axis, ctx.keepdims = axis, keepdims
        out = x.max(axis=axis, keepdims=True)
        ctx.save_for_backward(x == out)
        return out if keepdims else out.squeeze(axis)

    @staticmethod
    def backward(ctx, grad):
        mask = ctx.saved[0]
        share = mask / mask.sum(axis=ctx.axis, keepdims=True)
        return _expand(grad, mask.shape, ctx.axis, ctx.keepdims) * share.astype(grad.dtype, copy=False)


# ---- shapes and indexing ------------------------------------------------------------------

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
        if not ctx.saved:
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
        return grad.transpose(np.argsort([d % grad.ndim for d in ctx.dims]))


def _is_advanced(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) for p in parts)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        dx = np.zeros(ctx.shape, ctx.dtype)
        if _is_advanced(ctx.index):
            np.add.at(dx, ctx.index, grad)  # an index may repeat: each occurrence adds
        else:
            dx[ctx.index] = grad
        return dx


# ---- linear algebra and convolution -------------------------------------------------------

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


@functools.lru_cache(maxsize=256)
def _offsets(kh, kw, stride, oh, ow):
    """For each position (i, j) inside a window: the height and width slices that pick it out
    of all oh x ow windows at once."""
    return tuple((i, j, slice(i, i + stride * (oh - 1) + 1, stride), slice(j, j + stride * (ow - 1) + 1, stride))
                 for i in range(kh) for j in range(kw))


def _weight_grad(grad_rows, cols, out_rows):
    """grad_rows @ cols.T, whose inner dimension runs over every output position. When the
    result is small next to one output row's share of that dimension, it is summed over one
    product per output row instead: OpenBLAS runs a single product with so long an inner
    dimension and so small a result 3-5x slower (measured). For big results one product is best."""
    (o, positions), k = grad_rows.shape, cols.shape[0]
    if o * k > positions // out_rows:
        return grad_rows @ cols.T
    grad_by_row = grad_rows.reshape(o, out_rows, -1).transpose(1, 0, 2)
    return (grad_by_row @ cols.reshape(k, out_rows, -1).transpose(1, 2, 0)).sum(axis=0)


class Conv2d(Function):
    """Cross-correlation by im2col + one matmul, with the batch innermost in memory: the
    columns form a (C*kh*kw, OH*OW*N) matrix, built one kernel position at a time from a
    (C, H, W, N) copy of the input, and the output is (O, OH, OW, N) in memory, returned as an
    NCHW view. Then every spatial slice, here and in a max-pool or conv that follows (pool
    and ReLU keep the layout), is a run of N contiguous numbers or more, which numpy copies and
    compares several times faster than the stride-2 elements of an NCHW pooling window."""

    @staticmethod
    def forward(ctx, x, w, *bias, stride=1, padding=0):
        if x.ndim != 4 or w.ndim != 4:
            raise ValueError(f"conv2d: expected a 4-D NCHW input and a 4-D OIHW weight, "
                             f"got input {x.shape} and weight {w.shape}")
        if x.shape[1] != w.shape[1]:
            raise ValueError(f"conv2d: input has {x.shape[1]} channels but the weight expects {w.shape[1]} "
                             f"(input {x.shape}, weight {w.shape})")
        if bias and bias[0].shape != (w.shape[0],):
            raise ValueError(f"conv2d: bias must have shape ({w.shape[0]},), got {bias[0].shape}")
        check_same_dtype("conv2d", x, w)
        if not (isinstance(stride, int) and stride >= 1 and isinstance(padding, int) and padding >= 0):
            raise ValueError(f"conv2d: stride must be an int >= 1 and padding an int >= 0, "
                             f"got stride={stride!r}, padding={padding!r}")
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        p = padding
        hp, wp = h + 2 * p, wd + 2 * p
        if kh > hp or kw > wp:
            raise ValueError(f"conv2d: kernel {(kh, kw)} is larger than the padded input {(hp, wp)} "
                             f"(input {x.shape}, padding {p})")
        xt = x.transpose(1, 2, 3, 0)  # (C, H, W, N): free when x came from a conv
        if p:
            padded = np.zeros((c, hp, wp, n), x.dtype)
            padded[:, p:p + h, p:p + wd] = xt
            xt = padded
        else:
            xt = np.ascontiguousarray(xt)  # one transposing copy beats kh*kw gathering ones
        oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1
        offsets = _offsets(kh, kw, stride, oh, ow)
        cols = np.empty((c, kh, kw, oh, ow, n), x.dtype)
        for i, j, hs, ws in offsets:
            cols[:, i, j] = xt[:, hs, ws]
        cols = cols.reshape(c * kh * kw, oh * ow * n)
        wmat = w.reshape(o, c * kh * kw)
        out = wmat @ cols
        if bias:
            out += bias[0][:, None]
        ctx.save_for_backward(cols, wmat)
        ctx.geometry, ctx.offsets = (x.shape, kh, kw, p), offsets
        return out.reshape(o, oh, ow, n).transpose(3, 0, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        cols, wmat = ctx.saved
        (n, c, h, wd), kh, kw, p = ctx.geometry
        o, oh, ow = grad.shape[1:]
        grad_rows = grad.transpose(1, 2, 3, 0).reshape(o, -1)  # free when grad has the output's layout
        needs = ctx.needs_input_grad
        dw = _weight_grad(grad_rows, cols, oh).reshape(o, c, kh, kw) if needs[1] else None
        dx = None
        if needs[0]:
            # col2im: each kernel position adds its block of columns back where it was read from.
            dcols = (wmat.T @ grad_rows).reshape(c, kh, kw, oh, ow, n)
            dxt = np.zeros((c, h + 2 * p, wd + 2 * p, n), grad.dtype)
            for i, j, hs, ws in ctx.offsets:
                dxt[:, hs, ws] += dcols[:, i, j]
            dx = dxt[:, p:p + h, p:p + wd].transpose(3, 0, 1, 2)
        if len(needs) == 2:
            return dx, dw
        return dx, dw, grad_rows.sum(axis=1) if needs[2] else None


class MaxPool2d(Function):
    """Each window's gradient goes to one position: its first maximum in row-major order, as
    in PyTorch. (The tutorial copies it to every tied position; on MNIST's flat background most
    windows tie, so the two differ there. This one is the subgradient of the max.)

    Windows are walked by position, not by pixel: slice (i, j) of the input holds element (i, j)
    of every window at once, for any kernel and stride."""

    @staticmethod
    def forward(ctx, x, kernel_size=2, stride=None):
        k, s = kernel_size, kernel_size if stride is None else stride
        if x.ndim != 4:
            raise ValueError(f"max_pool2d: expected a 4-D NCHW input, got shape {x.shape}")
        if not (isinstance(k, int) and isinstance(s, int) and k >= 1 and s >= 1):
            raise ValueError(f"max_pool2d: kernel_size and stride must be ints >= 1, got {k!r} and {s!r}")
        h, w = x.shape[2:]
        if k > h or k > w:
            raise ValueError(f"max_pool2d: kernel {k}x{k} is larger than the input's spatial size {(h, w)}")
        oh, ow = (h - k) // s + 1, (w - k) // s + 1  # odd edges are dropped: a floor
        offsets = _offsets(k, k, s, oh, ow)
        # One contiguous copy per window position, in x's memory layout (whichever order its
        # axes are stored in): the max and the whole backward then run on contiguous arrays
        # whose layouts match, which numpy does several times faster than strided ones.
        windows = [x[:, :, hs, ws].copy(order="K") for _, _, hs, ws in offsets]
        out = windows[0] if k == 1 else np.maximum(windows[0], windows[1])
        for window in windows[2:]:
            np.maximum(out, window, out=out)
        ctx.offsets, ctx.kernel_stride = offsets, (k, s)
        ctx.save_for_backward(x, windows, out)  # x for its memory layout: dx is written like it
        return out

    @staticmethod
    def backward(ctx, grad):
        x, windows, out = ctx.saved
        k, s = ctx.kernel_stride
        oh, ow = out.shape[2:]
        overlap, tiled = s < k, s == k and (oh * k, ow * k) == x.shape[2:]
        dx = np.empty_like(x, dtype=grad.dtype) if tiled else np.zeros_like(x, dtype=grad.dtype)
        taken = np.zeros_like(out, bool)  # windows whose maximum has had its gradient
        for window, (_, _, hs, ws) in zip(windows, ctx.offsets):
            first = window == out
            first &= ~taken
            if overlap:
                dx[:, :, hs, ws] += grad * first
            else:
                np.multiply(grad, first, out=dx[:, :, hs, ws])
            taken |= first
        return dx


# ---- softmax and the loss -----------------------------------------------------------------

def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)  # the largest logit becomes 0: exp cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.saved[0]
        return out * (grad - (grad * out).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, x, axis=-1):
        out = _log_softmax(x, axis)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad - np.exp(ctx.saved[0]) * grad.sum(axis=ctx.axis, keepdims=True)


class CrossEntropy(Function):
    """Mean over the batch of -log softmax(logits)[label], fused: the gradient is
    (softmax - onehot) / N, with no log of a probability that may have underflowed to 0."""

    @staticmethod
    def forward(ctx, logits, labels):
        if logits.ndim != 2:
            raise ValueError(f"cross_entropy: expected logits of shape (N, classes), got {logits.shape}")
        n = len(logits)
        labels = check_labels("cross_entropy", labels, logits.shape)
        logp = _log_softmax(logits, 1)
        ctx.save_for_backward(logp, labels)
        return -logp[np.arange(n), labels].sum() / n

    @staticmethod
    def backward(ctx, grad):
        logp, labels = ctx.saved
        n = len(labels)
        d = np.exp(logp)
        d[np.arange(n), labels] -= 1
        d *= grad / n
        return d
