"""ReduceLROnPlateau: cut the lr when a metric has stopped improving."""
import math

from .scheduler import LRScheduler


class ReduceLROnPlateau(LRScheduler):
    """`step(metric)` once per epoch: after more than `patience` epochs without an improvement (by
    more than `threshold`, relative or absolute), multiply the lr by `factor` (not below min_lr;
    changes smaller than eps are skipped), then wait `cooldown` epochs before counting again."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        self._check_optimizer(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self._require("factor", factor, lambda v: 0 <= v < 1, "in [0, 1)")
        self._require("patience", patience, lambda v: v >= 0, "an int >= 0", integer=True)
        self._require("cooldown", cooldown, lambda v: v >= 0, "an int >= 0", integer=True)
        self._require("threshold", threshold, lambda v: v >= 0, "finite and >= 0")
        self._require("eps", eps, lambda v: v >= 0, "finite and >= 0")
        self.min_lrs = self._per_group(optimizer, min_lr, "min_lr")
        for value in self.min_lrs:
            self._require("min_lr", value, lambda v: v >= 0, "finite and >= 0")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown, self.eps = threshold, threshold_mode, cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
        self._last_lr = self._lrs()

    def step(self, metrics):
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step: metrics must be a number (e.g. the validation loss), "
                            f"got {type(metrics).__name__}") from None
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, low in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, low)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._lrs()

    def _is_better(self, current):
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return current < (self.best * (1 - self.threshold) if rel else self.best - self.threshold)
        return current > (self.best * (1 + self.threshold) if rel else self.best + self.threshold)
