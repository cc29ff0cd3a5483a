"""viz.draw: the picture of the tape holds exactly the tape's ops and inputs, named, shaped and
typed, with the gradient norms of the backward that follows."""
import os
import shutil

import numpy as np
import pytest

from tinygrad_cnn import Tensor, autograd, functional as F, nn, viz
from tinygrad_cnn.tensor import _ConstantInput

rng = np.random.default_rng(3)


def tape(root):
    """The tape walked independently of viz: (ops by id(ctx), leaves by id, number of edges)."""
    ops, leaves, edges, stack = {}, {}, 0, [root]
    while stack:
        t = stack.pop()
        if t._ctx is None:
            leaves[id(t)] = t
        elif id(t._ctx) not in ops:
            ops[id(t._ctx)] = t
            edges += len(t._ctx.parents)
            stack.extend(t._ctx.parents)
    return ops, leaves, edges


def small_program():
    """A shared parameter, a constant, a non-tensor argument (where's mask) and a fork."""
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    w = Tensor(rng.standard_normal((3, 3)).astype(np.float32), requires_grad=True)
    b = Tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    h = (x @ w + b).relu()
    h = h @ w  # w used twice
    y = F.where(np.array([True, False, True]), h, h * 2.0)  # a bool mask: a _ConstantInput parent
    return (y * y).sum(), dict(w=w, b=b), x


def test_nodes_and_edges_are_the_tapes():
    loss, params, _ = small_program()
    ops, leaves, edges = tape(loss)
    graph = viz.draw(loss, params=params)
    kinds = [n.kind for n in graph.nodes]
    assert kinds.count("op") == len(ops)
    assert len(graph.nodes) == len(ops) + len(leaves)
    assert len(graph.edges) == edges
    assert sum(isinstance(t, _ConstantInput) for t in leaves.values()) == kinds.count("constant") == 1
    dot = graph.to_dot()
    assert dot.count(" -> ") == edges
    for n in graph.nodes:
        assert f"  {n.id} [label=" in dot
    # every edge ends at an op, and every op's inputs are its parents, in order
    by_id = {n.id: n for n in graph.nodes}
    assert all(by_id[dst].kind == "op" for _, dst in graph.edges)
    assert sorted(n.name for n in graph.nodes if n.kind == "op") == sorted(type(t._ctx).__name__ for t in ops.values())


def test_names_shapes_and_dtypes():
    loss, params, x = small_program()
    graph = viz.draw(loss, params=params)
    ops, _, _ = tape(loss)
    expected = sorted((type(t._ctx).__name__, t.shape, str(t.dtype)) for t in ops.values())
    assert sorted((n.name, n.shape, str(n.dtype)) for n in graph.nodes if n.kind == "op") == expected
    named = {n.name: n for n in graph.nodes if n.kind == "param"}
    assert set(named) == {"w", "b"} and named["w"].shape == (3, 3) and named["b"].dtype == np.float32
    assert graph.nodes[0].name == "Sum" and graph.nodes[0].shape == ()
    assert [n.shape for n in graph.nodes if n.kind == "input" and n.shape == x.shape]
    assert "w\\n(3, 3) float32" in graph.to_dot()


def test_parameters_named_from_a_module():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    x = Tensor(rng.standard_normal((3, 5)).astype(np.float32))
    graph = viz.draw(model(x).sum(), params=model)
    assert sorted(n.name for n in graph.nodes if n.kind == "param") == sorted(dict(model.named_parameters()))
    torchviz_style = viz.draw(model(x).sum(), params=dict(model.named_parameters()))
    assert [n.name for n in torchviz_style.nodes] == [n.name for n in graph.nodes]


def test_gradient_norms_of_the_backward_that_follows():
    x = Tensor(rng.standard_normal((4, 3)))
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    h = x @ w
    r = h.tanh()
    loss = (r * r).sum()
    h.retain_grad(), r.retain_grad()
    graph = viz.draw(loss, params={"w": w})
    assert all(n.grad_norm is None for n in graph.nodes)
    loss.backward()
    norms = {n.name: n.grad_norm for n in graph.nodes}
    assert norms["w"] == pytest.approx(np.linalg.norm(w.grad), rel=1e-12)
    assert norms["MatMul"] == pytest.approx(np.linalg.norm(h.grad), rel=1e-12)
    assert norms["Tanh"] == pytest.approx(np.linalg.norm(r.grad), rel=1e-12)
    assert norms["Sum"] == 1.0 and norms["input"] is None  # x needs no gradient
    assert "grad norm" in graph.to_dot()
    assert not w._meta.hooks  # the hooks were one-shot: the next steps pay nothing


def test_gradient_norms_under_create_graph():
    x = Tensor(np.array([0.5, 1.5, -2.0]), requires_grad=True)
    y = (x ** 3).sum()
    graph = viz.draw(y, params={"x": x})
    g, = autograd.grad(y, x, create_graph=True)
    assert [n.grad_norm for n in graph.nodes if n.name == "x"][0] == pytest.approx(np.linalg.norm(3 * x.data ** 2))


def test_the_graph_must_be_drawn_before_backward_releases_it():
    loss, _, _ = small_program()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"draw\(loss\) before loss.backward\(\)"):
        viz.draw(loss)


def test_max_depth_keeps_the_ops_nearest_the_output_and_says_what_was_cut():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x
    for _ in range(50):
        y = y.tanh()
    graph = viz.draw(y.sum(), max_depth=5)
    dot = graph.to_dot()
    assert dot.count("Tanh\\n") == 4 and dot.count("Sum\\n") == 1
    assert "... 46 more ops and 1 inputs not shown (max_depth=5)" in dot
    assert dot.count("cut -> ") == 1
    assert len(graph.nodes) == 52  # the capture keeps everything; only the picture is cut


class Block(nn.Module):
    def __init__(self):
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x).relu() + x


class Net(nn.Module):
    def __init__(self):
        self.features = nn.Sequential(Block(), Block())
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.features(x))


def test_modules_box_their_ops_and_collapse_to_one_node():
    model = Net()
    x = Tensor(rng.standard_normal((2, 3)).astype(np.float32))
    with viz.record_modules() as modules:
        loss = model(x).sum()
    graph = viz.draw(loss, params=model, modules=modules)
    paths = {n.module for n in graph.nodes if n.kind == "op"}
    assert paths == {(), ("head",), ("features", "features.0"), ("features", "features.0", "features.0.lin"),
                     ("features", "features.1"), ("features", "features.1", "features.1.lin")}
    dot = graph.to_dot()
    assert 'label="features (Sequential)"' in dot and 'label="features.1.lin (Linear)"' in dot
    collapsed = viz.draw(loss, params=model, modules=modules, collapse=1).to_dot()
    assert "features (Sequential)\\n6 ops: Add, Linear, ReLU\\n(2, 3) float32" in collapsed
    assert "head (Linear)\\n1 op: Linear" in collapsed
    assert "features.0.lin.weight" not in collapsed  # inside the box
    assert collapsed.count(" -> ") == 3  # input -> features -> head -> sum
    by_name = viz.draw(loss, params=model, modules=modules, collapse=["features.1"]).to_dot()
    assert "features.1 (Block)\\n3 ops" in by_name and "features.0.lin.weight" in by_name
    with pytest.raises(TypeError, match=r"draw: modules= takes what `with viz.record_modules\(\) as modules:`"):
        viz.draw(loss, params=model, modules=model, collapse=1)  # the model where the recording belongs


def test_dot_text_needs_no_graphviz_and_svg_says_how_to_get_it(tmp_path, monkeypatch):
    loss, params, _ = small_program()
    graph = viz.draw(loss, params=params)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `dot` anywhere
    path = graph.save(tmp_path / "step.dot")
    assert open(path).read() == graph.to_dot()
    with pytest.raises(viz.GraphvizNotFoundError, match=r"needs Graphviz's `dot` program.*graph.save\('graph.dot'\)"):
        graph.save(tmp_path / "step.svg")
    assert sorted(os.listdir(tmp_path)) == ["step.dot"]  # nothing half-written
    with pytest.raises(viz.GraphvizNotFoundError):  # a program can check before it trains
        viz.check_output("step.png")
    assert viz.check_output("step.dot") == "dot"
    assert graph._repr_svg_() is None


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` program is not installed")
def test_render_svg_and_png(tmp_path):
    loss, params, _ = small_program()
    graph = viz.draw(loss, params=params)
    svg = open(graph.save(tmp_path / "step.svg"), "rb").read()
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"MatMul" in svg
    png = open(graph.save(tmp_path / "step.png"), "rb").read()
    assert png.startswith(b"\x89PNG")


def test_bad_arguments():
    loss, _, _ = small_program()
    with pytest.raises(TypeError, match="draw: expected a Tensor, got ndarray"):
        viz.draw(np.ones(3))
    with pytest.raises(ValueError, match="max_depth must be a positive int, got 0"):
        viz.draw(loss, max_depth=0)
    with pytest.raises(ValueError, match="collapse needs modules="):
        viz.draw(loss, collapse=1)
    with pytest.raises(ValueError, match=r"cannot tell the format of 'step.jpg'"):
        viz.draw(loss).save("step.jpg")
    with pytest.raises(ValueError, match="render: format must be one of svg, png, pdf"):
        viz.draw(loss).render("bmp")


def test_an_op_that_used_a_tensor_before_a_recorded_in_place_change_draws_its_edge_from_the_old_value():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    out = x.clone()
    column = out[:, 0]      # reads the clone
    out[:, 0] = column * 2  # then rebuilds it: SetItem(clone, ...)
    graph = viz.draw(out.sum())
    by_id = {n.id: n for n in graph.nodes}
    sources = {by_id[a].name for a, b in graph.edges if by_id[b].name == "GetItem"}
    assert sources == {"Clone"}  # not SetItem, the value the in-place op wrote
