"""RMSprop (Hinton's lecture 6e), with PyTorch's centered and momentum variants."""
import numpy as np

from .optimizer import Optimizer, at_least, gradients, unit_interval


class RMSprop(Optimizer):
    """s = alpha s + (1 - alpha) g^2; centered also keeps a = alpha a + (1 - alpha) g and uses
    s - a^2; d = sqrt(that) + eps. Then p -= lr * g / d, or with momentum
    b = momentum b + g / d and p -= lr * b. g includes weight_decay * p."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def _check(self, group, where):
        self._require(group, "lr", at_least(0), "finite and >= 0", where)
        self._require(group, "alpha", unit_interval, "in [0, 1)", where)
        self._require(group, "eps", lambda v: v > 0, "finite and > 0", where)
        self._require(group, "weight_decay", at_least(0), "finite and >= 0", where)
        self._require(group, "momentum", unit_interval, "in [0, 1)", where)

    def _update(self, group):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        centered = group["centered"]
        for p, g in gradients(group, weight_decay):
            state = self.state[p]
            if not state:
                state["step"], state["square_avg"] = 0, np.zeros_like(p._data)
            state["step"] += 1
            s = state["square_avg"]
            s *= alpha
            s += (1 - alpha) * (g * g)
            if centered:
                a = state.get("grad_avg")
                if a is None:
                    a = state["grad_avg"] = np.zeros_like(p._data)
                a *= alpha
                a += (1 - alpha) * g
                denom = np.sqrt(s - a * a)
            else:
                denom = np.sqrt(s)
            denom += eps
            if momentum:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.zeros_like(p._data)
                buf *= momentum
                buf += g / denom
                p._data -= lr * buf
            else:
                p._data -= lr * (g / denom)
            p._mark_changed()
