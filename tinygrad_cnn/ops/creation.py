"""Tensor factories: Tensor.zeros(2, 3), Tensor.randn(...), ... (float32 by default)."""
import numpy as np

from ..tensor import Tensor, _shape_arg, register


def _factory(name, make):
    def factory(cls, *shape, dtype=np.float32, requires_grad=False):
        return cls(make(_shape_arg(shape), dtype), requires_grad, dtype=dtype)
    factory.__name__ = name
    register(name)(classmethod(factory))
    return factory


_factory("zeros", np.zeros)
_factory("ones", np.ones)
_factory("empty", np.empty)
_factory("randn", lambda shape, dtype: np.random.standard_normal(shape).astype(dtype))
_factory("rand", lambda shape, dtype: np.random.random_sample(shape).astype(dtype))


@register("uniform")
@classmethod
def uniform(cls, *shape, low=-1.0, high=1.0, dtype=np.float32, requires_grad=False):
    return cls(np.random.uniform(low, high, _shape_arg(shape)).astype(dtype), requires_grad, dtype=dtype)


@register("full")
@classmethod
def full(cls, shape, fill_value, dtype=np.float32, requires_grad=False):
    return cls(np.full(_shape_arg((shape,)) if not isinstance(shape, int) else (shape,), fill_value, dtype),
               requires_grad, dtype=dtype)


@register("arange")
@classmethod
def arange(cls, *args, dtype=None, requires_grad=False):
    """torch.arange: int64 for integer arguments, else float32."""
    if dtype is None:
        dtype = np.int64 if all(isinstance(a, (int, np.integer)) for a in args) else np.float32
    return cls(np.arange(*args, dtype=dtype), requires_grad, dtype=dtype)


@register("eye")
@classmethod
def eye(cls, n, m=None, dtype=np.float32, requires_grad=False):
    return cls(np.eye(n, m, dtype=dtype), requires_grad, dtype=dtype)


def _like(name, make):
    def like(x, dtype=None, requires_grad=False):
        dtype = x.dtype if dtype is None else dtype
        return Tensor(make(x.shape, dtype), requires_grad, dtype=dtype)
    like.__name__ = name
    return like


zeros_like = register("zeros_like")(_like("zeros_like", np.zeros))
ones_like = register("ones_like")(_like("ones_like", np.ones))
randn_like = register("randn_like")(_like("randn_like", lambda s, d: np.random.standard_normal(s).astype(d)))
