"""The tape written out as code: a recorded computation becomes a standalone Python function of
numpy code, its forward and then its backward as straight-line code, one short block per op in
the order the engine runs it. It is the hand-written backprop of the from-scratch tutorial
(reference.py), derived from any model:

    loss = model(Tensor(image)).cross_entropy(label)
    step = export.to_function(loss, model, inputs={"image": image, "label": label})
    print(step.source)              # or export.to_source(...) for the text alone
    loss_value, grads = step()      # the recorded inputs: the tape's values and gradients
    loss_value, grads = step(image=other_image)  # it is a function: any other inputs

The function takes the inputs and parameters as arrays and returns (loss, grads), grads a dict by
parameter name. Each op type has a template (TEMPLATES, below) that writes its forward and, for
each input, the gradient. The exporter writes the rest of the chain rule out itself: the
gradients of a tensor that several ops use are summed, and the gradient of an input that numpy
broadcast is summed back to its shape.

Constants become literals (numbers, arrays of a few elements) or arguments of the function
(larger arrays), whose defaults are the recorded values: a dropout mask is an argument, as are
masks made by comparisons (`x > 0` is computed off the tape, so only its value is known) and the
masks that a backward recorded with create_graph=True drew. Masks that an op's own backward
needs (relu's, max-pool's choice of maximum) are computed from the data in the exported code.
Differences from the tape: a max-pool window that holds a NaN gives its gradient to no position
(the engine gives it to the NaN), and numpy may warn where the engine silences it (0 ** -1).
Nothing here runs unless export is called.
"""
import builtins
import heapq
import inspect
import keyword
import math
import re

import numpy as np

from .tensor import Tensor, inputs_of
from .ops import (Add, Sub, Mul, Div, Pow, Neg, Exp, Log, Where, Maximum, ReLU, Sigmoid, Tanh, Sum, Mean, Max,
                  Reshape, Permute, BroadcastTo, GetItem, IndexAdd, MatMul, Linear, Conv2d, ConvTranspose,
                  ConvWeight, MaxPool2d, PoolScatter, PoolGather, Softmax, LogSoftmax, CrossEntropy)
from .ops import activation as A, conv, elementwise as E
from .ops.elementwise import Minimum
from .ops.reduce import Cumsum
from .ops.shape import Cat, Clone, Cast, _is_advanced
from .ops.inplace import SetItem

__all__ = ["to_source", "to_function", "ExportedFunction", "template", "TEMPLATES"]

LITERAL_WIDTH = 72  # an array whose literal is at most this long is written out; larger ones are arguments

# The numpy kernels the exported code may call, by the name it calls them: it imports each one
# from the module that defines it (as it does the namedtuple type of a conv's or pool's geometry).
KERNELS = {"im2col": conv.im2col, "col2im": conv.col2im, "window_offsets": conv.window_offsets,
           **{name: getattr(E, name) for name in ("erf_array", "erfc_array") if hasattr(E, name)}}


# ---- the public API -------------------------------------------------------------------------

def to_source(output, model=None, inputs=None, grad=None, name="loss_and_grads"):
    """The Python source of a function computing `output` and the gradients of every leaf tensor
    that requires grad, written out from the tape (see to_function)."""
    return to_function(output, model, inputs, grad, name).source


def to_function(output, model=None, inputs=None, grad=None, name="loss_and_grads"):
    """The recorded computation of `output` as an ExportedFunction: its `source` is a standalone
    function of numpy code, `name(*arguments) -> (output, grads)`.

    model:  a Module (or a dict name -> Tensor): its parameters are arguments under their names
            ("features.0.weight" becomes argument features_0_weight), and grads is keyed by them.
    inputs: a dict name -> Tensor or numpy array: names for the other leaves and constants (the
            image, the labels); matched by identity with what the ops were given.
    grad:   the upstream gradient when `output` is not a single number (as for backward());
            it becomes the argument d_out.
    Export before backward() or call backward(retain_graph=True): backward releases the tape.
    """
    return _Writer(output, model, inputs, grad, name).write()


class ExportedFunction:
    """An exported function: `source` (the text), `arguments` (name -> the recorded array, in the
    function's order) and `grad_keys` (the keys of the returned grads dict). Calling it runs the
    source with the recorded arguments, replaced by any given by name."""

    def __init__(self, name, source, arguments, grad_keys):
        self.name, self.source, self.arguments, self.grad_keys = name, source, arguments, grad_keys
        self._function = None

    @property
    def function(self):
        """The compiled function itself (it needs all arguments)."""
        if self._function is None:
            namespace = {}
            exec(compile(self.source, f"<exported {self.name}>", "exec"), namespace)
            self._function = namespace[self.name]
        return self._function

    def __call__(self, **arrays):
        unknown = sorted(set(arrays) - set(self.arguments))
        if unknown:
            raise TypeError(f"{self.name}: unknown argument(s) {', '.join(unknown)}; it takes "
                            f"{', '.join(self.arguments)}")
        return self.function(**{**self.arguments, **arrays})

    def save(self, path):
        with open(path, "w") as f:
            f.write(self.source)

    def __str__(self):
        return self.source

    def __repr__(self):
        return f"<ExportedFunction {self.name}({', '.join(self.arguments)})>"


# ---- templates: each op type's forward and backward as numpy code -------------------------------

TEMPLATES = {}  # Function subclass -> _Template


class _Template:
    __slots__ = ("fn", "name", "base", "roles", "varargs")  # few objects: the garbage collector walks them all

    def __init__(self, fn, name, base):
        self.fn, self.name, self.base = fn, name, base
        params = list(inspect.signature(fn).parameters.values())[1:]
        self.roles = tuple(p.name for p in params)  # the inputs' names, for constants' argument names
        self.varargs = any(p.kind is p.VAR_POSITIONAL for p in params)

    def role(self, i):
        if self.varargs and i >= len(self.roles) - 1:
            return self.roles[-1].rstrip("s")
        return self.roles[i] if i < len(self.roles) else "input"


def template(*ops, name=None, base=None):
    """Register `fn(op, *inputs)` as the template of each Function in `ops`.

    `inputs` are Python expressions (variable names or literals) of the op's positional inputs;
    `op` (an Op) gives its ctx, shapes and an emitter. fn writes the forward (op.set(expr), or
    op.let/op.line for several statements) and returns backward(g): g is the name of the output's
    gradient, and backward returns one expression per input, the gradient of that input (None or
    anything for inputs that need none: only op.needs[i] are used). `name` is the op's name in
    comments, `base` the stem of its variables' names."""
    def add(fn):
        for op in ops:
            TEMPLATES[op] = _Template(fn, name or op.__name__.lower(), base or name or op.__name__.lower())
        return fn
    return add


def elementwise(op, name, forward, *grads, base=None):
    """An op that numpy broadcasts: its forward and each input's gradient are expressions in {x},
    {y} (the inputs), {out}, {g} and {dtype}; undoing the broadcast is added here."""
    def emit(op, x, y=None):
        out = op.set(forward.format(x=x, y=y, dtype=op.dtype))
        return lambda g: [op.unbroadcast(d.format(x=x, y=y, out=out, g=g, dtype=op.dtype), i)
                          for i, d in enumerate(grads)]
    template(op, name=name, base=base)(emit)


def _ops(module, *names):
    """The ops of these names that `module` defines (test_every_op_has_a_template checks that
    every op has a template)."""
    return [getattr(module, n) for n in names if hasattr(module, n)]


elementwise(Add, "add", "{x} + {y}", "{g}", "{g}")
elementwise(Sub, "sub", "{x} - {y}", "{g}", "-{g}")
elementwise(Mul, "mul", "{x} * {y}", "{g} * {y}", "{g} * {x}")
# -g * x / y**2 written as -g * (out / y): y**2 could overflow or underflow
elementwise(Div, "div", "{x} / {y}", "{g} / {y}", "-{g} * ({out} / {y})")


@template(Pow, base="power")
def _pow(op, x, y):
    out = op.set(f"{x} ** {y}")
    exponent = op.input_values[1]

    def backward(g):
        if not op.needs[1] and np.ndim(exponent) == 0 and _literal(exponent) == y:  # a number: y - 1 worked out
            dx = f"{g} * {y} * {x} ** {_literal(exponent - 1)}" if exponent != 0 else f"np.zeros_like({g})"
        else:  # at y == 0 the gradient is 0, also where x ** -1 is inf
            dx = f"np.where({y} == 0, 0, {g} * {y} * {x} ** ({y} - 1))"
        # at x == 0, y >= 0 the exponent's gradient is 0, not 0 * log 0 (PyTorch's convention)
        dy = f"np.where(({x} == 0) & ({y} >= 0), 0, {g} * {out} * np.log({x}))"
        return [op.unbroadcast(dx, 0), op.unbroadcast(dy, 1)]
    return backward


elementwise(Neg, "neg", "-{x}", "-{g}")
elementwise(Exp, "exp", "np.exp({x})", "{g} * {out}")
elementwise(Log, "log", "np.log({x})", "{g} / {x}")
# the gradient passes where relu's output is positive, and where it is NaN, as in PyTorch
elementwise(ReLU, "relu", "np.maximum({x}, 0)", "np.where({out} <= 0, 0, {g})")
elementwise(Tanh, "tanh", "np.tanh({x})", "{g} * (1 - {out} * {out})")


# ---- math functions of one tensor: forward and gradient in one line each ----

_SIGN = "np.subtract({x} > 0, {x} < 0, dtype={dtype})"  # sign(x), 0 at NaN as PyTorch's (np.sign gives NaN)
for _name, _forward, _grad in [
        ("Abs", "np.abs({x})", "{g} * " + _SIGN),
        ("Square", "np.square({x})", "{g} * (2 * {x})"),
        ("Sqrt", "np.sqrt({x})", "{g} / (2 * {out})"),
        ("Rsqrt", "1 / np.sqrt({x})", "{g} * (-0.5 * {out} * {out} * {out})"),
        ("Reciprocal", "1 / {x}", "-{g} * ({out} * {out})"),
        ("Log1p", "np.log1p({x})", "{g} / (1 + {x})"),
        ("Expm1", "np.expm1({x})", "{g} * np.exp({x})"),
        ("Log2", "np.log2({x})", f"{{g}} / ({{x}} * {math.log(2)!r})"),
        ("Log10", "np.log10({x})", f"{{g}} / ({{x}} * {math.log(10)!r})"),
        ("Exp2", "np.exp2({x})", f"{{g}} * ({{out}} * {math.log(2)!r})"),
        ("Sin", "np.sin({x})", "{g} * np.cos({x})"),
        ("Cos", "np.cos({x})", "-{g} * np.sin({x})"),
        ("Tan", "np.tan({x})", "{g} * (1 + {out} * {out})"),
        ("Sinh", "np.sinh({x})", "{g} * np.cosh({x})"),
        ("Cosh", "np.cosh({x})", "{g} * np.sinh({x})"),
        # 1 - x*x as (1 - x)(1 + x): exact near the domain's edges
        ("Asin", "np.arcsin({x})", "{g} / np.sqrt((1 - {x}) * (1 + {x}))"),
        ("Acos", "np.arccos({x})", "-{g} / np.sqrt((1 - {x}) * (1 + {x}))"),
        ("Atan", "np.arctan({x})", "{g} / (1 + {x} * {x})"),
        ("Asinh", "np.arcsinh({x})", "{g} / np.hypot({x}, 1)"),
        ("Acosh", "np.arccosh({x})", "{g} / np.sqrt(({x} - 1) * ({x} + 1))"),
        ("Atanh", "np.arctanh({x})", "{g} / ((1 - {x}) * (1 + {x}))"),
        ("Frac", "{x} - np.trunc({x})", "{g}"),
        # piecewise constant: the gradient is exactly 0
        ("Floor", "np.floor({x})", "np.zeros_like({g})"),
        ("Ceil", "np.ceil({x})", "np.zeros_like({g})"),
        ("Trunc", "np.trunc({x})", "np.zeros_like({g})"),
        ("Sign", _SIGN, "np.zeros_like({g})")]:
    for _op in _ops(E, _name):
        elementwise(_op, _name.lower(), _forward, _grad)


@template(*_ops(E, "Round"))
def _round(op, x):
    decimals = getattr(op.ctx, "decimals", None)
    if decimals is None:  # not kept on the ctx: tell it by the values, if only one fits
        fits = [d for d in range(-20, 21) if np.array_equal(np.round(op.input_values[0], d), op.value, equal_nan=True)]
        if len(fits) != 1:
            raise NotImplementedError("export: round's decimals are not recorded on its ctx, and the values do not "
                                      "tell them apart")
        decimals = fits[0]
    op.set(f"np.round({x}, {decimals})" if decimals else f"np.round({x})")
    return lambda g: [f"np.zeros_like({g})"]


@template(*_ops(E, "Erf", "Erfc"))
def _erf(op, x):
    complement = type(op.ctx).__name__ == "Erfc"
    op.name = op.base = "erfc" if complement else "erf"
    op.set(f"{op.kernel(op.name + '_array')}({x}).astype({op.dtype})")

    def backward(g):  # 2/sqrt(pi) exp(-x^2); beyond |x| = 40 it is 0 already, and x*x cannot overflow
        clipped = op.tmp("clipped", f"np.minimum(np.maximum({x}, -40.0), 40.0)")
        return [f"{g} * ({'-' if complement else ''}{2 / math.sqrt(math.pi)!r} * np.exp({clipped} * {clipped} * -1.0))"]
    return backward


def _sigmoid(op, x, negated=False):
    """sigmoid(x) (or sigmoid(-x)) as exp(-|x|) and a quotient: exp never overflows."""
    e = op.tmp("e", f"np.exp(-np.abs({x}))", "exp(-|x|) never overflows")
    return f"np.where({x} {'<=' if negated else '>='} 0, 1, {e}) / (1 + {e})"


@template(Sigmoid)
def _sigmoid_op(op, x):
    out = op.set(_sigmoid(op, x))
    return lambda g: [f"{g} * {out} * (1 - {out})"]


@template(*_ops(A, "LeakyReLU"), name="leaky_relu")
def _leaky_relu(op, x):
    slope = _number(op.ctx.slope)
    op.set(f"np.where({x} > 0, {x}, {x} * {slope})")
    return lambda g: [f"np.where({x} > 0, {g}, {g} * {slope})"]


@template(*_ops(A, "ELU"))
def _elu(op, x):
    alpha = _number(op.ctx.alpha)
    op.set(f"np.where({x} > 0, {x}, {alpha} * np.expm1(np.minimum({x}, 0)))")
    # exp of the negative part only: exp(x) of a large x would overflow
    return lambda g: [f"np.where({x} > 0, {g}, {g} * ({alpha} * np.exp(np.where({x} > 0, 0, {x}))))"]


@template(*_ops(A, "Softplus"))
def _softplus(op, x):
    beta, threshold = op.ctx.beta, _number(op.ctx.threshold)
    bx = x if beta == 1 else op.tmp("bx", f"{x} * {_number(beta)}")
    soft = f"np.maximum({bx}, 0) + np.log1p(np.exp(-np.abs({bx})))"
    op.set(f"np.where({bx} > {threshold}, {x}, {soft if beta == 1 else f'({soft}) / {_number(beta)}'})")

    def backward(g):  # linear above the threshold
        bx = x if beta == 1 else op.tmp("bx", f"{x} * {_number(beta)}")
        return [f"np.where({bx} > {threshold}, {g}, {g} * ({_sigmoid(op, bx)}))"]
    return backward


@template(*_ops(A, "LogSigmoid"), name="logsigmoid")
def _logsigmoid(op, x):
    op.set(f"np.minimum({x}, 0) - np.log1p(np.exp(-np.abs({x})))")
    return lambda g: [f"{g} * ({_sigmoid(op, x, negated=True)})"]  # 1 - sigmoid(x) without cancelling


@template(*_ops(A, "NormalCdf"), name="normal_cdf")
def _normal_cdf(op, x):
    op.set(f"(0.5 * {op.kernel('erfc_array')}(-{x}, half=True)).astype({op.dtype})")

    def backward(g):  # the normal density; beyond |x| = 40 it is 0 already, and x*x cannot overflow
        clipped = op.tmp("clipped", f"np.minimum(np.maximum({x}, -40.0), 40.0)")
        return [f"{g} * ({1 / math.sqrt(2 * math.pi)!r} * np.exp({clipped} * {clipped} * -0.5))"]
    return backward


@template(*_ops(A, "SiLU"), name="silu")
def _silu(op, x):
    s = op.let("s", _sigmoid(op, x))
    op.set(f"{x} * {s}")
    return lambda g: [f"{g} * ({s} * (1 + {x} * (1 - {s})))"]  # the slope first, as PyTorch


@template(*_ops(A, "Mish"), name="mish")
def _mish(op, x):
    soft = f"np.where({x} > 20.0, {x}, np.maximum({x}, 0) + np.log1p(np.exp(-np.abs({x}))))"
    t = op.let("t", f"np.tanh({soft})")
    op.set(f"{x} * {t}")
    return lambda g: [f"{g} * ({t} + {x} * (1 - {t} * {t}) * ({_sigmoid(op, x)}))"]


@template(*_ops(A, "GELU"), name="gelu")
def _gelu(op, x):
    cdf = op.let("cdf", f"(0.5 * {op.kernel('erfc_array')}(-{x}, half=True)).astype({op.dtype})")
    op.set(f"{x} * {cdf}")

    def backward(g):  # the normal density; beyond |x| = 40 it is 0 already, and x*x cannot overflow
        clipped = op.tmp("clipped", f"np.minimum(np.maximum({x}, -40.0), 40.0)")
        density = f"{1 / math.sqrt(2 * math.pi)!r} * np.exp({clipped} * {clipped} * -0.5)"
        return [f"{g} * ({cdf} + {x} * ({density}))"]
    return backward


@template(*_ops(A, "Hardswish"), name="hardswish")
def _hardswish(op, x):
    op.set(f"{x} * (np.clip({x} + 3, 0, 6) / 6)")
    # exactly 0 up to -3 and the gradient itself from 3 on, even an inf one (PyTorch's rule)
    return lambda g: [f"np.where({x} <= -3, 0, np.where({x} >= 3, {g}, {g} * ({x} / 3 + 0.5)))"]


@template(Where)
def _where(op, cond, x, y):
    op.set(f"np.where({cond}, {x}, {y})")
    return lambda g: [None, op.unbroadcast(f"np.where({cond}, {g}, 0)", 1),
                      op.unbroadcast(f"np.where({cond}, 0, {g})", 2)]


@template(Maximum, Minimum, base="maximum")
def _maximum(op, x, y):
    smallest = op.ctx.smallest
    op.name = op.base = "minimum" if smallest else "maximum"
    op.set(f"np.{op.name}({x}, {y})")

    def backward(g):
        # ties share the gradient; otherwise it goes to the side that won
        shared = op.tmp("shared", f"np.where({x} == {y}, {g} * 0.5, {g})")
        x_lost, y_lost = (f"{x} > {y}", f"{x} < {y}") if smallest else (f"{x} < {y}", f"{x} > {y}")
        return [op.unbroadcast(f"np.where({x_lost}, 0, {shared})", 0),
                op.unbroadcast(f"np.where({y_lost}, 0, {shared})", 1)]
    return backward


@template(*_ops(E, "Atan2"))
def _atan2(op, y, x):
    op.set(f"np.arctan2({y}, {x})")

    def backward(g):  # d/dy = x / r^2, as (x / r) / r: r^2 could overflow; 0 at the origin, not 0/0
        r = op.tmp("r", f"np.hypot({y}, {x})")
        op.line(f"{r} = np.where({r} == 0, 1, {r})")
        return [op.unbroadcast(f"{g} * ({x} / {r}) / {r}", 0), op.unbroadcast(f"-{g} * ({y} / {r}) / {r}", 1)]
    return backward


@template(*_ops(E, "Hypot"))
def _hypot(op, x, y):
    out = op.set(f"np.hypot({x}, {y})")
    return lambda g: [op.unbroadcast(f"{g} * ({x} / {out})", 0), op.unbroadcast(f"{g} * ({y} / {out})", 1)]


@template(*_ops(E, "Remainder", "Fmod"))
def _remainder(op, x, y):
    truncate = op.ctx.truncate
    op.name = op.base = "fmod" if truncate else "remainder"
    op.set(f"np.{'fmod' if truncate else 'mod'}({x}, {y})")
    quotient = f"np.trunc({x} / {y})" if truncate else f"np.floor_divide({x}, {y})"  # piecewise constant
    return lambda g: [op.unbroadcast(g, 0), op.unbroadcast(f"-{g} * {quotient}", 1)]


@template(*_ops(E, "Clamp"))
def _clamp(op, x, low, high):
    out = x if low == "None" else f"np.maximum({x}, {low})"
    op.set(out if high == "None" else f"np.minimum({out}, {high})")

    def backward(g):
        # the gradient goes to x within the bounds (strictly, for hardtanh's rule), else to the
        # bound that holds; where high < low the output is high everywhere
        lt, gt = ("<", ">") if op.ctx.strict else ("<=", ">=")
        within = " & ".join([f"({x} {gt} {low})"] * (low != "None") + [f"({x} {lt} {high})"] * (high != "None"))
        crossed = f"({high} < {low})" if "None" not in (low, high) else None
        to_low = f"({x} < {low})" + (f" & ~{crossed}" if crossed else "")
        to_high = f"({x} > {high})" + (f" | {crossed}" if crossed else "")
        return [op.unbroadcast(f"np.where({within}, {g}, 0)", 0),
                op.unbroadcast(f"np.where({to_low}, {g}, 0)", 1), op.unbroadcast(f"np.where({to_high}, {g}, 0)", 2)]
    return backward


# ---- reductions ----

def _axis_args(axis, keepdims):
    args = [] if axis is None else [f"axis={axis[0] if len(axis) == 1 else axis}"]
    return ", ".join(args + (["keepdims=True"] if keepdims else []))


def _spread(op, g, shape, axis, keepdims, out_shape):
    """The gradient of a reduction over `axis` of a `shape` input, spread back over that shape."""
    kept = tuple(1 if axis is None or i in axis else n for i, n in enumerate(shape))
    if out_shape != kept:
        g = f"{_paren(g)}.reshape({_shape_args(kept)})"
    return g if kept == tuple(shape) else f"np.broadcast_to({g}, {shape})"


@template(Sum, base="total")
def _sum(op, x):
    c = op.ctx
    op.set(f"{x}.sum({_axis_args(c.axis, c.keepdims)})")
    return lambda g: [_spread(op, g, c.shape, c.axis, c.keepdims, op.shape)]


@template(Mean)
def _mean(op, x):
    c = op.ctx
    op.set(f"{x}.mean({_axis_args(c.axis, c.keepdims)})")
    return lambda g: [_spread(op, f"{g} * {c.scale!r}", c.shape, c.axis, c.keepdims, op.shape)]


@template(Max, base="amax")
def _max(op, x):
    c = op.ctx
    which = "min" if c.smallest else "max"
    op.name, op.base = which, "a" + which
    kept = op.let("a" + which, f"{x}.{which}({_axis_args(c.axis, True)})") if not c.keepdims else None
    out = op.set(f"{kept}.reshape({_shape_args(op.shape)})" if kept else f"{x}.{which}({_axis_args(c.axis, True)})")
    kept = kept or out

    def backward(g):
        # ties share the gradient equally; a NaN is the maximum and takes it
        hit = op.tmp("hit", f"({x} == {kept}) | np.isnan({x})")
        share = f"{hit} / {hit}.sum({_axis_args(c.axis, True)}, dtype={op.dtype})"
        return [f"{_paren(_spread(op, g, op.shapes[0], c.axis, c.keepdims, op.shape))} * ({share})"]
    return backward


# ---- shapes and indexing ----

@template(Reshape)
def _reshape(op, x):
    op.set(f"{x}.reshape({_shape_args(op.shape)})")
    return lambda g: [f"{_paren(g)}.reshape({_shape_args(op.shapes[0])})"]


@template(Permute)
def _permute(op, x):
    dims = tuple(d % len(op.shape) for d in op.ctx.dims) if op.shape else ()
    op.set(f"{x}.transpose({_shape_args(dims)})")
    return lambda g: [f"{_paren(g)}.transpose({_shape_args(tuple(int(i) for i in np.argsort(dims)))})"]


@template(BroadcastTo, name="expand")
def _expand(op, x):
    op.set(f"np.broadcast_to({x}, {op.shape})")
    return lambda g: [op.unbroadcast(g, 0)]


def _scatter_into(op, target, shape, index, src):
    """target = zeros(shape) with src put at index (added, where an advanced index repeats)."""
    op.line(f"{target} = np.zeros({shape}, {op.dtype})")
    if _is_advanced(index):
        op.line(f"np.add.at({target}, {_index_tuple(op, index)}, {src})  # a repeated index adds up")
    else:
        op.line(f"{target}[{op.index(index)}] = {src}")


@template(GetItem)
def _getitem(op, x):
    index = op.ctx.index
    op.set(f"{x}[{op.index(index)}]")

    def backward(g):
        _scatter_into(op, op.target(0), op.shapes[0], index, g)
        return [op.target(0)]
    return backward


@template(IndexAdd, base="scattered")
def _index_add(op, src):
    index = op.ctx.index
    _scatter_into(op, op.out, op.shape, index, src)
    return lambda g: [f"{_paren(g)}[{op.index(index)}]"]


@template(Cat)
def _cat(op, *xs):
    axis, bounds = op.ctx.axis, op.ctx.bounds
    op.set(f"np.concatenate([{', '.join(xs)}], axis={axis})")
    return lambda g: [f"{_paren(g)}[{', '.join([':'] * axis + [f'{a}:{b}'])}]" for a, b in zip(bounds, bounds[1:])]


@template(Cumsum)
def _cumsum(op, x):
    a = op.ctx.axis
    if not op.shape:
        op.set(f"{x}.copy()")
        return lambda g: [g]
    op.set(f"np.cumsum({x}, axis={a})")
    backwards = ", ".join([":"] * a + ["::-1"])  # each input adds to every output from its position on
    return lambda g: [f"np.cumsum({_paren(g)}[{backwards}], axis={a})[{backwards}]"]


@template(Clone)
def _clone(op, x):
    op.set(f"{x}.copy()")
    return lambda g: [g]


@template(Cast)
def _cast(op, x):
    op.set(f"{x}.astype({op.dtype})")
    return lambda g: [f"{_paren(g)}.astype({_dtype(op.ctx.dtype)})"]


@template(SetItem)
def _setitem(op, x, v):
    index = op.ctx.index
    out = op.set(f"{x}.copy()")
    op.line(f"{out}[{op.index(index)}] = {v}")

    def backward(g):
        written = op.tmp("written", f"np.zeros({op.shape}, bool)")
        op.line(f"{written}[{op.index(index)}] = True")
        picked = np.broadcast_to(np.empty((), bool), op.shape)[index].shape
        dv = f"{_paren(g)}[{op.index(index)}]"
        if op.ctx.saved[1] is not None:  # a repeated index: only the value written last is in the result
            slots = op.tmp("slots", f"np.arange({int(np.prod(picked))}).reshape({picked})")
            last = op.tmp("last", f"np.full({op.shape}, -1)")
            op.line(f"{last}[{op.index(index)}] = {slots}")
            dv = f"np.where({last}[{op.index(index)}] == {slots}, {dv}, 0)"
        return [f"np.where({written}, 0, {g})", op.unbroadcast(dv, 1, picked)]
    return backward


# ---- matrix products ----

def _matmul_shape(a, b):
    return tuple(np.broadcast_shapes(a[:-2], b[:-2])) + (a[-2], b[-1])


def _t(expr, ndim):
    return f"{_paren(expr)}.T" if ndim == 2 else f"{_paren(expr)}.swapaxes(-1, -2)"


@template(MatMul)
def _matmul(op, x, y):
    xs, ys = op.shapes
    op.set(f"{x} @ {y}")

    def backward(g):
        # a 1-D x is a row, a 1-D y a column, as numpy treats them
        x2, xs2 = (f"{x}[None, :]", (1,) + xs) if len(xs) == 1 else (x, xs)
        y2, ys2 = (f"{y}[:, None]", ys + (1,)) if len(ys) == 1 else (y, ys)
        g2 = g + ("[..., None]" if len(ys) == 1 else "") + ("[..., None, :]" if len(xs) == 1 else "")
        gs = _matmul_shape(xs2, ys2)
        dx = op.unbroadcast(f"{g2} @ {_t(y2, len(ys2))}", 0, _matmul_shape(gs, ys2[:-2] + ys2[::-1][:2]), xs2)
        dy = op.unbroadcast(f"{_t(x2, len(xs2))} @ {g2}", 1, _matmul_shape(xs2[:-2] + xs2[::-1][:2], gs), ys2)
        return [dx if xs2 == xs else f"{_paren(dx)}.reshape({_shape_args(xs)})",
                dy if ys2 == ys else f"{_paren(dy)}.reshape({_shape_args(ys)})"]
    return backward


@template(Linear)
def _linear(op, x, weight, bias=None):
    op.set(f"{x} @ {weight}.T" + (f" + {bias}" if bias else ""))

    def backward(g):
        o, i = op.shapes[1]
        rows, x2 = g, x
        if len(op.shapes[0]) != 2:  # a batch of any shape: one row per sample
            rows = op.tmp("rows", f"{g}.reshape(-1, {o})")
            x2 = f"{x}.reshape(-1, {i})"
        return [f"{g} @ {weight}", f"{rows}.T @ {x2}", f"{rows}.sum(axis=0)"]
    return backward


# ---- convolution and pooling: im2col's columns make a convolution one matrix product ----

def _window_detail(g, conv=True):
    """ 3x3, stride 2, ...: a conv's or pool's options that are not the defaults."""
    parts = [f"{g.kh}x{g.kw}"]
    for name, values, default in [("stride", (g.sh, g.sw), (1, 1)), ("padding", (g.pt, g.pl, g.pb, g.pr), (0,) * 4),
                                  ("dilation", (g.dh, g.dw), (1, 1))]:
        if values != default:
            parts.append(f"{name} {values[0] if len(set(values)) == 1 else values}")
    if conv and g.groups > 1:
        parts.append(f"groups {g.groups}")
    return " " + ", ".join(parts)


def _columns(op, x, g):
    return op.let("cols", f"{op.kernel('im2col')}({x}, {op.lit(g)})",
                  f"{(g.c * g.kh * g.kw, g.oh * g.ow * g.n)}: a column per output position, its window")


def _conv_product(g, w, cols):
    """The (O, OH*OW*N) output rows: the filters (one row each) times the columns, per group."""
    k, positions = g.c // g.groups * g.kh * g.kw, g.oh * g.ow * g.n
    if g.groups == 1:
        return f"{w}.reshape({g.o}, {k}) @ {cols}"
    return (f"np.matmul({w}.reshape({g.groups}, {g.o // g.groups}, {k}), "
            f"{cols}.reshape({g.groups}, {k}, {positions})).reshape({g.o}, {positions})")


def _to_nchw(g, rows):
    return f"({rows}).reshape({g.o}, {g.oh}, {g.ow}, {g.n}).transpose(3, 0, 1, 2)"


def _rows(op, grad, g):
    return op.tmp("rows", f"{grad}.transpose(1, 2, 3, 0).reshape({g.o}, {g.oh * g.ow * g.n})",
                  "a row per filter, as the columns")


def _input_grad(op, g, w, rows):
    """col2im(W^T @ rows): every window's gradient added back where im2col read it."""
    k, positions = g.c // g.groups * g.kh * g.kw, g.oh * g.ow * g.n
    if g.groups == 1:
        product = f"{w}.reshape({g.o}, {k}).T @ {rows}"
    else:
        product = (f"np.matmul({w}.reshape({g.groups}, {g.o // g.groups}, {k}).transpose(0, 2, 1), "
                   f"{rows}.reshape({g.groups}, {g.o // g.groups}, {positions})).reshape({g.c * g.kh * g.kw}, "
                   f"{positions})")
    return f"{op.kernel('col2im')}({product}, {op.lit(g)})"


def _weight_grad(g, rows, cols):
    shape = (g.o, g.c // g.groups, g.kh, g.kw)
    if g.groups == 1:
        return f"({rows} @ {cols}.T).reshape{shape}"
    k, positions = g.c // g.groups * g.kh * g.kw, g.oh * g.ow * g.n
    return (f"np.matmul({rows}.reshape({g.groups}, {g.o // g.groups}, {positions}), "
            f"{cols}.reshape({g.groups}, {k}, {positions}).transpose(0, 2, 1)).reshape{shape}")


@template(Conv2d, base="conv")
def _conv2d(op, x, weight, bias=None):
    g = op.ctx.geometry
    op.detail = _window_detail(g)
    cols = _columns(op, x, g)
    product = _conv_product(g, weight, cols)
    op.set(_to_nchw(g, product + (f" + {bias}[:, None]" if bias else "")))

    def backward(grad):
        rows = _rows(op, grad, g)
        return [_input_grad(op, g, weight, rows), _weight_grad(g, rows, cols), f"{rows}.sum(axis=1)"]
    return backward


@template(ConvTranspose, name="conv_transpose2d", base="deconv")
def _conv_transpose(op, x, weight):
    g = op.ctx.geometry
    op.detail = _window_detail(g)
    op.set(_input_grad(op, g, weight, _rows(op, x, g)))

    def backward(gg):  # a convolution of gg, and the weight gradient of one
        cols = _columns(op, gg, g)
        return [_to_nchw(g, _conv_product(g, weight, cols)), _weight_grad(g, _rows(op, x, g), cols)]
    return backward


@template(ConvWeight, name="conv2d_weight_grad", base="wgrad")
def _conv_weight(op, x, grad_out):
    g = op.ctx.geometry
    grad = grad_out
    op.detail = _window_detail(g)
    cols = _columns(op, x, g)
    op.set(_weight_grad(g, _rows(op, grad, g), cols))
    return lambda gw: [_input_grad(op, g, gw, _rows(op, grad, g)), _to_nchw(g, _conv_product(g, gw, cols))]


def _pad(op, x, g, fill):
    if not _is_padded(g):
        return x
    return op.let("padded", f"np.pad({x}, ((0, 0), (0, 0), ({g.pt}, {g.pb}), ({g.pl}, {g.pr})), "
                            f"constant_values={fill})")


def _padded_shape(g):
    return (g.n, g.c, g.h + g.pt + g.pb, g.w + g.pl + g.pr)


def _crop(target, g):
    if not _is_padded(g):
        return target
    return f"{target}[:, :, {g.pt}:{g.pt + g.h}, {g.pl}:{g.pl + g.w}]"


def _windows(op, g):
    return f"{op.kernel('window_offsets')}({op.lit(g)})"


@template(MaxPool2d, name="max_pool2d", base="pool")
def _max_pool(op, x):
    g = op.ctx.geometry
    op.detail = _window_detail(g, conv=False)
    xp = _pad(op, x, g, "-np.inf")
    # slice (hs, ws) of x holds one position of every window at once
    out = op.set(f"np.max([{xp}[:, :, hs, ws] for _, _, hs, ws in {_windows(op, g)}], axis=0)")

    def backward(grad):
        d = op.target(0) if xp == x else op.tmp("d_padded")
        taken, first = op.tmp("taken"), op.tmp("first")
        op.line(f"{d} = np.zeros({_padded_shape(g)}, {op.dtype})")
        op.line(f"{taken} = np.zeros({op.shape}, bool)  # the windows whose gradient has gone somewhere")
        op.line(f"for _, _, hs, ws in {_windows(op, g)}:  # each window's gradient goes to its first maximum\n"
                f"    {first} = ({xp}[:, :, hs, ws] == {out}) & ~{taken}\n"
                f"    {d}[:, :, hs, ws] += np.where({first}, {grad}, 0)\n"
                f"    {taken} |= {first}")
        return [_crop(d, g)]
    return backward


def _pool_scatter(op, target, grad, choice, g):
    """target = each window's value added at its chosen position (choice: the position's number)."""
    op.line(f"{target} = np.zeros({_padded_shape(g)}, {op.dtype})")
    op.line(f"for k, (_, _, hs, ws) in enumerate({_windows(op, g)}):\n"
            f"    {target}[:, :, hs, ws] += np.where({choice} == k, {grad}, 0)")
    return _crop(target, g)


def _pool_gather(op, target, x, choice, g):
    xp = _pad(op, x, g, 0)
    op.line(f"{target} = np.zeros({np.shape(op.ctx.saved[0])}, {op.dtype})")  # one value per window
    op.line(f"for k, (_, _, hs, ws) in enumerate({_windows(op, g)}):\n"
            f"    np.copyto({target}, {xp}[:, :, hs, ws], where={choice} == k)")
    return target


def _is_padded(g):
    return bool(g.pt or g.pb or g.pl or g.pr)


@template(PoolScatter, name="pool_scatter", base="scattered")
def _scatter(op, grad):
    g, choice = op.ctx.geometry, op.lit(op.ctx.saved[0], "choice")
    if _is_padded(g):
        op.set(_pool_scatter(op, op.tmp("full"), grad, choice, g))
    else:
        _pool_scatter(op, op.out, grad, choice, g)
    return lambda gg: [_pool_gather(op, op.target(0), gg, choice, g)]


@template(PoolGather, name="pool_gather", base="gathered")
def _gather(op, x):
    g, choice = op.ctx.geometry, op.lit(op.ctx.saved[0], "choice")
    _pool_gather(op, op.out, x, choice, g)
    return lambda grad: [_pool_scatter(op, op.tmp("full") if _is_padded(g) else op.target(0), grad, choice, g)]


# ---- softmax and the loss ----

@template(Softmax)
def _softmax(op, x):
    a = op.ctx.axis
    e = op.tmp("e", f"np.exp({x} - {x}.max(axis={a}, keepdims=True))", "shifted: exp cannot overflow")
    out = op.set(f"{e} / {e}.sum(axis={a}, keepdims=True)")
    return lambda g: [f"{out} * ({g} - ({g} * {out}).sum(axis={a}, keepdims=True))"]


def _log_softmax(op, x, axis, target):
    shifted = op.tmp("shifted", f"{x} - {x}.max(axis={axis}, keepdims=True)",
                     "the largest becomes 0: exp cannot overflow")
    return target(f"{shifted} - np.log(np.exp({shifted}).sum(axis={axis}, keepdims=True))")


@template(LogSoftmax, name="log_softmax")
def _log_softmax_op(op, x):
    a = op.ctx.axis
    out = _log_softmax(op, x, a, op.set)
    return lambda g: [f"{g} - np.exp({out}) * {g}.sum(axis={a}, keepdims=True)"]


@template(CrossEntropy, name="cross_entropy", base="loss")
def _cross_entropy(op, logits):
    n, classes = op.shapes[0]
    labels = op.lit(op.ctx.saved[2], "labels")
    op.detail = f" against {labels}"
    logp = _log_softmax(op, logits, 1, lambda expr: op.let("logp", expr))
    op.set(f"-{logp}[np.arange({n}), {labels}].sum() / {n}")
    # softmax minus the one-hot labels, averaged over the batch
    return lambda g: [f"(np.exp({logp}) - np.eye({classes}, dtype={op.dtype})[{labels}]) * ({g} / {n})"]


# ---- formatting helpers -----------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][\w.]*|\d[\d.e+-]*")


def _paren(expr):
    """expr, in parentheses unless it is a name (or a non-negative number): safe to follow with
    .attribute, [index] or an operator."""
    return expr if _IDENTIFIER.fullmatch(expr) else f"({expr})"


def _shape_args(shape):
    return ", ".join(str(int(n)) for n in shape) if len(shape) else "()"


def _dtype(dtype):
    return f"np.{np.dtype(dtype).name}"


def _number(v):
    if isinstance(v, (bool, np.bool_)):
        return repr(bool(v))
    if isinstance(v, (int, np.integer)):
        text = repr(int(v))
    else:
        f = float(v)
        text = "np.nan" if f != f else ("-np.inf" if f < 0 else "np.inf") if abs(f) == np.inf else repr(f)
    return f"({text})" if text.startswith("-") else text


def _literal(v):
    """Python source for a value small enough to be written out, or None."""
    if v is None or v is Ellipsis or isinstance(v, str):
        return repr(v)
    if isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
        return _number(v)
    if isinstance(v, (np.dtype, type)):
        return _dtype(v)
    if isinstance(v, (tuple, list)):
        items = [_literal(x) for x in v]
        if None in items:
            return None
        if isinstance(v, list):
            return f"[{', '.join(items)}]"
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(v, slice):
        parts = [_literal(p) for p in (v.start, v.stop, v.step)]
        return None if None in parts else f"slice({', '.join(parts)})"
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        if v.ndim == 0:
            return _number(v[()])
        if v.size <= 16 and (v.dtype.kind != "f" or np.isfinite(v).all()):
            text = f"np.array({v.tolist()!r}, dtype={_dtype(v.dtype)})"
            return text if len(text) <= LITERAL_WIDTH else None
    return None


def _wrap(text, indent, width=100):
    """A long call's arguments over several lines."""
    lines, line = [], ""
    for part in text.split(", "):
        if line and indent + len(line) + len(part) > width:
            lines.append(line + ",")
            line = part
        else:
            line = f"{line}, {part}" if line else part
    return f"\n{' ' * indent}".join(lines + [line])


def _is_dropout_mask(a):
    """Whether a constant is a dropout mask: zeros and one value above 1, both present."""
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or a.size > 1 << 22:
        return False
    values = np.unique(a)
    return len(values) == 2 and values[0] == 0 and values[1] > 1


def _identifier(text):
    name = re.sub(r"\W", "_", text)
    return "p" + name if name[:1].isdigit() else name or "v"


def _index_tuple(op, index):
    parts = index if isinstance(index, tuple) else (index,)
    return f"({', '.join(op.lit(p, 'index') for p in parts)}{',' if len(parts) == 1 else ''})"


# ---- the writer -----------------------------------------------------------------------------------

_RESERVED = set(dir(builtins)) | set(keyword.kwlist) | {"np", "hs", "ws", "k", "_", "Geometry", "PoolGeometry"} \
    | set(KERNELS)


class _Names:
    """Variable names: `new` ones are unique in the whole function; `scratch` ones are unique
    within one block (each block assigns them before it reads them) and reused by later blocks."""

    def __init__(self):
        self.used, self.scratch, self.block = set(_RESERVED), set(), set()

    def _free(self, base, taken):
        base = _identifier(base)
        sep = "_" if base[-1].isdigit() else ""
        name, k = base, 2
        while name in taken:
            name, k = f"{base}{sep}{k}", k + 1
        return name

    def new(self, base):
        name = self._free(base, self.used | self.scratch)
        self.used.add(name)
        return name

    def new_scratch(self, base):
        name = self._free(base, self.used | self.block)
        self.scratch.add(name)
        self.block.add(name)
        return name


class Op:
    """What a template sees of one recorded op, and how it writes code.

    ctx: the op's ctx (its metadata: axis, geometry, index, ...); shapes: the inputs' shapes;
    shape, dtype: the output's (dtype as source, "np.float64"); out: the output's variable;
    needs[i]: whether input i needs a gradient; value, input_values: the recorded arrays."""

    def __init__(self, writer, t, template, out):
        self.writer, self.ctx, self.name, self.base = writer, t._ctx, template.name, template.base
        self.template = template
        self.parents = inputs_of(t)
        self.shapes = [np.shape(p._data) for p in self.parents]
        self.input_values = [p._data for p in self.parents]
        self.value, self.shape, self.dtype = t._data, t._data.shape, _dtype(t._data.dtype)
        self.out = out
        self.needs = [isinstance(p, Tensor) and p.requires_grad for p in self.parents]
        self.notes, self.input_exprs, self._targets, self.detail = {}, [], {}, ""

    # -- writing code --
    def line(self, code):
        self.writer.emit(code)

    def set(self, expr):
        """The statement out = expr; returns out."""
        self.line(f"{self.out} = {expr}")
        return self.out

    def let(self, base, expr, comment=None):
        """A new variable that later blocks may read (e.g. the forward's im2col columns, read by
        the backward). Returns its name."""
        name = self.writer.names.new(base)
        self.line(f"{name} = {expr}" + (f"  # {comment}" if comment else ""))
        return name

    def tmp(self, base, expr=None, comment=None):
        """A variable used only inside this block (written before read; later blocks reuse the
        name). With no expr, only the name is reserved (a loop variable, an array filled in)."""
        name = self.writer.names.new_scratch(base)
        if expr is not None:
            self.line(f"{name} = {expr}" + (f"  # {comment}" if comment else ""))
        return name

    def kernel(self, name):
        """A package kernel the code calls (imported at the top of the exported source)."""
        self.writer.kernels[name] = KERNELS[name].__module__
        return name

    def lit(self, value, base="const"):
        """Source for a metadata value: a literal, the hoisted geometry of a conv or pool, or an
        argument of the function for an array too large to write out."""
        return self.writer.literal(value, f"{self.base}_{base}")

    def index(self, index):
        """An indexing expression's inside: x[{op.index(index)}]."""
        if not isinstance(index, tuple):
            return self._index_part(index)
        if not index:
            return "()"
        return ", ".join(self._index_part(p) for p in index) + ("," if len(index) == 1 else "")

    def _index_part(self, p):
        if isinstance(p, slice):
            text = ":".join("" if v is None else str(int(v)) for v in (p.start, p.stop))
            return text + (f":{int(p.step)}" if p.step is not None else "")
        return "None" if p is None else "..." if p is Ellipsis else self.lit(p, "index")

    # -- the backward --
    def unbroadcast(self, expr, i, from_shape=None, to_shape=None):
        """expr (of the output's shape, or from_shape) summed back to input i's shape (or to_shape):
        the gradient of an input that numpy broadcast."""
        shape = self.shapes[i] if to_shape is None else to_shape
        have = self.shape if from_shape is None else tuple(from_shape)
        if have == tuple(shape):
            return expr
        lead = len(have) - len(shape)
        stretched = tuple(lead + k for k, n in enumerate(shape) if n == 1 and have[lead + k] != 1)
        axes = tuple(range(lead)) + stretched
        self.notes[i] = f"undo the broadcast of {tuple(shape)} to {have}"
        summed = f"{_paren(expr)}.sum(axis={axes[0] if len(axes) == 1 else axes})"
        return f"{summed}.reshape({_shape_args(shape)})" if stretched else summed

    def target(self, i):
        """The variable that input i's gradient will be in: a template that builds the gradient
        in several statements writes them to it and returns it."""
        if i not in self._targets:
            self._targets[i] = self.writer.gradient_target(self, i)
        return self._targets[i]


class _Writer:
    def __init__(self, output, model, inputs, grad, name):
        if not isinstance(output, Tensor):
            raise TypeError(f"export: expected the Tensor a computation produced, got {type(output).__name__}")
        if not output.requires_grad or output._ctx is None:
            raise ValueError("export: this tensor was not computed by recorded ops (no input requires grad, or "
                             "it was computed under no_grad()): there is no tape to write out")
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"export: the function's name must be a Python identifier, got {name!r}")
        self.output, self.fn_name, self.upstream = output, name, grad
        self.names, self.kernels, self.geometries = _Names(), {}, {}
        self.names.used.add(name)
        self.args = {}        # argument name -> recorded value
        self.arg_lines = []   # the docstring's description of each argument
        self.exprs = {}       # id(tensor or constant) -> its expression in the code
        self.grad_leaves = []  # (tensor, argument name, key of grads)
        self.lines = []
        self.given = self._given_names(model, inputs)

    # -- names for the leaves --
    def _given_names(self, model, inputs):
        """id(tensor or array) -> (name, key): from `inputs`, then the module's parameter names."""
        given = {}
        params = model if isinstance(model, dict) else dict(model.named_parameters()) if model is not None else {}
        for key, t in params.items():
            given.setdefault(id(t), (_identifier(key), key))
        for key, v in (inputs or {}).items():
            if not key.isidentifier() or keyword.iskeyword(key) or key in _RESERVED:
                raise ValueError(f"export: input name {key!r} cannot be a variable name in the exported code")
            given[id(v)] = (key, key)
            if isinstance(v, Tensor):
                given.setdefault(id(v._data), (key, key))
        self.unused_inputs = set(inputs or {})
        self.input_order = {key: i for i, key in enumerate(inputs or {})}
        return given

    def _leaf(self, p, op):
        """The expression of a leaf or a constant input of op: a literal or an argument."""
        key = id(p) if isinstance(p, Tensor) and p.requires_grad else id(p._data)
        if key in self.exprs:
            return self.exprs[key]
        named = self.given.get(id(p)) or self.given.get(id(p._data))
        role = op.template.role(len(op.input_exprs))
        if isinstance(p, Tensor) and p.requires_grad:
            arg, grad_key = named or (None, None)
            arg = self._argument(p._data, arg or role, "requires grad", named)
            self.grad_leaves.append((p, arg, grad_key or arg))
        elif named is not None:
            arg = self._argument(p._data, named[0], "constant", named)
        else:
            arg = _literal(p._data)
            if arg is None and op.template.fn is TEMPLATES[Mul].fn and _is_dropout_mask(p._data):
                arg = self._argument(p._data, "dropout_mask", "constant, a dropout mask (0 or 1 / (1 - p))")
            elif arg is None:
                arg = self._argument(p._data, f"{op.base}_{role}", f"constant, the {role} of {op.name}")
        if named is not None:
            self.unused_inputs.discard(named[1])
        self.exprs[key] = arg
        return arg

    def _argument(self, value, base, what, named=None):
        name = self.names.new(base)
        self.args[name] = value
        # named inputs first (in the order given), then parameters and the rest as first used
        order = (0, self.input_order[named[1]]) if named and named[1] in self.input_order else (1, len(self.args))
        self.arg_lines.append((order, name, f"{np.shape(value)} {np.asarray(value).dtype}, {what}"))
        return name

    def literal(self, value, base):
        named = self.given.get(id(value))
        if named is not None and id(value) not in self.exprs:
            self.unused_inputs.discard(named[1])
            self.exprs[id(value)] = self._argument(value, named[0], "constant", named)
        if id(value) in self.exprs:
            return self.exprs[id(value)]
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple: a conv's or pool's geometry
            if value not in self.geometries:
                self.geometries[value] = self.names.new("geom")
            self.kernels[type(value).__name__] = type(value).__module__
            return self.geometries[value]
        text = _literal(value)
        if text is None:
            text = self.exprs[id(value)] = self._argument(value, base, "constant")
        return text

    # -- code --
    def emit(self, code):
        self.lines.extend("    " + line if line else "" for line in code.split("\n"))

    def _tape(self):
        """The ops that computed the output, in the order they ran."""
        nodes, seen, stack = [], {id(self.output)}, [self.output]
        while stack:
            t = stack.pop()
            if t._meta is not None and t._meta.hooks:
                raise NotImplementedError(f"export: a tensor of shape {t.shape} has a hook; hooks are Python "
                                          f"code that cannot be written out")
            if t._ctx is None:
                continue
            if t._ctx.parents is None:
                raise RuntimeError("export: the tape was released by backward(); export before calling backward(), "
                                   "or call backward(retain_graph=True)")
            nodes.append(t)
            for p in inputs_of(t):
                if isinstance(p, Tensor) and id(p) not in seen:
                    seen.add(id(p))
                    stack.append(p)
        missing = sorted({type(t._ctx).__name__ for t in nodes if type(t._ctx) not in TEMPLATES})
        if missing:
            raise NotImplementedError(f"export: no code template for op(s) {', '.join(missing)}; add one to "
                                      f"tinygrad_cnn/export.py (see `template`)")
        return sorted(nodes, key=lambda t: t._seq)

    def write(self):
        nodes = self._tape()
        ops = {}
        self.emit("# ---- forward ----")
        for t in nodes:
            tpl = TEMPLATES[type(t._ctx)]
            out = self.names.new(("loss" if t._data.size == 1 else "out") if t is self.output else tpl.base)
            op = ops[id(t)] = Op(self, t, tpl, out)
            for p in op.parents:
                op.input_exprs.append(self.exprs[id(p)] if id(p) in self.exprs else self._leaf(p, op))
            self.names.block = set()
            start = len(self.lines)
            op.backward = tpl.fn(op, *op.input_exprs)
            self.lines.insert(start, f"    # {op.name}{op.detail}: {self._describe(op.input_exprs, op.shapes)} -> "
                                     f"{out} {op.shape}")
            self.exprs[id(t)] = out
        if self.unused_inputs:
            raise ValueError(f"export: input(s) {', '.join(sorted(self.unused_inputs))} not found among the leaves and "
                             f"constants of the recorded ops (name the very Tensor or array the ops were given; "
                             f"labels given as a float Tensor are converted to integers: pass the integer array)")
        self.emit("")
        self.emit("# ---- backward: the chain rule, from the output back to every input that requires grad ----")
        self._backward(ops)
        return self._finish()

    @staticmethod
    def _describe(exprs, shapes):
        return ", ".join(e if s == () and not e.isidentifier() else f"{e} {s}" for e, s in zip(exprs, shapes))

    def _seed(self):
        root = self.exprs[id(self.output)]
        if self.output._data.size == 1 and self.upstream is None:
            name = self.names.new(f"d_{root}")
            self.emit(f"{name} = np.ones_like({root})")
            return name
        if self.upstream is None:
            raise ValueError(f"export: the output has shape {self.output.shape}, so its gradient cannot be implied; "
                             f"pass grad= (an array of that shape, as for backward()): it becomes the argument "
                             f"d_{root}")
        upstream = np.asarray(getattr(self.upstream, "_data", self.upstream), dtype=self.output.dtype)
        if upstream.shape != self.output.shape:
            raise ValueError(f"export: grad has shape {upstream.shape}, but the output has shape {self.output.shape}")
        return self._argument(upstream, f"d_{root}", "the output's gradient")

    def gradient_target(self, op, i):
        p = op.parents[i]
        first = id(p) not in self.grads and not any(q is p and op.needs[j] for j, q in enumerate(op.parents[:i]))
        if first:
            self.grads[id(p)] = self.names.new(f"d_{self.exprs[id(p)]}")
            self.pretargeted.add(id(p))
            return self.grads[id(p)]
        return self.names.new_scratch("part")

    def _backward(self, ops):
        self.grads = {id(self.output): self._seed()}
        self.pretargeted = set()
        # The engine's walk: latest-created tensor first, a reverse topological order (tensor.py)
        pending, queued = [(-self.output._seq, id(self.output), self.output)], {id(self.output)}
        while pending:
            t = heapq.heappop(pending)[2]
            if t._ctx is None:
                continue
            op, g = ops[id(t)], self.grads[id(t)]
            self.names.block = set()
            start = len(self.lines)
            exprs = list(op.backward(g))
            exprs += [None] * (len(op.parents) - len(exprs))
            produced = []
            for i, (p, expr) in enumerate(zip(op.parents, exprs)):
                if not op.needs[i] or expr is None:
                    continue
                note = f"  # {op.notes[i]}" if i in op.notes else ""
                name = self.grads.get(id(p))
                if id(p) in self.pretargeted and name == expr:  # the template built it in place
                    self.pretargeted.discard(id(p))
                elif name is None or id(p) in self.pretargeted:
                    self.pretargeted.discard(id(p))
                    name = self.grads[id(p)] = name or self.names.new(f"d_{self.exprs[id(p)]}")
                    self.emit(f"{name} = {expr}{note}")
                else:  # a fork: this tensor feeds several ops, and its gradient is the sum of theirs
                    self.emit(f"{name} = {name} + {_paren(expr)}  # {self.exprs[id(p)]} feeds several ops: add up"
                              + (f"; {op.notes[i]}" if i in op.notes else ""))
                produced.append(name)
                if id(p) not in queued:
                    queued.add(id(p))
                    heapq.heappush(pending, (-p._seq, id(p), p))
            self.lines.insert(start, f"    # backward of {op.name}: {g} {op.shape} -> {', '.join(produced)}")

    def _finish(self):
        grads = {}
        for t, arg, key in self.grad_leaves:
            if id(t) in self.grads:
                grads[key] = self.grads[id(t)]
        self.arg_lines.sort(key=lambda a: a[0])
        width = max([len(n) for n in self.args] + [1])
        doc = [f'    """The recorded computation and its gradients, written out by tinygrad_cnn.export.', "",
               "    Arguments:"]
        doc += [f"      {n.ljust(width)}  {what}" for _, n, what in self.arg_lines]
        doc += ["", f"    Returns ({self.exprs[id(self.output)]}, grads): grads by name: {', '.join(grads)}.",
                '    """']
        header = [f"    {name} = " + _wrap(repr(geometry), len(f"    {name} = {type(geometry).__name__}("))
                  for geometry, name in self.geometries.items()]
        imports = ["import numpy as np"]
        by_module = {}
        for k, module in sorted(self.kernels.items()):
            by_module.setdefault(module, []).append(k)
        imports += [f"from {m} import {', '.join(names)}" for m, names in sorted(by_module.items())]
        returned = ", ".join(f"{key!r}: {name}" for key, name in grads.items())
        args = [n for _, n, _ in self.arg_lines]
        source = "\n".join(imports + ["", "", f"def {self.fn_name}({', '.join(args)}):"] + doc + header +
                           ([""] if header else []) + self.lines +
                           [f"    return {self.exprs[id(self.output)]}, {{{returned}}}", ""])
        return ExportedFunction(self.fn_name, source, {n: self.args[n] for n in args}, list(grads))
