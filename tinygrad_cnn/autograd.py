"""The autograd API beyond backward(): gradients as values (`grad`), custom ops (`Function`),
and derivatives of functions: `vjp`, `jacobian`, `hessian`, `hvp`."""
import numpy as np

from .tensor import Function, Tensor, _backprop, _constant, enable_grad, once_differentiable  # noqa: F401

__all__ = ["grad", "Function", "once_differentiable", "vjp", "jacobian", "hessian", "hvp"]


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of `outputs` with respect to `inputs` (a tuple of Tensors), as in
    torch.autograd.grad: the leaves' `.grad` is left alone, and only what leads to `inputs` is
    visited. `grad_outputs` weighs each output (needed for non-scalar ones). With
    `create_graph=True` the results are on the tape and can be differentiated again; the
    graph is then kept (`retain_graph` defaults to `create_graph`). An input that does not
    influence the outputs raises, unless `allow_unused=True` (then its gradient is None)."""
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    seeds = [None] * len(outputs) if grad_outputs is None else _as_list(grad_outputs)
    if len(seeds) != len(outputs):
        raise ValueError(f"grad: got {len(seeds)} grad_outputs for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} is not a Tensor that requires grad")
    for i, t in enumerate(outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: output {i} is a {type(t).__name__}, not a Tensor")
    captured = _backprop(outputs, seeds, retain_graph, create_graph, inputs=inputs, name="grad")
    results = []
    for i, t in enumerate(inputs):
        g = captured.get(t)
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                               f"pass allow_unused=True to get None for it")
        results.append(g if g is None or type(g) is Tensor else _constant(np.array(g)))
    return tuple(results)


def _call(f, inputs, create_graph):
    """Run f on leaf copies of inputs (so derivatives are taken with respect to them)."""
    single = isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple))
    leaves = [Tensor(x) if not isinstance(x, Tensor) else x for x in _as_list(inputs)]
    leaves = [x if x.requires_grad and create_graph else _leaf(x) for x in leaves]
    with enable_grad():
        out = f(*leaves)
    return single, leaves, out


def _leaf(x):
    leaf = Tensor(x.data, requires_grad=True)
    if leaf.dtype.kind != "f":
        raise TypeError(f"derivatives need floating-point inputs, got {x.dtype}")
    return leaf


def _unpack(single, values):
    return values[0] if single else tuple(values)


def vjp(f, inputs, v=None, create_graph=False):
    """(f(inputs), v^T J): the vector-Jacobian product of f at inputs, as
    torch.autograd.functional.vjp. v may be omitted for a scalar output."""
    single, leaves, out = _call(f, inputs, create_graph)
    grads = grad(out, leaves, grad_outputs=v, create_graph=create_graph, allow_unused=True)
    grads = [g if g is not None else _constant(np.zeros_like(x.data)) for g, x in zip(grads, leaves)]
    return (out if create_graph else out.detach()), _unpack(single, grads)


def jacobian(f, inputs, create_graph=False):
    """The Jacobian of f at inputs, shaped output.shape + input.shape (one per input when
    inputs is a tuple), as torch.autograd.functional.jacobian; one backward per output element."""
    single, leaves, out = _call(f, inputs, create_graph)
    if not out.requires_grad:  # f does not depend on its inputs
        return _unpack(single, [_constant(np.zeros(out.shape + x.shape, x.dtype)) for x in leaves])
    rows = [[] for _ in leaves]
    for k in range(out.data.size):
        seed = np.zeros(out.shape, out.dtype)
        seed.flat[k] = 1
        grads = grad(out, leaves, grad_outputs=seed, retain_graph=True, create_graph=create_graph,
                     allow_unused=True)
        for r, g, x in zip(rows, grads, leaves):
            r.append(g if g is not None else _constant(np.zeros_like(x.data)))
    from .ops.shape import stack
    jac = [stack(r).reshape(*out.shape, *x.shape) if r else _constant(np.zeros(out.shape + x.shape, x.dtype))
           for r, x in zip(rows, leaves)]
    return _unpack(single, jac)


def hessian(f, inputs, create_graph=False):
    """The Hessian of a scalar f at inputs, shaped input.shape + input.shape (a nested tuple
    for several inputs), as torch.autograd.functional.hessian: the Jacobian of the gradient."""
    single = isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple))

    def gradient(*xs):
        out = f(*xs)
        if out.data.size != 1:
            raise ValueError(f"hessian: f must return a single number, got shape {out.shape}")
        return grad(out, xs, create_graph=True, allow_unused=True)

    _, leaves, _ = _call(lambda *xs: None, inputs, create_graph)
    blocks = []
    for i in range(len(leaves)):
        def gradient_i(*xs, i=i):
            g = gradient(*xs)[i]
            return g if g is not None else _constant(np.zeros_like(xs[i].data))
        blocks.append(_as_list(jacobian(gradient_i, tuple(leaves), create_graph=create_graph)))
    return blocks[0][0] if single else tuple(tuple(b) for b in blocks)


def hvp(f, inputs, v, create_graph=False):
    """(f(inputs), H v): the Hessian of a scalar f times v, by differentiating the gradient
    (double backward) without forming H, as torch.autograd.functional.hvp."""
    single, leaves, out = _call(f, inputs, create_graph)
    if out.data.size != 1:
        raise ValueError(f"hvp: f must return a single number, got shape {out.shape}")
    vs = _as_list(v)
    if len(vs) != len(leaves):
        raise ValueError(f"hvp: got {len(vs)} vectors for {len(leaves)} inputs")
    grads = grad(out, leaves, create_graph=True, allow_unused=True)
    dot = None
    for g, u, x in zip(grads, vs, leaves):
        u = u.data if isinstance(u, Tensor) else np.asarray(u, x.dtype)
        if u.shape != x.shape:
            raise ValueError(f"hvp: v has shape {u.shape}, but its input has shape {x.shape}")
        if g is not None:
            term = (g * u).sum()
            dot = term if dot is None else dot + term
    if dot is None or not dot.requires_grad:
        products = [_constant(np.zeros_like(x.data)) for x in leaves]
    else:
        products = grad(dot, leaves, create_graph=create_graph, allow_unused=True)
        products = [p if p is not None else _constant(np.zeros_like(x.data)) for p, x in zip(products, leaves)]
    return (out if create_graph else out.detach()), _unpack(single, products)
