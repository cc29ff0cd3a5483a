"""Shape ops and indexing: cat, stack, split, chunk, unbind, (un)squeeze, view/reshape, flatten,
expand(_as), repeat, repeat_interleave, flip, roll, pad, gather, scatter_add, index_select,
masked_fill, x[...] and x[...] = v, and the small conversions (clone, float, size, t, item, ...).

One table, CASES, drives gradcheck, gradgradcheck, forward values against plain numpy and
float32 preservation; the tests after it pin PyTorch's semantics (numbers measured with PyTorch
2.13 and hard-coded, as each comment says) and the error messages."""
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, functional as F, gradcheck, gradgradcheck, no_grad
from tinygrad_cnn.ops.shape import pad

rng = np.random.default_rng(20240611)


def randn(*shape):
    return np.asarray(rng.standard_normal(shape))


def ints(*values):
    return np.array(values, dtype=np.int64)


def case(id, fn, ref, *arrays):
    return pytest.param(fn, ref, arrays, id=id)


def scatter_add_ref(x, d, index, src):
    out = x.copy()
    positions = list(np.indices(index.shape))
    positions[d] = index
    np.add.at(out, tuple(positions), src[tuple(slice(0, n) for n in index.shape)])
    return out


X = randn(2, 3, 4)
C = randn(2, 3, 4)  # a constant operand (not X: a tensor made from X shares its memory)
IDX = np.array([[[0, 1, 1, 2], [2, 2, 2, 2]], [[0, 0, 0, 0], [1, 2, 0, 1]]])  # repeats on purpose
MASK = X > 0.2
NP_PAD = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _cases():
    out = [
        case("cat-dim0", lambda x, y: F.cat([x, y]), lambda x, y: np.concatenate([x, y]), X, randn(1, 3, 4)),
        case("cat-negative-dim", lambda x, y: F.cat([x, y, x], -1), lambda x, y: np.concatenate([x, y, x], -1),
             X, randn(2, 3, 1)),
        case("cat-axis-with-array", lambda x: F.cat([x, C], axis=1), lambda x: np.concatenate([x, C], 1), X),
        case("cat-empty-part", lambda x, y: F.cat([x, y], 1), lambda x, y: np.concatenate([x, y], 1),
             X, np.zeros((2, 0, 4))),
        case("stack", lambda x, y: F.stack([x, y]), lambda x, y: np.stack([x, y]), X, randn(2, 3, 4)),
        case("stack-dim=-1", lambda x, y: F.stack([x, y], -1), lambda x, y: np.stack([x, y], -1), X, randn(2, 3, 4)),
        case("stack-dim=-2-with-array", lambda x: F.stack([C, x], dim=-2), lambda x: np.stack([C, x], -2), X),
        case("split-size", lambda x: F.cat(x.split(3, -1)[::-1], -1),
             lambda x: np.concatenate([x[..., 3:], x[..., :3]], -1), X),
        case("split-sizes", lambda x: x.split([1, 0, 2], 1)[2], lambda x: x[:, 1:], X),
        case("chunk", lambda x: x.chunk(3, dim=2)[1] * 2, lambda x: x[:, :, 2:4] * 2, X),
        case("unbind", lambda x: x.unbind(-2)[2], lambda x: x[:, 2], X),
        case("unsqueeze", lambda x: x.unsqueeze(1), lambda x: x[:, None], X),
        case("unsqueeze-last", lambda x: x.unsqueeze(-1), lambda x: x[..., None], X),
        case("unsqueeze-0d", lambda x: x.unsqueeze(0), lambda x: x.reshape(1), randn()),
        case("squeeze-all", lambda x: x.squeeze(), lambda x: x.reshape(3, 4), randn(1, 3, 1, 4, 1)),
        case("squeeze-one", lambda x: x.squeeze(-3), lambda x: x.reshape(1, 3, 4, 1), randn(1, 3, 1, 4, 1)),
        case("squeeze-not-size-1", lambda x: x.squeeze(1), lambda x: x, randn(1, 3, 1)),
        case("squeeze-tuple", lambda x: x.squeeze((0, 1, -1)), lambda x: x.reshape(3, 1, 4), randn(1, 3, 1, 4, 1)),
        case("squeeze-0d", lambda x: x.squeeze(0), lambda x: x, randn()),
        case("view", lambda x: x.view(4, -1), lambda x: x.reshape(4, 6), X),
        case("view-tuple", lambda x: x.view((-1,)), lambda x: x.reshape(-1), X),
        case("flatten-0d", lambda x: x.flatten(), lambda x: x.reshape(1), randn()),
        case("flatten-negative", lambda x: x.flatten(-2), lambda x: x.reshape(2, 12), X),
        case("expand", lambda x: x.expand(2, 2, -1, 4), lambda x: np.broadcast_to(x, (2, 2, 3, 4)), randn(2, 3, 1)),
        case("expand_as", lambda x: x.expand_as(X), lambda x: np.broadcast_to(x, X.shape), randn(3, 1)),
        case("expand_as-tensor", lambda x: x.expand_as(Tensor(C)), lambda x: np.broadcast_to(x, C.shape), randn(1, 4)),
        case("repeat", lambda x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)), randn(2, 3)),
        case("repeat-same-dims", lambda x: x.repeat((3, 2)), lambda x: np.tile(x, (3, 2)), randn(2, 3)),
        case("repeat-0d", lambda x: x.repeat(4), lambda x: np.tile(x, 4), randn()),
        case("repeat-zero", lambda x: x.repeat(1, 0), lambda x: np.tile(x, (1, 0)), randn(2, 3)),
        case("repeat_interleave", lambda x: x.repeat_interleave(2), lambda x: np.repeat(x, 2), randn(2, 3)),
        case("repeat_interleave-dim", lambda x: x.repeat_interleave(3, dim=-1), lambda x: np.repeat(x, 3, -1), X),
        case("repeat_interleave-counts", lambda x: x.repeat_interleave(ints(2, 0, 1), 1),
             lambda x: np.repeat(x, [2, 0, 1], 1), X),
        case("flip", lambda x: x.flip(0, -1), lambda x: x[::-1, :, ::-1], X),
        case("flip-tuple", lambda x: x.flip((1,)), lambda x: x[:, ::-1], X),
        case("roll-flat", lambda x: x.roll(5), lambda x: np.roll(x, 5), X),
        case("roll-dims", lambda x: x.roll((-1, 7), (0, -1)), lambda x: np.roll(x, (-1, 7), (0, -1)), X),
        case("roll-one-dim", lambda x: x.roll(2, 1), lambda x: np.roll(x, 2, 1), X),
        case("gather", lambda x: x.gather(1, IDX), lambda x: np.take_along_axis(x, IDX, 1), X),
        case("gather-smaller-index", lambda x: x.gather(-1, IDX[:, :, :2]),
             lambda x: np.take_along_axis(x[:, :2], IDX[:, :, :2], -1), X),
        case("gather-index-tensor", lambda x: x.gather(0, Tensor(np.array([[1, 0, 1]]), dtype=np.int64)),
             lambda x: x[[1, 0, 1], [0, 1, 2]][None], randn(2, 3)),
        case("gather-0d", lambda x: x.gather(0, ints(0).reshape(())), lambda x: x, randn()),
        case("scatter_add", lambda x, y: x.scatter_add(1, IDX, y),
             lambda x, y: scatter_add_ref(x, 1, IDX, y), X, randn(2, 2, 4)),
        case("scatter_add-larger-src", lambda x, y: x.scatter_add(-1, IDX[:, :, :2], y),
             lambda x, y: scatter_add_ref(x, 2, IDX[:, :, :2], y), X, randn(2, 3, 3)),
        case("index_select", lambda x: x.index_select(1, ints(2, 0, 2, 2)), lambda x: x[:, [2, 0, 2, 2]], X),
        case("index_select-0d-index", lambda x: x.index_select(-1, np.int64(3)), lambda x: x[..., [3]], X),
        case("masked_fill", lambda x: x.masked_fill(MASK, -1.5), lambda x: np.where(MASK, -1.5, x), X),
        case("masked_fill-broadcast", lambda x: x.masked_fill(Tensor(MASK[0, 0], dtype=bool), 2.0),
             lambda x: np.where(MASK[0, 0], 2.0, x), X),
        case("masked_fill-tensor-value", lambda x, v: x.masked_fill(MASK, v), lambda x, v: np.where(MASK, v, x),
             X, randn()),
        case("getitem-mask", lambda x: x[MASK], lambda x: x[MASK], X),
        case("getitem-mask-tensor", lambda x: x[:, Tensor(MASK[0, :, 0], dtype=bool)],
             lambda x: x[:, MASK[0, :, 0]], X),
        case("getitem-index-tensor-repeated", lambda x: x[:, Tensor(ints(2, 2, 0), dtype=np.int64)],
             lambda x: x[:, [2, 2, 0]], X),
        case("getitem-negative-index-tensor", lambda x: x[Tensor(ints(-1, 0), dtype=np.int64)],
             lambda x: x[[-1, 0]], X),
        case("getitem-two-arrays", lambda x: x[ints(1, 1, 0), :, ints(3, 3, 3)],
             lambda x: x[[1, 1, 0], :, [3, 3, 3]], X),
        case("getitem-0d-int-tensor", lambda x: x[Tensor(np.int64(1), dtype=np.int64)], lambda x: x[1], X),
        case("t", lambda x: x.t(), lambda x: x.T, randn(2, 3)),
        case("t-1d", lambda x: x.t(), lambda x: x, randn(3)),
        case("clone", lambda x: x.clone() * 2, lambda x: x * 2, X),
        case("double", lambda x: x.double() * 2, lambda x: x * 2, X),
    ]
    for mode in NP_PAD:
        for widths in [(1, 2), (2, 1, 0, 2), (1, 1, 2, 0, 1, 1)]:
            np_widths = [(0, 0)] * (3 - len(widths) // 2) + [widths[i:i + 2] for i in range(0, len(widths), 2)][::-1]
            out.append(case(f"pad-{mode}-{widths}", lambda x, w=widths, m=mode: pad(x, w, m),
                            lambda x, w=np_widths, m=mode: np.pad(x, w, NP_PAD[m]), X))
    out += [
        case("pad-value", lambda x: pad(x, (1, 1, 2, 0), value=3.5),
             lambda x: np.pad(x, [(0, 0), (2, 0), (1, 1)], constant_values=3.5), X),
        case("pad-crop", lambda x: pad(x, (1, -1, -1, 2), value=7.0),  # PyTorch crops for negative amounts
             lambda x: np.pad(x[:, 1:, :-1], [(0, 0), (0, 2), (1, 0)], constant_values=7.0), X),
        case("pad-reflect-crop", lambda x: pad(x, (-1, 3), "reflect"), lambda x: np.pad(x, [(0, 0), (0, 0), (0, 3)],
                                                                                          "reflect")[..., 1:], X),
        case("pad-replicate-wide", lambda x: pad(x, (5, 6), "replicate"),
             lambda x: np.pad(x, [(0, 0), (0, 0), (5, 6)], "edge"), X),
    ]
    return out


CASES = _cases()


def leaves(arrays, dtype=np.float64):
    return [Tensor(a, dtype=dtype, requires_grad=a.dtype.kind == "f") for a in arrays]


@pytest.mark.parametrize("fn, ref, arrays", [c for c in CASES if "empty" not in c.id and "zero" not in c.id])
def test_gradcheck(fn, ref, arrays):
    assert gradcheck(fn, *leaves(arrays))


@pytest.mark.parametrize("fn, ref, arrays", [c for c in CASES if "empty" not in c.id and "zero" not in c.id])
def test_gradgradcheck(fn, ref, arrays):
    assert gradgradcheck(fn, *leaves(arrays))


@pytest.mark.parametrize("fn, ref, arrays", CASES)
def test_forward_matches_numpy(fn, ref, arrays):
    out = fn(*[Tensor(a) for a in arrays])
    expected = np.asarray(ref(*arrays))
    assert out.dtype == np.float64 and out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-14, atol=0)  # scatter_add sums in another order


@pytest.mark.parametrize("fn, ref, arrays", [c for c in CASES if c.id != "double"])
def test_float32_in_float32_out(fn, ref, arrays):
    xs = leaves(arrays, np.float32)
    out = fn(*xs)
    assert out.dtype == np.float32
    (out * 2).sum().backward()
    for x in xs:
        assert x.grad.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref(*[a.astype(np.float32) for a in arrays]), rtol=1e-6)


# ---- cat and stack -----------------------------------------------------------------------------------

def test_cat_and_stack_take_arrays_as_constants_of_the_tensors_dtype():
    x = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    out = F.cat([np.zeros((1, 2)), x, [[5.0, 6.0]]])
    assert out.dtype == np.float32 and out.shape == (4, 2)
    np.testing.assert_array_equal(out.data[-1], [5, 6])
    (out * np.arange(8.0).reshape(4, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad, [[2, 3], [4, 5]])
    s = F.stack([x, np.zeros((2, 2))], dim=-1)
    assert s.shape == (2, 2, 2) and s.dtype == np.float32
    assert F.cat([np.ones(2), np.ones(3)]).shape == (5,)  # no tensor at all: float32 tensors, as Tensor(...)


def test_cat_gives_each_input_its_own_slice_of_the_gradient():
    a, b = Tensor(np.zeros((2, 1)), requires_grad=True), Tensor(np.zeros((2, 2)), requires_grad=True)
    (F.cat([a, b], -1) * np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])).sum().backward()
    np.testing.assert_array_equal(a.grad, [[1], [4]])
    np.testing.assert_array_equal(b.grad, [[2, 3], [5, 6]])


# ---- split, chunk, unbind ----------------------------------------------------------------------------

@pytest.mark.parametrize("make, sizes", [
    # PyTorch 2.13: the sizes of the pieces
    (lambda: Tensor(np.ones(5)).split(2), [2, 2, 1]),
    (lambda: Tensor(np.ones(5)).split(7), [5]),
    (lambda: Tensor(np.ones(5)).split([0, 5]), [0, 5]),
    (lambda: Tensor(np.ones(0)).split(2), [0]),
    (lambda: Tensor(np.ones(5)).chunk(3), [2, 2, 1]),
    (lambda: Tensor(np.ones(6)).chunk(4), [2, 2, 2]),  # fewer pieces than asked, as PyTorch
    (lambda: Tensor(np.ones(5)).chunk(6), [1, 1, 1, 1, 1]),
    (lambda: Tensor(np.ones(0)).chunk(2), [0, 0]),
    (lambda: Tensor(np.ones((2, 4))).unbind(1), [2, 2, 2, 2]),
])
def test_split_chunk_unbind_sizes_as_pytorch(make, sizes):
    pieces = make()
    assert isinstance(pieces, tuple)
    assert [p.shape[-1] if p.ndim else 1 for p in pieces] == sizes


def test_pieces_send_their_gradients_back_to_the_right_places():
    x = Tensor(np.zeros((2, 5)), requires_grad=True)
    a, b, c = x.split(2, 1)
    (a * 1 + b * 2).sum().backward()
    c.sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 1, 2, 2, 1]] * 2)
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    rows = x.unbind()
    (rows[0] * 3 - rows[1]).sum().backward()
    np.testing.assert_array_equal(x.grad, [[3, 3, 3], [-1, -1, -1]])


# ---- squeeze, repeat, flip, roll -------------------------------------------------------------------

def test_squeeze_shapes_as_pytorch():
    x = Tensor(np.ones((1, 3, 1, 2)))
    # PyTorch 2.13: squeeze((0, 2)) -> (3, 2); squeeze(1) -> unchanged; squeeze((0, 1)) -> (3, 1, 2)
    assert x.squeeze().shape == (3, 2) and x.squeeze((0, 2)).shape == (3, 2)
    assert x.squeeze(1).shape == (1, 3, 1, 2) and x.squeeze((0, 1)).shape == (3, 1, 2)
    assert x.squeeze(-2).shape == (1, 3, 2) and x.squeeze([0]).shape == (3, 1, 2)


def test_repeat_is_tile_and_repeat_interleave_is_numpys_repeat():
    # PyTorch 2.13: [1, 2].repeat(2) = [1, 2, 1, 2]; repeat_interleave(2) = [1, 1, 2, 2]
    x = Tensor(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x.repeat(2).data, [1, 2, 1, 2])
    np.testing.assert_array_equal(x.repeat_interleave(2).data, [1, 1, 2, 2])
    assert Tensor(np.ones((2, 3))).repeat(2, 1, 2).shape == (2, 2, 6)  # PyTorch: [2, 2, 6]
    # PyTorch 2.13: [[1, 2], [3, 4]].repeat_interleave(tensor([1, 2]), dim=0) = [[1, 2], [3, 4], [3, 4]]
    m = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    out = m.repeat_interleave(Tensor(ints(1, 2), dtype=np.int64), dim=0)
    np.testing.assert_array_equal(out.data, [[1, 2], [3, 4], [3, 4]])
    out.sum().backward()
    np.testing.assert_array_equal(m.grad, [[1, 1], [2, 2]])


def test_repeat_sums_the_gradient_of_the_copies():
    x = Tensor(np.zeros(2), requires_grad=True)
    (x.repeat(3, 2) * np.arange(12.0).reshape(3, 4)).sum().backward()
    np.testing.assert_array_equal(x.grad, [0 + 2 + 4 + 6 + 8 + 10, 1 + 3 + 5 + 7 + 9 + 11])


def test_flip_and_roll_values_as_pytorch():
    x = Tensor(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    # PyTorch 2.13
    np.testing.assert_array_equal(x.flip(0, 1).data, [[6, 5, 4], [3, 2, 1]])
    np.testing.assert_array_equal(x.roll(1).data, [[6, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(x.roll((1, -1), (0, 1)).data, [[5, 6, 4], [2, 3, 1]])
    np.testing.assert_array_equal(Tensor(np.arange(1.0, 6.0)).roll(2).data, [4, 5, 1, 2, 3])


# ---- pad ---------------------------------------------------------------------------------------------

def test_pad_values_as_pytorch():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    # PyTorch 2.13: F.pad(x, (1, -1, -1, 1), value=7.) = [[7, 3, 4], [7, 7, 7]]
    np.testing.assert_array_equal(pad(x, (1, -1, -1, 1), value=7.0).data, [[7, 3, 4], [7, 7, 7]])
    # PyTorch 2.13: reflect (2, 2) row 0 = [2, 1, 0, 1, 2, 1, 0]; (-1, 1) = [[1, 2, 1], [4, 5, 4]]
    np.testing.assert_array_equal(pad(x, (2, 2), "reflect").data[0], [2, 1, 0, 1, 2, 1, 0])
    np.testing.assert_array_equal(pad(x, (-1, 1), "reflect").data, [[1, 2, 1], [4, 5, 4]])
    # PyTorch 2.13: circular (1, 1) row 0 = [2, 0, 1, 2, 0]; replicate (4, 4) row 1 starts with 3 five times
    np.testing.assert_array_equal(pad(x, (1, 1), "circular").data[0], [2, 0, 1, 2, 0])
    np.testing.assert_array_equal(pad(x, (4, 4), "replicate").data[1, :6], [3, 3, 3, 3, 3, 4])
    assert pad(Tensor(np.ones((0, 3))), (1, 1)).shape == (0, 5)  # PyTorch: [0, 5]


def test_pad_keeps_nan_and_inf_fill_values_and_exact_inside_values():
    x = Tensor(np.array([-0.0, 1.0]), requires_grad=True)
    out = pad(x, (1, 1), value=float("nan"))
    assert np.isnan(out.data[[0, 3]]).all() and np.signbit(out.data[1]) and out.data[2] == 1
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 1])
    np.testing.assert_array_equal(pad(x, (0, 1), value=-np.inf).data, [0, 1, -np.inf])


def test_pad_reflect_gradient_accumulates_on_mirrored_entries():
    x = Tensor(np.zeros(3), requires_grad=True)
    pad(x, (2, 2), "reflect").sum().backward()  # [x2 x1 | x0 x1 x2 | x1 x0]
    np.testing.assert_array_equal(x.grad, [2, 3, 2])


# ---- gather, scatter_add, index_select, masked_fill ---------------------------------------------------

def test_gather_values_and_repeated_indices_accumulate():
    # PyTorch 2.13: arange(6).reshape(2, 3).gather(1, [[0, 0], [1, 0]]) = [[0, 0], [4, 3]]
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = x.gather(1, Tensor(ints([0, 0], [1, 0]), dtype=np.int64))
    np.testing.assert_array_equal(out.data, [[0, 0], [4, 3]])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [[2, 0, 0], [1, 1, 0]])


def test_scatter_add_values_as_pytorch():
    # PyTorch 2.13: zeros(2, 3).scatter_add(1, [[0, 0], [2, 2]], ones(2, 2)) = [[2, 0, 0], [0, 0, 2]]
    out = Tensor(np.zeros((2, 3))).scatter_add(1, ints([0, 0], [2, 2]), np.ones((2, 2)))
    np.testing.assert_array_equal(out.data, [[2, 0, 0], [0, 0, 2]])


def test_masked_fill_gradient_reaches_x_and_a_0d_value():
    # PyTorch 2.13: x (2, 3), mask [True, False, True], value a 0-d tensor, weights arange(6):
    # value.grad = 10, x.grad = [[0, 1, 0], [0, 4, 0]]
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    v = Tensor(np.array(2.0), requires_grad=True)
    (x.masked_fill(np.array([True, False, True]), v) * np.arange(6.0).reshape(2, 3)).sum().backward()
    assert v.grad == 10
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [0, 4, 0]])


def test_masked_fill_keeps_the_dtype_and_masks_attention_scores():
    scores = Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    causal = np.triu(np.ones((2, 3), bool), 1)
    out = scores.masked_fill(causal, Tensor(np.array(-np.inf))).softmax(-1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, [[1, 0, 0], [0.5, 0.5, 0]])
    out[:, 0].sum().backward()
    assert np.isfinite(scores.grad).all() and scores.grad.dtype == np.float32


# ---- indexing ----------------------------------------------------------------------------------------

def test_integer_and_bool_tensors_and_arrays_index_alike():
    data = np.arange(12.0).reshape(3, 4)
    x = Tensor(data)
    for idx in (ints(2, 0), [2, 0], Tensor(ints(2, 0), dtype=np.int64)):
        np.testing.assert_array_equal(x[idx].data, data[[2, 0]])
        np.testing.assert_array_equal(x[:, idx].data, data[:, [2, 0]])
    for mask in (data > 5, Tensor(data > 5, dtype=bool), x > 5):
        np.testing.assert_array_equal(x[mask].data, data[data > 5])


def test_repeated_indices_and_masks_accumulate_in_the_gradient():
    # PyTorch 2.13: x (2, 3); x[tensor([0, 0, 1])].sum() gives gradient [[2, 2, 2], [1, 1, 1]]
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    x[Tensor(ints(0, 0, 1), dtype=np.int64)].sum().backward()
    np.testing.assert_array_equal(x.grad, [[2, 2, 2], [1, 1, 1]])
    x.grad = None
    x[x > 2].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0, 0], [1, 1, 1]])
    # PyTorch 2.13: x[(0, 0), :] (a tuple inside the index is a list of indices) gives [[2, 2, 2], [0, 0, 0]]
    x.grad = None
    x[(0, 0), :].sum().backward()
    np.testing.assert_array_equal(x.grad, [[2, 2, 2], [0, 0, 0]])


def test_a_float_index_is_a_clear_error():
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"getitem: a tensor used as an index must hold integers or bools, got float"):
        x[Tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match=r"getitem: .*dtype=bool"):  # Tensor(bool array) is float32 by default
        x[Tensor(np.array([True, False]))]
    with pytest.raises(IndexError, match=r"getitem: arrays used as indices must be of integer .*\(2, 3\)"):
        x[np.array([0.0])]


def test_setitem_with_masks_and_index_tensors_matches_pytorch():
    # PyTorch 2.13, each with upstream weights arange(6).reshape(2, 3):
    # y[mask] = [7, 8, 9] (mask = x > 2): v.grad = [3, 4, 5], x.grad = [[0, 1, 2], [0, 0, 0]]
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    v = Tensor(np.array([7.0, 8.0, 9.0]), requires_grad=True)
    y = x * 1
    y[Tensor(x.data > 2, dtype=bool)] = v
    (y * np.arange(6.0).reshape(2, 3)).sum().backward()
    np.testing.assert_array_equal(y.data, [[0, 1, 2], [7, 8, 9]])
    np.testing.assert_array_equal(v.grad, [3, 4, 5])
    np.testing.assert_array_equal(x.grad, [[0, 1, 2], [0, 0, 0]])
    # y[:, tensor([0, 2])] = [1, 2] (broadcast over rows): v.grad = [3, 7], x.grad = [[0, 1, 0], [0, 4, 0]]
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    v = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 1
    y[:, Tensor(ints(0, 2), dtype=np.int64)] = v
    (y * np.arange(6.0).reshape(2, 3)).sum().backward()
    np.testing.assert_array_equal(y.data, [[1, 0, 2], [1, 0, 2]])
    np.testing.assert_array_equal(v.grad, [3, 7])
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [0, 4, 0]])


@pytest.mark.parametrize("index, v_shape", [(0, (1, 3)), ((slice(None), 1), (1, 1))])
def test_setitem_value_with_extra_leading_ones(index, v_shape):
    # PyTorch 2.13: y[0] = v with v of shape (1, 3) works, and v.grad has v's shape
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    v = Tensor(np.ones(v_shape), requires_grad=True)
    y = x * 1
    y[index] = v
    y.sum().backward()
    assert v.grad.shape == v_shape


# ---- the small conversions ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_cast_is_checked_to_second_order(shape):
    # through long double and back, so that the finite differences keep float64's precision
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    def through_long_double(x):
        return (x.to(np.longdouble) ** 3).to(np.float64)
    assert through_long_double(x)._ctx.__class__.__name__ == "Cast"
    assert gradcheck(through_long_double, x) and gradgradcheck(through_long_double, x)
    x32 = Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    x32.double().sum().backward()  # the gradient comes back in the input's dtype
    assert x32.grad.dtype == np.float32 and np.all(x32.grad == 1)


def test_conversions_and_sizes():
    x = Tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    assert x.float() is x  # as PyTorch: already float32
    d = x.double()
    assert d.dtype == np.float64 and d.requires_grad
    d.sum().backward()
    assert x.grad.dtype == np.float32
    c = x.clone()
    assert c is not x and c.data is not x.data and c.requires_grad
    np.testing.assert_array_equal(c.data, x.data)
    assert x.numel() == 6 and x.dim() == 2 and x.size() == (2, 3) and x.size(-1) == 3 and x.size(0) == 2
    assert x.tolist() == [[0, 1, 2], [3, 4, 5]] and x[1, 2].item() == 5.0 and type(x[1, 2].item()) is float
    assert Tensor(np.array([7.0])).item() == 7.0
    assert x.long().dtype == np.int64 and not x.long().requires_grad
    assert Tensor(np.arange(3), dtype=np.int64).float().dtype == np.float32
    # t(): like PyTorch, a new tensor even where nothing moves (0-d and 1-d)
    for shape in [(), (3,), (2, 3)]:
        a = Tensor(np.ones(shape))
        assert a.t() is not a and a.t().shape == shape[::-1]
    # PyTorch 2.13: tensor(3.).transpose(0, -1) is tensor(3.) (dimension 0 of a 0-d tensor is itself)
    assert Tensor(np.array(3.0)).transpose(0, -1).tolist() == 3.0


def test_matmul_with_a_0d_operand_is_a_clear_error():
    # PyTorch: "both arguments to matmul need to be at least 1D, but they are 1D and 0D"
    for fn in (lambda: Tensor(np.ones(3)) @ Tensor(np.array(2.0)), lambda: Tensor(np.array(2.0)) @ Tensor(np.ones(3)),
               lambda: 2.0 @ Tensor(np.ones(3))):
        with pytest.raises(ValueError, match=r"matmul: both operands need at least 1 dimension.*\(\)"):
            fn()


# ---- errors ------------------------------------------------------------------------------------------

def z(*shape):
    return Tensor(np.zeros(shape), requires_grad=True)


def s(shape):
    return re.escape(str(tuple(shape)))


ERRORS = [
    ("cat 0-d", lambda: F.cat([z(), z()]), ValueError, r"cat: a 0-d tensor cannot be joined .*use stack"),
    ("cat shapes", lambda: F.cat([z(2, 3), z(2, 2)]), ValueError, rf"cat: shapes \[{s((2, 3))}, {s((2, 2))}\] differ"),
    ("cat ndim", lambda: F.cat([z(2, 3), z(3)]), ValueError, rf"cat: shapes .*{s((3,))}.* differ"),
    ("cat dim", lambda: F.cat([z(2, 3), z(2, 3)], -3), ValueError, rf"cat: dimension -3 .*{s((2, 3))}"),
    ("cat nothing", lambda: F.cat([]), ValueError, r"cat: expected a non-empty sequence"),
    ("cat not numbers", lambda: F.cat([z(2), "ab"]), TypeError, r"cannot combine a Tensor with str"),
    ("stack shapes", lambda: F.stack([z(2, 3), z(3)]), ValueError, rf"stack: .*same shape.*{s((2, 3))}, {s((3,))}"),
    ("stack dim", lambda: F.stack([z(2, 3), z(2, 3)], 3), ValueError, rf"stack: dimension 3 .*{s((2, 3))}"),
    ("split size 0", lambda: z(2, 3).split(0, 1), ValueError, rf"split: split_size must be a positive .*{s((2, 3))}"),
    ("split sizes", lambda: z(2, 3).split([1, 1], 1), ValueError,
     rf"split: sizes \[1, 1\] .*adding up to 3.*{s((2, 3))}"),
    ("split 0-d", lambda: z().split(1), IndexError, r"split: a 0-d tensor has no dimension 0"),
    ("chunk 0", lambda: z(4).chunk(0), ValueError, r"chunk: chunks must be a positive integer, got 0"),
    ("unbind dim", lambda: z(2, 3).unbind(2), ValueError, rf"unbind: dimension 2 .*{s((2, 3))}"),
    ("unsqueeze dim", lambda: z(2, 3).unsqueeze(3), ValueError, rf"unsqueeze: dimension 3 .*{s((2, 3))}"),
    ("squeeze dim", lambda: z(2, 3).squeeze(2), ValueError, rf"squeeze: dimension 2 .*{s((2, 3))}"),
    ("squeeze twice", lambda: z(1, 3).squeeze((0, -2)), ValueError,
     r"squeeze: dimension \(0, -2\) names an axis twice"),
    ("view", lambda: z(2, 3).view(4, -1), ValueError, rf"reshape: cannot reshape .*{s((2, 3))}.*{s((4, -1))}"),
    ("expand", lambda: z(2, 3).expand(3, 3), ValueError, rf"expand: .*{s((2, 3))}.*{s((3, 3))}"),
    ("expand -1 leading", lambda: z(2, 3).expand(-1, 2, 3), ValueError, r"expand: .*-1 .*new leading dimension"),
    ("expand_as", lambda: z(2, 3).expand_as(np.ones((3, 2))), ValueError, rf"expand: .*{s((2, 3))}.*{s((3, 2))}"),
    ("repeat too few", lambda: z(2, 3).repeat(2), ValueError,
     rf"repeat: expected at least 2 .*{s((2, 3))}, got \(2,\)"),
    ("repeat negative", lambda: z(2, 3).repeat(1, -1), ValueError, r"repeat: .*got \(1, -1\)"),
    ("repeat_interleave counts", lambda: z(2, 3).repeat_interleave(ints(1, 2), 1), ValueError,
     rf"repeat_interleave: .*3 along dimension 1 of shape {s((2, 3))}"),
    ("repeat_interleave float", lambda: z(2).repeat_interleave(1.5), ValueError, r"repeat_interleave: .*got 1.5"),
    ("flip without dims", lambda: z(2, 3).flip(), TypeError, r"flip: dims is required"),
    ("flip twice", lambda: z(2, 3).flip(0, -2), ValueError, r"flip: dimension \(0, -2\) names an axis twice"),
    ("flip dim", lambda: z(2, 3).flip(2), ValueError, rf"flip: dimension 2 .*{s((2, 3))}"),
    ("roll shifts and dims", lambda: z(2, 3).roll((1, 2), 0), ValueError, r"roll: shifts \(1, 2\) and dims \(0,\)"),
    ("roll without dims", lambda: z(2, 3).roll((1, 2)), ValueError, r"roll: without dims, shifts must be one integer"),
    ("pad odd", lambda: pad(z(2, 3), (1,)), ValueError, rf"pad: expected an even number .*{s((2, 3))}, got \(1,\)"),
    ("pad too long", lambda: pad(z(2, 3), (1,) * 6), ValueError, rf"pad: .*at most 2 per dimension .*{s((2, 3))}"),
    ("pad float", lambda: pad(z(2, 3), (1.5, 1)), ValueError, r"pad: expected .*integers.*got \(1.5, 1\)"),
    ("pad mode", lambda: pad(z(2, 3), (1, 1), "bogus"), ValueError, r"pad: mode must be one of .*'bogus'"),
    ("pad value", lambda: pad(z(2, 3), (1, 1), "reflect", 0.0), ValueError, r"pad: mode 'reflect' takes no value"),
    ("pad reflect", lambda: pad(z(2, 3), (3, 0), "reflect"), ValueError,
     rf"pad: padding \(3, 0\) is too large for mode 'reflect' .*size 3 .*{s((2, 3))}"),
    ("pad circular", lambda: pad(z(2, 3), (0, 4), "circular"), ValueError, r"pad: .*too large for mode 'circular'"),
    ("pad replicate empty", lambda: pad(z(2, 0), (1, 1), "replicate"), ValueError, r"pad: .*'replicate'.*size 0"),
    ("pad crop", lambda: pad(z(2, 3), (-2, -2)), ValueError,
     rf"pad: cropping \(-2, -2\) leaves a negative size .*{s((2, 3))}"),
    ("gather float index", lambda: z(2, 3).gather(1, np.array([[0.0]])), TypeError,
     rf"gather: the index must hold integers, got float64 .*{s((2, 3))}"),
    ("gather index ndim", lambda: z(2, 3).gather(1, ints(0)), ValueError,
     rf"gather: index of shape {s((1,))} must have the 2 dimensions of the input {s((2, 3))}"),
    ("gather index too large", lambda: z(2, 3).gather(1, np.zeros((3, 1), np.int64)), ValueError,
     rf"gather: index of shape {s((3, 1))} .*no larger than it outside dimension 1"),
    ("gather out of range", lambda: z(2, 3).gather(1, ints([0, 3])), IndexError,
     rf"gather: index 3 is out of range for dimension 1 of size 3 .*{s((2, 3))}"),
    ("gather negative", lambda: z(2, 3).gather(1, ints([-1])), IndexError, r"gather: index -1 is out of range"),
    ("gather dim", lambda: z(2, 3).gather(2, ints([0])), ValueError, rf"gather: dimension 2 .*{s((2, 3))}"),
    ("scatter_add dtype", lambda: z(2, 3).scatter_add(1, ints([0]), Tensor(np.ones((1, 1)), dtype=np.float32)),
     TypeError, r"scatter_add: src is float32 but the tensor is float64"),
    ("scatter_add src", lambda: z(2, 3).scatter_add(1, ints([0, 1]), np.ones((1, 1))), ValueError,
     rf"scatter_add: index of shape {s((1, 2))} .*no larger than src {s((1, 1))}"),
    ("index_select 2-d", lambda: z(2, 3).index_select(1, ints([0])), ValueError,
     rf"index_select: the index must be a vector, got shape {s((1, 1))}"),
    ("index_select range", lambda: z(2, 3).index_select(1, ints(3)), IndexError,
     rf"index_select: index 3 is out of range for dimension 1 of size 3 .*{s((2, 3))}"),
    ("index_select float", lambda: z(2, 3).index_select(0, Tensor([0.0])), TypeError,
     r"index_select: the index must hold integers, got float32"),
    ("masked_fill int mask", lambda: z(2, 3).masked_fill(ints(1, 0, 1), 1.0), TypeError,
     rf"masked_fill: the mask must be bool, got int64 of shape {s((3,))}"),
    ("masked_fill shape", lambda: z(2, 3).masked_fill(np.ones((3, 2, 3), bool), 1.0), ValueError,
     rf"masked_fill: a mask of shape {s((3, 2, 3))} does not broadcast to .*{s((2, 3))}"),
    ("masked_fill value", lambda: z(2, 3).masked_fill(np.ones(3, bool), Tensor(np.ones(2))), ValueError,
     rf"masked_fill: value must be a number or a 0-d tensor, got shape {s((2,))}"),
    ("getitem mask shape", lambda: z(2, 3)[np.array([True, False, True])], IndexError, rf"getitem: .*{s((2, 3))}"),
    ("size of 0-d", lambda: z().size(0), IndexError, r"size: a 0-d tensor has no dimension 0"),
    ("size dim", lambda: z(2, 3).size(2), ValueError, rf"size: dimension 2 .*{s((2, 3))}"),
    ("t of 3-d", lambda: z(1, 2, 3).t(), ValueError, rf"t: expects a tensor with at most 2 dimensions.*{s((1, 2, 3))}"),
    ("item", lambda: z(2, 3).item(), ValueError, rf"item: only a tensor with one element .*{s((2, 3))}"),
]


@pytest.mark.parametrize("fn, exc, message", [pytest.param(*e[1:], id=e[0]) for e in ERRORS])
def test_error_message(fn, exc, message):
    with pytest.raises(exc, match=message):
        with no_grad():
            fn()
