"""Finite-difference gradient checking, in float64."""
import numpy as np

from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    pass


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4):
    """Check autograd's gradients of the scalar `fn(*inputs)` against central differences.

    Every input Tensor with requires_grad=True is checked; non-Tensor inputs are passed through
    as they are. The computation runs in float64: floating Tensors of other dtypes become float64
    copies, while float64 tensors are used in place (perturbed, then restored, their `.grad` left as it
    was), so `fn` may close over them, e.g. over a module's parameters after
    `module.to(np.float64)`. Returns True, or raises GradcheckError naming the input, the
    element index and both values.
    """
    args = [Tensor(x.data.astype(np.float64), requires_grad=x.requires_grad)
            if isinstance(x, Tensor) and x.dtype.kind == "f" and x.dtype != np.float64 else x
            for x in inputs]
    checked = [i for i, x in enumerate(args) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")

    def value():
        out = fn(*args)
        if not isinstance(out, Tensor) or out.data.size != 1:
            raise ValueError(f"gradcheck: fn must return a scalar Tensor, got "
                             f"{type(out).__name__} of shape {getattr(out, 'shape', None)}")
        return out

    earlier_grads = [args[i].grad for i in checked]
    try:
        for i in checked:
            args[i].grad = None
        _compare(value, args, checked, eps, atol, rtol)
    finally:
        for i, grad in zip(checked, earlier_grads):
            args[i].grad = grad
    return True


def _compare(value, args, checked, eps, atol, rtol):
    value().backward()
    for i in checked:
        x = args[i]
        if x.grad is None:  # as in PyTorch: most often fn uses a copy, not this tensor
            raise GradcheckError(f"gradcheck: input {i} (shape {x.shape}) was not used by fn: no gradient "
                                 f"reached it. If fn closes over tensors, pass those very tensors in float64 "
                                 f"(e.g. module.to(np.float64)); other dtypes are checked on copies.")
        analytic = x.grad
        for index in np.ndindex(*x.shape):
            original = x.data[index]
            try:
                with no_grad():
                    x.data[index] = original + eps
                    plus = value().item()
                    x.data[index] = original - eps
                    minus = value().item()
            finally:
                x.data[index] = original
            numeric = (plus - minus) / (2 * eps)
            if not abs(analytic[index] - numeric) <= atol + rtol * abs(numeric):
                raise GradcheckError(f"gradcheck: gradient of input {i} (shape {x.shape}) differs at index "
                                     f"{index}: autograd gives {analytic[index]!r}, finite differences give "
                                     f"{numeric!r}")
