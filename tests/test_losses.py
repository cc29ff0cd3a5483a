"""Losses (tinygrad_cnn.ops.loss and the nn modules): values against plain numpy formulas and
against numbers measured with PyTorch 2.13, gradients and second derivatives in float64, every
option (weight, ignore_index, label_smoothing, probability targets, pos_weight, reduction),
stability at extreme logits, dtypes, and clear errors."""
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, functional as F, gradcheck, gradgradcheck, nn
from tinygrad_cnn.ops import loss as L


@pytest.fixture(autouse=True)
def seeded():
    np.random.seed(0)


def randn(*shape):
    return np.random.standard_normal(shape)


def reduce_ref(loss, reduction, denominator=None):
    if reduction == "none":
        return loss
    return loss.sum() / (loss.size if denominator is None else denominator) if reduction == "mean" else loss.sum()


def log_softmax_ref(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def nll_ref(logp, y, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """PyTorch's documented formula: per target -w[y] * logp[y], mixed with smoothing's
    -sum_c w[c] * logp[c] / C; ignored targets count 0; 'mean' divides by the sum of w[y] kept."""
    class_axis = 0 if logp.ndim == 1 else 1
    classes = logp.shape[class_axis]
    flat = np.moveaxis(logp, class_axis, -1).reshape(-1, classes)
    t = np.asarray(y).reshape(-1)
    w = np.ones(classes) if weight is None else weight
    losses, weights = np.zeros(len(t)), np.zeros(len(t))
    for i, label in enumerate(t):
        if label == ignore_index:
            continue
        weights[i] = w[label]
        losses[i] = (1 - smoothing) * -w[label] * flat[i, label] - smoothing / classes * (w * flat[i]).sum()
    return reduce_ref(losses.reshape(np.shape(y)), reduction, weights.sum())


def soft_ce_ref(x, p, weight=None, reduction="mean", smoothing=0.0):
    class_axis = 0 if x.ndim == 1 else 1
    classes = x.shape[class_axis]
    p = p * (1 - smoothing) + smoothing / classes
    w = np.ones(classes) if weight is None else weight
    w = w.reshape((classes,) + (1,) * (x.ndim - class_axis - 1))
    return reduce_ref(-(log_softmax_ref(x, class_axis) * p * w).sum(axis=class_axis), reduction)


# ---- cross_entropy and nll_loss --------------------------------------------------------------------

SHAPES = [((5, 3), (5,)), ((2, 3, 4), (2, 4)), ((2, 3, 2, 2), (2, 2, 2)), ((4,), ())]
SHAPE_IDS = ["N,C", "N,C,d", "N,C,h,w", "C"]


def labels_for(shape, classes, ignore=True):
    y = np.random.randint(0, classes, shape)
    if ignore and y.size > 2:
        y.flat[1] = -100  # one target ignored
    return y


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2], ids=["hard", "smoothed"])
@pytest.mark.parametrize("x_shape, y_shape", SHAPES, ids=SHAPE_IDS)
def test_cross_entropy_with_class_indices(x_shape, y_shape, reduction, weighted, smoothing):
    classes = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    x, y = randn(*x_shape) * 2, labels_for(y_shape, classes)
    w = np.random.uniform(0.5, 2, classes) if weighted else None
    out = L.cross_entropy(Tensor(x), y, w, reduction=reduction, label_smoothing=smoothing)
    x_axis = 0 if len(x_shape) == 1 else 1
    expected = nll_ref(log_softmax_ref(x, x_axis), y, w, reduction=reduction, smoothing=smoothing)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-15)
    xt = Tensor(x, requires_grad=True)
    assert gradcheck(lambda x: L.cross_entropy(x, y, w, reduction=reduction, label_smoothing=smoothing), xt)


@pytest.mark.parametrize("x_shape, y_shape", SHAPES, ids=SHAPE_IDS)
def test_cross_entropy_second_derivatives(x_shape, y_shape):
    classes = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    y, w = labels_for(y_shape, classes), np.random.uniform(0.5, 2, classes)
    xt = Tensor(randn(*x_shape), requires_grad=True)
    assert gradgradcheck(lambda x: L.cross_entropy(x, y, w, label_smoothing=0.1), xt)
    assert gradgradcheck(lambda x: L.cross_entropy(x, y, reduction="none"), xt)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("x_shape", [(4, 3), (2, 3, 2), (3,)], ids=["N,C", "N,C,d", "C"])
def test_cross_entropy_with_class_probabilities(x_shape, reduction):
    x = randn(*x_shape)
    axis = 0 if len(x_shape) == 1 else 1
    p = np.exp(log_softmax_ref(randn(*x_shape), axis))
    w = np.random.uniform(0.5, 2, x_shape[axis])
    for weight, smoothing in [(None, 0.0), (w, 0.3)]:
        out = L.cross_entropy(Tensor(x), Tensor(p), weight, reduction=reduction, label_smoothing=smoothing)
        np.testing.assert_allclose(out.numpy(), soft_ce_ref(x, p, weight, reduction, smoothing), rtol=1e-12)
    xt, pt = Tensor(x, requires_grad=True), Tensor(p, requires_grad=True)  # the target takes a gradient too
    assert gradcheck(lambda x, p: L.cross_entropy(x, p, w, reduction=reduction, label_smoothing=0.3), xt, pt)
    assert gradgradcheck(lambda x, p: L.cross_entropy(x, p, w, reduction=reduction), xt, pt)


X = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [0.0, 0.0, 0.0], [3.0, -2.0, 1.0]])
Y = np.array([1, 2, -100, 0])
W = np.array([0.5, 2.0, 1.5])
P = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.1, 0.1, 0.8]])


@pytest.mark.parametrize("call, torch_value", [
    # each number measured with torch.nn.functional.cross_entropy / nll_loss (2.13.0) in float64
    (lambda: L.cross_entropy(Tensor(X), Y, W), 0.32717283372431694),  # divided by the kept targets' weights
    (lambda: L.cross_entropy(Tensor(X), Y, W, label_smoothing=0.1), 0.5096633764979046),
    (lambda: L.cross_entropy(Tensor(X), Y, reduction="sum", label_smoothing=0.2), 1.7529014510472471),
    (lambda: L.cross_entropy(Tensor(X), Y, W, reduction="none"),
     [0.9287375682158898, 0.31353114981759034, 0.0, 0.06642261686378768]),
    (lambda: L.cross_entropy(Tensor(X), np.array([1, 2, 0, 0]), ignore_index=2), 0.5652754355012101),
    (lambda: L.cross_entropy(Tensor(X), Tensor(P), W, label_smoothing=0.1), 2.1346377339865157),
    (lambda: L.cross_entropy(Tensor(X), Tensor(P), reduction="none"),
     [1.4143687841079449, 1.9090207665450603, 1.0986122886681098, 2.2328452337275753]),
    (lambda: L.cross_entropy(Tensor(X.T.reshape(1, 3, 4)), np.array([[1, 2, 0, -100]]), W), 0.44789371559188373),
    (lambda: L.nll_loss(Tensor(log_softmax_ref(X, 1)), Y, W), 0.32717283372431694),
], ids=["weight-ignore", "weight-smoothing", "sum-smoothing", "none", "ignore_index", "probabilities",
        "probabilities-none", "N,C,d", "nll"])
def test_losses_match_pytorch(call, torch_value):
    np.testing.assert_allclose(call().numpy(), torch_value, rtol=1e-14)


def test_default_cross_entropy_is_the_fused_op_and_equals_the_general_form():
    x, y = randn(6, 4), np.array([0, 3, 1, 1, 2, 0])
    fused = L.cross_entropy(Tensor(x, requires_grad=True), y)
    assert type(fused._ctx).__name__ == "CrossEntropy"
    general = L.cross_entropy(Tensor(x, requires_grad=True), y, np.ones(4))
    assert type(general._ctx).__name__ != "CrossEntropy"
    np.testing.assert_allclose(fused.item(), general.item(), rtol=1e-14)
    assert logits_method(x, y).item() == fused.item()


def logits_method(x, y):
    return Tensor(x).cross_entropy(y)


def test_ignored_labels_leave_the_fused_path():
    x, y = randn(3, 4), np.array([2, -100, 1])
    np.testing.assert_allclose(L.cross_entropy(Tensor(x), y).item(), nll_ref(log_softmax_ref(x, 1), y), rtol=1e-14)


def test_zero_loss_is_positive_zero():
    x = Tensor(np.array([[1000.0, 0.0], [0.0, 1000.0]]))
    y = np.array([0, 1])
    losses = [L.cross_entropy(x, y), L.cross_entropy(x, y, reduction="sum"), L.cross_entropy(x, y, np.ones(2)),
              L.cross_entropy(x, y, reduction="none"), L.nll_loss(x.log_softmax(1), y, reduction="none"),
              L.binary_cross_entropy(Tensor([1.0, 0.0]), Tensor([1.0, 0.0]), reduction="none"),
              L.binary_cross_entropy_with_logits(Tensor([1000.0, -1000.0]), Tensor([1.0, 0.0])),
              L.mse_loss(x, x), L.l1_loss(x, x, reduction="none")]
    for loss in losses:
        assert (loss.numpy() == 0).all() and not np.signbit(loss.numpy()).any()


def test_all_targets_ignored_gives_nan_mean_and_zero_sum():
    x = Tensor(randn(2, 3))
    y = np.array([-100, -100])
    with np.errstate(invalid="ignore"):
        assert np.isnan(L.cross_entropy(x, y).item())  # 0 / 0, as in PyTorch
    assert L.cross_entropy(x, y, reduction="sum").item() == 0
    np.testing.assert_array_equal(L.cross_entropy(x, y, reduction="none").numpy(), [0, 0])


def test_label_smoothing_at_extreme_logits_is_finite():
    x = Tensor(np.array([[1000.0, 0.0]], np.float32))
    assert L.cross_entropy(x, np.array([0]), label_smoothing=0.1).item() == 50.0  # torch: tensor(50.)


def test_labels_as_tensors_lists_and_the_functional_form():
    x, y = randn(3, 4), np.array([3, 0, 2])
    expected = L.cross_entropy(Tensor(x), y, reduction="sum").item()
    assert L.cross_entropy(Tensor(x), Tensor(y, dtype=np.int64), reduction="sum").item() == expected
    assert L.cross_entropy(Tensor(x), [3, 0, 2], reduction="sum").item() == expected
    assert F.cross_entropy(x, y, weight=None, reduction="sum").item() == expected
    assert F.nll_loss(Tensor(x).log_softmax(1), y, reduction="sum").item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("call", [
    lambda x, y: L.cross_entropy(x, y),
    lambda x, y: L.cross_entropy(x, y, np.ones(3), label_smoothing=0.1),
    lambda x, y: L.cross_entropy(x, np.full((2, 3), 1 / 3, np.float32)),
    lambda x, y: L.nll_loss(x, y, reduction="none"),
], ids=["fused", "general", "probabilities", "nll"])
def test_float32_stays_float32(call):
    x = Tensor(randn(2, 3).astype(np.float32), requires_grad=True)
    loss = call(x, np.array([0, 2]))
    loss.sum().backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize("call, message", [
    (lambda: L.cross_entropy(Tensor(randn(3, 4)), np.array([0, 1])),
     "cross_entropy: labels must be integers of shape (3,) for scores of shape (3, 4) (or class probabilities of "
     "shape (3, 4)), got int64 of shape (2,)"),
    (lambda: L.cross_entropy(Tensor(randn(3, 4, 2)), np.zeros((3, 4), int)),
     "labels must be integers of shape (3, 2) for scores of shape (3, 4, 2)"),
    (lambda: L.cross_entropy(Tensor(randn(3, 4)), np.array([0, 4, -100])),
     "cross_entropy: labels must lie in [0, 4) or equal ignore_index=-100, got values from 0 to 4"),
    (lambda: L.cross_entropy(Tensor(randn(3, 4)), np.array([0, -1, 1]), reduction="sum"),
     "labels must lie in [0, 4) or equal ignore_index=-100, got values from -1 to 1"),
    (lambda: L.cross_entropy(Tensor(randn(4)), np.array([0])), "expected input (N, classes) or (N, classes, d1, ...)"
                                                               " with labels (N,) or (N, d1, ...), or input (classes,)"
                                                               " with a 0-d label; got input of shape (4,)"),
    (lambda: L.cross_entropy(Tensor(randn(3, 4)), np.zeros(3, int), np.ones(3)),
     "cross_entropy: weight must have shape (4,), one per class, got (3,)"),
    (lambda: L.cross_entropy(Tensor(randn(3, 4)), np.zeros(3, int), reduction="avg"),
     "cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: L.cross_entropy(Tensor(randn(3, 4)), np.zeros(3, int), label_smoothing=1.5),
     "cross_entropy: label_smoothing must be in [0, 1], got 1.5"),
    (lambda: L.cross_entropy(Tensor(randn(3, 4)), np.full((3, 4), 0.25), ignore_index=0),
     "cross_entropy: ignore_index=0 applies to class-index targets, not to class probabilities"),
    (lambda: L.nll_loss(Tensor(randn(3, 4)), np.array([0.0, 1.0, 2.0])),
     "nll_loss: labels must be integers of shape (3,) for scores of shape (3, 4), got float64 of shape (3,)"),
    (lambda: L.nll_loss(Tensor(randn(3, 4)), np.array([0, 1, 2]), reduction="all"),
     "nll_loss: reduction must be 'mean', 'sum' or 'none', got 'all'"),
], ids=["label-shape", "label-shape-nd", "too-large", "negative", "1-d", "weight-shape", "reduction", "smoothing",
        "probabilities-ignore", "nll-float-labels", "nll-reduction"])
def test_classification_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# ---- binary cross-entropy -----------------------------------------------------------------------

def bce_ref(p, t, w=None, reduction="mean"):
    with np.errstate(divide="ignore"):
        loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))
    return reduce_ref(loss * (1 if w is None else w), reduction)


def bce_logits_ref(x, t, w=None, pos_weight=None, reduction="mean"):
    # log(1 + e^x) = logaddexp(0, x): -log(sigmoid(x)) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x)
    pw = 1 if pos_weight is None else pos_weight
    loss = (1 - t) * np.logaddexp(0, x) + pw * t * np.logaddexp(0, -x)
    return reduce_ref(loss * (1 if w is None else w), reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy(reduction):
    p, t, w = np.random.uniform(0.05, 0.95, (3, 4)), np.random.uniform(0, 1, (3, 4)), np.random.uniform(0, 2, 4)
    np.testing.assert_allclose(L.binary_cross_entropy(Tensor(p), Tensor(t), w, reduction=reduction).numpy(),
                               bce_ref(p, t, w, reduction), rtol=1e-12)
    pt, tt = Tensor(p, requires_grad=True), Tensor(t, requires_grad=True)
    assert gradcheck(lambda p, t: L.binary_cross_entropy(p, t, w, reduction=reduction), pt, tt)
    assert gradgradcheck(lambda p, t: L.binary_cross_entropy(p, t, w, reduction=reduction), pt, tt)


def test_binary_cross_entropy_clamps_the_log_at_minus_100():
    p, t = np.array([0.0, 1.0, 0.25, 0.9]), np.array([1.0, 0.0, 0.5, 1.0])
    out = L.binary_cross_entropy(Tensor(p, requires_grad=True), Tensor(t), reduction="none")
    # measured with torch.nn.functional.binary_cross_entropy(reduction='none') in float64
    np.testing.assert_allclose(out.numpy(), [100.0, 100.0, 0.8369882167858358, 0.10536051565782628], rtol=1e-14)
    weighted = L.binary_cross_entropy(Tensor(p), Tensor(t), np.array([1.0, 2.0, 3.0, 4.0]))
    assert weighted.item() == pytest.approx(75.7331016782472, rel=1e-14)  # torch, weight=[1, 2, 3, 4]
    for dtype in (np.float32, np.float64):
        x = Tensor(p.astype(dtype), requires_grad=True)
        loss = L.binary_cross_entropy(x, Tensor(t.astype(dtype)))
        loss.backward()
        # where the log is clamped the loss is flat: gradient 0 (PyTorch's backward gives -1e12 there)
        assert loss.dtype == dtype and x.grad.dtype == dtype and np.isfinite(x.grad).all()
        assert x.grad[0] == 0 and x.grad[1] == 0


def test_binary_cross_entropy_with_logits_is_stable_and_accurate():
    x = np.array([1000.0, -1000.0, 30.0, -30.0, 0.5, -40.0])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 0.0])
    for dtype in (np.float32, np.float64):
        xt = Tensor(x.astype(dtype), requires_grad=True)
        out = L.binary_cross_entropy_with_logits(xt, Tensor(t.astype(dtype)), reduction="none")
        out.sum().backward()
        assert out.dtype == dtype and np.isfinite(xt.grad).all()
        # torch gives 1000, 1000, 9.3576e-14, 0.824077 here; at -30 and -40 (target 0) its formula
        # rounds: 9.237e-14 and 0.0 in float64, where log(1 + e^-30) = 9.3576e-14, log(1 + e^-40) = 4.2e-18
        exact = [1000.0, 1000.0, np.log1p(np.exp(-30.0)), np.log1p(np.exp(-30.0)), bce_logits_ref(x[4], t[4], None,
                 None, "none"), np.log1p(np.exp(-40.0))]
        np.testing.assert_allclose(out.numpy(), exact, rtol=1e-6 if dtype == np.float32 else 1e-14)
    pw = L.binary_cross_entropy_with_logits(Tensor(x), Tensor(t), reduction="none", pos_weight=np.array(3.0))
    np.testing.assert_allclose(pw.numpy()[:3], [1000.0, 3000.0, 2.8072868906519213e-13], rtol=1e-14)  # torch


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_logits(reduction):
    x, t = randn(3, 4) * 3, np.random.uniform(0, 1, (3, 4))
    w, pw = np.random.uniform(0, 2, (3, 1)), np.random.uniform(0.5, 3, 4)
    for weight, pos_weight in [(None, None), (w, pw)]:
        out = L.binary_cross_entropy_with_logits(Tensor(x), Tensor(t), weight, reduction=reduction,
                                                 pos_weight=pos_weight)
        np.testing.assert_allclose(out.numpy(), bce_logits_ref(x, t, weight, pos_weight, reduction), rtol=1e-12)
    xt, tt = Tensor(x, requires_grad=True), Tensor(t, requires_grad=True)
    fn = lambda x, t: L.binary_cross_entropy_with_logits(x, t, w, reduction=reduction, pos_weight=pw)  # noqa: E731
    assert gradcheck(fn, xt, tt)
    assert gradgradcheck(fn, xt, tt)


@pytest.mark.parametrize("call, message", [
    (lambda: L.binary_cross_entropy(Tensor([0.5, 1.5]), Tensor([1.0, 0.0])),
     "binary_cross_entropy: every element of the input must lie in [0, 1] (probabilities: apply sigmoid, or use "
     "binary_cross_entropy_with_logits), got values from 0.5 to 1.5 in shape (2,)"),
    (lambda: L.binary_cross_entropy(Tensor([0.5, 0.5]), Tensor([[1.0], [0.0]])),
     "binary_cross_entropy: the target's shape (2, 1) differs from the input's (2,); they must be the same"),
    (lambda: L.binary_cross_entropy_with_logits(Tensor([0.5, 0.5]), Tensor([1.0])),
     "binary_cross_entropy_with_logits: the target's shape (1,) differs from the input's (2,)"),
    (lambda: L.binary_cross_entropy_with_logits(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 3))),
                                                pos_weight=np.ones(2)),
     "binary_cross_entropy_with_logits (pos_weight): weight of shape (2,) does not broadcast to the input's shape "
     "(2, 3)"),
    (lambda: L.binary_cross_entropy(Tensor([0.5]), Tensor([1.0]), reduction="avg"),
     "binary_cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
], ids=["range", "shape", "logits-shape", "pos_weight", "reduction"])
def test_binary_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# ---- regression losses ----------------------------------------------------------------------------

A = np.array([0.0, 0.5, 2.0, -3.0, 1.0])
B = np.array([0.2, 0.0, 0.0, 0.0, 0.25])


def smooth_l1_ref(d, beta):
    return np.where(np.abs(d) < beta, 0.5 * d ** 2 / beta, np.abs(d) - 0.5 * beta)


def huber_ref(d, delta):
    return np.where(np.abs(d) < delta, 0.5 * d ** 2, delta * (np.abs(d) - 0.5 * delta))


REGRESSION = [
    (lambda a, b, r: L.mse_loss(a, b, reduction=r), lambda d: d ** 2),
    (lambda a, b, r: L.l1_loss(a, b, reduction=r), np.abs),
    (lambda a, b, r: L.smooth_l1_loss(a, b, reduction=r), lambda d: smooth_l1_ref(d, 1.0)),
    (lambda a, b, r: L.smooth_l1_loss(a, b, reduction=r, beta=0.5), lambda d: smooth_l1_ref(d, 0.5)),
    (lambda a, b, r: L.smooth_l1_loss(a, b, reduction=r, beta=0.0), np.abs),
    (lambda a, b, r: L.huber_loss(a, b, reduction=r, delta=1.5), lambda d: huber_ref(d, 1.5)),
]
REGRESSION_IDS = ["mse", "l1", "smooth_l1", "smooth_l1-0.5", "smooth_l1-0", "huber-1.5"]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss, formula", REGRESSION, ids=REGRESSION_IDS)
def test_regression_losses(loss, formula, reduction):
    a = randn(3, 4) * 2
    d = np.where(np.abs(np.abs(a) - 1) < 0.1, a * 1.3, a)  # away from |d| = beta or delta, and from 0
    d = np.where(np.abs(d) < 0.1, 0.3, d)
    b = randn(3, 4)
    a = b + d
    np.testing.assert_allclose(loss(Tensor(a), Tensor(b), reduction).numpy(), reduce_ref(formula(d), reduction),
                               rtol=1e-12)
    at, bt = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    assert gradcheck(lambda a, b: loss(a, b, reduction), at, bt)
    assert gradgradcheck(lambda a, b: loss(a, b, reduction), at, bt)
    a32 = Tensor(a.astype(np.float32), requires_grad=True)
    out = loss(a32, b.astype(np.float32), reduction)
    out.sum().backward()
    assert out.dtype == a32.grad.dtype == np.float32


def test_regression_losses_match_pytorch():
    a, b = Tensor(A), Tensor(B)
    # measured with torch.nn.functional in float64 on the same A, B
    np.testing.assert_allclose(L.smooth_l1_loss(a, b, beta=0.5, reduction="none").numpy(),
                               [0.04000000000000001, 0.25, 1.75, 2.75, 0.5], rtol=1e-15)
    np.testing.assert_allclose(L.huber_loss(a, b, delta=1.5, reduction="none").numpy(),
                               [0.020000000000000004, 0.125, 1.875, 3.375, 0.28125], rtol=1e-15)
    assert L.mse_loss(a, b).item() == pytest.approx(2.7704999999999997, rel=1e-15)
    assert L.l1_loss(a, b, reduction="sum").item() == pytest.approx(6.45, rel=1e-15)


def test_l1_gradient_at_zero_difference_is_zero():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    L.l1_loss(a, np.array([1.0, 0.0]), reduction="sum").backward()
    np.testing.assert_array_equal(a.grad, [0.0, 1.0])  # sign(0) = 0, as in PyTorch


def test_regression_with_broadcast_target_warns():
    with pytest.warns(UserWarning, match=re.escape("mse_loss: the target's shape (2, 1) differs from the input's "
                                                   "(2,); they are broadcast together")):
        assert L.mse_loss(Tensor([1.0, 2.0]), Tensor([[1.0], [2.0]]), reduction="none").shape == (2, 2)


@pytest.mark.parametrize("call, message", [
    (lambda: L.smooth_l1_loss(Tensor([1.0]), Tensor([0.0]), beta=-1.0), "smooth_l1_loss: beta must be >= 0, got -1.0"),
    (lambda: L.huber_loss(Tensor([1.0]), Tensor([0.0]), delta=0.0), "huber_loss: delta must be > 0, got 0.0"),
    (lambda: L.mse_loss(Tensor([1.0, 2.0]), Tensor([1.0, 2.0, 3.0])),
     "mse_loss: the input's shape (2,) and the target's (3,) do not broadcast"),
    (lambda: L.l1_loss(Tensor([1.0]), Tensor([0.0]), reduction="max"),
     "l1_loss: reduction must be 'mean', 'sum' or 'none', got 'max'"),
], ids=["beta", "delta", "broadcast", "reduction"])
def test_regression_errors(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# ---- loss modules --------------------------------------------------------------------------------

@pytest.mark.parametrize("module, functional, target", [
    (nn.CrossEntropyLoss(np.array([1.0, 2.0, 0.5]), ignore_index=1, label_smoothing=0.1),
     lambda x, y: L.cross_entropy(x, y, np.array([1.0, 2.0, 0.5]), ignore_index=1, label_smoothing=0.1),
     np.array([0, 1, 2, 2])),
    (nn.NLLLoss(reduction="sum"), lambda x, y: L.nll_loss(x, y, reduction="sum"), np.array([0, 1, 2, 2])),
    (nn.MSELoss(), L.mse_loss, np.ones((4, 3))),
    (nn.L1Loss(reduction="none"), lambda x, y: L.l1_loss(x, y, reduction="none"), np.ones((4, 3))),
    (nn.SmoothL1Loss(beta=0.5), lambda x, y: L.smooth_l1_loss(x, y, beta=0.5), np.ones((4, 3))),
    (nn.HuberLoss(delta=2.0), lambda x, y: L.huber_loss(x, y, delta=2.0), np.ones((4, 3))),
    (nn.BCELoss(np.ones(3)), lambda x, y: L.binary_cross_entropy(x.sigmoid(), y, np.ones(3)),
     np.full((4, 3), 0.3)),
    (nn.BCEWithLogitsLoss(pos_weight=np.array([1.0, 2.0, 3.0])),
     lambda x, y: L.binary_cross_entropy_with_logits(x, y, pos_weight=np.array([1.0, 2.0, 3.0])),
     np.full((4, 3), 0.3)),
], ids=["cross_entropy", "nll", "mse", "l1", "smooth_l1", "huber", "bce", "bce_logits"])
def test_loss_modules_call_their_function(module, functional, target):
    x = Tensor(randn(4, 3))
    x_in = x.sigmoid() if isinstance(module, nn.BCELoss) else x
    np.testing.assert_array_equal(module(x_in, Tensor(target) if target.dtype.kind == "f" else target).numpy(),
                                  functional(x, Tensor(target) if target.dtype.kind == "f" else target).numpy())


def test_loss_weights_are_buffers():
    criterion = nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert criterion.parameters() == [] and list(criterion.state_dict()) == ["weight"]
    assert criterion.to(np.float64).weight.dtype == np.float64
    assert list(nn.BCEWithLogitsLoss(pos_weight=np.ones(2)).state_dict()) == ["pos_weight"]
    assert nn.MSELoss().state_dict() == {}
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


@pytest.mark.parametrize("make, message", [
    (lambda: nn.MSELoss(reduction="avg"), "MSELoss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=-0.1), "CrossEntropyLoss: label_smoothing must be in [0, 1]"),
    (lambda: nn.SmoothL1Loss(beta=-1), "SmoothL1Loss: beta must be >= 0, got -1"),
    (lambda: nn.HuberLoss(delta=0), "HuberLoss: delta must be > 0, got 0"),
], ids=["reduction", "smoothing", "beta", "delta"])
def test_loss_module_bad_arguments(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()
