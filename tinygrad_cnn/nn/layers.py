"""Linear, convolution, pooling, reshaping, dropout and embedding layers."""
import numpy as np

from .. import functional as F
from ..ops.common import pair
from ..tensor import Tensor
from ..ops.shape import embedding, pad
from .module import Module, Parameter


def check_int(layer, name, value, minimum=1):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{layer}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _init_weight(shape, fan_in, init):
    """'kaiming': He-uniform, keeps the activation variance through ReLU layers.
    'tutorial': the from-scratch tutorial's randn / fan_in (its conv: randn / 9)."""
    if init == "kaiming":
        bound = np.sqrt(6.0 / fan_in) if fan_in else 0.0
        return np.random.uniform(-bound, bound, shape).astype(np.float32)
    if init == "tutorial":
        return (np.random.standard_normal(shape) / fan_in).astype(np.float32)
    raise ValueError(f"unknown init {init!r}: use 'kaiming' or 'tutorial'")


class Identity(Module):
    def __init__(self, *args, **kwargs):  # arguments are ignored, as in PyTorch
        pass

    def forward(self, x):
        return x


class Linear(Module):
    """y = x @ weight.T + bias, weight shaped (out_features, in_features) as in PyTorch.
    Weights start He-uniform (init="kaiming", PyTorch's start is narrower) or as the tutorial's
    randn / in_features (init="tutorial"); the bias starts at zero."""

    def __init__(self, in_features, out_features, bias=True, init="kaiming"):
        self.in_features = check_int("Linear", "in_features", in_features, 0)
        self.out_features = check_int("Linear", "out_features", out_features, 0)
        self.weight = Parameter(_init_weight((out_features, in_features), in_features, init))
        self.bias = Parameter(np.zeros(out_features, np.float32)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


def _pad_widths(name, padding, kernel, dilation):
    """F.pad's (left, right, top, bottom) for a padding mode other than zeros."""
    if padding == "valid":
        return None
    if padding == "same":
        (dh, dw), (kh, kw) = pair(name, dilation, "dilation"), kernel
        top, left = dh * (kh - 1) // 2, dw * (kw - 1) // 2
        return left, dw * (kw - 1) - left, top, dh * (kh - 1) - top
    ph, pw = pair(name, padding, "padding")
    return pw, pw, ph, ph


class _ConvNd(Module):
    def _setup(self, name, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
               padding_mode, init, transposed):
        self.in_channels = check_int(name, "in_channels", in_channels)
        self.out_channels = check_int(name, "out_channels", out_channels)
        self.groups = check_int(name, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        kh, kw = pair(name, kernel_size, "kernel_size")
        if min(kh, kw, *pair(name, stride, "stride"), *pair(name, dilation, "dilation")) < 1:
            raise ValueError(f"{name}: kernel_size, stride and dilation must be >= 1, got kernel_size={kernel_size!r}, "
                             f"stride={stride!r}, dilation={dilation!r}")
        if isinstance(padding, str) and (transposed or padding not in ("same", "valid")):
            raise ValueError(f"{name}: padding must be an int or a pair of ints"
                             f"{'' if transposed else ', same or valid'}, got {padding!r}")
        if padding == "same" and pair(name, stride, "stride") != (1, 1):
            raise ValueError(f"{name}: padding='same' needs stride 1 (as in PyTorch), got stride={stride!r}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular") or transposed and padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode must be " + ("'zeros'" if transposed else "'zeros', 'reflect', "
                             "'replicate' or 'circular'") + f", got {padding_mode!r}")
        self.stride, self.padding, self.dilation, self.padding_mode = stride, padding, dilation, padding_mode
        self._pad = None if padding_mode == "zeros" else _pad_widths(name, padding, (kh, kw), dilation)
        # (in, out/groups, kh, kw) for a transposed conv, as in PyTorch; fan_in from dims 1..3 in both
        shape = (in_channels, out_channels // groups, kh, kw) if transposed else \
            (out_channels, in_channels // groups, kh, kw)
        self.weight = Parameter(_init_weight(shape, shape[1] * kh * kw, init))
        self.bias = Parameter(np.zeros(out_channels, np.float32)) if bias else None

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.weight.shape[2:]}, "
                f"stride={self.stride}, padding={self.padding}")
        text += f", dilation={self.dilation}" if self.dilation != 1 else ""
        text += f", groups={self.groups}" if self.groups != 1 else ""
        text += f", padding_mode={self.padding_mode!r}" if self.padding_mode != "zeros" else ""
        return text + f", bias={self.bias is not None}"


class Conv2d(_ConvNd):
    """2-D cross-correlation of NCHW input, weight (out_channels, in_channels/groups, kh, kw).
    padding: int, pair, 'same' or 'valid', filled with zeros or, by padding_mode, by 'reflect',
    'replicate' or 'circular' copies of the input. Weights start as in Linear (init=...)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", init="kaiming"):
        self._setup("Conv2d", in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, init, transposed=False)

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if self._pad is not None:  # reflect, replicate or circular: pad first, then a convolution without
            return pad(x, self._pad, self.padding_mode).conv2d(self.weight, self.bias, self.stride, 0,
                                                               self.dilation, self.groups)
        # the Tensor method, not F.conv2d: one call less per step (this layer is the benchmark's)
        return x.conv2d(self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """The adjoint of Conv2d (a learned upsampling), weight (in_channels, out_channels/groups, kh, kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", init="kaiming"):
        self._setup("ConvTranspose2d", in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                    bias, padding_mode, init, transposed=True)
        self.output_padding = output_padding

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        if return_indices:
            raise ValueError("MaxPool2d: return_indices=True is not supported (the indices are argmax's of the "
                             "windows; compute them with unfold-free ops if you need them)")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x):
        return (x if isinstance(x, Tensor) else Tensor(x)).max_pool2d(self.kernel_size, self.stride, self.padding,
                                                                      self.dilation, self.ceil_mode)

    def extra_repr(self):
        text = f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"
        text += f", padding={self.padding}" if self.padding else ""
        text += f", dilation={self.dilation}" if self.dilation != 1 else ""
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return (x if isinstance(x, Tensor) else Tensor(x)).flatten(self.start_dim, self.end_dim)  # not F's: faster


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size` (Flatten's inverse)."""

    def __init__(self, dim, unflattened_size):
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim if -x.ndim <= self.dim < x.ndim else None
        sizes = self.unflattened_size
        known = int(np.prod([s for s in sizes if s != -1]))
        if dim is None or sizes.count(-1) > 1 or not (known == x.shape[dim] if -1 not in sizes
                                                       else known and x.shape[dim] % known == 0):
            raise ValueError(f"Unflatten: cannot split dimension {self.dim} of shape {x.shape} into {sizes}")
        return x.reshape(*x.shape[:dim], *sizes, *x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Dropout(Module):
    """Inverted dropout: active in train(), the identity in eval()."""

    def __init__(self, p=0.5, inplace=False):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Embedding(Module):
    """A lookup table: row i of weight (num_embeddings, embedding_dim) for each index i. Indices
    are integer arrays or tensors of any shape. Rows start N(0, 1); row padding_idx starts at
    zero and gets no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, _weight=None):
        self.num_embeddings = check_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = check_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not isinstance(padding_idx, (int, np.integer)) or not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be an int in [-{num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx!r}")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            _weight = np.random.standard_normal((num_embeddings, embedding_dim)).astype(np.float32)
            if padding_idx is not None:
                _weight[padding_idx] = 0
        self.weight = Parameter(_weight)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None):
        """An Embedding whose weight is `embeddings` (2-D), frozen unless freeze=False."""
        data = embeddings.data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if data.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {data.shape}")
        layer = cls(*data.shape, padding_idx=padding_idx, _weight=data)
        layer.weight.requires_grad = not freeze
        return layer

    def forward(self, indices):
        return embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}" + \
            (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


