"""The LRScheduler base: what every learning-rate scheduler of optim.lr_scheduler shares."""
import copy
import math
import numbers

from .optimizer import Optimizer


class LRScheduler:
    """Sets each param group's lr once per `step()`, from `get_lr()`. Call `scheduler.step()` after
    `optimizer.step()`. Construction is step 0: `last_epoch` becomes 0 and the lrs are set for it.

    Most schedulers are chainable, as in PyTorch: they compute the new lr from the group's current
    lr, so two schedulers on one optimizer (or a manual change of lr) compose by multiplication."""

    def __init__(self, optimizer, last_epoch=-1):
        name = type(self).__name__
        self._check_optimizer(optimizer)
        if not _is_int(last_epoch) or last_epoch < -1:
            raise ValueError(f"{name}: last_epoch must be an int >= -1, got {last_epoch!r}")
        groups = optimizer.param_groups
        if last_epoch == -1:
            for group in groups:
                group.setdefault("initial_lr", group["lr"])
        elif any("initial_lr" not in g for g in groups):
            raise KeyError(f"{name}: resuming at last_epoch={last_epoch} needs 'initial_lr' in every param group "
                           f"(set by the scheduler of the interrupted run); or load its state_dict instead")
        self.optimizer = optimizer
        self.base_lrs = [group["initial_lr"] for group in groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        """The lr of each param group at epoch `self.last_epoch`."""
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The lrs the last step() set, one per param group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer (a copy)."""
        return copy.deepcopy({k: v for k, v in vars(self).items() if k != "optimizer"})

    def load_state_dict(self, state_dict):
        vars(self).update(copy.deepcopy(state_dict))

    def _lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def _check_optimizer(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be an Optimizer, got {type(optimizer).__name__}")

    def _per_group(self, optimizer, value, arg):
        """A value for each param group of `optimizer`: a list of one per group, or one for all."""
        n = len(optimizer.param_groups)
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"{type(self).__name__}: expected {n} values of {arg} (one per param group), "
                                 f"got {len(value)}")
            return list(value)
        return [value] * n

    def _require(self, arg, value, ok, expected, integer=False):
        good = (_is_int(value) if integer else isinstance(value, numbers.Real) and not isinstance(value, bool))
        if not (good and math.isfinite(value) and ok(value)):
            raise ValueError(f"{type(self).__name__}: {arg} must be {expected}, got {value!r}")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
