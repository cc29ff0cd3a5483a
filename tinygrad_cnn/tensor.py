"""The engine: Tensor, the tape it records, and the generic backward walk.

Every op is a `Function` (ops/): a `forward` on numpy arrays and a `backward` beside it. Applied
to Tensors, an op keeps its ctx as the result's `_ctx`, with the input tensors as `ctx.parents`:
that chain of ctxs is the tape. `backward()` walks it from the output, latest-created tensor
first (a reverse topological order), and hands each op the gradient of its output.

One backward serves two purposes. Its arguments are numpy arrays on the ordinary first-order
walk (fast: no tape), and Tensors under `create_graph=True`: then the arrays it saved that are its
inputs or its output are handed back as those Tensors, and its arithmetic and `Op.apply` calls
record themselves, so the gradient is itself on the tape and can be differentiated again.
Nothing here knows about layers, networks or data sets.
"""
import functools
import heapq
import itertools

import numpy as np

_grad_enabled = True
_creation_order = itertools.count(1)  # each tensor is numbered after its inputs
_last_change = 0  # the stamp of the latest in-place change to any tensor's data
_tracer = None    # a tool watching every op (profile, anomaly mode): see set_tracer


class set_grad_enabled:
    """Context manager (or decorator) that turns recording on the tape on or off."""

    def __init__(self, mode):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, self.mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)
        return wrapped


class no_grad(set_grad_enabled):
    """Context manager (or decorator) under which ops record nothing on the tape."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Record on the tape again, e.g. inside a no_grad block."""

    def __init__(self):
        super().__init__(True)


def is_grad_enabled():
    return _grad_enabled


def set_tracer(tracer):
    """Install `tracer` (or None) to watch every op: `tracer.forward(op, inputs, kwargs, run)`
    must return run(), and `tracer.backward(ctx, output, grad, run)` must return run(). Only the
    tools (profile, anomaly mode) use this; with no tracer, ops pay one global check."""
    global _tracer
    _tracer = tracer


class Function:
    """One op: `forward(ctx, *arrays, **options)` on numpy arrays, and `backward(ctx, grad)`
    returning one gradient per positional input (None where not needed).

    In forward, `ctx.save_for_backward(...)` keeps what backward needs and plain attributes keep
    small metadata. Save the op's inputs and output as the very arrays received and returned:
    under create_graph=True backward gets those back as Tensors. Anything else saved is a
    constant to the second derivative, so save only what has a zero derivative (masks, indices),
    or take a numpy-only fast path when the gradient is an array. `ctx.needs_input_grad` says
    which inputs want a gradient. Ops never modify the incoming `grad` in place.

    `Op.apply(*args)` runs the op: on Tensors it records it on the tape; on numpy arrays alone it
    is just the forward. Backward rules call ops this way, so they work in both modes.
    """

    saved = ()

    def save_for_backward(self, *values):
        self.saved = values

    saved_tensors = property(lambda self: self.saved)

    @classmethod
    def apply(cls, *args, **kwargs):
        for a in args:
            if isinstance(a, Tensor):
                break
        else:
            return cls.forward(cls(), *args, **kwargs)
        return _apply(cls, *[a if isinstance(a, Tensor) else _ConstantInput(a) for a in args], **kwargs)


class _ConstantInput:
    """Stands in ctx.parents for a non-Tensor argument of Function.apply (no gradient)."""
    __slots__ = ("_data",)
    requires_grad, _ctx, _meta, _seq = False, None, None, 0

    def __init__(self, value):
        self._data = value


def once_differentiable(backward):
    """Decorator for a custom Function's backward written in plain numpy. Under create_graph it
    runs on arrays, and differentiating its result again raises an error naming the op."""
    @functools.wraps(backward)
    def wrapped(ctx, grad):
        if type(grad) is not Tensor:
            return backward(ctx, grad)
        ctx.saved = tuple(s._data if isinstance(s, Tensor) else s for s in ctx.saved)
        with no_grad():
            grads = backward(ctx, grad._data)
        single = type(grads) is not tuple
        grads = tuple(None if g is None else _once(g, ctx, grad) for g in ((grads,) if single else grads))
        return grads[0] if single else grads
    return wrapped


class _OnceDifferentiable(Function):
    """The gradient a @once_differentiable backward computed, recorded as depending on what it
    depends on (the op's inputs and the incoming gradient), so that any later derivative through
    it, by backward() or autograd.grad, reaches this backward and its error."""
    @staticmethod
    def forward(ctx, result, *depends_on, name):
        ctx.name = name
        return result

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(f"{ctx.name}.backward is marked @once_differentiable: its gradient cannot be "
                           f"differentiated again. Write its backward with Tensor operations instead")


def _once(g, ctx, grad):
    inputs = [p for p in ctx.parents if isinstance(p, Tensor)]
    return _apply(_OnceDifferentiable, _constant(np.asarray(g)), grad, *inputs, name=type(ctx).__name__)


def _apply(op, *inputs, **kwargs):
    """Run `op` on tensors and, if any input needs a gradient, record it on the tape."""
    if _tracer is not None:
        return _traced(op, inputs, kwargs)
    ctx = op()
    try:
        out = op.forward(ctx, *[t._data for t in inputs], **kwargs)
    except np.exceptions.AxisError as e:  # an axis argument numpy rejected
        shapes = " and ".join(str(np.shape(t._data)) for t in inputs)
        raise ValueError(f"{op.__name__.lower()}: {e} (input of shape {shapes})") from None
    result = Tensor.__new__(Tensor)
    if type(out) is not np.ndarray:  # a ufunc on a 0-d array returns a numpy scalar
        array = np.asarray(out)
        ctx.saved = tuple(array if s is out else s for s in ctx.saved)
        out = array
    result._data, result.grad, result._meta, result._seq = out, None, None, next(_creation_order)
    if _grad_enabled and True in [t.requires_grad for t in inputs]:
        ctx.parents = inputs
        result.requires_grad, result._ctx = True, ctx
    else:
        result.requires_grad, result._ctx = False, None
    return result


def _traced(op, inputs, kwargs):
    global _tracer
    tracer = _tracer

    def run():
        global _tracer
        _tracer = None
        try:
            return _apply(op, *inputs, **kwargs)
        finally:
            _tracer = tracer
    return tracer.forward(op, inputs, kwargs, run)


def _lift(value, like):
    """A Python number or numpy array becomes a constant tensor of `like`'s dtype (no upcast),
    except that a fractional number next to an integer or bool tensor stays a float (float32)."""
    if isinstance(value, Tensor) or value is None:
        return value
    dtype = like._data.dtype
    try:
        if dtype.kind != "f" and np.asarray(value).dtype.kind in "fc":
            dtype = np.float32  # int_tensor + 2.5 is 3.5, not 3
        return _constant(np.asarray(value, dtype=dtype))
    except (TypeError, ValueError):
        raise TypeError(f"cannot combine a Tensor with {type(value).__name__} {value!r}") from None


def _constant(array):
    """A tensor off the tape around `array` (not Tensor(...): its checks cost a microsecond)."""
    const = Tensor.__new__(Tensor)
    const._data, const.grad, const.requires_grad, const._ctx, const._meta = array, None, False, None, None
    const._seq = next(_creation_order)
    return const


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


class _Meta:
    """What few tensors carry: hooks, retain_grad, a name, stamps of in-place changes, and the
    values that recorded in-place ops replaced (versions: (stamp, the old value as a tensor)). Ops
    that used an old value hold this tensor, so the old values live as long as it does."""
    __slots__ = ("hooks", "retains_grad", "changed", "rebased", "name", "versions")

    def __init__(self):
        self.hooks, self.retains_grad, self.changed, self.rebased, self.name = [], False, 0, 0, None
        self.versions = []

    watched = property(lambda self: bool(self.hooks) or self.retains_grad)  # backward must call _on_grad


class _HookHandle:
    def __init__(self, hooks, fn):
        self.hooks, self.fn = hooks, fn

    def remove(self):
        if self.fn in self.hooks:
            self.hooks.remove(self.fn)


class Tensor:
    """An n-dimensional array that records the ops applied to it, for reverse-mode autograd.

    Floating-point numpy data keeps its dtype (float64 stays float64); anything else (Python
    numbers, lists, integer arrays) becomes float32, the default dtype, unless `dtype` says.
    `Tensor(array)` shares the array's memory when no conversion is needed (like
    torch.as_tensor); `Tensor(array).clone()` or `Tensor(array.copy())` for a copy.
    """

    __slots__ = ("_data", "grad", "requires_grad", "_ctx", "_seq", "_meta")
    __array_ufunc__ = None  # numpy defers to our operators: ndarray * Tensor -> Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data._data
        if dtype is None:
            floating = isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind == "f"
            dtype = data.dtype if floating else np.float32
        try:
            data = np.asarray(data, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Tensor: cannot make a {np.dtype(dtype)} tensor from {type(data).__name__}: {e}") from None
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype {data.dtype}")
        self._data, self.grad, self.requires_grad, self._ctx, self._meta = data, None, requires_grad, None, None
        self._seq = next(_creation_order)

    @property
    def data(self):
        """The numpy array. Writing it (`t.data -= ...`, `t.data = ...`) is seen by the tape:
        a later backward through an op that saved the old values raises instead of using them."""
        return self._data

    @data.setter
    def data(self, value):
        if value is not self._data:
            value = np.asarray(value)
        self._data = value
        self._mark_changed()

    def _mark_changed(self, rebased=False):
        global _last_change
        meta = self._meta_()
        meta.changed = _last_change = next(_creation_order)
        if rebased:
            meta.rebased = meta.changed

    def _meta_(self):
        if self._meta is None:
            self._meta = _Meta()
        return self._meta

    # ---- plain attributes ----
    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    is_leaf = property(lambda self: self._ctx is None)
    grad_fn = property(lambda self: self._ctx)

    def numpy(self):
        return self._data

    def item(self):
        if self._data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted to a Python number, "
                             f"this one has shape {self.shape}")
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous: "
                               f"use .any() or .all()")
        return bool(self._data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu" or self._data.ndim:
            raise TypeError(f"only 0-d integer tensors can be used as an index, got {self.dtype} {self.shape}")
        return int(self._data)

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._data)))

    __hash__ = object.__hash__  # == is elementwise, as in PyTorch; tensors hash by identity

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:  # numpy would silently compute off the tape
            raise TypeError("a tensor that requires grad cannot become a numpy array implicitly (numpy's result "
                            "would be cut from the tape): use t.detach().numpy(), or Tensor operations")
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    def __repr__(self):
        grad = f", grad_fn=<{type(self._ctx).__name__}>" if self._ctx else ""
        grad += ", requires_grad=True" if self.requires_grad and not self._ctx else ""
        body = np.array2string(self._data, separator=", ", prefix="Tensor(", threshold=50)
        return f"Tensor({body}, dtype={self.dtype}{grad})"

    def detach(self):
        """The same data (shared memory), cut from the tape: no gradient flows through the result."""
        return _constant(self._data)

    def requires_grad_(self, requires_grad=True):
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("requires_grad_: only a leaf's requires_grad can be turned off; use detach()")
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating-point tensors can require grad, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    # ---- hooks ----
    def register_hook(self, fn):
        """Call fn(grad) when this tensor's gradient is computed; a non-None return replaces it.
        Returns a handle whose remove() unregisters fn."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad, so no gradient will reach it")
        hooks = self._meta_().hooks
        hooks.append(fn)
        return _HookHandle(hooks, fn)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in .grad after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        if self._ctx is not None:
            self._meta_().retains_grad = True
        return self

    retains_grad = property(lambda self: self._ctx is None and self.requires_grad
                            or self._meta is not None and self._meta.retains_grad)

    # ---- in-place changes ----
    def _inplace(self, name, compute, *others):
        """Make `compute(self)` (a tensor) this tensor's new value, in the same memory.

        Off the tape (no_grad, or nothing requires grad) the array is overwritten and marked
        changed. On the tape, the op is recorded on a copy of the old value, and this tensor
        becomes the op's result. Ops that used the old value send their gradient to that copy at
        backward (see _as_used), unless they saved the old value: then backward raises."""
        records = _grad_enabled and (self.requires_grad or any(getattr(o, "requires_grad", False) for o in others))
        if not records:
            with no_grad():
                new = compute(self)
            self._write(name, new)
            self._mark_changed()
            return self
        if self._ctx is None and self.requires_grad:
            raise RuntimeError(f"{name}: a leaf tensor that requires grad cannot be changed in place while "
                               f"recording (its gradient would be lost); wrap the change in `with no_grad():`")
        old = Tensor.__new__(Tensor)
        old._data, old.grad, old.requires_grad, old._ctx, old._seq, old._meta = \
            self._data.copy(), None, self.requires_grad, self._ctx, self._seq, None
        if old._ctx is not None:  # the op that made the old value saved it: give it the copy
            old._ctx.saved = tuple(old._data if s is self._data else s for s in old._ctx.saved)
        new = compute(old)
        self._write(name, new)
        self._mark_changed(rebased=True)
        self._meta.versions.append((self._meta.rebased, old))
        if new._ctx is not None:
            new._ctx.saved = tuple(self._data if s is new._data else s for s in new._ctx.saved)
        self._ctx, self.requires_grad, self._seq = new._ctx, new.requires_grad, next(_creation_order)
        return self

    def _write(self, name, new):
        try:
            np.copyto(self._data, new._data, casting="same_kind")
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name}: the result ({new.dtype}, shape {new.shape}) cannot be written into this "
                             f"tensor ({self.dtype}, shape {self.shape}): {e}") from None

    # ---- the backward walk ----
    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf tensor with requires_grad.

        Each op's saved buffers are released afterwards, unless `retain_graph=True` (the default
        when `create_graph=True`). With `create_graph=True` the gradients are Tensors on the
        tape, and `.grad` holds a Tensor that can be differentiated again.
        """
        _backprop([self], [grad], retain_graph, create_graph)


def _seed(t, grad, create_graph, name):
    if not t.requires_grad:
        raise RuntimeError(f"{name}: this tensor does not require grad: none of the tensors it was "
                           f"computed from has requires_grad=True, or it was computed under no_grad()")
    if grad is None:
        if t._data.size != 1:
            raise RuntimeError(f"{name}: grad can be implied only for a scalar output, but this tensor has "
                               f"shape {t.shape}; pass backward(grad=...) with an array of that shape")
        grad = np.array(1, t._data.dtype).reshape(t.shape)  # np.ones_like costs 3x more (measured)
    elif not isinstance(grad, Tensor) or not create_graph:
        grad = np.asarray(grad._data if isinstance(grad, Tensor) else grad, dtype=t.dtype)
    if grad.shape != t.shape:
        raise ValueError(f"{name}: grad has shape {grad.shape}, but the tensor has shape {t.shape}")
    return _constant(grad) if create_graph and not isinstance(grad, Tensor) else grad


def _backprop(roots, seeds, retain_graph, create_graph, inputs=None, name="backward"):
    """The walk. Without `inputs`: accumulate into the leaves' .grad. With `inputs` (a list of
    tensors): return their gradients, touching no .grad, and visit only what leads to them."""
    global _grad_enabled
    if retain_graph is None:
        retain_graph = create_graph
    grads, pending = {}, []
    for t, g in zip(roots, seeds):
        g = _seed(t, g, create_graph, name)
        if t in grads:
            grads[t] = grads[t] + g
        else:
            grads[t] = g
            pending.append((-t._seq, id(t), t))
    heapq.heapify(pending)
    wanted = None if inputs is None else _leading_to(roots, inputs)
    captured = {} if inputs is not None else None
    plain = inputs is None and not create_graph and _tracer is None
    push, pop = heapq.heappush, heapq.heappop
    enabled, _grad_enabled = _grad_enabled, create_graph
    try:
        # A tensor is always created after its inputs, so taking tensors latest-created first
        # reaches each one only after every tensor computed from it: a reverse topological
        # order, without a separate sort (PyTorch orders its backward the same way).
        # (id breaks ties: copied or unpickled tensors share a _seq, and Tensors do not compare)
        while pending:
            t = pop(pending)[2]
            g = grads.pop(t)
            if t._meta is not None and t._meta.watched:
                g = _on_grad(t, g, captured is None)
            ctx = t._ctx
            if ctx is None:  # a leaf: keep the gradient, summed over backward() calls
                if captured is None:
                    _accumulate(t, g)
                elif t in wanted[1]:
                    captured[t] = g
                continue
            if ctx.parents is None:
                raise RuntimeError(f"{name}: trying to go through a graph a second time, but its saved "
                                   "buffers were released by the first backward(); call "
                                   "backward(retain_graph=True) the first time to keep them")
            parents = ctx.parents
            if _last_change > t._seq:
                _check_unchanged(ctx, t, create_graph)
                parents = _as_used(parents, t._seq)
            if plain:
                # Set here, not when the op is recorded: one more live object per recorded op
                # gave the garbage collector a third more work on a long chain (measured).
                needs = ctx.needs_input_grad = [p.requires_grad for p in parents]
                input_grads = ctx.backward(ctx, g)
            else:
                needs, input_grads = _general_step(ctx, parents, t, g, create_graph, wanted, captured)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            for parent, pg, needed in zip(parents, input_grads, needs):
                if pg is not None and needed:
                    earlier = grads.get(parent)
                    if earlier is None:
                        grads[parent] = pg
                        push(pending, (-parent._seq, id(parent), parent))
                    else:
                        grads[parent] = earlier + pg
            if not retain_graph:
                ctx.parents = ctx.saved = None
    finally:
        _grad_enabled = enabled
    return captured


def _general_step(ctx, parents, out, grad, create_graph, wanted, captured):
    """One op's backward when autograd.grad, create_graph or a tracer is involved."""
    if captured is not None and out in wanted[1]:
        captured[out] = grad
    needs = ctx.needs_input_grad = [p.requires_grad if wanted is None else id(p) in wanted[0] for p in parents]
    if create_graph:
        return needs, _differentiable_backward(ctx, out, grad)
    if _tracer is not None:
        return needs, _tracer.backward(ctx, out, grad, lambda: ctx.backward(ctx, grad))
    return needs, ctx.backward(ctx, grad)


def _accumulate(t, g):
    if type(g) is Tensor:  # create_graph: .grad is a Tensor on the tape
        t.grad = g if t.grad is None else g + t.grad
    elif t.grad is None:  # laid out like the data, whatever layout the ops gave g
        t.grad = np.empty_like(t._data)
        t.grad[...] = g
    elif type(t.grad) is Tensor:
        t.grad = t.grad + g
    else:
        t.grad += g


def _on_grad(t, g, accumulate):
    meta = t._meta
    for hook in list(meta.hooks):
        replaced = hook(g)
        if replaced is not None:
            if np.shape(replaced) != np.shape(g):
                raise ValueError(f"hook {getattr(hook, '__name__', hook)} returned a gradient of shape "
                                 f"{np.shape(replaced)} for a tensor of shape {t.shape}")
            g = replaced
    if meta.retains_grad and accumulate and t._ctx is not None:
        if type(g) is Tensor or t.grad is None:
            t.grad = g if type(g) is Tensor else np.array(g)
        else:
            t.grad = t.grad + g
    return g


def _check_unchanged(ctx, out, create_graph):
    """Raise if an input or the output of this op was changed in place after the op ran and the
    op saved its values: its gradient would silently use the new ones."""
    for role, t in [("input", p) for p in ctx.parents] + [("output", out)]:
        meta = t._meta
        if meta is None or meta.changed <= out._seq:
            continue
        if any(s is t._data for s in ctx.saved) or create_graph and ctx.saved:
            name = f" '{meta.name}'" if meta.name else ""
            op = type(ctx).__name__
            raise RuntimeError(f"backward: the {role}{name} ({t.dtype}, shape {t.shape}) of op {op} was changed in "
                               f"place (an in-place op, an optimizer step or a write to .data) after {op} saved it, "
                               f"and its gradient needs the old values. Change it only after backward(), or use an "
                               f"out-of-place op (x = x + y, not x += y)")


def _as_used(parents, seq):
    """The inputs of the op created at `seq` as it used them: where a recorded in-place op rebuilt
    an input afterwards, the value it replaced (kept as a tensor of its own, with the tape that
    made it) takes the gradient, as PyTorch's versions of a tensor do."""
    used = []
    for p in parents:
        meta = p._meta
        if meta is not None and meta.rebased > seq:
            p = next(old for stamp, old in meta.versions if stamp > seq)
        used.append(p)
    return used


def _differentiable_backward(ctx, out, grad):
    """Run ctx.backward on Tensors: what it saved of its inputs and output comes back as those
    tensors, anything else as constants, and its operations record on the tape."""
    arrays = ctx.saved
    by_id = {id(out._data): out}
    by_id.update((id(p._data), p) for p in ctx.parents if isinstance(p, Tensor))
    ctx.saved = tuple(s if type(s) is not np.ndarray else by_id[id(s)] if id(s) in by_id else _constant(s)
                      for s in arrays)
    try:
        if _tracer is not None:
            return _tracer.backward(ctx, out, grad, lambda: ctx.backward(ctx, grad))
        return ctx.backward(ctx, grad)
    except TypeError as e:
        raise TypeError(f"{type(ctx).__name__}.backward failed with create_graph=True ({e}). A backward that "
                        f"is to be differentiated again must use Tensor operations, not numpy functions; "
                        f"or mark it @once_differentiable") from e
    finally:
        ctx.saved = arrays


def _leading_to(roots, inputs):
    """(ids of the tensors from which some input is reachable, the inputs as a set)."""
    targets = set(inputs)
    leads, state, stack = set(), {}, list(roots)
    while stack:  # iterative post-order: a tensor leads to an input if it is one or a parent does
        t = stack[-1]
        if id(t) not in state:
            state[id(t)] = True
            if t._ctx is not None and t._ctx.parents is not None:
                stack.extend(p for p in inputs_of(t) if isinstance(p, Tensor) and id(p) not in state)
            continue
        stack.pop()
        if t in targets or t._ctx is not None and t._ctx.parents is not None and \
                any(id(p) in leads for p in inputs_of(t)):
            leads.add(id(t))
    return leads, targets


def inputs_of(t):
    """The tensors the op that made `t` used, as it used them: where a recorded in-place op rebuilt
    one afterwards, the old version. For tools that walk the tape (export, viz)."""
    return _as_used(t._ctx.parents, t._seq) if _last_change > t._seq else t._ctx.parents


REGISTRY = {}  # Tensor method name -> function, for functional.py and the docs


def register(*names):
    """Decorator: make a function a Tensor method under each of `names` (default: its own name).
    The op families in ops/ define the Tensor API this way, beside each op's forward and backward."""
    def attach(fn):
        for name in names or (fn.__name__,):
            setattr(Tensor, name, fn)
            REGISTRY[name] = fn
        return fn
    return attach
