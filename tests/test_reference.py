"""The generic autograd engine against the tutorial's hand-derived backprop.

``tinygrad_cnn.reference`` is Victor Zhou's "CNNs from scratch" network written
from the tutorial's derivations (HWC layout, one image, Python loops).  Here we
check, in float64 and to 1e-10, that the engine's gradients of the same network
(NCHW batches) are the same numbers, layer by layer and end to end.

Layout mapping (tutorial <-> ours):
  image (h, w)              <-> (1, 1, h, w)
  filters (8, 3, 3)         <-> (8, 1, 3, 3)
  activations (h, w, c)     <-> (1, c, h, w)
  dense weights (1352, 10), rows in HWC flatten order
                            <-> rows in CHW order (we flatten NCHW), see ``w_ours``
"""
import ast
import inspect

import numpy as np
import pytest

import tinygrad_cnn.reference as ref
from tinygrad_cnn import Tensor
from tinygrad_cnn.reference import Conv3x3, MaxPool2, ReferenceCNN, Softmax, initial_gradient


SEEDS = [0, 1, 2]
TOL = dict(rtol=1e-10, atol=1e-10)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, **TOL)


def to_nchw(a):
    """(h, w, c) tutorial activation -> (1, c, h, w)."""
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


def to_hwc(a):
    """(1, c, h, w) -> (h, w, c)."""
    return a[0].transpose(1, 2, 0)


def w_ours(w_tut, h=13, w=13, c=8):
    """Dense weights with rows in HWC flatten order -> rows in CHW order."""
    return np.ascontiguousarray(
        w_tut.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1))


def random_params(rng, num_filters=8, input_len=13 * 13 * 8, nodes=10):
    """Tutorial-style initial parameters (biases nonzero so they are exercised)."""
    return dict(filters=rng.standard_normal((num_filters, 3, 3)) / 9,
                weights=rng.standard_normal((input_len, nodes)) / input_len,
                biases=rng.standard_normal(nodes) * 0.1)


def random_images(rng, n):
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


# ----------------------------------------------------------------------------
# The reference itself


def test_reference_imports_nothing_from_tinygrad_cnn():
    tree = ast.parse(inspect.getsource(ref))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in reference.py"
            modules.add(node.module)
    assert modules == {"numpy"}, modules


def test_reference_conv_and_pool_forward_match_direct_formulas():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 12))
    conv = Conv3x3(8, filters=rng.standard_normal((8, 3, 3)))
    out = conv.forward(x)
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3))  # (7, 10, 3, 3)
    close(out, np.einsum("ijkl,fkl->ijf", windows, conv.filters))
    a = rng.standard_normal((7, 10, 3))
    pooled = MaxPool2().forward(a)
    close(pooled, a[:6].reshape(3, 2, 5, 2, 3).max(axis=(1, 3)))


def test_reference_gradients_match_finite_differences():
    """The ground truth is itself checked: hand-derived grads vs central differences."""
    rng = np.random.default_rng(1)
    params = random_params(rng)
    image, label = random_images(rng, 1)[0], 3
    net = ReferenceCNN(**params)
    net.train(image, label, lr=0)
    grads = dict(filters=net.conv.last_d_filters, weights=net.softmax.last_d_weights,
                 biases=net.softmax.last_d_biases)

    def loss(p):
        return ReferenceCNN(**p).forward(image, label)[1]

    eps = 1e-6
    for name, grad in grads.items():
        for _ in range(4):
            idx = tuple(rng.integers(0, s) for s in grad.shape)
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            np.testing.assert_allclose(grad[idx], numeric, rtol=1e-5, atol=1e-9,
                                       err_msg=f"{name}{idx}")


# ----------------------------------------------------------------------------
# Layer by layer


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(28, 28), (9, 13)])
def test_conv_matches_conv3x3_backprop(seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    filters = rng.standard_normal((8, 3, 3)) / 9
    d_out = rng.standard_normal((shape[0] - 2, shape[1] - 2, 8))

    conv = Conv3x3(8, filters=filters)
    out_tut = conv.forward(x)
    conv.backprop(d_out, 0)

    f = Tensor(filters[:, None].copy(), requires_grad=True)
    out = Tensor(x[None, None].copy()).conv2d(f)
    close(to_hwc(out.data), out_tut)
    out.backward(to_nchw(d_out))
    assert f.grad.shape == (8, 1, 3, 3)
    close(f.grad[:, 0], conv.last_d_filters)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(26, 26, 8), (27, 27, 8), (9, 14, 3)])
def test_max_pool_matches_maxpool2_backprop(seed, shape):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)  # continuous values: no ties
    h, w, c = shape
    d_out = rng.standard_normal((h // 2, w // 2, c))

    pool = MaxPool2()
    out_tut = pool.forward(a)
    d_in_tut = pool.backprop(d_out)

    x = Tensor(to_nchw(a), requires_grad=True)
    out = x.max_pool2d(2)
    assert out.data.shape == (1, c, h // 2, w // 2)  # odd sizes floor
    close(to_hwc(out.data), out_tut)
    out.backward(to_nchw(d_out))
    close(to_hwc(x.grad), d_in_tut)
    if h % 2:  # the row dropped by the floor gets no gradient
        assert not to_hwc(x.grad)[-1].any()


def test_max_pool_ties_tutorial_copies_ours_routes_to_first():
    """Documented difference: tutorial gives a tied window's gradient to every max,
    ours (like PyTorch) only to the first max in row-major order."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4, 2))
    a[0:2, 0:2, 0] = 0.0                              # 4-way tie (all equal)
    a[0:2, 2:4, 0] = [[1.0, 3.0], [3.0, 2.0]]         # tie at (0, 3) and (1, 2)
    g = rng.standard_normal((2, 2, 2))

    pool = MaxPool2()
    pool.forward(a)
    d_tut = pool.backprop(g)
    x = Tensor(to_nchw(a), requires_grad=True)
    x.max_pool2d(2).backward(to_nchw(g))
    d_ours = to_hwc(x.grad)

    # Tutorial: every tied position gets the window's gradient.
    close(d_tut[0:2, 0:2, 0], np.full((2, 2), g[0, 0, 0]))
    close(d_tut[0:2, 2:4, 0], [[0.0, g[0, 1, 0]], [g[0, 1, 0], 0.0]])
    # Ours: exactly one position, the first maximum in row-major order.
    close(d_ours[0:2, 0:2, 0], [[g[0, 0, 0], 0.0], [0.0, 0.0]])
    close(d_ours[0:2, 2:4, 0], [[0.0, g[0, 1, 0]], [0.0, 0.0]])
    # Windows without ties (random floats) agree.
    close(d_ours[2:4, :, 0], d_tut[2:4, :, 0])
    close(d_ours[:, :, 1], d_tut[:, :, 1])
    # Total gradient mass: tutorial counts tied windows several times, ours once.
    close(d_ours.sum(), g.sum())


@pytest.mark.parametrize("seed", SEEDS)
def test_dense_softmax_matches_softmax_backprop(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((13, 13, 8))
    p = random_params(rng)
    label = int(rng.integers(10))

    sm = Softmax(weights=p["weights"], biases=p["biases"])
    probs_tut = sm.forward(a)
    d_in_tut = sm.backprop(initial_gradient(probs_tut, label), 0)

    x = Tensor(to_nchw(a), requires_grad=True)
    w = Tensor(w_ours(p["weights"]), requires_grad=True)
    b = Tensor(p["biases"].copy(), requires_grad=True)
    probs = (x.reshape(1, -1) @ w + b).softmax(-1)
    close(probs.data[0], probs_tut)
    loss = -probs.log()[0, label]
    close(loss.data, -np.log(probs_tut[label]))
    loss.backward()
    close(w.grad, w_ours(sm.last_d_weights))
    close(b.grad, sm.last_d_biases)
    close(to_hwc(x.grad), d_in_tut)


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_initial_gradient(seed):
    rng = np.random.default_rng(seed)
    e = np.exp(rng.standard_normal(10))
    probs_np = e / e.sum()
    label = int(rng.integers(10))
    probs = Tensor(probs_np.copy(), requires_grad=True)
    (-probs.log()[label]).backward()
    expected = initial_gradient(probs_np, label)
    close(probs.grad, expected)
    assert expected[label] == -1 / probs_np[label] and np.count_nonzero(expected) == 1


# ----------------------------------------------------------------------------
# The whole network


def ours_grads(params, images, labels, reduction):
    """Our autograd through conv -> pool -> dense -> softmax -> -log p[label]."""
    n = len(images)
    x = Tensor((images / 255 - 0.5)[:, None])
    f = Tensor(params["filters"][:, None].copy(), requires_grad=True)
    w = Tensor(w_ours(params["weights"]), requires_grad=True)
    b = Tensor(params["biases"].copy(), requires_grad=True)
    probs = (x.conv2d(f).max_pool2d(2).reshape(n, -1) @ w + b).softmax(axis=-1)
    nll = -probs.log()[np.arange(n), labels]
    loss = nll.sum() if reduction == "sum" else nll.mean()
    loss.backward()
    return probs.data, loss.data, f, w, b


def tutorial_grads(params, image, label):
    net = ReferenceCNN(**params)
    loss, acc = net.train(image, label, lr=0)
    return (loss, net.conv.last_d_filters, net.softmax.last_d_weights,
            net.softmax.last_d_biases)


@pytest.mark.parametrize("seed", SEEDS)
def test_full_network_one_image(seed):
    rng = np.random.default_rng(seed)
    params = random_params(rng)
    image, label = random_images(rng, 1), rng.integers(10, size=1)

    net = ReferenceCNN(**params)
    probs_tut, loss_tut, _ = net.forward(image[0], label[0])
    _, d_f, d_w, d_b = tutorial_grads(params, image[0], label[0])

    probs, loss, f, w, b = ours_grads(params, image, label, "sum")
    close(probs[0], probs_tut)
    close(loss, loss_tut)
    close(f.grad[:, 0], d_f)
    close(w.grad, w_ours(d_w))
    close(b.grad, d_b)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_full_network_batch_is_sum_or_mean_of_per_image_gradients(seed, reduction):
    rng = np.random.default_rng(seed)
    n = 4
    params = random_params(rng)
    images, labels = random_images(rng, n), rng.integers(10, size=n)

    per_image = [tutorial_grads(params, im, lab) for im, lab in zip(images, labels)]
    loss_tut, d_f, d_w, d_b = (sum(parts) for parts in zip(*per_image))
    scale = 1.0 if reduction == "sum" else 1.0 / n

    _, loss, f, w, b = ours_grads(params, images, labels, reduction)
    close(loss, scale * loss_tut)
    close(f.grad[:, 0], scale * d_f)
    close(w.grad, w_ours(scale * d_w))
    close(b.grad, scale * d_b)


@pytest.mark.parametrize("seed", SEEDS)
def test_sgd_steps_match_tutorial_train(seed):
    rng = np.random.default_rng(seed)
    params = random_params(rng)
    lr = 0.005
    net = ReferenceCNN(**params)
    f = Tensor(params["filters"][:, None].copy(), requires_grad=True)
    w = Tensor(w_ours(params["weights"]), requires_grad=True)
    b = Tensor(params["biases"].copy(), requires_grad=True)

    for image, label in zip(random_images(rng, 3), rng.integers(10, size=3)):
        loss_tut, acc_tut = net.train(image, label, lr)

        x = Tensor((image / 255 - 0.5)[None, None])
        probs = (x.conv2d(f).max_pool2d(2).reshape(1, -1) @ w + b).softmax(axis=-1)
        loss = -probs.log()[0, label]
        loss.backward()
        for p in (f, w, b):
            p.data -= lr * p.grad
            p.grad = None

        close(loss.data, loss_tut)
        assert int(np.argmax(probs.data[0]) == label) == acc_tut
        close(f.data[:, 0], net.conv.filters)
        close(w.data, w_ours(net.softmax.weights))
        close(b.data, net.softmax.biases)
