"""Learning-rate schedulers, PyTorch's torch.optim.lr_scheduler: each sets the param groups' lr
once per `step()`, called after `optimizer.step()` (per epoch or per batch, as the schedule is meant)."""
import math
from collections import Counter

from .onecycle import OneCycleLR
from .plateau import ReduceLROnPlateau
from .scheduler import LRScheduler, _is_int

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "CosineAnnealingLR",
           "OneCycleLR", "ReduceLROnPlateau"]


class LambdaLR(LRScheduler):
    """lr = initial lr * lr_lambda(epoch); lr_lambda is one function, or a list of one per param group.
    (Not chainable: it sets the lr outright. The functions are not part of state_dict.)"""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self._check_optimizer(optimizer)
        self.lr_lambdas = self._per_group(optimizer, lr_lambda, "lr_lambda")
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError(f"LambdaLR: lr_lambda must be a function or a list of functions, got {lr_lambda!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class StepLR(LRScheduler):
    """Multiply the lr by gamma every step_size epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self._require("step_size", step_size, lambda v: v >= 1, "an int >= 1", integer=True)
        self._require("gamma", gamma, lambda v: v >= 0, "finite and >= 0")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]


class MultiStepLR(LRScheduler):
    """Multiply the lr by gamma at each epoch in milestones (by gamma^k at one listed k times)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = list(milestones)
        if not all(_is_int(m) and m >= 0 for m in milestones):
            raise ValueError(f"MultiStepLR: milestones must be ints >= 0, got {milestones!r}")
        self._require("gamma", gamma, lambda v: v >= 0, "finite and >= 0")
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        k = self.milestones.get(self.last_epoch, 0)
        return [lr * self.gamma ** k for lr in self._lrs()] if k else self._lrs()


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self._require("gamma", gamma, lambda v: v >= 0, "finite and >= 0")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self._lrs() if self.last_epoch == 0 else [lr * self.gamma for lr in self._lrs()]


class LinearLR(LRScheduler):
    """Scale the initial lr by a factor going linearly from start_factor to end_factor over
    total_iters epochs, then leave the lr alone."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        self._require("start_factor", start_factor, lambda v: 0 < v <= 1, "in (0, 1]")
        self._require("end_factor", end_factor, lambda v: 0 <= v <= 1, "in [0, 1]")
        self._require("total_iters", total_iters, lambda v: v >= 1, "an int >= 1", integer=True)
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, a, b, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        if t == 0:
            return [lr * a for lr in self._lrs()]
        if t > n:
            return self._lrs()
        # chained: the factor at t over the factor at t - 1, (n a + t (b - a)) / (n a + (t - 1)(b - a))
        return [lr * (1 + (b - a) / (n * a + (t - 1) * (b - a))) for lr in self._lrs()]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial lr - eta_min) (1 + cos(pi t / T_max)) / 2 (SGDR without restarts),
    computed by the recursion in PyTorch's docs so that it chains; past T_max it rises again."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self._require("T_max", T_max, lambda v: v >= 1, "an int >= 1", integer=True)
        self._require("eta_min", eta_min, lambda v: v >= 0, "finite and >= 0")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, low = self.last_epoch, self.T_max, self.eta_min
        if t == 0:
            return self._lrs()
        if (t - 1 - T) % (2 * T) == 0:  # from the bottom of the cosine, where the ratio below is 0/0
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2 for lr, base in zip(self._lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [low + (lr - low) * ratio for lr in self._lrs()]
