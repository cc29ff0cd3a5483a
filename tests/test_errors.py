"""Bad calls fail loudly, with the right exception type and a message naming the op and the
shapes (or values) involved, so the user can see what went wrong without a debugger."""
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, functional as F, no_grad


def z(*shape):
    return Tensor(np.zeros(shape), requires_grad=True)


def s(shape):
    """A shape as it appears in a message, escaped for the regex: (2, 3) -> \\(2,\\ 3\\)."""
    return re.escape(str(tuple(shape)))


CASES = [
    # matmul
    ("matmul inner dims", lambda: z(2, 3) @ z(4, 5), ValueError, rf"matmul.*{s((2, 3))}.*{s((4, 5))}.*3 != 4"),
    ("linear features", lambda: F.linear(z(2, 3), z(4, 5)), ValueError, rf"linear.*{s((2, 3))}.*{s((4, 5))}"),
    ("linear bias", lambda: F.linear(z(2, 3), z(4, 3), z(3)), ValueError, rf"linear: bias.*\(4,\).*{s((3,))}"),
    ("matmul 1-D inner dims", lambda: z(3) @ z(4), ValueError, rf"matmul.*{s((3,))}.*{s((4,))}"),
    ("matmul batch dims", lambda: z(2, 3, 4) @ z(3, 4, 5), ValueError,
     rf"matmul.*batch.*{s((2, 3, 4))}.*{s((3, 4, 5))}"),
    ("matmul 0-d", lambda: z() @ z(3), ValueError, rf"matmul.*{s(())}.*{s((3,))}"),
    ("matmul with numpy", lambda: np.zeros((2, 5)) @ z(4, 3), ValueError, rf"matmul.*{s((2, 5))}.*{s((4, 3))}"),
    # conv2d
    ("conv2d channel mismatch", lambda: z(1, 3, 5, 5).conv2d(z(2, 2, 3, 3)), ValueError,
     rf"conv2d.*{s((1, 3, 5, 5))} has 3 channels.*{s((2, 2, 3, 3))} expects 2"),
    ("conv2d 3-D input", lambda: z(3, 5, 5).conv2d(z(2, 3, 3, 3)), ValueError,
     rf"conv2d.*4-D.*{s((3, 5, 5))}.*{s((2, 3, 3, 3))}"),
    ("conv2d 3-D weight", lambda: z(1, 3, 5, 5).conv2d(z(3, 3, 3)), ValueError, rf"conv2d.*4-D.*{s((3, 3, 3))}"),
    ("conv2d kernel larger than input", lambda: z(1, 1, 3, 3).conv2d(z(1, 1, 5, 5)), ValueError,
     rf"conv2d.*kernel {s((5, 5))}.*larger.*{s((3, 3))}"),
    ("conv2d kernel larger than padded input", lambda: z(1, 1, 3, 4).conv2d(z(1, 1, 6, 2), padding=1), ValueError,
     rf"conv2d.*kernel {s((6, 2))}.*larger.*padded.*{s((5, 6))}"),
    ("conv2d bias shape", lambda: z(1, 1, 5, 5).conv2d(z(2, 1, 3, 3), z(3)), ValueError,
     rf"conv2d.*bias.*{s((2,))}.*{s((3,))}"),
    ("conv2d 2-D bias", lambda: z(1, 1, 5, 5).conv2d(z(2, 1, 3, 3), z(2, 1)), ValueError,
     rf"conv2d.*bias.*{s((2, 1))}"),
    ("conv2d stride 0", lambda: z(1, 1, 5, 5).conv2d(z(1, 1, 3, 3), stride=0), ValueError, r"conv2d.*stride=0"),
    ("conv2d negative padding", lambda: z(1, 1, 5, 5).conv2d(z(1, 1, 3, 3), padding=-1), ValueError,
     r"conv2d.*padding=-1"),
    # max_pool2d
    ("max_pool2d 3-D input", lambda: z(1, 4, 4).max_pool2d(), ValueError, rf"max_pool2d.*4-D.*{s((1, 4, 4))}"),
    ("max_pool2d kernel too large", lambda: z(1, 1, 3, 5).max_pool2d(4), ValueError,
     rf"max_pool2d.*kernel 4x4.*larger.*{s((3, 5))}"),
    ("max_pool2d kernel 0", lambda: z(1, 1, 4, 4).max_pool2d(0), ValueError, r"max_pool2d.*kernel_size"),
    ("max_pool2d stride 0", lambda: z(1, 1, 4, 4).max_pool2d(2, 0), ValueError, r"max_pool2d.*stride"),
    # shapes and indexing
    ("reshape", lambda: z(2, 3).reshape(4, 2), ValueError, rf"reshape.*{s((2, 3))}.*6 elements.*{s((4, 2))}"),
    ("permute", lambda: z(2, 3).permute(0, 0), ValueError, rf"permute.*{s((0, 0))}.*{s((2, 3))}"),
    ("permute axis out of range", lambda: z(2, 3, 4).permute(0, 1, 5), ValueError,
     rf"permute.*{s((0, 1, 5))}.*{s((2, 3, 4))}"),
    ("index out of range", lambda: z(3)[5], IndexError, rf"getitem.*5.*{s((3,))}"),
    ("negative index out of range", lambda: z(2, 3)[:, -4], IndexError, rf"getitem.*-4.*{s((2, 3))}"),
    ("index array out of range", lambda: z(4, 3)[np.arange(4), np.array([0, 1, 3, 2])], IndexError,
     rf"getitem.*3.*{s((4, 3))}"),
    ("too many indices", lambda: z(3)[0, 0], IndexError, rf"getitem.*{s((3,))}"),
    # cross_entropy
    ("cross_entropy label shape", lambda: z(3, 4).cross_entropy(np.array([0, 1])), ValueError,
     rf"cross_entropy.*{s((3,))}.*{s((3, 4))}.*{s((2,))}"),
    ("cross_entropy 2-D labels", lambda: z(3, 4).cross_entropy(np.zeros((3, 1), int)), ValueError,
     rf"cross_entropy.*{s((3, 1))}"),
    ("cross_entropy float labels", lambda: z(3, 4).cross_entropy(np.array([0.0, 1.0, 2.0])), ValueError,
     r"cross_entropy.*integers.*float64"),
    ("cross_entropy label too large", lambda: z(3, 4).cross_entropy(np.array([0, 4, 1])), ValueError,
     r"cross_entropy.*\[0, 4\).*4"),
    ("cross_entropy negative label", lambda: z(3, 4).cross_entropy(np.array([0, -1, 1])), ValueError,
     r"cross_entropy.*\[0, 4\).*-1"),
    ("cross_entropy 1-D logits", lambda: z(4).cross_entropy(np.array([0])), ValueError,
     rf"cross_entropy.*\(N, classes\).*{s((4,))}"),
    # misc
    ("int tensor requires grad", lambda: Tensor(np.arange(3), dtype=np.int64, requires_grad=True), TypeError,
     r"floating.*int64"),
    ("dropout p=1", lambda: F.dropout(z(3), p=1.0), ValueError, r"dropout.*p.*1\.0"),
    ("not numbers", lambda: Tensor("abc"), TypeError, r"Tensor: cannot make a float32 tensor from str"),
    # mixed dtypes: a float64 batch must not silently turn a float32 model's step into float64
    ("conv2d dtypes", lambda: z(1, 1, 5, 5).conv2d(Tensor(np.zeros((2, 1, 3, 3)), dtype=np.float32)), TypeError,
     rf"conv2d.*float64 {s((1, 1, 5, 5))} and float32 {s((2, 1, 3, 3))}"),
    ("linear dtypes", lambda: F.linear(z(2, 3), Tensor(np.zeros((4, 3)), dtype=np.float32)), TypeError,
     rf"linear.*float64 {s((2, 3))} and float32 {s((4, 3))}"),
    ("matmul dtypes", lambda: z(2, 3) @ Tensor(np.zeros((3, 4)), dtype=np.float32), TypeError,
     r"matmul.*float64.*float32"),
    # axes
    ("sum axis", lambda: z(2, 3).sum(axis=2), ValueError, rf"sum: .*dimension 2.*{s((2, 3))}"),
    ("softmax axis", lambda: z(2, 3).softmax(axis=-3), ValueError, rf"softmax: .*-3.*{s((2, 3))}"),
    ("transpose dim", lambda: z(2, 3).transpose(0, 5), ValueError, rf"transpose: dimension 5.*{s((2, 3))}"),
    ("flatten dim", lambda: z(2, 3).flatten(5), ValueError, rf"flatten: dimension 5.*{s((2, 3))}"),
    ("flatten order", lambda: z(2, 3, 4).flatten(2, 1), ValueError, r"flatten: start_dim 2 comes after end_dim 1"),
    ("reshape non-int", lambda: z(2, 3).reshape(2.0, 3), ValueError, rf"reshape.*{s((2, 3))}"),
    # nll_loss checks its labels like cross_entropy
    ("nll_loss label shape", lambda: F.nll_loss(z(3, 4), np.zeros((3, 1), int)), ValueError,
     rf"nll_loss.*{s((3,))}.*{s((3, 1))}"),
    ("nll_loss short labels", lambda: F.nll_loss(z(3, 4), np.array([0, 1])), ValueError, rf"nll_loss.*{s((2,))}"),
    ("nll_loss label range", lambda: F.nll_loss(z(3, 4), np.array([0, 1, 4])), ValueError, r"nll_loss.*\[0, 4\)"),
]


@pytest.mark.parametrize("fn, exc, message", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_error_message(fn, exc, message):
    with pytest.raises(exc, match=message):
        fn()


# broadcasting failures: every binary op, the tensor on either side, a Tensor or a numpy array
@pytest.mark.parametrize("name, op", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a ** b),
])
@pytest.mark.parametrize("other", [lambda: z(4), lambda: np.zeros(4)], ids=["tensor", "numpy"])
def test_broadcast_failure_names_op_and_shapes(name, op, other):
    with pytest.raises(ValueError, match=rf"{name}.*{s((2, 3))}.*{s((4,))}.*broadcast"):
        op(z(2, 3), other())
    with pytest.raises(ValueError, match=rf"{name}.*{s((4,))}.*{s((2, 3))}.*broadcast"):
        op(other(), z(2, 3))


# ---- backward misuse ---------------------------------------------------------------------------

def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="backward.*does not require grad"):
        Tensor(np.ones(1)).backward()
    x = Tensor(np.ones(1), requires_grad=True)
    with no_grad():
        y = x * 2
    with pytest.raises(RuntimeError, match="backward.*does not require grad.*no_grad"):
        y.backward()


def test_backward_with_wrong_shaped_grad():
    y = z(2, 3) * 2
    with pytest.raises(ValueError, match=rf"backward.*{s((3,))}.*{s((2, 3))}"):
        y.backward(np.ones(3))  # even though it would broadcast


def test_backward_on_non_scalar_without_grad():
    with pytest.raises(RuntimeError, match=rf"backward.*scalar.*{s((2, 3))}.*grad="):
        (z(2, 3) * 2).backward()


def test_second_backward_through_released_graph():
    loss = (z(3).exp() * 2).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"backward.*second time.*retain_graph=True"):
        loss.backward()


def test_failed_op_records_nothing_and_leaves_inputs_intact():
    x = z(2, 3)
    with pytest.raises(ValueError):
        x @ z(4, 5)
    assert x.grad is None and x._ctx is None
    (x * 1).sum().backward()  # the tensor is still usable
    np.testing.assert_array_equal(x.grad, 1)
