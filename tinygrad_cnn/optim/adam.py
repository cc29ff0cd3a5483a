"""Adam (Kingma & Ba, 2015) with AMSGrad, and AdamW (Loshchilov & Hutter, 2019): decoupled weight decay."""
import math

import numpy as np

from .optimizer import Optimizer, at_least, gradients, unit_interval


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2 (v = max of all v so far with amsgrad),
    p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps), t counting this parameter's steps.
    weight_decay adds weight_decay * p to g (L2), as torch.optim.Adam does; with
    decoupled_weight_decay=True it shrinks p by lr * weight_decay instead (that is AdamW)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    def _check(self, group, where):
        name = type(self).__name__
        self._require(group, "lr", at_least(0), "finite and >= 0", where)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2){where}, got {betas!r}")
        for i, beta in enumerate(betas):
            self._require({f"betas[{i}]": beta}, f"betas[{i}]", unit_interval, "in [0, 1)", where)
        self._require(group, "eps", lambda v: v > 0, "finite and > 0", where)
        self._require(group, "weight_decay", at_least(0), "finite and >= 0", where)

    def _update(self, group):
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        b1, b2 = float(group["betas"][0]), float(group["betas"][1])
        amsgrad, decoupled = group["amsgrad"], group["decoupled_weight_decay"]
        for p, g in gradients(group, 0.0 if decoupled else weight_decay):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p._data), np.zeros_like(p._data)
            state["step"] = t = state["step"] + 1
            if weight_decay and decoupled:
                p._data *= 1 - lr * weight_decay
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            if amsgrad:  # the largest v so far (v >= 0: starting from v is starting from 0)
                vmax = state.get("max_exp_avg_sq")
                if vmax is None:
                    vmax = state["max_exp_avg_sq"] = v.copy()
                else:
                    np.maximum(vmax, v, out=vmax)
                v = vmax
            update = np.sqrt(v)  # the denominator, then (in the same memory) the update
            update /= math.sqrt(1 - b2 ** t)
            update += eps
            np.divide(m, update, out=update)
            update *= lr / (1 - b1 ** t)
            p._data -= update
            p._mark_changed()


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2): p *= 1 - lr * weight_decay before the step,
    instead of adding weight_decay * p to the gradient."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
