"""Anomaly mode: the first NaN or inf, in the forward or the backward, stops the program with an
error that names the op and the line of your code that called it.

    with tinygrad_cnn.detect_anomaly():
        loss = model(x).cross_entropy(y)
        loss.backward()

    AnomalyError: log got 3 zeros (-> -inf) in (64, 10) from model.py:41: loss = probs.log().mean()
      output: 3 -inf at (0, 2), (5, 1), (9, 7); the other values lie in [-4.1, -0.002]
      input 0: (64, 10) float32 in [0, 0.98], 3 zeros

While it is on, every op records where it was called (the first stack frame outside
tinygrad_cnn, and the modules whose forward was running), and every forward result and every
gradient a backward produces is checked. Off, it costs nothing: nothing is installed.
"""
import contextlib
import re
import weakref

import numpy as np

from . import tracing
from .tensor import Tensor

__all__ = ["detect_anomaly", "AnomalyError"]


class AnomalyError(RuntimeError):
    """A NaN or inf found in anomaly mode. `op` (the op's class name), `phase` ("forward" or
    "backward") and `site` (a tracing.Site: filename, lineno, modules; None if the op was
    recorded before anomaly mode was on) say where."""

    def __init__(self, message, op, phase, site):
        super().__init__(message)
        self.op, self.phase, self.site = op, phase, site


class detect_anomaly(contextlib.ContextDecorator):
    """Context manager (or decorator): raise AnomalyError at the first NaN or inf an op produces."""
    order = 0  # outermost: the profiler inside it times the ops without these checks

    def __init__(self):
        self._sites = weakref.WeakKeyDictionary()  # ctx -> Site where the op was called
        self._backward = []  # (ctx, site) of the backwards running (create_graph records ops in them)

    def __enter__(self):
        tracing.install(self)
        return self

    def __exit__(self, *exc):
        tracing.uninstall(self)
        self._backward.clear()

    def forward(self, op, inputs, kwargs, run):
        site = tracing.call_site()
        out = run()
        if out._ctx is not None:
            self._sites[out._ctx] = site
        if _bad(out._data):
            raise AnomalyError(self._forward_message(op, inputs, out._data, site), op.__name__, "forward", site)
        return out

    def backward(self, ctx, output, grad, run):
        op, site = type(ctx).__name__, self._sites.get(ctx)
        if _bad(_array(grad)):
            raise AnomalyError(_incoming_message(op, output, _array(grad), site), op, "backward", site)
        self._backward.append((ctx, site))
        try:
            grads = run()
        finally:
            self._backward.pop()
        for i, g in enumerate(grads if type(grads) is tuple else (grads,)):
            if g is not None and _bad(_array(g)):
                raise AnomalyError(_backward_message(ctx, i, _array(g), _array(grad), site), op, "backward", site)
        return grads

    def _forward_message(self, op, inputs, out, site):
        name = _op_name(op.__name__)
        arrays = [_array(x) for x in inputs]
        outside = [(i, a) for i, a in enumerate(arrays) if _bad(a)]
        notes = []
        if outside:
            i, a = outside[0]
            head = f"{name} got {_count_bad(a)} in its input {i} {a.shape} from {_where(site)}"
            notes = ["  no op made them in anomaly mode: they come from the data, a parameter (a diverged update?), "
                     "or an op run before detect_anomaly() was entered"]
        else:
            cause = _cause(op.__name__, arrays, out)
            head = f"{name} {cause or 'produced ' + _count_bad(out)} in {out.shape} from {_where(site)}"
        lines = [head] + _file_line(site) + notes + [f"  output: {_describe_bad(out)}"]
        lines += [f"  input {i}: {_describe(a)}" for i, a in enumerate(arrays)]
        if site is not None and site.module:
            lines.append(f"  in module {site.module}")
        if self._backward:
            ctx, created = self._backward[-1]
            lines.append(f"  while computing the backward of {_op_name(type(ctx).__name__)} (create_graph), "
                         f"whose op was created at {_where(created)}")
        return "\n".join(lines)


def _incoming_message(op, output, grad, site):
    return "\n".join([
        f"the gradient reaching the output of {_op_name(op)} ({output.shape}, created at {_where(site)}) holds "
        f"{_count_bad(grad)}: every op's backward so far gave finite gradients, so it comes from the gradient "
        f"passed to backward(), a tensor hook, or the sum of the gradients of a tensor used several times "
        f"overflowing",
        f"  gradient: {_describe_bad(grad)}"])


def _backward_message(ctx, i, g, grad, site):
    name = _op_name(type(ctx).__name__)
    lines = [f"backward of {name} produced {_count_bad(g)} in {g.shape} (the gradient of its input {i}): "
             f"the op was created at {_where(site)}"] + _file_line(site) + [
             f"  input {i} gradient: {_describe_bad(g)}",
             f"  the gradient it received was finite: {_describe(grad)}"]
    if ctx.parents is not None:
        lines += [f"  input {k}: {_describe(_array(p))}" for k, p in enumerate(ctx.parents)]
    if site is not None and site.module:
        lines.append(f"  in module {site.module}")
    return "\n".join(lines)


def _file_line(site):
    """The full path as a traceback writes it (editors jump to it)."""
    return [f'  File "{site.filename}", line {site.lineno}'] if site is not None else []


def _where(site):
    return str(site) if site is not None else "an unknown place (it was recorded before anomaly mode was on)"


def _op_name(cls_name):
    """Conv2d -> conv2d, LogSoftmax -> log_softmax: the op as the Tensor method is called."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", cls_name).lower()


def _array(x):
    x = x._data if isinstance(x, Tensor) or hasattr(x, "_data") else x
    return x if isinstance(x, np.ndarray) else np.asarray(x) if isinstance(x, (float, int, np.generic)) else None


def _bad(a):
    return a is not None and a.dtype.kind in "fc" and not np.isfinite(a).all()


def _count_bad(a):
    nan, pos, neg = int(np.isnan(a).sum()), int(np.isposinf(a).sum()), int(np.isneginf(a).sum())
    parts = [f"{nan} NaN"] * bool(nan) + [f"{pos} +inf"] * bool(pos) + [f"{neg} -inf"] * bool(neg)
    return " and ".join(parts)


def _describe_bad(a):
    bad = ~np.isfinite(a)
    where = ", ".join(str(tuple(int(i) for i in idx)) for idx in np.argwhere(bad)[:3])
    more = ", ..." if bad.sum() > 3 else ""
    good = a[~bad]
    rest = f"the other values lie in [{good.min():.4g}, {good.max():.4g}]" if good.size else "no finite values"
    return f"{_count_bad(a)} at {where}{more}; {rest}"


def _describe(a):
    if a is None:
        return "not an array"
    text = f"{a.shape} {a.dtype}"
    if a.size == 1:
        return f"{text} = {a.item():.6g}" if a.dtype.kind in "biuf" else text
    if a.size and a.dtype.kind in "biuf":
        with np.errstate(all="ignore"):
            finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
            if finite.size:
                text += f" in [{finite.min():.4g}, {finite.max():.4g}]"
        zeros = int(a.size - np.count_nonzero(a))
        if zeros and a.dtype.kind == "f":
            text += f", {zeros} zero{'s' * (zeros != 1)}"
        if _bad(a):
            text += f", {_count_bad(a)}"
    return text


def _cause(op, inputs, out):
    """What usually makes this op's output non-finite, counted in its inputs (None: no rule)."""
    x, y = (inputs + [None, None])[:2]
    with np.errstate(all="ignore"):
        if op == "Log" and x is not None:
            return _got("got", [(x == 0, "zero", "-> -inf"), (x < 0, "negative", "-> NaN")])
        if op == "Div" and y is not None:
            return _got("got", [(y == 0, "zero divisor", "")])
        if op == "Pow" and x is not None:
            return _got("got", [(x < 0, "negative base", "-> NaN for a fractional exponent"),
                                (x == 0, "zero base", "-> inf for a negative exponent")])
        if op == "Exp" and x is not None:
            limit = np.log(np.finfo(out.dtype).max)
            return _got("overflowed:", [(x > limit, "input", f"above {limit:.4g}, the largest exp {out.dtype} holds")])
    return None


def _got(verb, rules):
    parts = []
    for mask, what, effect in rules:
        n = int(np.count_nonzero(mask))
        if n:
            parts.append(f"{n} {what}{'s' * (n != 1)}" + (f" ({effect})" if effect else ""))
    return f"{verb} " + " and ".join(parts) if parts else None
