"""Stochastic gradient descent, with PyTorch's momentum, dampening and Nesterov rules."""

from .optimizer import Optimizer, at_least, gradients, unit_interval


class SGD(Optimizer):
    """g = grad + weight_decay * p (negated first if maximize); with momentum, the buffer is
    b = g at the first step, then momentum * b + (1 - dampening) * g, and g becomes b (or
    g + momentum * b with nesterov); then p -= lr * g."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _check(self, group, where):
        self._require(group, "lr", at_least(0), "finite and >= 0", where)
        self._require(group, "momentum", unit_interval, "in [0, 1)", where)
        self._require(group, "dampening", lambda v: 0 <= v <= 1, "in [0, 1]", where)
        self._require(group, "weight_decay", at_least(0), "finite and >= 0", where)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening 0{where}, got momentum="
                             f"{group['momentum']!r} and dampening={group['dampening']!r}")

    def _update(self, group):
        lr, momentum, dampening = float(group["lr"]), float(group["momentum"]), float(group["dampening"])
        weight_decay, nesterov = float(group["weight_decay"]), group["nesterov"]
        for p, g in gradients(group, weight_decay):
            if momentum:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.astype(p._data.dtype)  # a copy
                else:  # in place: the buffer is the size of the parameter
                    buf *= momentum
                    buf += (1 - dampening) * g if dampening else g
                g = g + momentum * buf if nesterov else buf
            p._data -= lr * g
            p._mark_changed()
