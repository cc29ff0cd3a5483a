"""OneCycleLR: the 1cycle policy (Smith & Topor, "Super-Convergence", 2018)."""
import math

from .scheduler import LRScheduler, _is_int


def _cos(start, end, pct):
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def _linear(start, end, pct):
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """Per batch: the lr rises from max_lr / div_factor to max_lr over the first pct_start of
    total_steps, then falls to max_lr / (div_factor * final_div_factor) (three_phase: falls back to
    the start first, then to that). The momentum (SGD's momentum or Adam's beta1) moves the other
    way, between max_momentum and base_momentum, if cycle_momentum."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        self._check_optimizer(optimizer)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            self._require("epochs", epochs, lambda v: v >= 1, "an int >= 1", integer=True)
            self._require("steps_per_epoch", steps_per_epoch, lambda v: v >= 1, "an int >= 1", integer=True)
            total_steps = epochs * steps_per_epoch
        self._require("total_steps", total_steps, lambda v: v >= 1, "an int >= 1", integer=True)
        self._require("pct_start", pct_start, lambda v: 0 <= v <= 1, "in [0, 1]")
        self._require("div_factor", div_factor, lambda v: v > 0, "finite and > 0")
        self._require("final_div_factor", final_div_factor, lambda v: v > 0, "finite and > 0")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps, self.cycle_momentum = total_steps, cycle_momentum
        self._anneal = _cos if anneal_strategy == "cos" else _linear
        up = float(pct_start * total_steps) - 1
        # (end step, start lr, end lr, start momentum, end momentum) of each phase, by group key
        self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                        (float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                        (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")] if three_phase else \
                       [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                        (total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        groups = optimizer.param_groups
        if last_epoch == -1:
            for group, top in zip(groups, self._per_group(optimizer, max_lr, "max_lr")):
                self._require("max_lr", top, lambda v: v >= 0, "finite and >= 0")
                group["initial_lr"] = top / div_factor
                group["max_lr"], group["min_lr"] = top, group["initial_lr"] / final_div_factor
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas; "
                                 f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            self._beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                for group, low, high in zip(groups, self._per_group(optimizer, base_momentum, "base_momentum"),
                                            self._per_group(optimizer, max_momentum, "max_momentum")):
                    self._require("base_momentum", low, lambda v: 0 <= v < 1, "in [0, 1)")
                    self._require("max_momentum", high, lambda v: 0 <= v < 1, "in [0, 1)")
                    self._set_momentum(group, high)
                    group["base_momentum"], group["max_momentum"] = low, high
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, value):
        if self._beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self):
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, past total_steps={self.total_steps}; "
                             f"make total_steps (or epochs * steps_per_epoch) cover the whole run")
        lrs, start = [], 0.0
        for i, (end, *_) in enumerate(self._phases):
            if t <= end or i == len(self._phases) - 1:
                break
            start = end
        # A phase of length 0 (pct_start * total_steps == 1) is at its end already (PyTorch divides by 0)
        pct = (t - start) / (end - start) if end != start else 1.0
        _, lr_from, lr_to, m_from, m_to = self._phases[i]
        for group in self.optimizer.param_groups:
            lrs.append(self._anneal(group[lr_from], group[lr_to], pct))
            if self.cycle_momentum:
                self._set_momentum(group, self._anneal(group[m_from], group[m_to], pct))
        return lrs

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "_anneal"}
