"""tinygrad_cnn.optim: every optimizer against an independent plain-numpy version of its published
update (PyTorch's docs) and against values measured with PyTorch; param groups, state_dict and
exact resumption, zero_grad, in-place safety, dtypes, argument checks; gradient clipping."""
import math
import pickle
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, optim

# Gradients of a 4-element parameter over five steps, chosen by hand (mixed signs, sizes, a zero);
# None: no gradient that step (the parameter is skipped and its step count does not advance).
GRADS = [np.array([1.0, -2.0, 0.5, 0.0]),
         np.array([-0.5, 3.0, 0.5, 0.0]),
         None,
         np.array([2.0, 1.0, -4.0, 0.0]),
         np.array([0.1, -0.3, 2.0, 0.0])]
P0 = np.array([1.0, -2.0, 3.0, 0.5])


def run(opt, p, grads=GRADS):
    """Feed `grads` to `opt` one step at a time; return the parameter after each step."""
    history = []
    for g in grads:
        p.grad = None if g is None else g.copy()
        opt.step()
        history.append(p.data.copy())
    return history


# ---- the published updates, in plain numpy (one parameter; a None gradient skips the step) -------

def ref_sgd(p, grads, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    buf, out = None, []
    for g in grads:
        if g is not None:
            g = (-g if maximize else g) + weight_decay * p
            if momentum:
                buf = g if buf is None else momentum * buf + (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            p = p - lr * g
        out.append(p)
    return out


def ref_adam(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False,
             decoupled=False):
    (b1, b2), m, v, vmax, t, out = betas, 0 * p, 0 * p, 0 * p, 0, []
    for g in grads:
        if g is not None:
            t += 1
            g = -g if maximize else g
            if decoupled:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g ** 2
            vmax = np.maximum(vmax, v)
            v_hat = (vmax if amsgrad else v) / (1 - b2 ** t)
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def ref_adamw(p, grads, weight_decay=1e-2, **kw):
    return ref_adam(p, grads, weight_decay=weight_decay, decoupled=True, **kw)


def ref_rmsprop(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                maximize=False):
    s, a, buf, out = 0 * p, 0 * p, 0 * p, []
    for g in grads:
        if g is not None:
            g = (-g if maximize else g) + weight_decay * p
            s = alpha * s + (1 - alpha) * g ** 2
            a = alpha * a + (1 - alpha) * g
            d = np.sqrt(s - a ** 2 if centered else s) + eps
            buf = momentum * buf + g / d
            p = p - lr * (buf if momentum else g / d)
        out.append(p)
    return out


def ref_adagrad(p, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                maximize=False):
    s, t, out = 0 * p + initial_accumulator_value, 0, []
    for g in grads:
        if g is not None:
            t += 1
            g = (-g if maximize else g) + weight_decay * p
            s = s + g ** 2
            p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
        out.append(p)
    return out


CONFIGS = [
    ("SGD", ref_sgd, dict(lr=0.1)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", ref_adam, dict()),
    ("Adam", ref_adam, dict(lr=0.01, weight_decay=0.1)),
    ("Adam", ref_adam, dict(lr=0.01, betas=(0.8, 0.99), eps=0.1)),  # a large eps shows where it is added
    ("Adam", ref_adam, dict(lr=0.01, betas=(0.5, 0.9), amsgrad=True, maximize=True)),
    ("AdamW", ref_adamw, dict(lr=0.01)),
    ("AdamW", ref_adamw, dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", ref_rmsprop, dict()),
    ("RMSprop", ref_rmsprop, dict(lr=0.01, alpha=0.9, weight_decay=0.1)),
    ("RMSprop", ref_rmsprop, dict(lr=0.01, momentum=0.9, centered=True)),
    ("RMSprop", ref_rmsprop, dict(centered=True, maximize=True, eps=0.1)),
    ("Adagrad", ref_adagrad, dict()),
    ("Adagrad", ref_adagrad, dict(lr=0.1, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", ref_adagrad, dict(maximize=True, eps=1e-3)),
]
CONFIG_IDS = [f"{name}-{'-'.join(kw) or 'defaults'}" for name, _, kw in CONFIGS]


@pytest.mark.parametrize("name, reference, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_matches_the_published_update(name, reference, kwargs):
    p = Tensor(P0.copy(), requires_grad=True)
    history = run(getattr(optim, name)([p], **kwargs), p)
    np.testing.assert_allclose(history, reference(P0, GRADS, **kwargs), rtol=1e-12, atol=1e-15)


# p0 = [1, -2], float64, gradients [1, -2], [-0.5, 3], [2, 1]: p after each step, measured with PyTorch 2.13
MEASURED = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.1),
     [[0.89, -1.78], [0.82799, -1.83598], [0.58472909, -1.95983818]]),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True),
     [[0.81, -1.62], [0.8240000000000001, -2.028], [0.4116000000000001, -2.3152]]),
    ("Adam", dict(lr=0.1, amsgrad=True),
     [[0.900000001, -1.9000000005], [0.8733662973709032, -1.9247701820162688], [0.8075551378428033, -1.9603036213121874]]),
    ("AdamW", dict(lr=0.1, weight_decay=0.5),
     [[0.850000001, -1.8000000004999999], [0.7808662973209032, -1.7347701819912686],
      [0.6760118229267581, -1.6835651121876236]]),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True),
     [[0.8994962285750879, -1.8994962235245836], [0.8539876899917009, -1.892409624940054],
      [0.7250347238956084, -1.9129605323175598]]),
    ("Adagrad", dict(lr=0.1, lr_decay=0.5, initial_accumulator_value=0.1),
     [[0.9046537410845317, -1.901227040339919], [0.9333425066095249, -1.956484936737946],
      [0.8901087364946824, -1.969800527769874]]),
]


@pytest.mark.parametrize("name, kwargs, expected", MEASURED, ids=[m[0] for m in MEASURED])
def test_matches_values_measured_with_pytorch(name, kwargs, expected):
    p = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    grads = [np.array(g) for g in ([1.0, -2.0], [-0.5, 3.0], [2.0, 1.0])]
    np.testing.assert_allclose(run(getattr(optim, name)([p], **kwargs), p, grads), expected, rtol=1e-12)


@pytest.mark.parametrize("momentum, weight_decay, expected", [
    # loss = sum(p^2), so grad = 2p (+ weight_decay * p); p0 = 1, lr = 0.1. Worked by hand:
    (0.0, 0.0, [0.8, 0.64, 0.512]),        # p -= 0.1 * 2p
    (0.0, 0.1, [0.79, 0.6241, 0.493039]),  # p -= 0.1 * 2.1p
    # g = 2p;  buf1 = g1 = 2          p1 = 1 - 0.2 = 0.8
    #          buf2 = 0.9*2 + 1.6 = 3.4    p2 = 0.8 - 0.34 = 0.46
    #          buf3 = 0.9*3.4 + 0.92 = 3.98  p3 = 0.46 - 0.398 = 0.062
    (0.9, 0.0, [0.8, 0.46, 0.062]),
    # g = 2.1p; buf1 = 2.1                  p1 = 1 - 0.21 = 0.79
    #           buf2 = 1.89 + 1.659 = 3.549  p2 = 0.79 - 0.3549 = 0.4351
    #           buf3 = 3.1941 + 0.91371 = 4.10781  p3 = 0.4351 - 0.410781 = 0.024319
    (0.9, 0.1, [0.79, 0.4351, 0.024319]),
], ids=["plain", "weight-decay", "momentum", "momentum-weight-decay"])
def test_sgd_matches_hand_worked_steps(momentum, weight_decay, expected):
    p = Tensor(np.array([1.0, -2.0]), requires_grad=True)  # the second element: the same steps times -2
    opt = optim.SGD([p], lr=0.1, momentum=momentum, weight_decay=weight_decay)
    for value in expected:
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        np.testing.assert_allclose(p.data, [value, -2 * value], rtol=1e-12)


def test_sgd_momentum_buffer_is_not_the_gradient():
    """The first buffer must be a copy: changing the grad array afterwards must not change it."""
    p = Tensor(np.array([1.0]), requires_grad=True)
    opt = optim.SGD([p], lr=1.0, momentum=0.5)
    p.grad = np.array([1.0])
    opt.step()          # buf = 1, p = 0
    p.grad[:] = 10.0    # reuse the same array, as accumulation in backward() would
    opt.step()          # buf = 0.5 + 10, p = -10.5
    np.testing.assert_allclose(p.data, [-10.5])


def test_adam_first_step_moves_each_element_by_lr():
    """At t=1 the bias corrections make m_hat = g and v_hat = g^2: the step is lr * sign(g)."""
    p = Tensor(P0.copy(), requires_grad=True)
    (p1,) = run(optim.Adam([p], lr=0.1), p, GRADS[:1])
    np.testing.assert_allclose(p1, P0 - 0.1 * np.sign(GRADS[0]), rtol=1e-7)


def test_adamw_decays_the_weights_even_where_the_gradient_is_zero():
    # Adam's L2 term goes through the moments and vanishes in m_hat / sqrt(v_hat) where g = 0 forever;
    # AdamW's decay is applied to p directly: p3 = 0.5 * (1 - lr * wd)^4 after four steps
    p = Tensor(P0.copy(), requires_grad=True)
    history = run(optim.AdamW([p], lr=0.1, weight_decay=0.5), p)
    assert history[-1][3] == pytest.approx(0.5 * 0.95 ** 4, rel=1e-12)


# ---- what every optimizer does ---------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda params: optim.SGD(params, lr=0.1),
    "sgd-nesterov-wd": lambda params: optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam-amsgrad": lambda params: optim.Adam(params, lr=1e-2, weight_decay=1e-3, amsgrad=True),
    "adamw": lambda params: optim.AdamW(params, lr=1e-2),
    "rmsprop-centered-momentum": lambda params: optim.RMSprop(params, lr=1e-3, momentum=0.9, centered=True,
                                                              weight_decay=1e-3),
    "adagrad": lambda params: optim.Adagrad(params, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
}
each_optimizer = pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())


def small_model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))


def train(model, opt, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x, labels = Tensor(rng.standard_normal((4, 1, 6, 6)).astype(np.float32)), rng.integers(0, 3, 4)
        opt.zero_grad()
        model(x).cross_entropy(labels).backward()
        opt.step()


@each_optimizer
def test_parameters_stay_float32_through_training_steps(make):
    np.random.seed(0)
    model = small_model()
    before = [p.data.copy() for p in model.parameters()]
    train(model, make(model.parameters()), 2, seed=0)
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert all(not np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_numpy_float64_hyperparameters_do_not_upcast_float32_parameters(name):
    p = Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = getattr(optim, name)([p], lr=np.float64(0.1), weight_decay=np.float64(0.01))
    for _ in range(2):
        p.grad = np.ones(3, np.float32)
        opt.step()
    assert p.dtype == np.float32 and all(v.dtype == np.float32 for v in opt.state[p].values()
                                         if isinstance(v, np.ndarray))


@each_optimizer
def test_resuming_from_state_dicts_continues_exactly(make):
    """Six steps in one go == three steps, save model and optimizer, rebuild both, load, three more."""
    np.random.seed(0)
    model = small_model()
    start = model.state_dict()
    opt = make(model.parameters())
    train(model, opt, 3, seed=1)
    saved_model, saved_opt = model.state_dict(), pickle.loads(pickle.dumps(opt.state_dict()))  # as if on disk
    train(model, opt, 3, seed=2)

    np.random.seed(1)  # a fresh model with other weights, then loaded
    resumed = small_model()
    resumed.load_state_dict(start)
    opt2 = make(resumed.parameters())
    train(resumed, opt2, 3, seed=1)
    np.testing.assert_array_equal(resumed.state_dict()["4.weight"], saved_model["4.weight"])

    np.random.seed(2)
    fresh = small_model()
    fresh.load_state_dict(saved_model)
    opt3 = make(fresh.parameters())
    opt3.load_state_dict(saved_opt)
    assert {i: sorted(b) for i, b in opt3.state_dict()["state"].items()} == \
        {i: sorted(b) for i, b in saved_opt["state"].items()}  # every buffer was restored
    train(fresh, opt3, 3, seed=2)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_state_dict_layout_is_pytorchs_and_a_copy():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    b.grad = np.ones(3)
    opt.step()
    saved = opt.state_dict()
    assert saved["param_groups"] == [
        dict(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=False, maximize=False, params=[0]),
        dict(lr=0.5, momentum=0.9, dampening=0, weight_decay=0, nesterov=False, maximize=False, params=[1])]
    assert list(saved["state"]) == [1]  # `a` had no gradient: no state
    np.testing.assert_array_equal(saved["state"][1]["momentum_buffer"], np.ones(3))
    opt.step()  # the buffer moves on; the saved one does not
    np.testing.assert_array_equal(saved["state"][1]["momentum_buffer"], np.ones(3))


def test_load_state_dict_restores_hyperparameters_and_casts_buffers_to_the_parameter_dtype():
    p = Tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(2)
    opt.step()
    q = Tensor(np.ones(2, np.float32), requires_grad=True)
    opt2 = optim.Adam([q], lr=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.lr == 0.1 and opt2.state[q]["step"] == 1 and opt2.state[q]["exp_avg"].dtype == np.float32


def test_load_state_dict_rejects_a_state_of_another_shape_of_optimizer():
    params = [Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = np.ones_like(p.data)
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="saved state has 1 param groups, this optimizer has 2"):
        optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match=re.escape("saved param groups hold [2] parameters, this optimizer's hold [1]")):
        optim.SGD(params[:1], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match=re.escape("state 'momentum_buffer' of parameter 0 has shape (2,), "
                                                   "but the parameter has shape (3,)")):
        optim.SGD(params[::-1], lr=0.1).load_state_dict(saved)


@each_optimizer
def test_parameter_without_grad_is_left_alone(make):
    used = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    unused = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    opt = make([used, unused])
    for _ in range(2):
        used.grad = np.array([1.0, -1.0])
        opt.step()
    assert not np.array_equal(used.data, [1.0, 2.0])
    np.testing.assert_array_equal(unused.data, [3.0, 4.0])  # weight decay does not apply either
    assert not opt.state.get(unused)


@each_optimizer
def test_a_tensor_grad_from_create_graph_is_used_through_its_data(make):
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    y = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    opt_x, opt_y = make([x]), make([y])
    for _ in range(2):
        opt_x.zero_grad()
        opt_y.zero_grad()
        (x ** 3).sum().backward(create_graph=True)
        assert isinstance(x.grad, Tensor)
        y.grad = x.grad.data.copy()
        opt_x.step()
        opt_y.step()
    np.testing.assert_array_equal(x.data, y.data)


@each_optimizer
def test_a_step_between_two_backwards_makes_the_second_raise(make):
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    make([w]).step()
    with pytest.raises(RuntimeError, match="Mul was changed in place"):
        loss.backward()


@each_optimizer
def test_zero_grad_sets_to_none_or_zeroes_in_place(make):
    params = [Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)]
    opt = make(params)
    grads = [np.ones(2), np.ones(3)]
    for p, g in zip(params, grads):
        p.grad = g
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g for p, g in zip(params, grads)) and not any(g.any() for g in grads)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_zero_grad_without_set_to_none_replaces_a_tensor_grad_by_zeros():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    optim.SGD([x]).zero_grad(set_to_none=False)
    assert type(x.grad) is np.ndarray and not x.grad.any()


def test_step_calls_the_closure_with_grad_enabled_and_returns_its_loss():
    from tinygrad_cnn import no_grad
    p = Tensor(np.array([3.0]), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    with no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0 and p.data[0] == pytest.approx(3.0 - 0.1 * 6.0)


def test_a_pytorch_style_subclass_that_overrides_step_works():
    class SignSGD(optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.data -= group["lr"] * np.sign(p.grad)

    p = Tensor(np.array([1.0, 1.0]), requires_grad=True)
    opt = SignSGD([p])
    p.grad = np.array([3.0, -0.5])
    opt.step()
    np.testing.assert_allclose(p.data, [0.9, 1.1])
    assert opt.state_dict() == {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}


# ---- param groups ----------------------------------------------------------------------------------

def test_param_groups_have_their_own_options():
    a, b = Tensor(P0.copy(), requires_grad=True), Tensor(P0.copy(), requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5, "weight_decay": 0.1}], lr=0.1, momentum=0.9)
    assert opt.param_groups[1]["momentum"] == 0.9  # from the defaults
    for g in GRADS:
        a.grad, b.grad = (None, None) if g is None else (g.copy(), g.copy())
        opt.step()
    np.testing.assert_allclose(a.data, ref_sgd(P0, GRADS, lr=0.1, momentum=0.9)[-1], rtol=1e-12)
    np.testing.assert_allclose(b.data, ref_sgd(P0, GRADS, lr=0.5, momentum=0.9, weight_decay=0.1)[-1], rtol=1e-12)


def test_add_param_group_and_named_parameters():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    opt = optim.Adam(model[0].named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    opt.add_param_group({"params": model[1].parameters(), "lr": 0.01})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01] and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="Adam: some parameters appear more than once"):
        opt.add_param_group({"params": [model[0].weight]})
    with pytest.raises(ValueError, match=r"Adam: lr must be finite and >= 0 \(param group 2\), got -1"):
        opt.add_param_group({"params": [Tensor(np.ones(1), requires_grad=True)], "lr": -1})


def test_lr_reads_and_sets_every_group():
    """Ours, not PyTorch's: opt.lr for the common case of one lr (the demo sets it per epoch)."""
    a, b = Tensor(np.array([1.0]), requires_grad=True), Tensor(np.array([1.0]), requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    assert opt.lr == 0.1
    opt.lr = 0.5
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    a.grad = np.array([1.0])
    opt.step()
    np.testing.assert_allclose(a.data, [0.5])
    opt.param_groups[1]["lr"] = 0.2
    with pytest.raises(ValueError, match=re.escape("SGD.lr: the param groups have different lrs [0.2, 0.5]")):
        opt.lr
    with pytest.raises(ValueError, match=r"SGD: lr must be finite and >= 0 \(param group 0\), got inf"):
        opt.lr = math.inf


def test_repr_lists_each_group():
    opt = optim.SGD([Tensor(np.ones(1), requires_grad=True)], lr=0.1, momentum=0.9)
    assert repr(opt) == ("SGD (\nParameter Group 0\n    dampening: 0\n    lr: 0.1\n    maximize: False\n"
                         "    momentum: 0.9\n    nesterov: False\n    weight_decay: 0\n)")


# ---- argument checks -------------------------------------------------------------------------------

W = Tensor(np.ones(2), requires_grad=True)


@pytest.mark.parametrize("make, error, message", [
    (lambda: optim.SGD([]), ValueError, "SGD: got an empty parameter list"),
    (lambda: optim.SGD(W), TypeError, "SGD: params must be an ordered iterable of Tensors or of dicts (param groups), "
                                      "got Tensor"),
    (lambda: optim.Adam({W}), TypeError, "Adam: params must be an ordered iterable"),
    (lambda: optim.SGD([np.ones(2)]), TypeError, "SGD: can only optimize Tensors, got ndarray"),
    (lambda: optim.SGD([W * 2]), ValueError, "SGD: can't optimize a non-leaf Tensor (shape (2,), made by Mul)"),
    (lambda: optim.SGD([W, W]), ValueError, "SGD: some parameters appear more than once"),
    (lambda: optim.SGD([{"params": [W]}, {"params": [W]}]), ValueError, "SGD: some parameters appear more than once"),
    (lambda: optim.SGD([{"lr": 0.1}]), TypeError, "SGD: a param group must be a dict with a 'params' entry"),
    (lambda: optim.SGD([{"params": {W}}]), TypeError, "SGD: a group's params must be ordered (a list), not a set"),
    (lambda: optim.SGD([W], lr=-0.1), ValueError, "SGD: lr must be finite and >= 0, got -0.1"),
    (lambda: optim.SGD([W], lr=math.nan), ValueError, "SGD: lr must be finite and >= 0, got nan"),
    (lambda: optim.SGD([W], lr="0.1"), ValueError, "SGD: lr must be finite and >= 0, got '0.1'"),
    (lambda: optim.SGD([{"params": [W], "lr": math.inf}]), ValueError,
     "SGD: lr must be finite and >= 0 (param group 0), got inf"),
    (lambda: optim.SGD([W], momentum=1.0), ValueError, "SGD: momentum must be in [0, 1), got 1.0"),
    (lambda: optim.SGD([W], momentum=-0.1), ValueError, "SGD: momentum must be in [0, 1), got -0.1"),
    (lambda: optim.SGD([W], dampening=2), ValueError, "SGD: dampening must be in [0, 1], got 2"),
    (lambda: optim.SGD([W], weight_decay=-1e-4), ValueError, "SGD: weight_decay must be finite and >= 0, got -0.0001"),
    (lambda: optim.SGD([W], nesterov=True), ValueError,
     "SGD: nesterov=True needs momentum > 0 and dampening 0, got momentum=0 and dampening=0"),
    (lambda: optim.SGD([W], momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "SGD: nesterov=True needs momentum > 0 and dampening 0, got momentum=0.9 and dampening=0.1"),
    (lambda: optim.Adam([W], betas=(0.9, 1.0)), ValueError, "Adam: betas[1] must be in [0, 1), got 1.0"),
    (lambda: optim.AdamW([W], betas=(-0.1, 0.9)), ValueError, "AdamW: betas[0] must be in [0, 1), got -0.1"),
    (lambda: optim.Adam([W], betas=0.9), ValueError, "Adam: betas must be a pair (beta1, beta2), got 0.9"),
    (lambda: optim.Adam([W], eps=0), ValueError, "Adam: eps must be finite and > 0, got 0"),
    (lambda: optim.AdamW([W], weight_decay=-0.01), ValueError, "AdamW: weight_decay must be finite and >= 0"),
    (lambda: optim.RMSprop([W], alpha=1), ValueError, "RMSprop: alpha must be in [0, 1), got 1"),
    (lambda: optim.RMSprop([W], momentum=1.5), ValueError, "RMSprop: momentum must be in [0, 1), got 1.5"),
    (lambda: optim.RMSprop([W], eps=-1e-8), ValueError, "RMSprop: eps must be finite and > 0, got -1e-08"),
    (lambda: optim.Adagrad([W], lr_decay=-1), ValueError, "Adagrad: lr_decay must be finite and >= 0, got -1"),
    (lambda: optim.Adagrad([W], initial_accumulator_value=-1), ValueError,
     "Adagrad: initial_accumulator_value must be finite and >= 0, got -1"),
    (lambda: optim.Adagrad([W], eps=0.0), ValueError, "Adagrad: eps must be finite and > 0, got 0.0"),
])
def test_bad_arguments_are_rejected_with_a_clear_error(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


# ---- gradient clipping -----------------------------------------------------------------------------

def with_grads(*grads):
    params = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.copy()
    return params


CLIP_GRADS = (np.array([[3.0, -1.0], [0.5, 2.0]]), np.array([-4.0, 0.25, 1.0]))


@pytest.mark.parametrize("norm_type", [2.0, 1, 3, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_the_norm_of_all_gradients_together(norm_type, max_norm):
    params = with_grads(*CLIP_GRADS)
    total = optim.clip_grad_norm_(params, max_norm, norm_type)
    flat = np.abs(np.concatenate([g.ravel() for g in CLIP_GRADS]))
    p = float(norm_type)
    expected = flat.max() if p == math.inf else (flat ** p).sum() ** (1 / p)
    assert isinstance(total, Tensor) and total.shape == () and total.item() == pytest.approx(expected, rel=1e-12)
    scale = min(max_norm / (expected + 1e-6), 1.0)
    for q, g in zip(params, CLIP_GRADS):
        np.testing.assert_allclose(q.grad, g * scale, rtol=1e-12)


def test_clip_grad_norm_edge_values_match_pytorch():
    # measured with PyTorch 2.13 (float32). The total is the norm of the per-parameter norms, so
    # norm_type 0 counts the parameters with a nonzero gradient, and -inf takes the smallest element.
    params = with_grads(np.array([3.0, -4.0, 0.0], np.float32), np.array([1.0], np.float32))
    assert optim.clip_grad_norm_(params, 1.0, norm_type=0).item() == 2.0
    np.testing.assert_allclose(params[0].grad, np.array([3.0, -4.0, 0.0]) / (2 + 1e-6), rtol=1e-6)
    params = with_grads(np.array([3.0, -4.0, 0.0], np.float32))
    assert optim.clip_grad_norm_(params, 1.0, norm_type=-math.inf).item() == 0.0
    np.testing.assert_array_equal(params[0].grad, [3.0, -4.0, 0.0])  # scaled by min(1 / 1e-6, 1)
    # an infinite norm scales by 0 (inf * 0 = nan), a nan norm by nan
    params = with_grads(np.array([3.0, np.inf, 0.0], np.float32))
    assert optim.clip_grad_norm_(params, 1.0).item() == math.inf
    np.testing.assert_array_equal(params[0].grad, [0.0, np.nan, 0.0])
    params = with_grads(np.array([3.0, np.nan, 0.0], np.float32))
    assert math.isnan(optim.clip_grad_norm_(params, 1.0).item())
    assert np.isnan(params[0].grad).all()
    assert optim.clip_grad_norm_([Tensor(np.ones(2), requires_grad=True)], 1.0).item() == 0.0  # no grads


@pytest.mark.parametrize("scale", [1e-30, 3e30])
def test_clip_grad_norm_neither_overflows_nor_underflows_in_float32(scale):
    """PyTorch 2.13 sums squares in float32 here: its norm is 0 at 1e-30 and inf at 3e30 (which then
    zeroes the gradients). Ours scales by the largest element first."""
    params = with_grads(np.array([3.0, 4.0, 0.0], np.float32) * np.float32(scale))
    total = optim.clip_grad_norm_(params, 1.0)
    assert total.dtype == np.float32 and total.item() == pytest.approx(5 * scale, rel=1e-6)
    np.testing.assert_allclose(params[0].grad, [3 / 5, 4 / 5, 0] if scale > 1 else [3 * scale, 4 * scale, 0],
                               rtol=1e-6)


def test_clip_grad_norm_keeps_float32_takes_one_tensor_and_tensor_grads():
    params = with_grads(np.array([3.0, 4.0], np.float32))
    optim.clip_grad_norm_(params[0], 1.0)
    assert params[0].grad.dtype == np.float32
    np.testing.assert_allclose(params[0].grad, [0.6, 0.8], rtol=1e-6)
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x ** 2).sum().backward(create_graph=True)  # grad 2x = [2, 4], a Tensor: norm sqrt(20)
    assert optim.clip_grad_norm_([x], 1.0).item() == pytest.approx(math.sqrt(20))
    np.testing.assert_allclose(x.grad.data, np.array([2.0, 4.0]) / (math.sqrt(20) + 1e-6), rtol=1e-12)
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0 of the gradients is inf"):
        optim.clip_grad_norm_(with_grads(np.array([np.inf])), 1.0, error_if_nonfinite=True)


def test_clip_grad_value_clips_elementwise_in_place():
    params = with_grads(np.array([3.0, np.nan, -5.0, 0.5], np.float32), np.array([-0.2]))
    kept = params[0].grad
    optim.clip_grad_value_(params, 1.0)
    assert params[0].grad is kept and kept.dtype == np.float32
    np.testing.assert_array_equal(kept, [1.0, np.nan, -1.0, 0.5])  # nan stays nan, as in PyTorch
    np.testing.assert_array_equal(params[1].grad, [-0.2])
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    (x ** 2).sum().backward(create_graph=True)
    optim.clip_grad_value_(x, 3.0)
    np.testing.assert_array_equal(x.grad.data, [2.0, -3.0])


@pytest.mark.parametrize("call, error, message", [
    (lambda: optim.clip_grad_norm_([W], -1.0), ValueError, "clip_grad_norm_: max_norm must be a number >= 0, got -1.0"),
    (lambda: optim.clip_grad_norm_([W], math.nan), ValueError, "clip_grad_norm_: max_norm must be a number >= 0"),
    (lambda: optim.clip_grad_norm_([W], 1.0, "fro"), ValueError,
     "clip_grad_norm_: norm_type must be a number or 'inf', got 'fro'"),
    (lambda: optim.clip_grad_norm_([np.ones(2)], 1.0), TypeError, "clip_grad_norm_: parameters must be Tensors, got ndarray"),
    (lambda: optim.clip_grad_value_([W], -0.5), ValueError, "clip_grad_value_: clip_value must be a number >= 0, got -0.5"),
])
def test_clipping_rejects_bad_arguments(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
