"""Module and Parameter, PyTorch style: a Module owns Tensors (parameters and buffers) and
sub-modules, found by walking its attributes (and the plain lists, tuples and dicts in them), so
a model is a plain class with a `forward`, and need not call `super().__init__()`."""
import warnings
from collections import namedtuple
from types import MappingProxyType

import numpy as np

from ..tensor import Tensor, _HookHandle


class Parameter(Tensor):
    """A Tensor that is a module's parameter: requires_grad=True by default. It shares the
    memory of the array or tensor it is made from."""
    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        super().__init__(np.empty(0, np.float32) if data is None else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _held(owner, name, value):
    """(name, value) for each Tensor and Module that `value` is or holds in plain lists, tuples
    and dicts, at any depth ("blocks.0", "heads.cls")."""
    if isinstance(value, (Tensor, Module)):
        yield name, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _held(owner, f"{name}.{i}", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _held(owner, f"{name}.{key}", item)
    elif isinstance(value, (set, frozenset)) and any(isinstance(v, (Tensor, Module)) for v in value):
        warnings.warn(f"{type(owner).__name__}.{name} is a set holding modules or tensors: a set has no order "
                      f"to name them by, so they are left out of parameters(), state_dict(), train()/eval() "
                      f"and to(); keep them in a list, a dict, nn.ModuleList or nn.ModuleDict", stacklevel=4)


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


_IncompatibleKeys = namedtuple("IncompatibleKeys", "missing_keys unexpected_keys")


class Module:
    """Base class of layers and models. Tensors kept as attributes are parameters (frozen ones,
    requires_grad=False, included: they are saved and loaded, and optimizers skip them), unless
    registered with `register_buffer`; Modules kept as attributes are children."""

    training = True
    _buffers = MappingProxyType({})  # name -> persistent, set per instance by register_buffer
    _hooks = None  # (pre-hooks, hooks) once one is registered: __call__ pays one check otherwise

    def __call__(self, *args, **kwargs):
        if self._hooks is None:
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # ---- hooks ----
    def _call_with_hooks(self, args, kwargs):
        pre_hooks, hooks = self._hooks
        for hook in list(pre_hooks):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(hooks):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_pre_hook(self, hook):
        """Call hook(module, args) before forward; a non-None result replaces the arguments.
        Returns a handle whose remove() unregisters it."""
        return self._add_hook(0, hook)

    def register_forward_hook(self, hook):
        """Call hook(module, args, output) after forward; a non-None result replaces the output.
        Returns a handle whose remove() unregisters it."""
        return self._add_hook(1, hook)

    def _add_hook(self, kind, hook):
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}: a hook must be callable, got {type(hook).__name__}")
        if self._hooks is None:
            self._hooks = ([], [])
        self._hooks[kind].append(hook)
        return _HookHandle(self._hooks[kind], hook)

    # ---- what a module holds ----
    def _members(self, skip=()):
        """(name, value) of the Tensors and Modules this module holds itself (containers name
        their items themselves and skip the attributes that hold them)."""
        for name, value in vars(self).items():
            if name not in skip:
                yield from _held(self, name, value)

    def _check_name(self, what, name):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{type(self).__name__}.{what}: the name must be a non-empty string without '.', "
                           f"got {name!r}")
        if hasattr(type(self), name):
            raise KeyError(f"{type(self).__name__}.{what}: attribute {name!r} already exists")

    def add_module(self, name, module):
        """setattr(self, name, module), for names made at run time (e.g. in a loop)."""
        self._check_name("add_module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: {name!r} must be a Module or None, got "
                            f"{type(module).__name__}")
        setattr(self, name, module)

    def register_parameter(self, name, param):
        """setattr(self, name, param), for names made at run time."""
        self._check_name("register_parameter", name)
        if param is not None and not isinstance(param, Tensor):
            raise TypeError(f"{type(self).__name__}.register_parameter: {name!r} must be a Tensor (nn.Parameter) or "
                            f"None, got {type(param).__name__}")
        setattr(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Keep `tensor` as attribute `name`: state that is not trained (running statistics).
        Buffers are moved by to() and, if persistent, saved by state_dict(); never parameters."""
        self._check_name("register_buffer", name)
        if name in vars(self) and name not in self._buffers:
            raise KeyError(f"{type(self).__name__}.register_buffer: attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            if not isinstance(tensor, np.ndarray):
                raise TypeError(f"{type(self).__name__}.register_buffer: {name!r} must be a Tensor, a numpy array "
                                f"or None, got {type(tensor).__name__}")
            tensor = Tensor(tensor, dtype=tensor.dtype)
        if "_buffers" not in vars(self):
            self._buffers = {}
        self._buffers[name] = bool(persistent)
        setattr(self, name, tensor)

    def named_children(self):
        seen = set()
        for name, value in self._members():
            if isinstance(value, Module) and id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """This module and every module inside it, depth first, each once (a module reachable two
        ways is listed under both names with remove_duplicate=False; a cycle is never followed)."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._members():
            if isinstance(child, Module):
                yield from child.named_modules(memo, _join(prefix, name), remove_duplicate)
        if not remove_duplicate:
            memo.discard(id(self))  # memo is then just the path from the root

    def modules(self):
        return (m for _, m in self.named_modules())

    def _named_tensors(self, prefix, recurse, remove_duplicate, buffers):
        seen = set()
        walk = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in walk:
            for name, value in module._members():
                if isinstance(value, Tensor) and (name in module._buffers) == buffers:
                    if remove_duplicate:
                        if id(value) in seen:
                            continue
                        seen.add(id(value))
                    yield _join(module_prefix, name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, tensor) for every parameter, each tensor once even if shared."""
        return self._named_tensors(prefix, recurse, remove_duplicate, buffers=False)

    def parameters(self, recurse=True):
        """Each parameter once, even if shared by two layers (or an optimizer would step it twice)."""
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_tensors(prefix, recurse, remove_duplicate, buffers=True)

    def buffers(self, recurse=True):
        return [b for _, b in self.named_buffers(recurse=recurse)]

    def _all_tensors(self):
        return [t for _, t in self.named_parameters()] + [t for _, t in self.named_buffers()]

    # ---- changing every module or tensor ----
    def apply(self, fn):
        """Call fn on every sub-module, then on this one (e.g. to initialise weights)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError(f"{type(self).__name__}.train: mode must be a bool, got {mode!r}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = p.grad * 0 if isinstance(p.grad, Tensor) else np.zeros_like(p.grad)

    def to(self, dtype):
        """Cast every floating-point parameter and buffer to `dtype` in place (e.g. np.float64 for
        a gradcheck); their gradients are dropped. to("cpu") does nothing: there is only the CPU."""
        if isinstance(dtype, str) and dtype == "cpu":
            return self
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: expected a floating-point dtype, got {dtype}")
        for t in self._all_tensors():
            if t.dtype.kind == "f" and t.dtype != dtype:
                t.data = t.data.astype(dtype)
                t.grad = None
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # ---- saving and loading ----
    def state_dict(self, keep_vars=False):
        """Name -> numpy copy of every parameter and persistent buffer (the tensors themselves with
        keep_vars=True). A module reachable two ways is saved under both names, as in PyTorch."""
        state = {}
        for prefix, module in self.named_modules(remove_duplicate=False):
            for name, value in module._members():
                if isinstance(value, Tensor) and module._buffers.get(name, True):
                    state[_join(prefix, name)] = value if keep_vars else value.data.copy()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy the values of `state_dict` in, each keeping its tensor's dtype. Any shape mismatch,
        and with strict=True any missing or unexpected name, raises one error listing every
        problem, before anything is changed. Returns (missing_keys, unexpected_keys)."""
        own = self.state_dict(keep_vars=True)
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        values = {name: np.asarray(v.data if isinstance(v, Tensor) else v) for name, v in state_dict.items()
                  if name in own}
        problems = [f"missing: {', '.join(missing)}" if missing and strict else "",
                    f"unexpected: {', '.join(unexpected)}" if unexpected and strict else ""]
        problems += [f"{name} has shape {v.shape}, expected {own[name].shape}" for name, v in values.items()
                     if v.shape != own[name].shape]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        for name, v in values.items():
            own[name].data = np.array(v, dtype=own[name].dtype)
        return _IncompatibleKeys(missing, unexpected)

    def __repr__(self):
        children = "".join(f"\n  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children())
        return f"{type(self).__name__}({self.extra_repr()}{children}{chr(10) if children else ''})"

    def extra_repr(self):
        return ""
