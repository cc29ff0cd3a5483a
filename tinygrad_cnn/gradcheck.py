"""Finite-difference checks of first and second derivatives, in float64."""
import numpy as np

from .tensor import Tensor, _backprop, enable_grad, no_grad


class GradcheckError(AssertionError):
    pass


def _float64_args(inputs):
    return [Tensor(x._data.astype(np.float64), requires_grad=x.requires_grad)
            if isinstance(x, Tensor) and x.dtype.kind == "f" and x.dtype != np.float64 else x
            for x in inputs]


def _checked(name, args):
    checked = [i for i, x in enumerate(args) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError(f"{name}: no input has requires_grad=True, so there is nothing to check")
    return checked


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Check autograd's gradients of `fn(*inputs)` against central differences.

    Every input Tensor with requires_grad=True is checked; non-Tensor inputs are passed through
    as they are. A non-scalar output is contracted with a random upstream gradient (fixed by
    `seed`), so every output element and its position matter. The computation runs in float64:
    floating Tensors of other dtypes become float64 copies, while float64 tensors are used in
    place (perturbed, then restored, their `.grad` left as it was), so `fn` may close over
    them, e.g. over a module's parameters after `module.to(np.float64)`. Returns True, or
    raises GradcheckError naming the input, the element index and both values.
    """
    args = _float64_args(inputs)
    checked = _checked("gradcheck", args)
    upstream = []

    def value():
        out = fn(*args)
        if not isinstance(out, Tensor):
            raise ValueError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        if out.data.size == 1:
            return out.sum()
        if not upstream:
            upstream.append(np.random.default_rng(seed).standard_normal(out.shape))
        return (out * upstream[0]).sum()

    def analytic():
        with enable_grad():
            out = value()
        if not out.requires_grad:
            return [None] * len(checked)
        grads = _backprop([out], [None], False, False, inputs=[args[i] for i in checked], name="gradcheck")
        return [grads.get(args[i]) for i in checked]

    _compare("gradcheck", value, analytic, args, checked, eps, atol, rtol, unused_is_zero=False)
    return True


def gradgradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Check second derivatives: the gradient of <d fn/d inputs · u, w>, taken by autograd through
    its own backward (create_graph=True), against central differences of the first derivative
    autograd computes, for a random upstream gradient u and random weights w (fixed by `seed`).
    Inputs and dtypes are handled as in gradcheck. Returns True or raises GradcheckError."""
    from .autograd import grad
    args = _float64_args(inputs)
    checked = _checked("gradgradcheck", args)
    rng = np.random.default_rng(seed)
    with no_grad():
        out_shape = fn(*args).shape
    u = rng.standard_normal(out_shape)
    weights = [rng.standard_normal(args[i].shape) for i in checked]

    def first_derivative(create_graph):
        with enable_grad():
            out = fn(*args)
            if not out.requires_grad:
                return Tensor(np.float64(0.0))
            grads = grad(out, [args[i] for i in checked], grad_outputs=u, create_graph=create_graph,
                         allow_unused=True)
            total = Tensor(np.float64(0.0))
            for g, w in zip(grads, weights):
                if g is not None:
                    total = total + (g * w).sum()
            return total

    def analytic():
        total = first_derivative(create_graph=True)
        if not total.requires_grad:  # the first derivative does not depend on the inputs
            return [None] * len(checked)
        grads = _backprop([total], [None], False, False, inputs=[args[i] for i in checked], name="gradgradcheck")
        return [grads.get(args[i]) for i in checked]

    _compare("gradgradcheck", lambda: first_derivative(create_graph=False), analytic, args, checked, eps,
             atol, rtol, unused_is_zero=True)
    return True


def _compare(name, value, analytic, args, checked, eps, atol, rtol, unused_is_zero):
    earlier_grads = [args[i].grad for i in checked]
    try:
        for i in checked:
            args[i].grad = None
        results = analytic()
        for i, result in zip(checked, results):
            x = args[i]
            if result is None and not unused_is_zero:  # as in PyTorch: most often fn uses a copy, not x
                raise GradcheckError(f"{name}: input {i} (shape {x.shape}) was not used by fn: no gradient "
                                     f"reached it. If fn closes over tensors, pass those very tensors in float64 "
                                     f"(e.g. module.to(np.float64)); other dtypes are checked on copies.")
            result = np.zeros(x.shape) if result is None else np.asarray(result.data if isinstance(result, Tensor)
                                                                          else result)
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
                if not abs(result[index] - numeric) <= atol + rtol * abs(numeric):
                    order = "second derivative" if name == "gradgradcheck" else "gradient"
                    raise GradcheckError(f"{name}: {order} of input {i} (shape {x.shape}) differs at index "
                                         f"{index}: autograd gives {result[index]!r}, finite differences give "
                                         f"{numeric!r}")
    finally:
        for i, grad in zip(checked, earlier_grads):
            args[i].grad = grad
