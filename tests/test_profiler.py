"""profile(): op calls counted, times that add up to the profiled wall time, bytes saved for
backward, gradient norms and zero shares, a Chrome trace; and the tools composing."""
import inspect
import json
import os
import time

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import Tensor, autograd, detect_anomaly, profile, tensor as engine, tracing, viz

rng = np.random.default_rng(5)


def here():
    return inspect.currentframe().f_back.f_lineno


def saved_by_op(root):
    """Bytes in ctx.saved per op type, walking the tape independently of the profiler."""
    out, seen, stack = {}, set(), [root]
    while stack:
        t = stack.pop()
        if t._ctx is None or id(t._ctx) in seen:
            continue
        seen.add(id(t._ctx))
        arrays, todo = {}, list(t._ctx.saved)
        while todo:
            s = todo.pop()
            if isinstance(s, (tuple, list)):  # max-pool saves (windows list, out)
                todo.extend(s)
            elif isinstance(s, np.ndarray):
                arrays[id(s)] = s.nbytes
        name = type(t._ctx).__name__
        out[name] = out.get(name, 0) + sum(arrays.values())
        stack.extend(p for p in t._ctx.parents if isinstance(p, Tensor))
    return out


def test_calls_are_counted_per_op_type_and_per_call_site():
    x = Tensor(rng.standard_normal((5, 4)))
    w = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    with profile() as prof:
        for _ in range(3):
            h = (x @ w).relu(); first = here()
            loss = (h * h).sum() * 0.5; second = here()
            loss.backward()
    rows = {r.name: r for r in prof.stats()}
    assert {name: (r.calls, r.backward_calls) for name, r in rows.items()} == \
        {"MatMul": (3, 3), "ReLU": (3, 3), "Mul": (6, 6), "Sum": (3, 3)}
    sites = {(r.name, r.site.lineno) for r in prof.stats(per_instance=True)}
    assert sites == {("MatMul", first), ("ReLU", first), ("Mul", second), ("Sum", second)}
    mul_rows = [r for r in prof.stats(per_instance=True) if r.name == "Mul"]
    assert [r.calls for r in mul_rows] == [6] and mul_rows[0].site.filename == __file__
    assert prof.total_ms == pytest.approx(sum(r.total_ms for r in prof.stats()))
    assert all(r.total_ms == pytest.approx(r.forward_ms + r.backward_ms) for r in prof.stats())


def test_bytes_saved_for_backward_are_the_saved_arrays():
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    with profile() as prof:
        loss = x.conv2d(w).max_pool2d(2).relu().flatten(1).log_softmax(1).mean()
    expected = saved_by_op(loss)
    got = {r.name: r.saved_bytes for r in prof.stats()}
    assert got == expected and got["Conv2d"] > 0 and got["MaxPool2d"] > 0
    with profile() as prof:  # nothing is saved when nothing is recorded
        with tinygrad_cnn.no_grad():
            x.conv2d(w).relu()
    assert {r.name: r.saved_bytes for r in prof.stats()} == {"Conv2d": 0, "ReLU": 0}


def test_grad_norms_and_zero_shares_of_relu_and_max_pool():
    x = Tensor(np.array([[-2.0, -1.0, 0.5, 3.0, -0.5, 1.0]]), requires_grad=True)  # 3 of 6 not positive
    c = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    p = Tensor(np.arange(16.0).reshape(1, 1, 4, 4)[..., ::-1].copy(), requires_grad=True)  # distinct maxima
    with profile() as prof:
        (x.relu() * c).sum().backward()
        p.max_pool2d(2).sum().backward()
    rows = {r.name: r for r in prof.stats()}
    assert rows["ReLU"].zero_share == 3 / 6
    assert rows["ReLU"].grad_norm == pytest.approx(np.linalg.norm(c))  # the gradient reaching relu's output
    assert rows["MaxPool2d"].zero_share == 12 / 16  # 3 losers in each 2x2 window
    assert rows["MaxPool2d"].grad_norm == pytest.approx(2.0)  # ones of shape (1, 1, 2, 2)
    table = prof.table(sort_by="zero_share")
    assert table.splitlines()[2].startswith("MaxPool2d") and "75.0%" in table and "50.0%" in table


class Sleepy(tinygrad_cnn.autograd.Function):
    """An op whose forward and backward take a known time that is not CPU work, so that the
    check below holds on a busy machine: a preempted sleeper still wakes inside its own timer."""
    @staticmethod
    def forward(ctx, x):
        time.sleep(0.01)
        return x * 2.0

    @staticmethod
    def backward(ctx, grad):
        time.sleep(0.01)
        return grad * 2.0


def test_op_times_add_up_to_the_profiled_wall_time():
    x = Tensor(np.ones(3), requires_grad=True)
    start = time.perf_counter()
    with profile() as prof:
        for _ in range(2):
            Sleepy.apply(x).sum().backward()
    wall = 1000 * (time.perf_counter() - start)
    assert prof.total_ms <= prof.wall_ms <= wall
    rows = {r.name: r for r in prof.stats()}
    assert rows["Sleepy"].calls == 2 and rows["Sleepy"].forward_ms >= 20 and rows["Sleepy"].backward_ms >= 20
    assert prof.total_ms >= 0.9 * wall, prof.table()  # only a little Python and the profiler's own work outside


def test_matrix_products_lead_the_table_with_forward_and_backward_times():
    a = Tensor(rng.standard_normal((200, 200)), requires_grad=True)
    b = Tensor(rng.standard_normal((200, 200)), requires_grad=True)
    with profile() as prof:
        for _ in range(2):
            ((a @ b) @ a @ b).sum().backward()
    top = prof.stats()[0]
    assert top.name == "MatMul" and top.calls == 6 and top.forward_ms > 0 and top.backward_ms > 0
    assert prof.table().splitlines()[2].startswith("MatMul")


def test_time_outside_ops_is_not_counted_as_op_time():
    x = Tensor(np.ones(10), requires_grad=True)
    start = time.perf_counter()
    with profile() as prof:
        y = x * 2
        time.sleep(0.05)  # data loading, say
        y.sum().backward()
    wall = 1000 * (time.perf_counter() - start)
    assert prof.wall_ms - prof.total_ms >= 50 and prof.wall_ms <= wall
    assert "outside ops" in prof.table()


def test_a_backward_under_create_graph_does_not_count_the_ops_it_records_twice():
    x = Tensor(rng.standard_normal(1000), requires_grad=True)
    start = time.perf_counter()
    with profile() as prof:
        g, = autograd.grad((x.tanh() ** 3).sum(), x, create_graph=True)
        g.sum().backward()
    wall = 1000 * (time.perf_counter() - start)
    assert prof.total_ms <= prof.wall_ms <= wall
    nested = [e for e in prof.events if e.phase == "backward" and e.self_time < e.duration]
    assert nested  # Pow's backward recorded ops (Mul, Pow): their time is theirs, not Pow's


def test_chrome_trace(tmp_path):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    prof = profile()
    for _ in range(2):  # entered twice: the figures add up
        with prof:
            (x.exp() * x).sum().backward()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    assert os.listdir(tmp_path) == ["trace.json"]  # written atomically: no temporary file left
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    ops = [e for e in events if e["cat"] in ("forward", "backward")]
    blocks = [e for e in events if e["cat"] == "profile"]
    assert len(blocks) == 2 and len(ops) == len(prof.events) == 2 * (3 + 3)
    assert all(e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0 for e in events)
    assert sorted(e["name"] for e in ops if e["cat"] == "backward") == \
        sorted(["Exp backward", "Mul backward", "Sum backward"] * 2)
    for e in ops:  # each op inside one of the blocks
        assert any(b["ts"] <= e["ts"] and e["ts"] + e["dur"] <= b["ts"] + b["dur"] + 1 for b in blocks)
    assert sum(e["dur"] for e in ops) / 1000 == pytest.approx(prof.total_ms, rel=1e-3, abs=1e-3)
    assert any(e["args"].get("saved bytes") == 3 * 4 * 8 for e in ops if e["name"] == "Exp")
    assert prof.wall_ms == pytest.approx(sum(b["dur"] for b in blocks) / 1000, rel=1e-3, abs=1e-3)


def test_sorting_and_its_errors():
    x = Tensor(rng.standard_normal((50, 50)), requires_grad=True)
    with profile() as prof:
        (x @ x).tanh().sum().backward()
        x.exp().sum().backward()
    fields = {"total": "total_ms", "forward": "forward_ms", "backward": "backward_ms", "saved": "saved_bytes"}
    for key in ("total", "forward", "backward", "calls", "saved", "grad_norm", "zero_share"):
        field = fields.get(key, key)
        values = [getattr(r, field) or 0 for r in prof.stats(sort_by=key)]
        assert values == sorted(values, reverse=True)
    assert [r.name for r in prof.stats(sort_by="name")] == ["Exp", "MatMul", "Sum", "Tanh"]
    assert len(prof.table(limit=2).splitlines()) == 2 + 2 + 2
    with pytest.raises(ValueError, match="profile: cannot sort by 'time'; use one of total, forward"):
        prof.table(sort_by="time")


def test_off_it_installs_nothing_and_tools_compose():
    assert engine._tracer is None
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with detect_anomaly():
        with profile() as prof, viz.record_modules():
            assert isinstance(engine._tracer, tracing._Chain)  # the profiler innermost: it times the op alone
            assert [type(t).__name__ for t in engine._tracer.tracers] == ["detect_anomaly", "record_modules", "profile"]
            (x * x).sum().backward()
        assert type(engine._tracer).__name__ == "detect_anomaly"
    assert engine._tracer is None
    assert {r.name: r.calls for r in prof.stats()} == {"Mul": 1, "Sum": 1}


def test_the_previous_tracer_comes_back_after_an_error_and_out_of_order_exits():
    class Foreign:  # someone's own tracer, installed with set_tracer
        order, calls = 5, 0

        def forward(self, op, inputs, kwargs, run):
            Foreign.calls += 1
            return run()

        def backward(self, ctx, output, grad, run):
            return run()

    foreign = Foreign()
    engine.set_tracer(foreign)
    try:
        x = Tensor(np.array([0.0]), requires_grad=True)
        with pytest.raises(tinygrad_cnn.AnomalyError), np.errstate(divide="ignore"):
            with profile():
                with detect_anomaly():
                    x.log()
        assert engine._tracer is foreign and Foreign.calls == 1
        prof, anomaly = profile(), detect_anomaly()
        prof.__enter__()
        anomaly.__enter__()
        prof.__exit__(None, None, None)  # left first
        (x + 1).sum()
        assert {r.name for r in prof.stats()} == set() and Foreign.calls == 3
        anomaly.__exit__(None, None, None)
        assert engine._tracer is foreign
    finally:
        engine.set_tracer(None)
