"""tinygrad_cnn.nn: layer shapes, gradients checked through each module, initialisation, the
Module API (parameter names, train/eval, state_dict), dropout, and save/load to .npz."""
import os
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, nn, no_grad, optim


@pytest.fixture(autouse=True)
def seeded():
    np.random.seed(0)  # layers initialise, and Dropout samples, from numpy's global generator


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 1x8x8 -> 4x4x4
        nn.Flatten(), nn.Linear(4 * 4 * 4, 10),
    )


class Net(nn.Module):
    """A custom Module with a nested Sequential, a direct layer, and a parameter-free layer."""

    def __init__(self):
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(2 * 3 * 3, 10, bias=False)

    def forward(self, x):
        return self.head(self.dropout(self.flatten(self.features(x))))


# ---- output shapes ------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, in_shape, out_shape", [
    (lambda: nn.Conv2d(3, 4, 3), (2, 3, 8, 8), (2, 4, 6, 6)),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 8, 8), (2, 4, 4, 4)),
    (lambda: nn.Conv2d(3, 4, (3, 2), bias=False), (2, 3, 8, 8), (2, 4, 6, 7)),
    (lambda: nn.Linear(5, 3), (4, 5), (4, 3)),
    (lambda: nn.Linear(5, 3, bias=False), (2, 4, 5), (2, 4, 3)),
    (lambda: nn.MaxPool2d(2), (2, 3, 8, 8), (2, 3, 4, 4)),
    (lambda: nn.MaxPool2d(3), (2, 3, 8, 7), (2, 3, 2, 2)),  # odd edges are dropped, as in PyTorch
    (lambda: nn.ReLU(), (2, 3, 4), (2, 3, 4)),
    (lambda: nn.Flatten(), (2, 3, 4, 5), (2, 60)),
    (lambda: nn.Dropout(0.5), (2, 3, 4), (2, 3, 4)),
    (small_cnn, (5, 1, 8, 8), (5, 10)),
    (Net, (5, 1, 8, 8), (5, 10)),
], ids=["conv", "conv-stride-pad", "conv-rect-nobias", "linear", "linear-3d-nobias", "pool2", "pool3-odd",
        "relu", "flatten", "dropout", "sequential", "custom"])
def test_output_shape(layer, in_shape, out_shape):
    assert layer()(Tensor(np.random.randn(*in_shape), dtype=np.float32)).shape == out_shape


def test_bias_false_means_no_bias_parameter():
    assert [name for name, _ in nn.Conv2d(1, 2, 3, bias=False).named_parameters()] == ["weight"]
    assert [name for name, _ in nn.Linear(3, 2, bias=False).named_parameters()] == ["weight"]


@pytest.mark.parametrize("layer, x, message", [
    (nn.Linear(5, 3), np.zeros((2, 4)), "linear: input of shape (2, 4) does not fit weight of shape (3, 5)"),
    (nn.Conv2d(3, 4, 3), np.zeros((2, 1, 8, 8)), "input (2, 1, 8, 8) has 1 channels, but the weight (4, 3, 3, 3) expects 3"),
])
def test_wrong_input_size_is_a_clear_error(layer, x, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        layer(Tensor(x))


def test_linear_computes_x_weight_transposed_plus_bias():
    layer = nn.Linear(3, 2)
    layer.bias.data[:] = [0.5, -1.0]
    x = np.random.randn(4, 3).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x)).numpy(), x @ layer.weight.data.T + layer.bias.data, rtol=1e-6)


# ---- gradients, checked through the module --------------------------------------------------------

def dropout_seeded(p):
    """Dropout whose mask is the same on every call, so finite differences see one function."""
    class SeededDropout(nn.Dropout):
        def forward(self, x):
            np.random.seed(1)
            return super().forward(x)
    return SeededDropout(p)


@pytest.mark.parametrize("layer, in_shape", [
    (lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    (lambda: nn.Conv2d(2, 3, (3, 2), stride=2, padding=1, bias=False), (2, 2, 5, 6)),
    (lambda: nn.Linear(4, 3), (5, 4)),
    (lambda: nn.MaxPool2d(2), (2, 3, 4, 6)),
    (lambda: nn.ReLU(), (3, 4)),
    (lambda: nn.Flatten(), (2, 3, 2, 2)),
    (lambda: dropout_seeded(0.4), (4, 5)),
    (small_cnn, (3, 1, 8, 8)),
], ids=["conv", "conv-stride-pad-nobias", "linear", "maxpool", "relu", "flatten", "dropout", "sequential"])
def test_gradcheck_through_module(layer, in_shape):
    module = layer().to(np.float64)
    params = module.parameters()
    assert all(p.dtype == np.float64 for p in params)  # so gradcheck perturbs these very tensors
    x = Tensor(np.random.randn(*in_shape), requires_grad=True)
    out_shape = module(x).shape
    coeffs = np.random.randn(*out_shape)  # a weighted sum: every output element counts differently

    def loss(x, *ps):
        return (module(x) * coeffs).sum()

    assert gradcheck(loss, x, *params)
    # gradcheck would pass vacuously if the loss ignored a parameter (zero vs zero): it does not.
    loss(x, *params).backward()
    assert all(np.abs(p.grad).max() > 0 for p in [x, *params])


def test_gradcheck_custom_module_with_cross_entropy():
    module = Net().eval().to(np.float64)  # eval: Dropout is the identity
    x = Tensor(np.random.randn(3, 1, 8, 8), requires_grad=True)
    labels = np.array([1, 7, 3])
    assert gradcheck(lambda x, *ps: module(x).cross_entropy(labels), x, *module.parameters())


# ---- initialisation -------------------------------------------------------------------------------

INIT_LAYERS = [
    (lambda init: nn.Linear(400, 100, init=init), 400),
    (lambda init: nn.Conv2d(4, 64, 3, init=init), 4 * 3 * 3),
]


@pytest.mark.parametrize("layer, fan_in", INIT_LAYERS, ids=["linear", "conv"])
def test_default_init_is_kaiming_uniform(layer, fan_in):
    module = layer("kaiming")
    w = module.weight.data
    bound = np.sqrt(6 / fan_in)  # He-uniform: variance 2 / fan_in
    assert np.abs(w).max() <= bound
    assert np.std(w) == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
    assert np.mean(w) == pytest.approx(0, abs=0.05 * np.sqrt(2 / fan_in))
    np.testing.assert_array_equal(module.bias.data, 0)


def test_default_init_matches_init_kaiming():
    np.random.seed(3)
    default = nn.Conv2d(2, 3, 3).weight.data
    np.random.seed(3)
    np.testing.assert_array_equal(default, nn.Conv2d(2, 3, 3, init="kaiming").weight.data)


@pytest.mark.parametrize("layer, fan_in", INIT_LAYERS, ids=["linear", "conv"])
def test_tutorial_init_is_randn_over_fan_in(layer, fan_in):
    w = layer("tutorial").weight.data
    assert np.std(w) == pytest.approx(1 / fan_in, rel=0.05)
    assert np.abs(w).max() > np.sqrt(3) / fan_in  # normal, not uniform: tails beyond a uniform's bound


def test_tutorial_init_reproduces_the_tutorials_conv_filters():
    np.random.seed(7)
    expected = np.random.standard_normal((8, 1, 3, 3)) / 9  # the tutorial: randn(8, 3, 3) / 9
    np.random.seed(7)
    np.testing.assert_allclose(nn.Conv2d(1, 8, 3, init="tutorial").weight.data, expected, rtol=1e-6)


def test_unknown_init_is_rejected():
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        nn.Linear(3, 2, init="xavier")


# ---- dtypes ---------------------------------------------------------------------------------------

def test_parameters_and_outputs_are_float32_by_default():
    model = Net()
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert model(Tensor(np.random.randn(2, 1, 8, 8).astype(np.float32))).dtype == np.float32


def test_to_casts_every_parameter_and_drops_stale_grads():
    model = small_cnn()
    model(Tensor(np.random.randn(2, 1, 8, 8), dtype=np.float32)).sum().backward()
    assert model.to(np.float64) is model
    assert all(p.dtype == np.float64 and p.grad is None for p in model.parameters())


# ---- the Module API -------------------------------------------------------------------------------

def test_call_runs_forward():
    class Double(nn.Module):
        def forward(self, x, scale=2):
            return x * scale

    np.testing.assert_array_equal(Double()(Tensor([1.0, 2.0]), scale=3).numpy(), [3.0, 6.0])


def test_module_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="Empty must define forward"):
        type("Empty", (nn.Module,), {})()(Tensor([1.0]))


def test_named_parameters_in_sequential_are_indexed():
    names = [name for name, _ in small_cnn().named_parameters()]
    assert names == ["0.weight", "0.bias", "4.weight", "4.bias"]


def test_named_parameters_in_custom_module_use_attribute_paths():
    model = Net()
    named = dict(model.named_parameters())
    assert list(named) == ["features.0.weight", "features.0.bias", "head.weight"]
    assert named["head.weight"] is model.head.weight
    assert model.parameters() == list(named.values())


def test_shared_parameter_is_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            self.encoder = nn.Linear(3, 3)
            self.decoder = self.encoder

    params = Tied().parameters()
    assert len(params) == 2 and len({id(p) for p in params}) == 2  # else an optimizer steps it twice


def test_zero_grad_clears_every_parameter():
    model = Net()
    model(Tensor(np.random.randn(2, 1, 8, 8), dtype=np.float32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_train_and_eval_reach_nested_modules():
    model = Net()
    modules = [model, model.features, *model.features.layers, model.dropout, model.head]
    assert all(m.training for m in modules)
    assert model.eval() is model
    assert not any(m.training for m in modules)
    assert model.train() is model
    assert all(m.training for m in modules)


def test_repr_shows_the_layers():
    text = repr(small_cnn())
    assert text.startswith("Sequential(")
    assert "(0): Conv2d(1, 4, kernel_size=(3, 3), stride=1, padding=1, bias=True)" in text
    assert "(4): Linear(64, 10, bias=True)" in text


# ---- state_dict -----------------------------------------------------------------------------------

def test_state_dict_round_trip():
    source, target = Net(), Net()
    x = Tensor(np.random.randn(3, 1, 8, 8).astype(np.float32))
    source.eval(), target.eval()
    assert not np.array_equal(source(x).numpy(), target(x).numpy())
    state = source.state_dict()
    assert list(state) == ["features.0.weight", "features.0.bias", "head.weight"]
    target.load_state_dict(state)
    np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())


def test_state_dict_is_a_snapshot():
    model = nn.Linear(2, 2)
    state = model.state_dict()
    before = state["weight"].copy()
    model.weight.data += 1
    np.testing.assert_array_equal(state["weight"], before)


def test_load_state_dict_keeps_the_parameter_dtype():
    model = nn.Linear(2, 2)
    model.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})  # float64 arrays
    assert model.weight.dtype == model.bias.dtype == np.float32
    np.testing.assert_array_equal(model.weight.data, 1)


def _drop(state, name):
    del state[name]


@pytest.mark.parametrize("corrupt, expected", [
    (lambda s: _drop(s, "head.weight"), "missing: head.weight"),
    (lambda s: s.update({"head.bias": np.zeros(10)}), "unexpected: head.bias"),
    (lambda s: s.update({"features.0.bias": np.zeros(3)}), "features.0.bias has shape (3,), expected (2,)"),
], ids=["missing", "unexpected", "mis-shaped"])
def test_load_state_dict_names_the_bad_entry_and_changes_nothing(corrupt, expected):
    model = Net()
    before = model.state_dict()
    state = Net().state_dict()
    corrupt(state)
    with pytest.raises(ValueError, match=re.escape(expected)):
        model.load_state_dict(state)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_reports_every_problem_at_once():
    state = Net().state_dict()
    del state["head.weight"]
    state["extra"] = np.zeros(1)
    state["features.0.weight"] = np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError) as info:
        Net().load_state_dict(state)
    for part in ["missing: head.weight", "unexpected: extra", "features.0.weight has shape (1, 1, 3, 3)"]:
        assert part in str(info.value)


# ---- Dropout --------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_zeroes_a_fraction_p_and_scales_the_rest(p):
    x = np.random.uniform(1, 2, 100_000).astype(np.float32)
    out = nn.Dropout(p)(Tensor(x)).numpy()
    dropped = out == 0
    assert dropped.mean() == pytest.approx(p, abs=0.01)  # ~6 standard errors at n = 100,000
    np.testing.assert_allclose(out[~dropped], x[~dropped] / (1 - p), rtol=1e-6)
    assert out.dtype == np.float32


def test_dropout_gradient_is_the_same_mask():
    x = Tensor(np.random.uniform(1, 2, (50, 40)), requires_grad=True)
    out = nn.Dropout(0.3)(x)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, (out.numpy() != 0) / 0.7)


def test_eval_disables_dropout_and_train_reenables_it():
    model = nn.Sequential(nn.Linear(20, 20), nn.Dropout(0.5))
    x = Tensor(np.random.randn(8, 20), dtype=np.float32)
    model.eval()
    first, second = model(x).numpy(), model(x).numpy()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, model[0](x).numpy())  # Dropout is the identity
    model.train()
    assert (model(x).numpy() == 0).mean() > 0.3


def test_dropout_p_zero_is_identity_and_bad_p_is_rejected():
    x = Tensor(np.random.randn(4, 4))
    np.testing.assert_array_equal(nn.Dropout(0)(x).numpy(), x.numpy())
    for p in [-0.1, 1, 1.5]:
        with pytest.raises(ValueError, match=re.escape(f"p must be in [0, 1), got {p}")):
            nn.Dropout(p)


# ---- training ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make_optimizer", [
    lambda params: optim.Adam(params, lr=1e-2),
    lambda params: optim.SGD(params, lr=0.05, momentum=0.9),
], ids=["adam", "sgd-momentum"])
def test_small_model_overfits_a_tiny_batch(make_optimizer):
    images = np.random.randn(32, 1, 8, 8).astype(np.float32)
    labels = np.random.randint(0, 10, 32)
    model = small_cnn()
    opt = make_optimizer(model.parameters())
    for step in range(200):
        logits = model(Tensor(images))
        if (logits.numpy().argmax(axis=1) == labels).all():
            break
        opt.zero_grad()
        logits.cross_entropy(labels).backward()
        opt.step()
    with no_grad():
        assert (model.eval()(Tensor(images)).numpy().argmax(axis=1) == labels).all(), f"not there after {step} steps"


# ---- save / load ----------------------------------------------------------------------------------

def test_save_then_load_round_trip(tmp_path):
    source, target = Net().eval(), Net().eval()
    path = tmp_path / "net.npz"
    nn.save(source, path)
    assert nn.load(target, str(path)) is target
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert b.dtype == np.float32
    x = Tensor(np.random.randn(2, 1, 8, 8).astype(np.float32))
    np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())
    assert os.listdir(tmp_path) == ["net.npz"]


def test_save_overwrites(tmp_path):
    path = tmp_path / "w.npz"
    first, second = nn.Linear(3, 2), nn.Linear(3, 2)
    nn.save(first, path)
    nn.save(second, path)
    np.testing.assert_array_equal(nn.load(nn.Linear(3, 2), path).weight.data, second.weight.data)


def _savez_fails_midway(file, *args, **kwargs):
    """np.savez that writes part of an archive, then fails (a full disk, a kill)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as f:
            return _savez_fails_midway(f)
    file.write(b"PK\x03\x04 half an archive")
    raise OSError("disk full")


@pytest.mark.parametrize("existing", [True, False], ids=["old-file", "no-old-file"])
def test_failed_save_leaves_old_file_and_no_temp_file(tmp_path, monkeypatch, existing):
    path = tmp_path / "w.npz"
    old = nn.Linear(3, 2)
    if existing:
        nn.save(old, path)
        old_bytes = path.read_bytes()
    monkeypatch.setattr(np, "savez", _savez_fails_midway)
    with pytest.raises(OSError, match="disk full"):
        nn.save(nn.Linear(3, 2), path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == (["w.npz"] if existing else [])
    if existing:
        assert path.read_bytes() == old_bytes
        np.testing.assert_array_equal(nn.load(nn.Linear(3, 2), path).weight.data, old.weight.data)


def test_load_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        nn.load(nn.Linear(3, 2), path)


def _npy_file(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))  # one unnamed array, not an archive


def _truncated_archive(path):
    nn.save(nn.Linear(3, 2), path)
    path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize("write", [
    lambda path: path.write_bytes(b""),
    lambda path: path.write_bytes(b"these are not the weights you are looking for"),
    _truncated_archive,
    _npy_file,
], ids=["empty", "garbage", "truncated", "npy"])
def test_load_corrupt_file_names_the_path(tmp_path, write):
    path = tmp_path / "w.npz"
    write(path)
    with pytest.raises(ValueError, match=re.escape(f"{path} is not a readable .npz weights file")):
        nn.load(nn.Linear(3, 2), path)


def test_load_into_a_different_architecture_names_the_entries(tmp_path):
    path = tmp_path / "w.npz"
    nn.save(nn.Linear(3, 2), path)
    with pytest.raises(ValueError, match=re.escape("weight has shape (2, 3), expected (4, 3)")):
        nn.load(nn.Linear(3, 4), path)
    with pytest.raises(ValueError, match=re.escape("missing: 0.bias, 0.weight; unexpected: bias, weight")):
        nn.load(nn.Sequential(nn.Linear(3, 2)), path)


def test_save_into_a_missing_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        nn.save(nn.Linear(2, 2), tmp_path / "no-such-dir" / "w.npz")


def test_saved_weights_are_not_private(tmp_path):
    nn.save(nn.Linear(2, 2), tmp_path / "w.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "w.npz").stat().st_mode & 0o777 == 0o666 & ~umask


def test_frozen_parameters_are_saved_and_loaded_but_not_stepped(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    model[0].weight.requires_grad = False
    assert "0.weight" in model.state_dict()
    frozen = model[0].weight.numpy().copy()
    opt = optim.SGD(model.parameters(), lr=0.1)
    model(Tensor(np.ones((1, 3), np.float32))).sum().backward()
    opt.step()
    np.testing.assert_array_equal(model[0].weight.numpy(), frozen)
    nn.save(model, tmp_path / "w.npz")
    restored = nn.load(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)), tmp_path / "w.npz")
    np.testing.assert_array_equal(restored[0].weight.numpy(), frozen)


def test_layers_in_a_plain_list_are_found():
    class Tower(nn.Module):
        def __init__(self):
            self.blocks = [nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)]

    names = [name for name, _ in Tower().named_parameters()]
    assert names == ["blocks.0.weight", "blocks.0.bias", "blocks.2.weight", "blocks.2.bias"]
