"""tinygrad_cnn.nn layers: each one's forward against a plain numpy formula, its gradients (and
second derivatives) checked in float64 through the module, its PyTorch semantics, and a clear
error for each bad argument."""
import math
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, gradgradcheck, nn, no_grad


@pytest.fixture(autouse=True)
def seeded():
    np.random.seed(0)


def randn(*shape):
    return np.random.standard_normal(shape)


def away_from_kinks(*shape):
    """Values at least 0.1 from every activation's kink (0, +-0.5, +-1, +-3, 6), shuffled."""
    points = np.array([-4.1, -2.3, -1.6, -0.7, -0.2, 0.3, 0.8, 1.4, 2.6, 3.4, 6.3, -0.35, 0.15, -1.25, 2.1])
    return np.resize(np.random.permutation(points), shape)


def distinct(*shape):
    """Distinct values (no max-pool ties), shuffled."""
    return np.random.permutation(np.arange(int(np.prod(shape)), dtype=np.float64)).reshape(shape) / 7


def check_grads(module, x, second=True):
    """gradcheck (and gradgradcheck) of module(x) with respect to x and every parameter, in float64."""
    module = module.to(np.float64)
    x = Tensor(np.asarray(x, np.float64), requires_grad=True)
    params = module.parameters()

    def fn(x, *ps):
        return module(x)

    assert gradcheck(fn, x, *params)
    if second:
        assert gradgradcheck(fn, x, *params)


def forward(module, x):
    return module(Tensor(x)).numpy()


# ---- plain numpy formulas --------------------------------------------------------------------------

def conv2d_ref(x, w, b, stride=1, padding=(0, 0, 0, 0), dilation=1, groups=1):
    """Cross-correlation by its definition: out[n, o, i, j] = sum w[o, c, p, q] * x[n, c, i*s + p*d, j*s + q*d]."""
    pt, pb, pl, pr = padding
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh, ow = (h - dilation * (kh - 1) - 1) // stride + 1, (wd - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, oh, ow))
    per_group = o // groups
    for oc in range(o):
        g = oc // per_group
        for i in range(oh):
            for j in range(ow):
                patch = x[:, g * cg:(g + 1) * cg, i * stride:i * stride + dilation * (kh - 1) + 1:dilation,
                          j * stride:j * stride + dilation * (kw - 1) + 1:dilation]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    return out + (0 if b is None else b[None, :, None, None])


def conv_transpose2d_ref(x, w, b, stride, padding, output_padding, groups):
    """Each input pixel scatters its kernel-weighted copy: the adjoint of conv2d."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = c // groups
    full = np.zeros((n, og * groups, (h - 1) * stride + kh + output_padding, (wd - 1) * stride + kw + output_padding))
    for ic in range(c):
        g = ic // cg
        for i in range(h):
            for j in range(wd):
                full[:, g * og:(g + 1) * og, i * stride:i * stride + kh, j * stride:j * stride + kw] += \
                    x[:, ic, i, j][:, None, None, None] * w[ic][None]
    out = full[:, :, padding:full.shape[2] - padding, padding:full.shape[3] - padding]
    return out + b[None, :, None, None]


def pool_ref(x, k, s, reduce):
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    return np.array([[reduce(x[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3)) for j in range(ow)]
                     for i in range(oh)]).transpose(2, 3, 0, 1)


def normalize_ref(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---- Linear and convolutions ----------------------------------------------------------------------

def test_linear_formula_and_gradients():
    layer = nn.Linear(3, 2).to(np.float64)
    layer.bias.data[:] = [0.5, -1.0]
    x = randn(4, 3)
    np.testing.assert_allclose(forward(layer, x), x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)
    check_grads(nn.Linear(3, 2), randn(2, 4, 3))
    check_grads(nn.Linear(3, 2, bias=False), randn(4, 3))


@pytest.mark.parametrize("kwargs, padding", [
    (dict(), (0, 0, 0, 0)),
    (dict(stride=2, padding=1), (1, 1, 1, 1)),
    (dict(padding="same", dilation=2), (2, 2, 2, 2)),
    (dict(padding="valid", groups=2), (0, 0, 0, 0)),
    (dict(padding="same", groups=4, bias=False), (1, 1, 1, 1)),  # depthwise
], ids=["plain", "stride-pad", "same-dilated", "valid-groups", "depthwise"])
def test_conv2d_formula_and_gradients(kwargs, padding):
    layer = nn.Conv2d(4, 4, 3, **kwargs).to(np.float64)
    x = randn(2, 4, 6, 5)
    bias = None if layer.bias is None else layer.bias.data + randn(4)
    if bias is not None:
        layer.bias.data[:] = bias
    expected = conv2d_ref(x, layer.weight.data, bias, kwargs.get("stride", 1), padding, kwargs.get("dilation", 1),
                          kwargs.get("groups", 1))
    np.testing.assert_allclose(forward(layer, x), expected, rtol=1e-10, atol=1e-12)
    check_grads(layer, randn(1, 4, 5, 5), second=kwargs.get("groups", 1) > 1)


@pytest.mark.parametrize("mode, numpy_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
@pytest.mark.parametrize("padding, widths", [(1, ((1, 1), (1, 1))), ((2, 1), ((2, 2), (1, 1))),
                                             ("same", ((1, 2), (1, 2)))], ids=["1", "2-1", "same"])
def test_conv2d_padding_modes(mode, numpy_mode, padding, widths):
    kernel = 4 if padding == "same" else 3  # an even kernel: 'same' pads one more after than before
    layer = nn.Conv2d(2, 3, kernel, padding=padding, padding_mode=mode).to(np.float64)
    x = randn(2, 2, 5, 6)
    padded = np.pad(x, ((0, 0), (0, 0)) + widths, mode=numpy_mode)
    np.testing.assert_allclose(forward(layer, x), conv2d_ref(padded, layer.weight.data, layer.bias.data), rtol=1e-10)


def test_conv2d_padding_mode_gradients():
    check_grads(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), randn(1, 1, 4, 4))


def test_conv2d_weight_shape_with_groups():
    assert nn.Conv2d(4, 6, (3, 2), groups=2).weight.shape == (6, 2, 3, 2)


def test_conv_transpose2d_formula_and_gradients():
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2).to(np.float64)
    assert layer.weight.shape == (4, 3, 3, 3)
    layer.bias.data[:] = randn(6)
    x = randn(2, 4, 3, 2)
    expected = conv_transpose2d_ref(x, layer.weight.data, layer.bias.data, 2, 1, 1, 2)
    out = forward(layer, x)
    assert out.shape == (2, 6, 6, 4)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    check_grads(nn.ConvTranspose2d(2, 2, 2, stride=2), randn(1, 2, 2, 2))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Linear(2.5, 3), "Linear: in_features must be an int >= 0, got 2.5"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "Conv2d: in_channels (3) and out_channels (4) must both be divisible by "
                                           "groups (2)"),
    (lambda: nn.Conv2d(3, 4, 0), "Conv2d: kernel_size, stride and dilation must be >= 1, got kernel_size=0"),
    (lambda: nn.Conv2d(3, 4, 3, stride=(1, 0)), "Conv2d: kernel_size, stride and dilation must be >= 1, got "
                                                "kernel_size=3, stride=(1, 0), dilation=1"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), "Conv2d: kernel_size must be an int or a pair of ints, got (3, 3, 3)"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), "Conv2d: padding must be an int or a pair of ints, same or valid, "
                                                 "got 'full'"),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), "Conv2d: padding='same' needs stride 1"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"), "Conv2d: padding_mode must be 'zeros', 'reflect', "
                                                        "'replicate' or 'circular', got 'mirror'"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), "ConvTranspose2d: padding_mode must be 'zeros', "
                                                                  "got 'reflect'"),
    (lambda: nn.Conv2d(0, 4, 3), "Conv2d: in_channels must be an int >= 1, got 0"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding="same"), "ConvTranspose2d: padding must be an int or a pair of "
                                                          "ints, got 'same'"),
    (lambda: nn.Linear(3, 2, init="xavier"), "unknown init 'xavier'"),
], ids=["linear-float", "groups", "kernel-0", "stride-0", "kernel-3d", "padding-str", "same-stride", "padding-mode",
        "transpose-padding-mode",
        "channels-0", "transpose-same", "init"])
def test_bad_layer_arguments(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_conv_layer_input_errors_name_the_shapes():
    with pytest.raises(ValueError, match=re.escape("conv2d: input (2, 1, 8, 8) has 1 channels, but the weight "
                                                   "(4, 3, 3, 3) expects 3")):
        nn.Conv2d(3, 4, 3)(Tensor(np.zeros((2, 1, 8, 8))))


# ---- pooling and reshaping ------------------------------------------------------------------------

@pytest.mark.parametrize("layer, k, s, reduce", [
    (nn.MaxPool2d(2), 2, 2, np.max),
    (nn.MaxPool2d(3, stride=1), 3, 1, np.max),
    (nn.AvgPool2d(2), 2, 2, np.mean),
    (nn.AvgPool2d(3, stride=2), 3, 2, np.mean),
], ids=["max2", "max3s1", "avg2", "avg3s2"])
def test_pool_formula_and_gradients(layer, k, s, reduce):
    x = distinct(2, 3, 6, 7)
    np.testing.assert_allclose(forward(layer, x), pool_ref(x, k, s, reduce), rtol=1e-12)
    check_grads(layer, distinct(1, 2, 5, 5))


def test_avg_pool_with_padding_counts_or_excludes_the_pad():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    included = forward(nn.AvgPool2d(2, padding=1), x)
    excluded = forward(nn.AvgPool2d(2, padding=1, count_include_pad=False), x)
    assert included[0, 0, 0, 0] == 0 / 4 and excluded[0, 0, 0, 0] == 0  # the corner window holds x[0, 0] only
    assert included[0, 0, 0, 1] == (1 + 2) / 4 and excluded[0, 0, 0, 1] == (1 + 2) / 2


def test_adaptive_avg_pool():
    x = randn(2, 3, 5, 7)
    np.testing.assert_allclose(forward(nn.AdaptiveAvgPool2d(1), x), x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    out = forward(nn.AdaptiveAvgPool2d((2, 3)), x)
    # PyTorch's windows: rows [0, 3) and [2, 5); columns [0, 3), [2, 5), [4, 7)
    np.testing.assert_allclose(out[:, :, 1, 2], x[:, :, 2:5, 4:7].mean(axis=(2, 3)), rtol=1e-12)
    check_grads(nn.AdaptiveAvgPool2d((2, 2)), randn(1, 2, 3, 5))


def test_pool_options_pass_through():
    x = distinct(1, 2, 5, 5)
    np.testing.assert_array_equal(forward(nn.MaxPool2d(2, ceil_mode=True), x)[..., 2, 2], x[..., 4, 4])
    dilated = np.maximum.reduce([x[..., i:i + 3, j:j + 3] for i in (0, 2) for j in (0, 2)])  # taps 2 apart
    np.testing.assert_array_equal(forward(nn.MaxPool2d(2, stride=1, dilation=2), x), dilated)
    np.testing.assert_allclose(forward(nn.AvgPool2d(2, divisor_override=3), x),
                               pool_ref(x, 2, 2, np.sum) / 3, rtol=1e-12)
    np.testing.assert_allclose(forward(nn.AvgPool2d(2, ceil_mode=True), x)[..., 2, 2], x[..., 4, 4], rtol=1e-12)
    with pytest.raises(ValueError, match="MaxPool2d: return_indices=True is not supported"):
        nn.MaxPool2d(2, return_indices=True)


def test_flatten_unflatten_identity():
    x = randn(2, 3, 4, 5)
    np.testing.assert_array_equal(forward(nn.Flatten(), x), x.reshape(2, 60))
    np.testing.assert_array_equal(forward(nn.Flatten(0, 1), x), x.reshape(6, 4, 5))
    np.testing.assert_array_equal(forward(nn.Unflatten(1, (3, 20)), x.reshape(2, 60)), x.reshape(2, 3, 20))
    np.testing.assert_array_equal(forward(nn.Unflatten(-1, (-1, 5)), x.reshape(2, 60)), x.reshape(2, 12, 5))
    t = Tensor(x)
    assert nn.Identity(54, unused=True)(t) is t
    check_grads(nn.Unflatten(1, (2, 3)), randn(2, 6))
    with pytest.raises(ValueError, match=re.escape("Unflatten: cannot split dimension 1 of shape (2, 60) into (7, 9)")):
        nn.Unflatten(1, (7, 9))(Tensor(x.reshape(2, 60)))


# ---- activations ---------------------------------------------------------------------------------

def gelu_ref(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def gelu_tanh_ref(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


@pytest.mark.parametrize("layer, formula", [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.Tanh(), np.tanh),
    (nn.Sigmoid(), sigmoid),
    (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (nn.GELU(), gelu_ref),
    (nn.GELU(approximate="tanh"), gelu_tanh_ref),
    (nn.SiLU(), lambda x: x * sigmoid(x)),
    (nn.Softplus(), lambda x: np.log1p(np.exp(x))),
    (nn.Softplus(beta=2.0), lambda x: np.log1p(np.exp(2 * x)) / 2),
    (nn.Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)),
    (nn.LogSoftmax(dim=-1), lambda x: x - np.log(np.exp(x).sum(axis=-1, keepdims=True))),
    (nn.Hardtanh(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
    (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.SELU(), lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
    (nn.Mish(), lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    (nn.Hardsigmoid(), lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    (nn.Hardswish(), lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    (nn.LogSigmoid(), lambda x: -np.logaddexp(0, -x)),
    (nn.Softsign(), lambda x: x / (1 + np.abs(x))),
], ids=["relu", "tanh", "sigmoid", "leaky", "leaky0.2", "elu", "gelu", "gelu-tanh", "silu", "softplus",
        "softplus-beta", "softmax", "log_softmax", "hardtanh", "relu6", "selu", "mish", "hardsigmoid", "hardswish",
        "logsigmoid", "softsign"])
def test_activation_formula_and_gradients(layer, formula):
    x = away_from_kinks(3, 4)
    np.testing.assert_allclose(forward(layer, x), formula(x), rtol=1e-10, atol=1e-12)
    out32 = layer(Tensor(x, dtype=np.float32))
    assert out32.dtype == np.float32
    check_grads(layer, away_from_kinks(2, 3))


def test_softmax_without_dim_picks_pytorchs_dimension_and_warns():
    x = randn(2, 3)
    with pytest.warns(UserWarning, match="Softmax: no dim given"):
        out = forward(nn.Softmax(), x)
    np.testing.assert_allclose(out.sum(axis=1), 1)  # dim 1 for a 2-D input, as torch picks


def test_bad_activation_arguments():
    with pytest.raises(ValueError, match="GELU: approximate must be 'none' or 'tanh', got 'fast'"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="Hardtanh: min_val must be below max_val, got 1 and -1"):
        nn.Hardtanh(1, -1)


# ---- BatchNorm ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, shape, axes", [
    (lambda: nn.BatchNorm1d(3), (5, 3), (0,)),
    (lambda: nn.BatchNorm1d(3), (4, 3, 2), (0, 2)),
    (lambda: nn.BatchNorm2d(3), (2, 3, 2, 3), (0, 2, 3)),
], ids=["1d", "1d-seq", "2d"])
def test_batchnorm_train_formula_running_stats_and_eval(layer, shape, axes):
    bn = layer().to(np.float64)
    bn.weight.data[:] = [1.0, 2.0, -0.5]
    bn.bias.data[:] = [0.0, 0.1, 0.2]
    x = randn(*shape) * 3 + 1
    view = (1, 3) + (1,) * (len(shape) - 2)
    expected = normalize_ref(x, axes, 1e-5) * bn.weight.data.reshape(view) + bn.bias.data.reshape(view)
    np.testing.assert_allclose(forward(bn, x), expected, rtol=1e-10)
    # running statistics take the unbiased variance, as PyTorch does; momentum 0.1 from (0, 1)
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * x.var(axis=axes, ddof=1), rtol=1e-12)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    y = randn(*shape)
    mean, var = bn.running_mean.data.reshape(view), bn.running_var.data.reshape(view)
    expected = (y - mean) / np.sqrt(var + 1e-5) * bn.weight.data.reshape(view) + bn.bias.data.reshape(view)
    np.testing.assert_allclose(forward(bn, y), expected, rtol=1e-10)
    assert bn.num_batches_tracked.item() == 1  # eval() does not update


def test_batchnorm_running_var_matches_pytorch():
    bn = nn.BatchNorm1d(1).to(np.float64)
    bn(Tensor(np.array([[1.0], [2.0], [3.0], [6.0]])))
    # measured with torch.nn.BatchNorm1d(1).double() on the same batch
    assert bn.running_mean.item() == pytest.approx(0.30000000000000004, rel=1e-15)
    assert bn.running_var.item() == pytest.approx(1.3666666666666667, rel=1e-15)
    bn.eval()
    np.testing.assert_allclose(forward(bn, np.array([[1.0], [2.0]])).ravel(), [0.598777055294055, 1.4541728485712766],
                               rtol=1e-13)


def test_batchnorm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None).to(np.float64)
    batches = [randn(4, 2) + i for i in range(3)]
    for b in batches:
        bn(Tensor(b))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0),
                               rtol=1e-12)


def test_batchnorm_without_running_stats_or_affine():
    bn = nn.BatchNorm2d(2, affine=False, track_running_stats=False).eval()
    assert bn.parameters() == [] and bn.buffers() == [] and bn.state_dict() == {}
    x = randn(3, 2, 2, 2)
    np.testing.assert_allclose(forward(bn, x), normalize_ref(x, (0, 2, 3), 1e-5), rtol=1e-10)  # batch statistics


def test_batchnorm_buffers_state_dict_and_dtype():
    bn = nn.BatchNorm2d(3)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    bn.to(np.float64)
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    out = bn(Tensor(randn(2, 3, 2, 2)))
    assert out.dtype == np.float64 and bn.running_var.dtype == np.float64
    bn32 = nn.BatchNorm2d(3)
    assert bn32(Tensor(randn(2, 3, 2, 2), dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_batchnorm_gradients(mode):
    bn = nn.BatchNorm2d(2)
    bn.running_mean.data[:] = [0.5, -0.5]
    bn.running_var.data[:] = [2.0, 0.5]
    getattr(bn, mode)()
    check_grads(bn, randn(3, 2, 2, 1))
    check_grads(nn.BatchNorm1d(3), randn(4, 3))


@pytest.mark.parametrize("layer, x, error, message", [
    (nn.BatchNorm2d(3), np.zeros((2, 4, 2, 2)), ValueError, "BatchNorm2d: expected a 4-D input with 3 channels in "
                                                            "dimension 1, got shape (2, 4, 2, 2)"),
    (nn.BatchNorm1d(3), np.zeros((2, 3, 2, 2)), ValueError, "BatchNorm1d: expected a 2-D or 3-D input with 3 "
                                                            "channels in dimension 1, got shape (2, 3, 2, 2)"),
    (nn.BatchNorm1d(3), np.zeros((1, 3), np.float32), ValueError,
     "BatchNorm1d: expected more than 1 value per channel when training, got input of shape (1, 3)"),
    (nn.BatchNorm1d(3), np.zeros((2, 3)), TypeError, "BatchNorm1d: the input is float64 (2, 3) but the layer's "
                                                     "tensors are float32"),
], ids=["channels", "ndim", "single-value", "dtype"])
def test_batchnorm_input_errors(layer, x, error, message):
    with pytest.raises(error, match=re.escape(message)):
        layer(Tensor(x))


def test_batchnorm_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("BatchNorm2d: eps must be >= 0 and momentum in [0, 1] or None, "
                                                   "got eps=1e-05, momentum=1.5")):
        nn.BatchNorm2d(3, momentum=1.5)


# ---- LayerNorm and GroupNorm ------------------------------------------------------------------------

def test_layernorm_formula_and_gradients():
    ln = nn.LayerNorm((3, 4)).to(np.float64)
    ln.weight.data[:] = randn(3, 4)
    ln.bias.data[:] = randn(3, 4)
    x = randn(2, 5, 3, 4)
    expected = normalize_ref(x, (2, 3), 1e-5) * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(forward(ln, x), expected, rtol=1e-10)
    check_grads(nn.LayerNorm(3), randn(2, 3))
    check_grads(nn.LayerNorm(3, elementwise_affine=False), randn(2, 2, 3))
    assert nn.LayerNorm(3, bias=False).bias is None
    with pytest.raises(ValueError, match=re.escape("LayerNorm: the input's last dimensions must be normalized_shape "
                                                   "(3, 4), got input of shape (2, 4, 3)")):
        nn.LayerNorm((3, 4))(Tensor(np.zeros((2, 4, 3))))


def test_groupnorm_formula_and_gradients():
    gn = nn.GroupNorm(2, 4).to(np.float64)
    gn.weight.data[:] = randn(4)
    gn.bias.data[:] = randn(4)
    x = randn(3, 4, 2, 3)
    grouped = normalize_ref(x.reshape(3, 2, -1), (2,), 1e-5).reshape(x.shape)
    np.testing.assert_allclose(forward(gn, x), grouped * gn.weight.data[:, None, None] + gn.bias.data[:, None, None],
                               rtol=1e-10)
    check_grads(nn.GroupNorm(2, 4), randn(2, 4, 2))
    with pytest.raises(ValueError, match=re.escape("GroupNorm: num_channels (5) must be divisible by num_groups (2)")):
        nn.GroupNorm(2, 5)
    with pytest.raises(ValueError, match=re.escape("GroupNorm: expected an input (N, 4, ...), got shape (3, 5)")):
        nn.GroupNorm(2, 4)(Tensor(np.zeros((3, 5))))


# ---- Dropout ------------------------------------------------------------------------------------

def test_dropout_is_found_and_switched_off_by_eval():
    layer = nn.Dropout(0.5)
    x = Tensor(np.ones((100, 100)))
    assert (layer(x).numpy() == 0).any()
    assert layer.eval()(x) is x


# ---- Embedding ----------------------------------------------------------------------------------

def test_embedding_looks_up_rows():
    emb = nn.Embedding(10, 3)
    assert emb.weight.shape == (10, 3) and abs(emb.weight.data.std() - 1) < 0.5  # N(0, 1), as in PyTorch
    idx = np.array([[1, 2, 2], [9, 0, 1]])
    np.testing.assert_array_equal(emb(idx).numpy(), emb.weight.data[idx])
    np.testing.assert_array_equal(emb(Tensor(idx, dtype=np.int64)).numpy(), emb.weight.data[idx])
    assert emb(np.int64(4)).shape == (3,)


def test_embedding_gradient_adds_up_repeats_and_skips_the_padding_row():
    emb = nn.Embedding(5, 2, padding_idx=-1)  # -1: the last row, as in PyTorch
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.data[4], 0)
    emb.weight.data[4] = 3.0  # a changed padding row is still looked up, but never trained
    idx = np.array([0, 4, 0, 2, 4])
    out = emb(idx)
    np.testing.assert_array_equal(out.numpy()[1], [3.0, 3.0])
    out.backward(np.ones((5, 2), np.float32))
    np.testing.assert_array_equal(emb.weight.grad, [[2, 2], [0, 0], [1, 1], [0, 0], [0, 0]])


def test_embedding_gradients_checked():
    emb = nn.Embedding(4, 3).to(np.float64)  # (with padding_idx, finite differences see the padding row move)
    idx = np.array([[0, 2], [3, 3]])
    assert gradcheck(lambda w: emb(idx), emb.weight)
    assert gradgradcheck(lambda w: emb(idx) * emb(idx), emb.weight)


def test_embedding_from_pretrained():
    table = randn(4, 2)
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad and emb.weight.dtype == np.float64
    assert nn.Embedding.from_pretrained(Tensor(table), freeze=False).weight.requires_grad


@pytest.mark.parametrize("indices, error, message", [
    (np.array([0, 5]), IndexError, "embedding: index 5 is out of range for 5 embeddings (indices of shape (2,), "
                                   "weight of shape (5, 2))"),
    (np.array([-1, 2]), IndexError, "embedding: index -1 is out of range for 5 embeddings"),
    (np.array([0.0, 1.0]), TypeError, "embedding: indices must be integers, got float64 of shape (2,)"),
    (Tensor([0, 1]), TypeError, "embedding: indices must be integers, got float32"),
], ids=["too-large", "negative", "float-array", "float-tensor"])
def test_embedding_bad_indices(indices, error, message):
    with pytest.raises(error, match=re.escape(message)):
        nn.Embedding(5, 2)(indices)


def test_embedding_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("Embedding: padding_idx must be an int in [-5, 5), got 5")):
        nn.Embedding(5, 2, padding_idx=5)


# ---- recurrent layers ----------------------------------------------------------------------------

def rnn_ref(mode, x, params, num_layers, h0=None):
    """The recurrences as PyTorch's documentation writes them, in numpy: x (L, N, in)."""
    hidden = params["weight_hh_l0"].shape[1]
    hs, cs, h_last, c_last = x, None, [], []
    for k in range(num_layers):
        w_ih, w_hh = params[f"weight_ih_l{k}"], params[f"weight_hh_l{k}"]
        b_ih, b_hh = params[f"bias_ih_l{k}"], params[f"bias_hh_l{k}"]
        h = np.zeros((x.shape[1], hidden)) if h0 is None else h0[k]
        c = np.zeros_like(h)
        outs = []
        for xt in hs:
            gi, gh = xt @ w_ih.T + b_ih, h @ w_hh.T + b_hh
            if mode == "RNN":
                h = np.tanh(gi + gh)
            elif mode == "GRU":
                r = sigmoid(gi[:, :hidden] + gh[:, :hidden])
                z = sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
                n = np.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
                h = (1 - z) * n + z * h
            else:
                g = gi + gh
                i, f = sigmoid(g[:, :hidden]), sigmoid(g[:, hidden:2 * hidden])
                cell, o = np.tanh(g[:, 2 * hidden:3 * hidden]), sigmoid(g[:, 3 * hidden:])
                c = f * c + i * cell
                h = o * np.tanh(c)
            outs.append(h)
        hs = np.stack(outs)
        h_last.append(h)
        c_last.append(c)
    return hs, np.stack(h_last), np.stack(c_last)


@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM"])
def test_recurrent_formula_shapes_and_parameter_names(mode):
    layer = getattr(nn, mode)(3, 4, num_layers=2).to(np.float64)
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[mode]
    assert [n for n, _ in layer.named_parameters()] == [f"{w}_l{k}" for k in (0, 1) for w in
                                                         ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert layer.weight_ih_l0.shape == (gates * 4, 3) and layer.weight_hh_l1.shape == (gates * 4, 4)
    bound = 1 / np.sqrt(4)  # PyTorch's init: U(-1/sqrt(hidden), 1/sqrt(hidden))
    assert all(np.abs(p.data).max() <= bound for p in layer.parameters())
    params = {n: p.data for n, p in layer.named_parameters()}
    x = randn(5, 2, 3)
    out, state = layer(Tensor(x))
    ref_out, ref_h, ref_c = rnn_ref(mode, x, params, 2)
    h_n = state[0] if mode == "LSTM" else state
    assert out.shape == (5, 2, 4) and h_n.shape == (2, 2, 4)
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n.numpy(), ref_h, rtol=1e-10, atol=1e-12)
    if mode == "LSTM":
        np.testing.assert_allclose(state[1].numpy(), ref_c, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM"])
def test_recurrent_batch_first_unbatched_and_initial_state(mode):
    layer = getattr(nn, mode)(3, 2, batch_first=True).to(np.float64)
    params = {n: p.data for n, p in layer.named_parameters()}
    x = randn(2, 4, 3)  # (N, L, in)
    h0 = randn(1, 2, 2)
    hx = (Tensor(h0), Tensor(np.zeros((1, 2, 2)))) if mode == "LSTM" else Tensor(h0)
    out, _ = layer(Tensor(x), hx)
    ref_out, _, _ = rnn_ref(mode, x.transpose(1, 0, 2), params, 1, h0)
    np.testing.assert_allclose(out.numpy(), ref_out.transpose(1, 0, 2), rtol=1e-10, atol=1e-12)
    unbatched, state = layer(Tensor(x[0]))  # (L, in): no batch dimension
    assert unbatched.shape == (4, 2) and (state[0] if mode == "LSTM" else state).shape == (1, 2)
    np.testing.assert_allclose(unbatched.numpy(), rnn_ref(mode, x[:1].transpose(1, 0, 2), params, 1)[0][:, 0],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM"])
def test_recurrent_gradients(mode):
    layer = getattr(nn, mode)(2, 2, num_layers=2 if mode == "RNN" else 1)
    check_grads(_OutputOnly(layer), randn(3, 1, 2))


class _OutputOnly(nn.Module):
    def __init__(self, rnn):
        self.rnn = rnn

    def forward(self, x):
        out, state = self.rnn(x)
        last = state[0] if isinstance(state, tuple) else state
        return out.sum(axis=0) + last.sum(axis=0)


def test_rnn_relu_and_dropout_between_layers():
    layer = nn.RNN(2, 3, num_layers=2, nonlinearity="relu", dropout=0.5)
    params = {n: p.data.astype(np.float64) for n, p in layer.named_parameters()}
    x = randn(3, 1, 2).astype(np.float32)
    layer.eval()  # no dropout
    out, _ = layer(Tensor(x))
    h = np.zeros((1, 3))
    for xt in x:  # first layer only, to see relu at work
        h = np.maximum(xt @ params["weight_ih_l0"].T + params["bias_ih_l0"] + h @ params["weight_hh_l0"].T
                       + params["bias_hh_l0"], 0)
    assert out.dtype == np.float32 and (out.numpy() >= 0).all()


@pytest.mark.parametrize("call, message", [
    (lambda: nn.RNN(3, 4)(Tensor(np.zeros((5, 2, 2)))), "RNN: expected an input (L, N, 3)"),
    (lambda: nn.GRU(3, 4)(Tensor(np.zeros((5, 2, 3), np.float32)), Tensor(np.zeros((1, 3, 4), np.float32))),
     "GRU: the initial state must have shape (1, 2, 4), got (1, 3, 4)"),
    (lambda: nn.LSTM(3, 4)(Tensor(np.zeros((5, 2, 3), np.float32)), Tensor(np.zeros((1, 2, 4), np.float32))),
     "LSTM: the initial state must be a pair (h_0, c_0)"),
    (lambda: nn.RNN(3, 4, bidirectional=True), "RNN: bidirectional=True is not supported"),
    (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), "RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"),
    (lambda: nn.RNN(3, 4)(Tensor(np.zeros((0, 2, 3), np.float32))), "RNN: the input sequence is empty"),
    (lambda: nn.RNN(3, 4)(Tensor(np.zeros((5, 2, 3)))), "RNN: the input is float64 (5, 2, 3) but the layer's "
                                                        "weights are float32"),
], ids=["features", "h0-shape", "lstm-pair", "bidirectional", "nonlinearity", "empty", "dtype"])
def test_recurrent_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        call()


def test_recurrent_layers_learn_under_no_grad_too():
    with no_grad():
        out, h = nn.GRU(2, 3)(Tensor(randn(4, 1, 2), dtype=np.float32))
    assert not out.requires_grad and out.shape == (4, 1, 3)
