"""tinygrad_cnn.optim: SGD and Adam against steps computed by hand from PyTorch's formulas
(torch.optim.SGD / torch.optim.Adam docs), plus dtypes, skipped parameters and argument checks."""
import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, optim

# Three steps' gradients, chosen by hand: mixed signs and sizes, and a zero.
GRADS = [np.array([1.0, -2.0, 0.5, 0.0]),
         np.array([-0.5, 3.0, 0.5, 0.0]),
         np.array([2.0, 1.0, -4.0, 0.0])]
P0 = np.array([1.0, -2.0, 3.0, 0.5])


def run(opt, p, grads=GRADS):
    """Feed `grads` to `opt` one step at a time; return the parameter after each step."""
    history = []
    for g in grads:
        p.grad = g.copy()
        opt.step()
        history.append(p.data.copy())
    return history


# ---- SGD ------------------------------------------------------------------------------------------

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


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_sgd_matches_pytorch_formula(momentum, weight_decay):
    lr = 0.05
    p = Tensor(P0.copy(), requires_grad=True)
    history = run(optim.SGD([p], lr, momentum=momentum, weight_decay=weight_decay), p)

    # torch.optim.SGD: g = grad + wd * p; buf = g at step 1, then momentum * buf + g; p -= lr * buf
    g1 = GRADS[0] + weight_decay * P0
    buf1 = g1
    p1 = P0 - lr * buf1
    g2 = GRADS[1] + weight_decay * p1
    buf2 = momentum * buf1 + g2
    p2 = p1 - lr * buf2
    g3 = GRADS[2] + weight_decay * p2
    buf3 = momentum * buf2 + g3
    p3 = p2 - lr * buf3
    np.testing.assert_allclose(history, [p1, p2, p3], rtol=1e-12, atol=1e-15)


def test_sgd_momentum_buffer_is_not_the_gradient():
    """The first buffer must be a copy: changing the grad array afterwards must not change it."""
    p = Tensor(np.array([1.0]), requires_grad=True)
    opt = optim.SGD([p], lr=1.0, momentum=0.5)
    p.grad = np.array([1.0])
    opt.step()          # buf = 1, p = 0
    p.grad[:] = 10.0    # reuse the same array, as accumulation in backward() would
    opt.step()          # buf = 0.5 + 10, p = -10.5
    np.testing.assert_allclose(p.data, [-10.5])


# ---- Adam -----------------------------------------------------------------------------------------

def test_adam_first_step_moves_each_element_by_lr():
    """At t=1 the bias corrections make m_hat = g and v_hat = g^2: the step is lr * sign(g)."""
    p = Tensor(P0.copy(), requires_grad=True)
    (p1,) = run(optim.Adam([p], lr=0.1), p, GRADS[:1])
    np.testing.assert_allclose(p1, P0 - 0.1 * np.sign(GRADS[0]), rtol=1e-7)


@pytest.mark.parametrize("betas, eps, weight_decay", [
    ((0.9, 0.999), 1e-8, 0.0),
    ((0.9, 0.999), 1e-8, 0.1),
    ((0.8, 0.99), 0.1, 0.0),   # a large eps: shows where it is added
    ((0.5, 0.9), 0.1, 0.05),
], ids=["defaults", "weight-decay", "large-eps", "all"])
def test_adam_matches_pytorch_formula(betas, eps, weight_decay):
    lr, (b1, b2) = 0.01, betas
    p = Tensor(P0.copy(), requires_grad=True)
    history = run(optim.Adam([p], lr, betas=betas, eps=eps, weight_decay=weight_decay), p)

    # torch.optim.Adam: g = grad + wd * p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    # p -= lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
    g1 = GRADS[0] + weight_decay * P0                          # t = 1
    m1 = (1 - b1) * g1
    v1 = (1 - b2) * g1 ** 2
    p1 = P0 - lr * (m1 / (1 - b1)) / (np.sqrt(v1 / (1 - b2)) + eps)
    g2 = GRADS[1] + weight_decay * p1                          # t = 2
    m2 = b1 * m1 + (1 - b1) * g2
    v2 = b2 * v1 + (1 - b2) * g2 ** 2
    p2 = p1 - lr * (m2 / (1 - b1 ** 2)) / (np.sqrt(v2 / (1 - b2 ** 2)) + eps)
    g3 = GRADS[2] + weight_decay * p2                          # t = 3
    m3 = b1 * m2 + (1 - b1) * g3
    v3 = b2 * v2 + (1 - b2) * g3 ** 2
    p3 = p2 - lr * (m3 / (1 - b1 ** 3)) / (np.sqrt(v3 / (1 - b2 ** 3)) + eps)
    np.testing.assert_allclose(history, [p1, p2, p3], rtol=1e-12, atol=1e-15)
    if weight_decay == 0:
        assert history[-1][3] == P0[3]  # a zero gradient moves nothing


def test_adam_counts_steps_per_parameter():
    """A parameter without a gradient is skipped, and its first real step is its t=1 (as in PyTorch)."""
    a = Tensor(np.array([1.0]), requires_grad=True)
    b = Tensor(np.array([1.0]), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.array([1.0])
    opt.step()
    np.testing.assert_array_equal(b.data, [1.0])
    b.grad = np.array([2.0])
    opt.step()
    np.testing.assert_allclose(b.data, [0.9], rtol=1e-7)  # lr * sign(g): bias-corrected for t=1, not t=2


# ---- both optimizers ------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda params: optim.SGD(params, lr=0.1),
    "sgd-momentum-wd": lambda params: optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adam": lambda params: optim.Adam(params),
    "adam-wd": lambda params: optim.Adam(params, lr=1e-2, weight_decay=1e-3),
}


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_parameters_stay_float32_through_training_steps(make):
    np.random.seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3),
                          nn.Dropout(0.2))
    opt = make(model.parameters())
    x, labels = Tensor(np.random.randn(4, 1, 6, 6).astype(np.float32)), np.array([0, 1, 2, 1])
    before = [p.data.copy() for p in model.parameters()]
    for _ in range(2):
        opt.zero_grad()
        model(x).cross_entropy(labels).backward()
        assert all(p.grad.dtype == np.float32 for p in model.parameters())
        opt.step()
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert all(not np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_parameter_without_grad_is_left_alone(make):
    used = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    unused = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    opt = make([used, unused])
    for _ in range(2):
        used.grad = np.array([1.0, -1.0])
        opt.step()
    assert not np.array_equal(used.data, [1.0, 2.0])
    np.testing.assert_array_equal(unused.data, [3.0, 4.0])  # weight decay does not apply either


@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_zero_grad_clears_the_gradients(make):
    params = [Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)]
    opt = make(params)
    for p in params:
        p.grad = np.ones_like(p.data)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_changing_lr_takes_effect_on_the_next_step():
    p = Tensor(np.array([1.0]), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    opt.lr = 0.5
    p.grad = np.array([1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [0.5])


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_bad_arguments_are_rejected(cls):
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([], lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0, got -0.1"):
        cls([Tensor(np.ones(1), requires_grad=True)], lr=-0.1)
