"""tinygrad_cnn.nn: the Module API (parameters, buffers, children, hooks, train/eval, to,
state_dict), containers, the benchmark's layers' shapes and gradients, initialisation, dropout,
and save/load to .npz. Other layers: test_layers.py; losses: test_losses.py."""
import copy
import os
import re
import warnings

import numpy as np
import pytest

from tinygrad_cnn import Tensor, functional, gradcheck, nn, no_grad, optim


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


# ---- Parameter ------------------------------------------------------------------------------------

def test_parameter_is_a_tensor_that_requires_grad_and_shares_memory():
    data = np.arange(3.0)
    p = nn.Parameter(data)
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf
    data[0] = 7
    assert p.data[0] == 7  # shares the array, as torch.nn.Parameter shares its tensor's storage
    t = Tensor(np.ones(2))
    assert nn.Parameter(t).data is t.data
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\nTensor([7., 1., 2.]")
    assert type(p * 2) is Tensor  # results of ops are plain tensors


def test_parameter_of_integers_is_float32_like_any_tensor():
    assert nn.Parameter(np.arange(3)).dtype == np.float32


def test_layers_hold_parameters():
    assert all(isinstance(p, nn.Parameter) for p in small_cnn().parameters())


def test_parameter_count():
    assert sum(p.numel() for p in small_cnn().parameters()) == (4 * 9 + 4) + (64 * 10 + 10)


# ---- buffers --------------------------------------------------------------------------------------

class Scaler(nn.Module):
    """A parameter, a persistent buffer, a non-persistent buffer and an empty one."""

    def __init__(self):
        self.weight = nn.Parameter(np.ones(2, np.float32))
        self.register_buffer("count", Tensor(np.zeros(2, np.float32)))
        self.register_buffer("cache", Tensor(np.ones(3, np.float32)), persistent=False)
        self.register_buffer("unused", None)

    def forward(self, x):
        return x * self.weight + self.count


def test_buffers_are_saved_and_moved_but_never_parameters():
    m = Scaler()
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert [n for n, _ in m.named_buffers()] == ["count", "cache"]
    assert m.buffers()[0] is m.count
    assert list(m.state_dict()) == ["weight", "count"]  # not the non-persistent one
    m.to(np.float64)
    assert m.count.dtype == m.cache.dtype == m.weight.dtype == np.float64


def test_reassigned_buffer_stays_a_buffer():
    m = Scaler()
    m.count = Tensor(np.full(2, 5, np.float32))
    assert [n for n, _ in m.named_buffers()][0] == "count" and "count" not in dict(m.named_parameters())
    np.testing.assert_array_equal(m.state_dict()["count"], 5)


def test_buffers_are_loaded():
    source, target = Scaler(), Scaler()
    source.count.data[:] = [3, 4]
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target.count.data, [3, 4])
    assert target.count.dtype == np.float32


def test_register_buffer_arrays_keep_their_dtype():
    m = nn.Module()
    m.register_buffer("steps", np.array(0, np.int64))
    assert isinstance(m.steps, Tensor) and m.steps.dtype == np.int64
    m.to(np.float64)
    assert m.steps.dtype == np.int64  # to(dtype) moves floating-point tensors only, as in PyTorch


@pytest.mark.parametrize("name, value, error, message", [
    ("a.b", None, KeyError, "without '.'"),
    ("", None, KeyError, "non-empty"),
    ("weight", None, KeyError, "attribute 'weight' already exists"),
    ("training", None, KeyError, "attribute 'training' already exists"),
    ("x", [1.0, 2.0], TypeError, "'x' must be a Tensor, a numpy array or None, got list"),
])
def test_register_buffer_bad_arguments(name, value, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Scaler().register_buffer(name, value)


def test_add_module_and_register_parameter_name_things_made_at_run_time():
    m = nn.Module()
    for i in range(2):
        m.add_module(f"layer{i}", nn.Linear(2, 2))
    m.register_parameter("scale", nn.Parameter(np.ones(1)))
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "layer0.weight", "layer0.bias", "layer1.weight", "layer1.bias"]  # own ones first
    with pytest.raises(TypeError, match="Module.add_module: 'x' must be a Module or None, got int"):
        m.add_module("x", 3)
    with pytest.raises(KeyError, match="Module.register_parameter: attribute 'forward' already exists"):
        m.register_parameter("forward", None)


# ---- children, modules, apply --------------------------------------------------------------------

def test_children_and_modules():
    model = Net()
    assert [n for n, _ in model.named_children()] == ["features", "flatten", "dropout", "head"]
    assert list(model.children())[0] is model.features
    names = [n for n, _ in model.named_modules()]
    assert names == ["", "features", "features.0", "features.1", "features.2", "flatten", "dropout", "head"]
    assert list(model.modules())[0] is model


def test_apply_visits_children_first_then_the_module():
    model = Net()
    visited = []
    assert model.apply(lambda m: visited.append(m)) is model
    assert visited[-1] is model and visited[0] is model.features.layers[0]
    assert len(visited) == 8


def test_apply_initialises_weights():
    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)
    model = Net().apply(init)
    np.testing.assert_array_equal(model.head.weight.data, 0)


def test_shared_module_is_saved_under_both_names_but_trained_once():
    class Tied(nn.Module):
        def __init__(self):
            self.encoder = nn.Linear(3, 3)
            self.decoder = self.encoder

    m = Tied()
    assert list(m.state_dict()) == ["encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"]
    assert [n for n, _ in m.named_parameters()] == ["encoder.weight", "encoder.bias"]
    assert [n for n, _ in m.named_modules()] == ["", "encoder"]
    m.load_state_dict(Tied().state_dict())


def test_a_module_that_points_back_to_its_parent_is_not_followed_forever():
    parent = nn.Sequential(nn.Linear(2, 2))
    parent[0].owner = parent
    assert [n for n, _ in parent.named_modules()] == ["", "0"]
    assert list(parent.state_dict()) == ["0.weight", "0.bias"]


# ---- modules and tensors in plain containers -----------------------------------------------------

class Containers(nn.Module):
    def __init__(self):
        self.heads = {"cls": nn.Linear(2, 3), "box": nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 4))}
        self.stages = [[nn.Linear(2, 2)], (nn.Dropout(0.5), nn.Linear(2, 2))]
        self.scales = [Tensor(np.ones(2, np.float32), requires_grad=True)]
        self.config = {"sizes": [1, 2], "name": "x"}  # no tensors: ignored


def test_modules_and_tensors_in_dicts_and_nested_lists_are_found():
    m = Containers()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scales.0", "heads.cls.weight", "heads.cls.bias", "heads.box.1.weight", "heads.box.1.bias",
                     "stages.0.0.weight", "stages.0.0.bias", "stages.1.1.weight", "stages.1.1.bias"]
    assert list(m.state_dict()) == names
    m.eval()
    assert not m.heads["box"][0].training and not m.stages[1][0].training  # Dropout off in eval()
    m.to(np.float64)
    assert {p.dtype for p in m.parameters()} == {np.dtype(np.float64)}
    m.load_state_dict(m.state_dict())


def test_modules_in_a_set_are_named_in_a_warning():
    class Bag(nn.Module):
        def __init__(self):
            self.layers = {nn.Linear(2, 2)}

    with pytest.warns(UserWarning, match=r"Bag\.layers is a set holding modules or tensors"):
        assert Bag().parameters() == []


def test_no_warning_for_plain_attributes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Containers().parameters()


# ---- containers ---------------------------------------------------------------------------------

def test_sequential_indexing_slicing_len_append_iteration():
    model = small_cnn()
    assert len(model) == 5 and isinstance(model[0], nn.Conv2d) and isinstance(model[-1], nn.Linear)
    head = model[3:]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is model[4]
    model.append(nn.ReLU())
    assert len(model) == 6 and [type(m).__name__ for m in model][-1] == "ReLU"
    model[5] = nn.Identity()
    assert isinstance(model[5], nn.Identity)
    assert model(Tensor(np.random.randn(2, 1, 8, 8), dtype=np.float32)).shape == (2, 10)


def test_sequential_from_a_dict_names_its_layers():
    model = nn.Sequential({"conv": nn.Conv2d(1, 2, 3), "act": nn.ReLU()})
    assert [n for n, _ in model.named_parameters()] == ["conv.weight", "conv.bias"]
    assert model.conv is model[0]
    with pytest.raises(AttributeError, match="no attribute 'pool'"):
        model.pool


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU())
    layers.extend([nn.Linear(2, 1)])
    layers.insert(0, nn.Identity())
    assert len(layers) == 6 and isinstance(layers[0], nn.Identity) and isinstance(layers[-1], nn.Linear)
    assert [n for n, _ in layers.named_parameters()][:2] == ["1.weight", "1.bias"]
    assert len(layers[1:3]) == 2 and isinstance(layers[1:3], nn.ModuleList)
    del layers[0]
    x = Tensor(np.ones((1, 2), np.float32))
    for layer in layers:
        x = layer(x)
    assert x.shape == (1, 1)


def test_module_dict():
    heads = nn.ModuleDict({"a": nn.Linear(2, 3)})
    heads["b"] = nn.Linear(2, 4)
    heads.update({"c": nn.Dropout()})
    assert list(heads) == list(heads.keys()) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert heads.pop("c") is not None and len(heads) == 2
    del heads["b"]
    assert list(heads.items())[0][0] == "a" and list(heads.values())[0] is heads["a"]


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Sequential(nn.Linear(2, 2), "relu"), "Sequential: expected a Module, got str"),
    (lambda: nn.ModuleList([lambda x: x]), "ModuleList: expected a Module, got function"),
    (lambda: nn.ModuleList().append(3), "ModuleList.append: expected a Module, got int"),
    (lambda: nn.ModuleDict({"a": np.zeros(2)}), "ModuleDict: expected a Module, got ndarray"),
], ids=["sequential", "list", "list-append", "dict"])
def test_containers_take_only_modules(make, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        make()


def test_module_dict_keys_must_be_strings_without_dots():
    with pytest.raises(KeyError, match="keys must be non-empty strings without '.', got 'a.b'"):
        nn.ModuleDict({"a.b": nn.ReLU()})


# ---- hooks --------------------------------------------------------------------------------------

def test_forward_hooks_see_and_may_replace_inputs_and_outputs():
    layer = nn.Linear(2, 2)
    seen = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: seen.append((m, args[0].numpy().copy(), out)) or out + 1)
    out = layer(Tensor(np.ones((1, 2), np.float32)))
    np.testing.assert_allclose(out.numpy(), layer.bias.numpy()[None] + 1)  # input zeroed, output + 1
    assert seen[0][0] is layer and (seen[0][1] == 0).all()
    pre.remove()
    post.remove()
    post.remove()  # a second remove() is harmless
    x = Tensor(np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(layer(x).numpy(), layer.forward(x).numpy())
    assert len(seen) == 1


def test_hooks_fire_inside_sequential():
    model = small_cnn()
    shapes = []
    model[2].register_forward_hook(lambda m, args, out: shapes.append(out.shape))
    model(Tensor(np.random.randn(3, 1, 8, 8), dtype=np.float32))
    assert shapes == [(3, 4, 4, 4)]


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="Linear: a hook must be callable, got int"):
        nn.Linear(2, 2).register_forward_hook(3)


# ---- grads, freezing, copies -----------------------------------------------------------------------

def test_zero_grad_in_place_and_requires_grad_():
    model = nn.Linear(2, 2)
    model(Tensor(np.ones((1, 2), np.float32))).sum().backward()
    grad = model.weight.grad
    model.zero_grad(set_to_none=False)
    assert model.weight.grad is not grad and (model.weight.grad == 0).all()
    assert model.requires_grad_(False) is model and not any(p.requires_grad for p in model.parameters())


def test_float_double_and_cpu():
    model = nn.Linear(2, 2)
    assert model.double().weight.dtype == np.float64 and model.float().weight.dtype == np.float32
    assert model.to("cpu") is model
    with pytest.raises(TypeError, match="Linear.to: expected a floating-point dtype, got int64"):
        model.to(np.int64)


def test_deepcopy_gives_an_independent_model():
    model = Net()
    clone = copy.deepcopy(model)
    clone.head.weight.data += 1
    assert not np.array_equal(clone.head.weight.data, model.head.weight.data)
    assert isinstance(clone.head.weight, nn.Parameter)


def test_functional_alias_and_utils():
    import tinygrad_cnn.nn.functional as F
    assert F is functional and nn.functional is functional
    assert nn.utils.clip_grad_norm_ is optim.clip_grad_norm_ and nn.utils.clip_grad_value_ is optim.clip_grad_value_


def test_train_mode_must_be_a_bool():
    with pytest.raises(ValueError, match="Net.train: mode must be a bool, got 'eval'"):
        Net().train("eval")


# ---- load_state_dict: strict=False -----------------------------------------------------------------

def test_load_state_dict_not_strict_reports_missing_and_unexpected():
    model = Net()
    state = Net().state_dict()
    del state["head.weight"]
    state["extra"] = np.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.weight"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(model.features.layers[0].weight.data, state["features.0.weight"])
    state["features.0.bias"] = np.zeros(5)
    with pytest.raises(ValueError, match=re.escape("features.0.bias has shape (5,), expected (2,)")):
        model.load_state_dict(state, strict=False)  # a shape mismatch is an error either way


def test_save_and_load_include_buffers(tmp_path):
    source = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    source(Tensor(np.random.randn(8, 3), dtype=np.float32))  # moves the running statistics
    nn.save(source, tmp_path / "bn.npz")
    target = nn.load(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), tmp_path / "bn.npz")
    for name in ["1.running_mean", "1.running_var", "1.num_batches_tracked"]:
        np.testing.assert_array_equal(target.state_dict()[name], source.state_dict()[name])
    assert target[1].num_batches_tracked.dtype == np.int64 and int(target[1].num_batches_tracked.item()) == 1


# ---- nn.init ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fill, expected_std, bound", [
    (lambda w: nn.init.xavier_uniform_(w), np.sqrt(2 / (200 + 300)), np.sqrt(6 / (200 + 300))),
    (lambda w: nn.init.xavier_normal_(w, gain=2), 2 * np.sqrt(2 / (200 + 300)), None),
    (lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"), np.sqrt(2 / 300), np.sqrt(6 / 300)),
    (lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"), np.sqrt(2 / 200), None),
    (lambda w: nn.init.kaiming_uniform_(w, a=np.sqrt(5)), np.sqrt(1 / 3 / 300), 1 / np.sqrt(300)),  # nn.Linear's
    (lambda w: nn.init.normal_(w, 1.0, 0.5), 0.5, None),
    (lambda w: nn.init.uniform_(w, -2, 2), 4 / np.sqrt(12), 2),
], ids=["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "kaiming_a", "normal", "uniform"])
def test_init_distributions(fill, expected_std, bound):
    w = nn.Parameter(np.zeros((200, 300), np.float32))  # fan_in 300, fan_out 200
    assert fill(w) is w
    assert w.dtype == np.float32 and np.std(w.data) == pytest.approx(expected_std, rel=0.02)
    if bound is not None:
        assert np.abs(w.data).max() <= bound


def test_init_constants_and_gain():
    w = nn.Parameter(np.zeros((2, 3)))
    np.testing.assert_array_equal(nn.init.ones_(w).data, 1)
    np.testing.assert_array_equal(nn.init.constant_(w, 0.25).data, 0.25)
    np.testing.assert_array_equal(nn.init.zeros_(w).data, 0)
    np.testing.assert_array_equal(nn.init.eye_(w).data, np.eye(2, 3))
    assert nn.init.calculate_gain("relu") == np.sqrt(2) and nn.init.calculate_gain("tanh") == 5 / 3
    assert nn.init.calculate_gain("leaky_relu", 0.2) == np.sqrt(2 / 1.04)


def test_init_inside_the_tape_is_allowed_and_recorded_nowhere():
    w = nn.Parameter(np.zeros((2, 2)))
    nn.init.normal_(w)  # a leaf that requires grad: an in-place change is fine under no_grad, done inside
    assert w.is_leaf and w.requires_grad


@pytest.mark.parametrize("call, message", [
    (lambda: nn.init.xavier_uniform_(nn.Parameter(np.zeros(3))), "at least 2 dimensions, got shape (3,)"),
    (lambda: nn.init.kaiming_normal_(nn.Parameter(np.zeros((2, 2))), mode="in"), "mode must be 'fan_in' or 'fan_out'"),
    (lambda: nn.init.calculate_gain("swish"), "unsupported nonlinearity 'swish'"),
    (lambda: nn.init.zeros_(np.zeros(2)), "expected a Tensor, got ndarray"),
], ids=["fan", "mode", "gain", "array"])
def test_init_errors(call, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        call()
