"""The Optimizer base: parameter groups, per-parameter state, and saving/restoring both.

As in PyTorch, `param_groups` is a list of dicts, each holding its `params` and its own copy of
every hyperparameter (a scheduler changes `group["lr"]`), and `state` maps a parameter to a dict of
its buffers (momentum, moments, step count), created at its first step with a gradient.
"""
import copy
import math
import numbers
from collections import defaultdict

import numpy as np

from ..tensor import Tensor, enable_grad


class Optimizer:
    """Base of the optimizers: `Optimizer(params, defaults)`, params being Tensors, (name, Tensor)
    pairs from named_parameters(), or dicts (param groups) with per-group options.

    A subclass implements `_update(group)` (and `_check(group, where)` to validate options), or
    overrides `step()` as in PyTorch. `opt.lr` is ours, not PyTorch's: it reads the lr shared by
    every group, and setting it sets every group's lr."""

    def __init__(self, params, defaults):
        name = type(self).__name__
        if isinstance(params, Tensor) or isinstance(params, (set, dict)):
            raise TypeError(f"{name}: params must be an ordered iterable of Tensors or of dicts (param "
                            f"groups), got {type(params).__name__}")
        self.defaults = defaults
        self._check(defaults, "")
        self.state = defaultdict(dict)
        self.param_groups = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a dict with "params" and any per-group options; missing options take the defaults."""
        name = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: a param group must be a dict with a 'params' entry, got {param_group!r:.80}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, dict)):
            raise TypeError(f"{name}: a group's params must be ordered (a list), not a {type(params).__name__}: "
                            f"the order fixes which saved state belongs to which parameter")
        params = list(params)
        group = {**self.defaults, **param_group}
        if params and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params):
            group["param_names"], params = [n for n, _ in params], [p for _, p in params]  # named_parameters()
        group["params"] = params
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, got {type(p).__name__}")
            if p._ctx is not None:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (shape {p.shape}, made by "
                                 f"{type(p._ctx).__name__}); optimize the leaves it was computed from")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{name}: some parameters appear more than once (in one group or in two groups): "
                             f"each would be stepped twice")
        self._check(group, f" (param group {len(self.param_groups)})")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                elif type(p.grad) is np.ndarray:
                    p.grad.fill(0)  # in place, as PyTorch's zero_(): whoever holds the array sees it
                else:  # a Tensor from create_graph: zeros off the tape
                    p.grad = np.zeros_like(p.grad._data)

    def step(self, closure=None):
        """One update of every parameter with a gradient. `closure` (optional) recomputes the loss,
        with grad enabled, and its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update(group)
        return loss

    # ---- our convenience (not in PyTorch): one lr for every group ----
    @property
    def lr(self):
        lrs = {group["lr"] for group in self.param_groups}
        if len(lrs) != 1:
            raise ValueError(f"{type(self).__name__}.lr: the param groups have different lrs {sorted(lrs)}; "
                             f"read param_groups[i]['lr']")
        return lrs.pop()

    @lr.setter
    def lr(self, value):
        for i, group in enumerate(self.param_groups):
            self._check({**group, "lr": value}, f" (param group {i})")
        for group in self.param_groups:
            group["lr"] = value

    # ---- saving and resuming ----
    def state_dict(self):
        """{"state": {index: buffers}, "param_groups": [options with "params" as indices]}, as in
        PyTorch: parameters are numbered in group order. Arrays are copies."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        state = {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Continue exactly where the optimizer that saved `state_dict` stopped. Parameters are matched
        by their index in group order, so build the optimizer over the same parameters, in order."""
        name = type(self).__name__
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved)} param groups, this "
                             f"optimizer has {len(self.param_groups)}")
        sizes = [(len(s["params"]), len(g["params"])) for s, g in zip(saved, self.param_groups)]
        if any(a != b for a, b in sizes):
            raise ValueError(f"{name}.load_state_dict: the saved param groups hold {[a for a, _ in sizes]} "
                             f"parameters, this optimizer's hold {[b for _, b in sizes]}")
        params = {i: p for s, g in zip(saved, self.param_groups) for i, p in zip(s["params"], g["params"])}
        state = defaultdict(dict)
        for i, buffers in state_dict["state"].items():
            p = params.get(i)
            if p is None:
                raise ValueError(f"{name}.load_state_dict: the saved state names parameter {i}, which no saved "
                                 f"param group holds")
            state[p] = {k: self._restore(v, p, f"{name}.load_state_dict: state '{k}' of parameter {i}")
                        for k, v in buffers.items()}
        for s, g in zip(saved, self.param_groups):
            self._check({**g, **s}, " (loaded param group)")
        self.state = state
        self.param_groups = [{**copy.deepcopy({k: v for k, v in s.items() if k != "params"}), "params": g["params"]}
                             for s, g in zip(saved, self.param_groups)]

    @staticmethod
    def _restore(value, p, what):
        if not isinstance(value, np.ndarray):
            return copy.deepcopy(value)
        if value.shape != p.shape:
            raise ValueError(f"{what} has shape {value.shape}, but the parameter has shape {p.shape}")
        return np.array(value, dtype=p.dtype if value.dtype.kind == "f" else value.dtype)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k not in ("params", "param_names")]
        return "\n".join(lines + [")"])

    # ---- for the subclasses ----
    def _update(self, group):
        """Step every parameter of `group` that has a gradient. Read the options once per group, as
        Python floats (a numpy float64 lr would upcast float32 parameters), and write each parameter's
        array in place, then `p._mark_changed()`: a backward through an op that saved its old values
        then raises instead of using the new ones."""
        raise NotImplementedError

    def _check(self, group, where):
        """Raise a ValueError naming the optimizer and the option if `group` has a bad value."""

    def _require(self, group, key, ok, expected, where):
        value = group[key]
        try:
            good = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
                and ok(float(value))
        except (TypeError, ValueError):
            good = False
        if not good:
            raise ValueError(f"{type(self).__name__}: {key} must be {expected}{where}, got {value!r}")


def gradients(group, weight_decay=0.0):
    """(p, g) for each parameter of `group` that has a gradient: g as a numpy array (a Tensor grad,
    from create_graph=True, through its data), negated if the group maximizes, plus
    weight_decay * p (PyTorch's coupled weight decay)."""
    maximize = group["maximize"]
    for p in group["params"]:
        g = p.grad
        if g is None:
            continue
        if type(g) is not np.ndarray:  # checked here: a call to as_array costs on the hot path
            g = as_array(g)
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * p._data
        yield p, g


def as_array(grad):
    return grad._data if isinstance(grad, Tensor) else np.asarray(grad)


def at_least(low):
    return lambda v: v >= low


def unit_interval(v):  # [0, 1): momentum, betas, alpha
    return 0 <= v < 1
