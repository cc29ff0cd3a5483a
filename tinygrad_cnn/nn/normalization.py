"""Normalization layers, written with Tensor ops so every order of derivative comes for free:
BatchNorm1d/2d (with running statistics), LayerNorm, GroupNorm."""
import numpy as np

from ..tensor import Tensor
from .layers import check_int
from .module import Module, Parameter


def _normalize(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over `axes`, with the biased variance, and the statistics."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    return centered * (var + eps) ** -0.5, mean, var


def _check_dtype(name, x, t):
    if t is not None and x.dtype != t.dtype:
        raise TypeError(f"{name}: the input is {x.dtype} {x.shape} but the layer's tensors are {t.dtype}; convert "
                        f"one, e.g. model.to(np.float64) or Tensor(data, dtype=np.float32)")


def _affine(out, weight, bias, shape):
    if weight is not None:
        out = out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


class _BatchNorm(Module):
    """Normalizes each channel over the batch (and positions): in train() with the batch's mean
    and biased variance, while running_mean / running_var follow the batch statistics (the
    unbiased variance) with weight `momentum`, or as a cumulative average when momentum=None; in
    eval() with the running statistics. track_running_stats=False always uses the batch."""

    dims = ()  # the input dimensions accepted

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        name = type(self).__name__
        self.num_features = check_int(name, "num_features", num_features)
        if not eps >= 0 or momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{name}: eps must be >= 0 and momentum in [0, 1] or None, got eps={eps!r}, "
                             f"momentum={momentum!r}")
        self.eps, self.momentum, self.affine, self.track_running_stats = eps, momentum, affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, np.float32)) if affine else None
        tracked = track_running_stats
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, np.float32)) if tracked else None)
        self.register_buffer("running_var", Tensor(np.ones(num_features, np.float32)) if tracked else None)
        self.register_buffer("num_batches_tracked", Tensor(np.array(0), dtype=np.int64) if tracked else None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data = np.zeros_like(self.running_mean.data)
            self.running_var.data = np.ones_like(self.running_var.data)
            self.num_batches_tracked.data = np.zeros_like(self.num_batches_tracked.data)

    def forward(self, x):
        name, c = type(self).__name__, self.num_features
        if x.ndim not in self.dims or x.shape[1] != c:
            raise ValueError(f"{name}: expected a {' or '.join(f'{d}-D' for d in self.dims)} input with {c} channels "
                             f"in dimension 1, got shape {x.shape}")
        _check_dtype(name, x, self.weight if self.affine else self.running_mean)
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, c) + (1,) * (x.ndim - 2)
        if self.training or not self.track_running_stats:
            count = x.data.size // c
            if self.training and count <= 1:
                raise ValueError(f"{name}: expected more than 1 value per channel when training, got input of "
                                 f"shape {x.shape}")
            out, mean, var = _normalize(x, axes, self.eps)
            if self.training and self.track_running_stats:
                self._track(mean.data.reshape(c), var.data.reshape(c) * (count / max(count - 1, 1)))
        else:
            mean, var = self.running_mean.data.reshape(shape), self.running_var.data.reshape(shape)
            out = (x - mean) * ((var + self.eps) ** -0.5).astype(var.dtype)  # constants: no gradient
        return _affine(out, self.weight, self.bias, shape)

    def _track(self, mean, unbiased_var):
        self.num_batches_tracked.data = self.num_batches_tracked.data + 1
        m = 1 / self.num_batches_tracked.data if self.momentum is None else self.momentum
        for stat, new in ((self.running_mean, mean), (self.running_var, unbiased_var)):
            stat.data = ((1 - m) * stat.data + m * new).astype(stat.dtype)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) inputs."""
    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) inputs."""
    dims = (4,)


class LayerNorm(Module):
    """Normalizes over the last dimensions, those of normalized_shape, separately for each
    sample; elementwise_affine adds a weight and bias of that shape."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        for n in shape:
            check_int("LayerNorm", "each size in normalized_shape", n)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.weight = Parameter(np.ones(shape, np.float32)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape, np.float32)) if elementwise_affine and bias else None

    def forward(self, x):
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k:] != self.normalized_shape or x.ndim < k:
            raise ValueError(f"LayerNorm: the input's last dimensions must be normalized_shape "
                             f"{self.normalized_shape}, got input of shape {x.shape}")
        _check_dtype("LayerNorm", x, self.weight)
        out, _, _ = _normalize(x, tuple(range(x.ndim - k, x.ndim)), self.eps)
        return _affine(out, self.weight, self.bias, self.normalized_shape)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalizes each sample over groups of num_channels // num_groups channels (and all
    positions); affine adds a per-channel weight and bias."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        self.num_groups = check_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = check_int("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.eps, self.affine = eps, affine
        self.weight = Parameter(np.ones(num_channels, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, np.float32)) if affine else None

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected an input (N, {self.num_channels}, ...), got shape {x.shape}")
        _check_dtype("GroupNorm", x, self.weight)
        grouped = x.reshape(x.shape[0], self.num_groups, -1)
        out, _, _ = _normalize(grouped, (2,), self.eps)
        return _affine(out.reshape(x.shape), self.weight, self.bias, (1, self.num_channels) + (1,) * (x.ndim - 2))

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
