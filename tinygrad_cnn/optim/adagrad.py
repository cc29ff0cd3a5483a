"""Adagrad (Duchi, Hazan & Singer, 2011), with PyTorch's lr decay."""
import numpy as np

from .optimizer import Optimizer, at_least, gradients


class Adagrad(Optimizer):
    """s += g^2 (s starts at initial_accumulator_value), then
    p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps), t counting this parameter's steps.
    g includes weight_decay * p."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=maximize,
                                      initial_accumulator_value=initial_accumulator_value))

    def _check(self, group, where):
        self._require(group, "lr", at_least(0), "finite and >= 0", where)
        self._require(group, "lr_decay", at_least(0), "finite and >= 0", where)
        self._require(group, "weight_decay", at_least(0), "finite and >= 0", where)
        self._require(group, "initial_accumulator_value", at_least(0), "finite and >= 0", where)
        self._require(group, "eps", lambda v: v > 0, "finite and > 0", where)

    def _update(self, group):
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p, g in gradients(group, weight_decay):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["sum"] = np.full_like(p._data, float(group["initial_accumulator_value"]))
            state["step"] = t = state["step"] + 1
            s = state["sum"]
            s += g * g
            denom = np.sqrt(s)
            denom += eps
            p._data -= lr / (1 + (t - 1) * lr_decay) * (g / denom)
            p._mark_changed()
