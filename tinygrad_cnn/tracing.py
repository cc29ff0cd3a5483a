"""What the tape tools (profile, detect_anomaly, viz.record_modules) share: several of them on at
once through the engine's single tracer slot, and where in the user's code an op was called.

A tool has `forward(op, inputs, kwargs, run)` and `backward(ctx, output, grad, run)`, each
returning run() (see tensor.set_tracer), and an `order`: lower wraps higher, so the profiler
(highest) times the op alone, not the other tools' checks. With no tool on, nothing is installed
and the engine pays its one global check per op.
"""
import functools
import linecache
import os
import sys
import tempfile
import weakref
from collections import namedtuple

import numpy as np

from . import tensor as _engine
from .nn import Module

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_tools = []       # the tools on, outermost first
_outside = None   # a tracer someone installed with set_tracer before our first tool: kept, outermost


class _Chain:
    """Several tracers as one: each one's `run` runs the next, the last one's runs the op."""

    def __init__(self, tracers):
        self.tracers = tracers

    def forward(self, op, inputs, kwargs, run):
        for t in reversed(self.tracers):
            run = functools.partial(t.forward, op, inputs, kwargs, run)
        return run()

    def backward(self, ctx, output, grad, run):
        for t in reversed(self.tracers):
            run = functools.partial(t.backward, ctx, output, grad, run)
        return run()


def install(tool):
    global _outside
    if any(t is tool for t in _tools):
        raise RuntimeError(f"{type(tool).__name__} is already on: a tool cannot be entered twice at once")
    if not _tools:
        _outside = _engine._tracer
    _tools.append(tool)
    _tools.sort(key=lambda t: t.order)  # stable: equal orders keep the order they were entered
    _reinstall()


def uninstall(tool):
    """Take `tool` off, whether or not the tools are left in the order they were entered."""
    global _outside
    _tools[:] = [t for t in _tools if t is not tool]
    _reinstall()
    if not _tools:
        _outside = None


def _reinstall():
    tracers = ([_outside] if _outside is not None else []) + _tools
    _engine.set_tracer(None if not tracers else tracers[0] if len(tracers) == 1 else _Chain(tracers))


class Site(namedtuple("Site", "filename lineno modules classes")):
    """Where an op was called: the first frame outside the package (the user's line), and the
    modules whose forward was running, outermost first: their qualified names ("features.0")
    and class names ("Conv2d"). The outermost one running (the model) is left out."""
    __slots__ = ()

    @property
    def source(self):
        return linecache.getline(self.filename, self.lineno).strip()

    @property
    def module(self):
        """The innermost module, as "features.0 (Conv2d)", or None."""
        return f"{self.modules[-1]} ({self.classes[-1]})" if self.modules else None

    def short(self):
        return f"{os.path.basename(self.filename)}:{self.lineno}"

    def __str__(self):
        source = self.source
        return self.short() + (f": {source}" if source else "")


def call_site():
    """The Site of the op being run, called from a tracer."""
    f = sys._getframe(2)
    where, modules = None, []
    while f is not None:
        code = f.f_code
        if where is None and not code.co_filename.startswith(_PACKAGE):
            where = code.co_filename, f.f_lineno
        if code.co_name == "forward":  # a Module's forward (an op's forward has no `self`)
            m = f.f_locals.get("self")
            if isinstance(m, Module) and not (modules and modules[-1] is m):  # super().forward: once
                modules.append(m)
        f = f.f_back
    if where is None:
        where = "<unknown>", 0
    modules.reverse()
    return Site(where[0], where[1], _qualified(modules), tuple(type(m).__name__ for m in modules[1:]))


_names = weakref.WeakKeyDictionary()  # root module -> {id(submodule): qualified name}


def _qualified(modules):
    """Names relative to the outermost module running: its children as in named_parameters."""
    if not modules:
        return ()
    root = modules[0]
    try:
        names = _names.get(root)
    except TypeError:  # a module that cannot be weakly referenced or hashed: name it afresh
        names = None
    if names is None or any(id(m) not in names for m in modules[1:]):
        names = module_names(root)
        try:
            _names[root] = names
        except TypeError:
            pass
    return tuple(names.get(id(m), type(m).__name__) for m in modules[1:])


def module_names(root):
    """{id(module): qualified name} for every module under `root` (the root itself is "")."""
    names, stack = {}, [("", root)]
    while stack:
        prefix, m = stack.pop()
        names.setdefault(id(m), prefix)
        stack.extend((f"{prefix}.{n}" if prefix else n, child) for n, child in m.named_children())
    return names


def norm(a):
    """The 2-norm of all of a's entries, in one pass without a temporary. Not np.linalg.norm: its
    multithreaded BLAS dot cost more than the op it follows on a busy machine (measured: 9 ms vs
    0.5 ms for a million entries), and the tools should stay out of the time they measure."""
    flat = a.ravel(order="K")  # in memory order: no copy for any contiguous layout
    return float(np.sqrt(np.einsum("i,i->", flat, flat)))


def write_atomically(path, data):
    """Write bytes to `path` so that a crash leaves the old file or none, never half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a picture or trace need not be
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
