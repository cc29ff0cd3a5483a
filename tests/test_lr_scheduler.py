"""tinygrad_cnn.optim.lr_scheduler: each scheduler's lr sequence against PyTorch's, measured with
PyTorch 2.13 for these configurations and hard-coded here; chaining, resuming, argument checks."""
import math
import pickle
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, optim
from tinygrad_cnn.optim import lr_scheduler as S


def optimizer(name="SGD", group_lrs=(None,), **kwargs):
    """An optimizer with one param group per entry of group_lrs (None: the default lr)."""
    groups = [{"params": [Tensor(np.zeros(1), requires_grad=True)], **({} if lr is None else {"lr": lr})}
              for lr in group_lrs]
    return getattr(optim, name)(groups, **kwargs)


def observe(opt):
    lrs = tuple(g["lr"] for g in opt.param_groups)
    return lrs if len(lrs) > 1 else lrs[0]


def lr_sequence(opt, scheduler, steps):
    """The lr (a tuple with several groups) before each of `steps` steps, and after the last."""
    seq = []
    for _ in range(steps):
        seq.append(observe(opt))
        assert scheduler.get_last_lr() == [g["lr"] for g in opt.param_groups]
        opt.step()
        scheduler.step()
    return seq + [observe(opt)]


# (optimizer's group lrs and options, scheduler, its arguments, steps, PyTorch 2.13's sequence)
SEQUENCES = [
    ((None,), dict(lr=0.1), S.StepLR, dict(step_size=3), 10,
     [0.1, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002, 0.010000000000000002, 0.0010000000000000002,
      0.0010000000000000002, 0.0010000000000000002, 0.00010000000000000003, 0.00010000000000000003]),
    ((None, 0.5), dict(lr=0.1), S.StepLR, dict(step_size=2, gamma=0.5), 8,
     [(0.1, 0.5), (0.1, 0.5), (0.05, 0.25), (0.05, 0.25), (0.025, 0.125), (0.025, 0.125), (0.0125, 0.0625),
      (0.0125, 0.0625), (0.00625, 0.03125)]),
    ((None,), dict(lr=1.0), S.StepLR, dict(step_size=1, gamma=0.9), 5,
     [1.0, 0.9, 0.81, 0.7290000000000001, 0.6561000000000001, 0.5904900000000002]),
    ((None,), dict(lr=0.1), S.MultiStepLR, dict(milestones=[2, 5, 5, 7], gamma=0.3), 10,
     [0.1, 0.1, 0.03, 0.03, 0.03, 0.0026999999999999997, 0.0026999999999999997, 0.0008099999999999998,
      0.0008099999999999998, 0.0008099999999999998, 0.0008099999999999998]),
    ((None,), dict(lr=1.0), S.MultiStepLR, dict(milestones=[3, 1]), 5,
     [1.0, 0.1, 0.1, 0.010000000000000002, 0.010000000000000002, 0.010000000000000002]),
    ((None, 2.0), dict(lr=1.0), S.MultiStepLR, dict(milestones=[0, 2], gamma=0.5), 4,  # 0: at construction
     [(0.5, 1.0), (0.5, 1.0), (0.25, 0.5), (0.25, 0.5), (0.25, 0.5)]),
    ((None,), dict(lr=0.1), S.ExponentialLR, dict(gamma=0.9), 6,
     [0.1, 0.09000000000000001, 0.08100000000000002, 0.07290000000000002, 0.06561000000000002, 0.05904900000000002,
      0.05314410000000002]),
    ((None,), dict(lr=1.0), S.ExponentialLR, dict(gamma=1.5), 4, [1.0, 1.5, 2.25, 3.375, 5.0625]),
    ((None, 0.01), dict(lr=1.0), S.ExponentialLR, dict(gamma=0.5), 4,
     [(1.0, 0.01), (0.5, 0.005), (0.25, 0.0025), (0.125, 0.00125), (0.0625, 0.000625)]),
    ((None,), dict(lr=0.1), S.CosineAnnealingLR, dict(T_max=5, eta_min=0.01), 16,  # on past T_max: up again
     [0.1, 0.09140576474687263, 0.06890576474687263, 0.04109423525312736, 0.018594235253127367, 0.01,
      0.018594235253127367, 0.04109423525312739, 0.06890576474687267, 0.09140576474687269, 0.10000000000000006,
      0.09140576474687272, 0.06890576474687268, 0.0410942352531274, 0.01859423525312738, 0.01, 0.018594235253127367]),
    ((None, 1.0), dict(lr=0.1), S.CosineAnnealingLR, dict(T_max=4), 12,
     [(0.1, 1.0), (0.08535533905932738, 0.8535533905932737), (0.05, 0.5), (0.014644660940672627, 0.14644660940672627),
      (0.0, 0.0), (0.014644660940672622, 0.1464466094067262), (0.05000000000000001, 0.5000000000000001),
      (0.0853553390593274, 0.8535533905932742), (0.10000000000000003, 1.0000000000000004),
      (0.0853553390593274, 0.8535533905932742), (0.05000000000000003, 0.5000000000000003),
      (0.014644660940672672, 0.14644660940672674), (0.0, 0.0)]),
    ((None,), dict(lr=0.1), S.CosineAnnealingLR, dict(T_max=1), 4, [0.1, 0.0, 0.1, 0.0, 0.1]),
    ((None,), dict(lr=0.1), S.LinearLR, dict(), 8,
     [0.03333333333333333, 0.04666666666666667, 0.060000000000000005, 0.07333333333333335, 0.08666666666666668, 0.1,
      0.1, 0.1, 0.1]),
    ((None,), dict(lr=0.1), S.LinearLR, dict(start_factor=1.0, end_factor=0.1, total_iters=4), 8,
     [0.1, 0.07750000000000001, 0.055000000000000014, 0.03250000000000001, 0.01, 0.01, 0.01, 0.01, 0.01]),
    ((None,), dict(lr=1.0), S.LinearLR, dict(start_factor=0.1, end_factor=0.0, total_iters=3), 5,
     [0.1, 0.06666666666666668, 0.03333333333333334, 7.401486830834378e-18, 7.401486830834378e-18,
      7.401486830834378e-18]),  # not quite 0: the chained form's rounding, PyTorch's too
    ((None, 1.0), dict(lr=0.1), S.LambdaLR, dict(lr_lambda=[lambda e: 0.5 ** e, lambda e: e + 1]), 4,
     [(0.1, 1.0), (0.05, 2.0), (0.025, 3.0), (0.0125, 4.0), (0.00625, 5.0)]),
    ((None,), dict(lr=0.1), S.LambdaLR, dict(lr_lambda=lambda e: 1 / (e + 1)), 3,
     [0.1, 0.05, 0.1 / 3, 0.025]),  # by hand
]


@pytest.mark.parametrize("group_lrs, opt_kwargs, cls, kwargs, steps, expected", SEQUENCES,
                         ids=[f"{s[2].__name__}-{i}" for i, s in enumerate(SEQUENCES)])
def test_lr_sequence_matches_pytorch(group_lrs, opt_kwargs, cls, kwargs, steps, expected):
    opt = optimizer("SGD", group_lrs, **opt_kwargs)
    scheduler = cls(opt, **kwargs)
    np.testing.assert_allclose(lr_sequence(opt, scheduler, steps), expected, rtol=1e-12, atol=1e-18)
    assert scheduler.last_epoch == steps


# (optimizer, its options, OneCycleLR's arguments, PyTorch 2.13's (lr, momentum or beta1) before each step)
ONE_CYCLE = [
    ("SGD", dict(lr=0.1, momentum=0.9), dict(max_lr=1.0, total_steps=10),
     [(0.040000000000000036, 0.95), (0.52, 0.8999999999999999), (1.0, 0.85), (0.9504846320134737, 0.854951556604879),
      (0.8117456539497631, 0.8688255099070633), (0.6112620219362893, 0.8888739533021842),
      (0.38874197806371075, 0.9111260466978157), (0.18825834605023697, 0.9311744900929366),
      (0.049519367986526286, 0.945048443395121), (4e-06, 0.95), (0.04951936798652623, 0.945048443395121)]),
    ("SGD", dict(lr=0.1, momentum=0.9),
     dict(max_lr=1.0, epochs=2, steps_per_epoch=6, anneal_strategy="linear", pct_start=0.25),
     [(0.04, 0.95), (0.52, 0.8999999999999999), (1.0, 0.85), (0.8888893333333333, 0.861111111111111),
      (0.7777786666666666, 0.8722222222222222), (0.666668, 0.8833333333333333), (0.5555573333333333, 0.8944444444444444),
      (0.44444666666666666, 0.9055555555555556), (0.3333360000000001, 0.9166666666666666),
      (0.22222533333333327, 0.9277777777777777), (0.1111146666666667, 0.9388888888888889),
      (4.000000000004e-06, 0.95), (-0.11110666666666669, 0.961111111111111)]),  # the 13th value: past the end
    ("Adam", dict(lr=0.1),
     dict(max_lr=0.01, total_steps=12, three_phase=True, base_momentum=0.8, max_momentum=0.9),
     [(0.0003999999999999993, 0.9), (0.0034978965421958302, 0.8677302443521268),
      (0.008792851591221286, 0.812574462591445), (0.009450188923135407, 0.8057271987173396),
      (0.0046214239347744475, 0.8560268340127662), (0.0005394792763549498, 0.8985470908713026),
      (0.00038151693242579796, 0.9), (0.0003122461893311692, 0.9), (0.00021084669893891179, 0.9),
      (0.00010634768002885594, 0.9), (2.8665701910005542e-05, 0.9), (4e-08, 0.9), (2.8665701910005478e-05, 0.9)]),
    ("Adam", dict(lr=0.1),
     dict(max_lr=0.01, total_steps=7, cycle_momentum=False, div_factor=10, final_div_factor=100),
     [(0.0009999999999999992, 0.9), (0.009817718381265238, 0.9), (0.009191250083934744, 0.9),
      (0.006730098446834433, 0.9), (0.0035837847047779934, 0.9), (0.0010019389587695585, 0.9), (1e-05, 0.9),
      (0.0010019389587695563, 0.9)]),
]


@pytest.mark.parametrize("name, opt_kwargs, kwargs, expected", ONE_CYCLE, ids=["cos", "linear", "three-phase-adam",
                                                                               "no-momentum"])
def test_one_cycle_lr_and_momentum_match_pytorch(name, opt_kwargs, kwargs, expected):
    opt = optimizer(name, **opt_kwargs)
    scheduler = S.OneCycleLR(opt, **kwargs)
    group, seq = opt.param_groups[0], []
    for _ in range(len(expected)):
        seq.append((group["lr"], group["momentum"] if name == "SGD" else group["betas"][0]))
        if name == "Adam":
            assert group["betas"][1] == 0.999
        opt.step()
        if scheduler.last_epoch < scheduler.total_steps:
            scheduler.step()
    np.testing.assert_allclose(seq, expected, rtol=1e-12)


def test_one_cycle_max_lr_and_momenta_per_group():
    opt = optimizer("SGD", (None, None), lr=0.1, momentum=0.9)
    S.OneCycleLR(opt, max_lr=[1.0, 2.0], total_steps=10, base_momentum=[0.8, 0.5], max_momentum=[0.9, 0.6])
    np.testing.assert_allclose([(g["lr"], g["momentum"]) for g in opt.param_groups], [(1 / 25, 0.9), (2 / 25, 0.6)],
                               rtol=1e-14)
    assert opt.param_groups[1]["min_lr"] == 2.0 / 25 / 1e4


def test_one_cycle_phase_of_no_steps_starts_at_its_end():
    """pct_start * total_steps == 1 makes the first phase end at step 0; PyTorch divides by zero."""
    opt = optimizer("SGD", lr=0.1, momentum=0.9)
    S.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.1)
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]) == (1.0, 0.85)


def test_one_cycle_refuses_to_step_past_total_steps():
    opt = optimizer()
    scheduler = S.OneCycleLR(opt, max_lr=1.0, total_steps=3, cycle_momentum=False)
    for _ in range(3):
        scheduler.step()
    with pytest.raises(ValueError, match=re.escape("OneCycleLR: stepped 4 times, past total_steps=3")):
        scheduler.step()


# (min_lr and the other options, the metric of each epoch, PyTorch 2.13's get_last_lr() after each step)
PLATEAU = [
    (dict(patience=2), [5, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3],
     [(0.1, 1.0)] * 4 + [(0.010000000000000002, 0.1)] * 6 + [(0.0010000000000000002, 0.010000000000000002)] * 2),
    (dict(mode="max", factor=0.5, patience=1, cooldown=2, threshold=0.1, threshold_mode="abs"),
     [1, 1.05, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 2, 2, 2], [(0.1, 1.0)] * 4 + [(0.05, 0.5)] * 6 + [(0.025, 0.25)]),
    (dict(patience=0, min_lr=[0.03, 0.2], eps=1e-3), [1] * 6, [(0.1, 1.0)] + [(0.03, 0.2)] * 5),
    (dict(mode="max", patience=1, threshold=0.5), [1, 1.4, 1.6, 2.0, 3.5, 3.0, 3.0, math.nan, 9.0],
     [(0.1, 1.0)] * 6 + [(0.010000000000000002, 0.1)] * 3),
]


@pytest.mark.parametrize("kwargs, metrics, expected", PLATEAU, ids=["min-rel", "max-abs-cooldown", "min_lr-eps",
                                                                    "max-rel-nan"])
def test_reduce_lr_on_plateau_matches_pytorch(kwargs, metrics, expected):
    opt = optimizer("SGD", (None, 1.0), lr=0.1)
    scheduler = S.ReduceLROnPlateau(opt, **kwargs)
    seq = []
    for m in metrics:
        opt.step()
        scheduler.step(Tensor(np.float32(m)) if m == 4 else m)  # a 0-d tensor works too
        seq.append(tuple(scheduler.get_last_lr()))
    np.testing.assert_allclose(seq, expected, rtol=1e-12)
    assert scheduler.last_epoch == len(metrics)


def test_chainable_schedulers_compose_and_keep_a_manual_change():
    # measured with PyTorch 2.13: ExponentialLR(0.5) and StepLR(2, 0.1) on one optimizer; StepLR after lr = 0.5
    opt = optimizer(lr=1.0)
    a, b = S.ExponentialLR(opt, 0.5), S.StepLR(opt, 2, gamma=0.1)
    seq = []
    for _ in range(5):
        seq.append(opt.lr)
        opt.step()
        a.step()
        b.step()
    np.testing.assert_allclose(seq, [1.0, 0.5, 0.025, 0.0125, 0.0006250000000000001], rtol=1e-12)
    opt = optimizer(lr=1.0)
    scheduler, seq = S.StepLR(opt, 2), []
    for i in range(5):
        if i == 1:
            opt.lr = 0.5
        seq.append(opt.lr)
        scheduler.step()
    np.testing.assert_allclose(seq, [1.0, 0.5, 0.05, 0.05, 0.005000000000000001], rtol=1e-12)


RESUMABLE = {
    "step": lambda opt: S.StepLR(opt, 2, gamma=0.5),
    "multistep": lambda opt: S.MultiStepLR(opt, [1, 4]),
    "exponential": lambda opt: S.ExponentialLR(opt, 0.8),
    "cosine": lambda opt: S.CosineAnnealingLR(opt, 4, eta_min=0.001),
    "linear": lambda opt: S.LinearLR(opt, total_iters=4),
    "lambda": lambda opt: S.LambdaLR(opt, lambda e: 0.9 ** e),
    "one-cycle": lambda opt: S.OneCycleLR(opt, max_lr=0.5, total_steps=8, three_phase=True),
    "plateau": lambda opt: S.ReduceLROnPlateau(opt, patience=0, cooldown=1),
}


@pytest.mark.parametrize("make", RESUMABLE.values(), ids=RESUMABLE.keys())
def test_resuming_from_state_dicts_continues_exactly(make):
    """Eight steps in one go == four, save optimizer and scheduler, rebuild both (PyTorch's order:
    optimizer, scheduler, then load each), four more. Parameters, lrs and momenta all agree."""
    metrics = [3.0, 2.0, 2.5, 2.5, 1.0, 1.0, 1.0, 0.5]

    def steps(opt, scheduler, p, epochs):
        out = []
        for e in epochs:
            p.grad = np.array([1.0, -0.5]) * (e + 1)
            opt.step()
            scheduler.step(metrics[e]) if isinstance(scheduler, S.ReduceLROnPlateau) else scheduler.step()
            out.append((p.data.copy(), dict(opt.param_groups[0], params=None), scheduler.get_last_lr()))
        return out

    p = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    scheduler = make(opt)
    steps(opt, scheduler, p, range(4))
    saved = pickle.dumps((p.data, opt.state_dict(), scheduler.state_dict()))  # as if on disk
    straight = steps(opt, scheduler, p, range(4, 8))

    data, opt_state, scheduler_state = pickle.loads(saved)
    q = Tensor(data.copy(), requires_grad=True)
    opt2 = optim.SGD([q], lr=0.1, momentum=0.9)
    scheduler2 = make(opt2)
    opt2.load_state_dict(opt_state)
    scheduler2.load_state_dict(scheduler_state)
    for (pa, ga, la), (pb, gb, lb) in zip(straight, steps(opt2, scheduler2, q, range(4, 8))):
        np.testing.assert_array_equal(pa, pb)
        assert ga == gb and la == lb


def test_resuming_with_last_epoch_needs_initial_lr():
    opt = optimizer(lr=0.1)
    with pytest.raises(KeyError, match="StepLR: resuming at last_epoch=3 needs 'initial_lr' in every param group"):
        S.StepLR(opt, 2, last_epoch=3)
    S.StepLR(opt, 2)  # sets initial_lr
    scheduler = S.StepLR(opt, 2, last_epoch=3)  # continues with epoch 4: a multiple of 2
    assert scheduler.last_epoch == 4 and opt.lr == pytest.approx(0.01)


def test_lrs_stay_python_floats():
    """A numpy float64 lr would upcast float32 parameters in a later step."""
    opt = optimizer(lr=0.1)
    scheduler = S.CosineAnnealingLR(opt, 10)
    scheduler.step()
    assert type(opt.lr) is float


# ---- argument checks -------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda opt: S.StepLR("sgd", 2), TypeError, "StepLR: optimizer must be an Optimizer, got str"),
    (lambda opt: S.StepLR(opt, 0), ValueError, "StepLR: step_size must be an int >= 1, got 0"),
    (lambda opt: S.StepLR(opt, 2.5), ValueError, "StepLR: step_size must be an int >= 1, got 2.5"),
    (lambda opt: S.StepLR(opt, 2, gamma=-0.1), ValueError, "StepLR: gamma must be finite and >= 0, got -0.1"),
    (lambda opt: S.StepLR(opt, 2, last_epoch=-2), ValueError, "StepLR: last_epoch must be an int >= -1, got -2"),
    (lambda opt: S.MultiStepLR(opt, [2, -1]), ValueError, "MultiStepLR: milestones must be ints >= 0, got [2, -1]"),
    (lambda opt: S.ExponentialLR(opt, math.nan), ValueError, "ExponentialLR: gamma must be finite and >= 0, got nan"),
    (lambda opt: S.CosineAnnealingLR(opt, 0), ValueError, "CosineAnnealingLR: T_max must be an int >= 1, got 0"),
    (lambda opt: S.CosineAnnealingLR(opt, 5, eta_min=-1), ValueError,
     "CosineAnnealingLR: eta_min must be finite and >= 0, got -1"),
    (lambda opt: S.LinearLR(opt, start_factor=0), ValueError, "LinearLR: start_factor must be in (0, 1], got 0"),
    (lambda opt: S.LinearLR(opt, end_factor=1.5), ValueError, "LinearLR: end_factor must be in [0, 1], got 1.5"),
    (lambda opt: S.LinearLR(opt, total_iters=0), ValueError, "LinearLR: total_iters must be an int >= 1, got 0"),
    (lambda opt: S.LambdaLR(opt, [lambda e: 1, lambda e: 2]), ValueError,
     "LambdaLR: expected 1 values of lr_lambda (one per param group), got 2"),
    (lambda opt: S.LambdaLR(opt, 0.5), TypeError, "LambdaLR: lr_lambda must be a function or a list of functions"),
    (lambda opt: S.OneCycleLR(opt, 1.0), ValueError, "OneCycleLR: give total_steps, or both epochs and steps_per_epoch"),
    (lambda opt: S.OneCycleLR(opt, 1.0, total_steps=0), ValueError, "OneCycleLR: total_steps must be an int >= 1, got 0"),
    (lambda opt: S.OneCycleLR(opt, 1.0, epochs=2, steps_per_epoch=0), ValueError,
     "OneCycleLR: steps_per_epoch must be an int >= 1, got 0"),
    (lambda opt: S.OneCycleLR(opt, 1.0, 10, pct_start=1.5), ValueError, "OneCycleLR: pct_start must be in [0, 1], got 1.5"),
    (lambda opt: S.OneCycleLR(opt, 1.0, 10, anneal_strategy="exp"), ValueError,
     "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda opt: S.OneCycleLR(opt, [1.0, 2.0], 10), ValueError,
     "OneCycleLR: expected 1 values of max_lr (one per param group), got 2"),
    (lambda opt: S.OneCycleLR(opt, -1.0, 10), ValueError, "OneCycleLR: max_lr must be finite and >= 0, got -1.0"),
    (lambda opt: S.OneCycleLR(opt, 1.0, 10, max_momentum=1.0), ValueError,
     "OneCycleLR: max_momentum must be in [0, 1), got 1.0"),
    (lambda opt: S.OneCycleLR(optim.Adagrad([Tensor(np.ones(1), requires_grad=True)]), 1.0, 10), ValueError,
     "OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas; Adagrad has neither"),
    (lambda opt: S.ReduceLROnPlateau(opt, mode="minimum"), ValueError,
     "ReduceLROnPlateau: mode must be 'min' or 'max', got 'minimum'"),
    (lambda opt: S.ReduceLROnPlateau(opt, threshold_mode="relative"), ValueError,
     "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got 'relative'"),
    (lambda opt: S.ReduceLROnPlateau(opt, factor=1.0), ValueError, "ReduceLROnPlateau: factor must be in [0, 1), got 1.0"),
    (lambda opt: S.ReduceLROnPlateau(opt, patience=-1), ValueError,
     "ReduceLROnPlateau: patience must be an int >= 0, got -1"),
    (lambda opt: S.ReduceLROnPlateau(opt, min_lr=[0.1, 0.2]), ValueError,
     "ReduceLROnPlateau: expected 1 values of min_lr (one per param group), got 2"),
    (lambda opt: S.ReduceLROnPlateau(opt).step("loss"), TypeError,
     "ReduceLROnPlateau.step: metrics must be a number (e.g. the validation loss), got str"),
])
def test_bad_arguments_are_rejected_with_a_clear_error(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make(optimizer(lr=0.1))
