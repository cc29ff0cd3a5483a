"""detect_anomaly(): the first NaN or inf names the op, the line of the test that called it,
the shapes, and the counts of bad values; in the forward, the backward and under create_graph."""
import inspect

import numpy as np
import pytest

from tinygrad_cnn import AnomalyError, Tensor, autograd, detect_anomaly, nn, tensor as engine

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's own divide/overflow warnings


def next_line():
    """The line number after the caller's: where the call under test is written."""
    return inspect.currentframe().f_back.f_lineno + 1


def test_forward_names_the_op_the_line_and_the_bad_values():
    probs = Tensor(np.where(np.arange(40).reshape(4, 10) % 13 == 0, 0.0, 0.5), requires_grad=True)
    with pytest.raises(AnomalyError) as info, detect_anomaly():
        line = next_line()
        probs.log().mean()
    e = info.value
    assert isinstance(e, RuntimeError) and (e.op, e.phase) == ("Log", "forward")
    assert (e.site.filename, e.site.lineno) == (__file__, line)
    head = str(e).splitlines()[0]
    assert head == f"log got 4 zeros (-> -inf) in (4, 10) from test_anomaly.py:{line}: probs.log().mean()"
    assert f'File "{__file__}", line {line}' in str(e)
    assert "output: 4 -inf at (0, 0), (1, 3), (2, 6), ...; the other values lie in [-0.6931, -0.6931]" in str(e)
    assert "input 0: (4, 10) float64 in [0, 0.5], 4 zeros" in str(e)


def test_the_users_line_through_nested_modules():
    class Inner(nn.Module):
        def forward(self, x):
            self.line = next_line()
            return (x - 1).log()

    class Outer(nn.Module):
        def __init__(self):
            self.body = nn.Sequential(nn.Linear(3, 3), Inner())

        def forward(self, x):
            return self.body(x)

    model = Outer()
    model.body[0].weight.data[...] = 0
    with pytest.raises(AnomalyError) as info, detect_anomaly():
        model(Tensor(np.ones((2, 3), np.float32)))
    e = info.value
    inner = model.body[1]
    assert (e.site.filename, e.site.lineno) == (__file__, inner.line)  # Inner's line, not nn's
    assert e.site.modules == ("body", "body.1") and "in module body.1 (Inner)" in str(e)
    assert str(e).startswith(f"log got 6 negatives (-> NaN) in (2, 3) from test_anomaly.py:{inner.line}")


def test_an_op_inside_a_library_module_is_blamed_on_the_line_that_called_the_model():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    model[0].weight.data[...] = 3e38  # float32 overflows in the product
    x = Tensor(np.full((1, 2), 10, np.float32))
    with pytest.raises(AnomalyError) as info, detect_anomaly():
        line = next_line()
        model(x)
    e = info.value
    assert (e.op, e.site.filename, e.site.lineno) == ("Linear", __file__, line)
    assert "linear produced 2 +inf in (1, 2)" in str(e) and "in module 0 (Linear)" in str(e)


def test_a_nan_that_first_appears_in_backward():
    x = Tensor(np.array([0.0, 1.0, 4.0]), requires_grad=True)
    with pytest.raises(AnomalyError) as info, detect_anomaly():
        line = next_line()
        y = (x ** 0.5).sum()  # fine forward: sqrt(0) = 0; its derivative at 0 is inf
        y.backward()
    e = info.value
    assert (e.op, e.phase, e.site.lineno) == ("Pow", "backward", line)
    lines = str(e).splitlines()
    assert lines[0] == (f"backward of pow produced 1 +inf in (3,) (the gradient of its input 0): the op was created "
                        f"at test_anomaly.py:{line}: y = (x ** 0.5).sum()  # fine forward: sqrt(0) = 0; its "
                        f"derivative at 0 is inf")
    assert "  input 0 gradient: 1 +inf at (0,); the other values lie in [0.25, 0.5]" in lines
    assert "  input 0: (3,) float64 in [0, 4], 1 zero" in lines
    assert x.grad is None  # stopped before it reached the leaf


def test_create_graph_ops_recorded_inside_a_backward():
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with pytest.raises(AnomalyError) as info, detect_anomaly():
        made = next_line()
        y = (x ** 0.5).sum()
        line = next_line()
        autograd.grad(y, x, create_graph=True)
    e = info.value  # Pow's backward records x ** -0.5, which is inf at 0
    assert (e.op, e.phase, e.site.lineno) == ("Pow", "forward", line)
    assert f"while computing the backward of pow (create_graph), whose op was created at test_anomaly.py:{made}" \
        in str(e)


def test_second_derivative_under_create_graph():
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with detect_anomaly():
        y = (x ** 1.5).sum()
        line = next_line()
        g, = autograd.grad(y, x, create_graph=True)  # 1.5 x ** 0.5: finite
        np.testing.assert_allclose(g.data, [0.0, 1.5])
        with pytest.raises(AnomalyError) as info:
            g.sum().backward()  # 0.75 x ** -0.5: inf at 0
    e = info.value
    assert (e.op, e.phase) == ("Pow", "backward") and e.site.lineno == line


def test_bad_values_from_outside_the_ops_are_said_to_be_so():
    w = Tensor(np.array([1.0, np.nan, np.inf]), requires_grad=True)  # a diverged parameter
    with pytest.raises(AnomalyError, match=r"mul got 1 NaN and 1 \+inf in its input 0 \(3,\) from test_anomaly.py:\d+: "
                                           r"w \* 2\n.*\n  no op made them in anomaly mode"), detect_anomaly():
        w * 2
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(AnomalyError, match=r"the gradient reaching the output of mul \(\(3,\), created at "
                                           r"test_anomaly.py:\d+: y = x \* 2\) holds 1 NaN"), detect_anomaly():
        y = x * 2
        y.backward(np.array([1.0, np.nan, 1.0]))


def test_results_are_unchanged_when_on():
    def step(anomaly):
        np.random.seed(0)
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 4))
        x = Tensor(np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32))
        if anomaly:
            with detect_anomaly():
                loss = model(x).cross_entropy(np.array([1, 3]))
                loss.backward()
        else:
            loss = model(x).cross_entropy(np.array([1, 3]))
            loss.backward()
        return loss.data, [p.grad for p in model.parameters()]

    (plain, plain_grads), (on, on_grads) = step(False), step(True)
    assert plain == on and plain.dtype == on.dtype == np.float32
    for a, b in zip(plain_grads, on_grads):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_off_by_default_restored_after_an_error_and_usable_as_a_decorator():
    assert engine._tracer is None
    x = Tensor(np.array([-1.0]), requires_grad=True)
    assert np.isnan(x.log().data).all()  # off: no error
    with pytest.raises(AnomalyError), detect_anomaly():
        x.log()
    assert engine._tracer is None

    @detect_anomaly()
    def f(t):
        return t.log()

    with pytest.raises(AnomalyError, match="log got 1 negative"):
        f(x)
    assert engine._tracer is None
