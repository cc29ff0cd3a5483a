"""Pictures of the tape: the graph of ops that produced a tensor, as Graphviz DOT text (no
dependency) or SVG/PNG (needs Graphviz's `dot` program).

    graph = viz.draw(loss, params=model)   # the graph as it is now: ops, shapes, dtypes
    loss.backward()                        # ...fills in each node's gradient norm
    graph.save("step.svg")                 # or .png, .pdf; .dot needs no Graphviz

draw() copies what it needs from the tape at once (a backward releases the tape) and puts a
one-shot hook on each tensor that needs a gradient, so the next backward records the norm of
the gradient reaching it. To box the ops by the module that ran them, record the forward:

    with viz.record_modules() as modules:
        loss = model(x).cross_entropy(y)
    graph = viz.draw(loss, params=model, modules=modules, collapse=1)  # one box per top-level module

For a large graph, `max_depth=N` keeps the N ops nearest the output and one marker node that
says what was cut.
"""
import os
import shutil
import subprocess
import weakref

import numpy as np

from . import tracing
from .tensor import Tensor, inputs_of

__all__ = ["draw", "record_modules", "check_output", "Graph", "Node", "GraphvizNotFoundError"]

FORMATS = ("dot", "gv", "svg", "png", "pdf")


class GraphvizNotFoundError(RuntimeError):
    pass


class Node:
    """One box of the picture. kind: "op" (a recorded op: name is its class, e.g. "Conv2d"),
    "param" (a leaf named by its module parameter name), "leaf" (an unnamed leaf that requires
    grad), "input" (a leaf without grad: data, a constant tensor) or "constant" (a non-tensor
    argument of an op, e.g. where's mask). `module` is the path of modules that ran an op
    (outermost first) when recorded with record_modules(); `grad_norm` is filled by the backward
    after draw()."""
    __slots__ = ("id", "kind", "name", "shape", "dtype", "module", "grad_norm", "value")

    def __init__(self, id, kind, name, shape, dtype, module=(), value=None):
        self.id, self.kind, self.name, self.shape, self.dtype = id, kind, name, shape, dtype
        self.module, self.grad_norm, self.value = module, None, value

    def __repr__(self):
        return f"Node({self.id}, {self.kind}, {self.name}, {self.shape}, {self.dtype})"


class record_modules:
    """Context manager: remember which module's forward ran each op (for draw(modules=...)).
    It finds the modules on the Python stack, so any Module works, nested or not."""
    order = 1

    def __init__(self):
        self._paths = weakref.WeakKeyDictionary()  # ctx -> module path
        self.classes = {}  # qualified module name -> class name

    def __enter__(self):
        tracing.install(self)
        return self

    def __exit__(self, *exc):
        tracing.uninstall(self)

    def forward(self, op, inputs, kwargs, run):
        site = tracing.call_site()
        out = run()
        if out._ctx is not None:
            self._paths[out._ctx] = site.modules
            self.classes.update(zip(site.modules, site.classes))
        return out

    def backward(self, ctx, output, grad, run):
        return run()

    def path(self, ctx):
        return self._paths.get(ctx, ())


def draw(tensor, params=None, modules=None, grads=True, max_depth=None, collapse=None):
    """The graph that produced `tensor`, one node per recorded op and per input.

    params: a Module (or a dict name -> Tensor, torchviz's `dict(model.named_parameters())`)
      whose parameters name the leaves. modules: a record_modules() from the forward, to group
      ops by module. grads: collect gradient norms in the next backward (one-shot hooks).
      max_depth: show only the ops within that many steps of the output. collapse: with modules,
      an int (1: each top-level module becomes one box) or module names to draw as one box."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw: expected a Tensor, got {type(tensor).__name__}")
    if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 1):
        raise ValueError(f"draw: max_depth must be a positive int, got {max_depth!r}")
    if collapse is not None and modules is None:
        raise ValueError("draw: collapse needs modules=, recorded during the forward: "
                         "`with viz.record_modules() as modules: loss = model(x)...`")
    if modules is not None and not isinstance(modules, record_modules):
        raise TypeError(f"draw: modules= takes what `with viz.record_modules() as modules:` around the forward "
                        f"recorded, got {type(modules).__name__}; pass the model itself as params=")
    return Graph(tensor, _param_names(params), modules, grads, max_depth, collapse)


def _param_names(params):
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):  # a Module: its parameters, and its buffers if it has any
        items = list(params.named_parameters()) + list(getattr(params, "named_buffers", list)())
    else:
        items = params.items() if isinstance(params, dict) else params
    names = {}
    for name, p in items:
        names.setdefault(id(p), name)  # a shared parameter keeps its first name
    return names


class Graph:
    """What draw() captured: `nodes` (Node; nodes[0] is the output's op or leaf), `edges`
    (input id, op id) pairs in ctx.parents order (an input used twice gives two edges)."""

    def __init__(self, root, names, modules, grads, max_depth, collapse):
        self.max_depth, self.collapse = max_depth, collapse
        self.classes = modules.classes if modules is not None else {}
        self.nodes, self.edges, self._owners = [], [], None
        self._walk(root, names, modules, grads)

    def _walk(self, root, names, modules, grads):
        ids = {}  # id(ctx) for ops, id(object) for leaves -> Node; `keep` holds them so ids stay unique
        keep, stack = [], [root]
        hooked = []
        while stack:
            t = stack.pop()
            ctx = t._ctx
            key = id(ctx) if ctx is not None else id(t)
            if key in ids:
                continue
            node = self._node(t, len(ids), names, modules)
            ids[key] = node
            keep.append(t)
            if isinstance(t, Tensor) and t.requires_grad and grads:
                hooked.append((t, node))
            if ctx is None:
                continue
            if ctx.parents is None:
                raise RuntimeError("draw: the graph was released by backward(); call draw(loss) before "
                                   "loss.backward() (the gradient norms are collected during that backward), "
                                   "or keep the graph with backward(retain_graph=True)")
            stack.extend(reversed(inputs_of(t)))  # DFS, first input first
        for t in keep:
            if t._ctx is not None:
                op = ids[id(t._ctx)]
                for p in inputs_of(t):
                    self.edges.append((ids[id(p._ctx) if p._ctx is not None else id(p)].id, op.id))
        self.nodes = sorted(ids.values(), key=lambda n: int(n.id[1:]))
        this = weakref.ref(self)
        for t, node in hooked:
            _hook_once(t, node, this)

    @staticmethod
    def _node(t, index, names, modules):
        data = t._data
        shape, dtype = tuple(np.shape(data)), getattr(data, "dtype", None)
        nid = f"n{index}"
        if t._ctx is not None:
            return Node(nid, "op", type(t._ctx).__name__, shape, dtype,
                        modules.path(t._ctx) if modules is not None else ())
        if not isinstance(t, Tensor):
            return Node(nid, "constant", "constant", shape, dtype, value=_small_value(data))
        if id(t) in names:
            return Node(nid, "param", names[id(t)], shape, dtype)
        if t.requires_grad:
            return Node(nid, "leaf", "leaf", shape, dtype)
        return Node(nid, "input", "input", shape, dtype, value=_small_value(data))

    def __repr__(self):
        ops = sum(n.kind == "op" for n in self.nodes)
        return f"Graph({ops} ops, {len(self.nodes) - ops} inputs, {len(self.edges)} edges)"

    # ---- output ----
    def to_dot(self):
        """The graph as Graphviz DOT text: data flows from the inputs (top) to the output (bottom)."""
        nodes, edges, cut = self._shown()
        lines = ["digraph tape {", '  graph [rankdir=TB, fontname="Helvetica", fontsize=11];',
                 '  node [fontname="Helvetica", fontsize=10];', '  edge [arrowsize=0.6];']
        boxes = {}  # module path -> [node lines]
        for n in nodes:
            boxes.setdefault(self._box(n), []).append(f"  {n.id} [{_style(n, n.id == self.nodes[0].id)}];")
        lines += _clusters(boxes, self.classes)
        if cut:
            lines.append(f'  cut [label="{_escape(cut[0])}", shape=note, style=dashed];')
            lines += [f"  cut -> {dst} [style=dashed];" for dst in cut[1]]
        lines += [f"  {src} -> {dst};" for src, dst in edges]
        lines.append("}")
        return "\n".join(lines) + "\n"

    __str__ = to_dot

    def render(self, format="svg"):
        """The picture as bytes, drawn by Graphviz's `dot` program."""
        if format not in FORMATS[2:]:
            raise ValueError(f"render: format must be one of {', '.join(FORMATS[2:])}, got {format!r}")
        dot = _dot_program(format)
        done = subprocess.run([dot, f"-T{format}"], input=self.to_dot().encode(), capture_output=True)
        if done.returncode:
            raise RuntimeError(f"viz: dot -T{format} failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout

    def save(self, path, format=None):
        """Write the graph to `path` (atomically), as DOT text for .dot/.gv, else drawn by Graphviz
        in the format its extension names (.svg, .png, .pdf) or `format` says."""
        path = os.fspath(path)
        format = check_output(path, format)
        data = self.to_dot().encode() if format in ("dot", "gv") else self.render(format)
        tracing.write_atomically(path, data)
        return path

    def _repr_svg_(self):  # Jupyter shows the picture when Graphviz is there
        try:
            return self.render("svg").decode()
        except GraphvizNotFoundError:
            return None

    # ---- what to show: depth limit, then modules collapsed into one box ----
    def _shown(self):
        nodes, edges, cut = self.nodes, self.edges, None
        if self.max_depth is not None:
            nodes, edges, cut = self._cut(self.max_depth)
        if self.collapse is not None:
            nodes, edges, cut = self._collapsed(nodes, edges, cut)
        return nodes, edges, cut

    def _cut(self, max_depth):
        """Keep the ops fewer than max_depth steps from the output, and the inputs of those."""
        by_id = {n.id: n for n in self.nodes}
        inputs = {}
        for src, dst in self.edges:
            inputs.setdefault(dst, []).append(src)
        depth, frontier = {self.nodes[0].id: 0}, [self.nodes[0].id]
        while frontier:  # breadth first: each node at its shortest distance
            nxt = []
            for nid in frontier:
                for src in inputs.get(nid, ()):
                    if src not in depth:
                        depth[src] = depth[nid] + 1
                        nxt.append(src)
            frontier = nxt
        kept_ops = {nid for nid, d in depth.items() if d < max_depth and by_id[nid].kind == "op"}
        kept = kept_ops | {s for s, d in self.edges if d in kept_ops and by_id[s].kind != "op"}
        if self.nodes[0].kind != "op":
            kept.add(self.nodes[0].id)
        hidden = [n for n in self.nodes if n.id not in kept]
        if not hidden:
            return self.nodes, self.edges, None
        ops = sum(n.kind == "op" for n in hidden)
        label = f"... {ops} more op{'s' * (ops != 1)} and {len(hidden) - ops} inputs not shown (max_depth={max_depth})"
        targets = sorted({d for s, d in self.edges if d in kept and s not in kept}, key=lambda i: int(i[1:]))
        return ([n for n in self.nodes if n.id in kept], [(s, d) for s, d in self.edges if s in kept and d in kept],
                (label, targets))

    def _collapsed(self, nodes, edges, cut):
        """Each collapsed module becomes one node, standing for its ops and its own parameters."""
        groups = {}  # collapsed module path -> its nodes
        for n in nodes:
            path = self._collapse_path(self._box(n))
            if path:
                groups.setdefault(path, []).append(n)
        rep = {}
        shown = [n for n in nodes if not self._collapse_path(self._box(n))]
        for k, (path, members) in enumerate(groups.items()):
            ops = [n for n in members if n.kind == "op"]
            last = max(ops or members, key=lambda n: int(n.id[1:]))  # the latest op: the module's output
            kinds = sorted({n.name for n in ops})
            box = Node(f"m{k}", "module", _module_label(path[-1], self.classes), last.shape, last.dtype, path[:-1])
            box.grad_norm = last.grad_norm
            box.value = f"{len(ops)} op{'s' * (len(ops) != 1)}: {', '.join(kinds)}"
            for n in members:
                rep[n.id] = box.id
            shown.append(box)
        edges = list(dict.fromkeys((rep.get(s, s), rep.get(d, d)) for s, d in edges))
        edges = [(s, d) for s, d in edges if s != d]
        if cut:
            cut = cut[0], sorted({rep.get(d, d) for d in cut[1]})
        return shown, edges, cut

    def _collapse_path(self, path):
        """The prefix of a module path that is drawn as one box, or ()."""
        c = self.collapse
        if c is True:
            c = 1
        if isinstance(c, int):
            return path[:c] if len(path) >= c else ()
        names = {c} if isinstance(c, str) else set(c)
        for i in range(len(path)):
            if path[i] in names:
                return path[:i + 1]
        return ()

    def _box(self, n):
        """The module path a node is drawn in: an op's own; a parameter's, its owner's ("a.b" for "a.b.weight")."""
        if n.kind == "param" and "." in n.name:
            if self._owners is None:
                self._owners = {p[i]: p[:i + 1] for m in self.nodes for p in [m.module] for i in range(len(p))}
            return self._owners.get(n.name.rsplit(".", 1)[0], ())
        return tuple(n.module) if n.kind in ("op", "module") else ()


def check_output(path, format=None):
    """The format save(path) would write; raises now, before any work, if it cannot: ValueError
    for an unknown extension, GraphvizNotFoundError for a picture without Graphviz."""
    format = format or os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    if format not in FORMATS:
        raise ValueError(f"save: cannot tell the format of {os.fspath(path)!r}: use an extension among "
                         f"{', '.join('.' + f for f in FORMATS)}, or pass format=")
    if format not in ("dot", "gv"):
        _dot_program(format)
    return format


def _dot_program(format):
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizNotFoundError(
            f"viz: drawing {format.upper()} needs Graphviz's `dot` program, which is not on PATH. Install "
            f"Graphviz (apt install graphviz, brew install graphviz, conda install graphviz; it is not a "
            f"pip package), or write DOT text instead, which needs nothing: graph.save('graph.dot'), "
            f"then render it anywhere Graphviz is (dot -Tsvg graph.dot -o graph.svg)")
    return dot


def _hook_once(t, node, graph_ref):
    def hook(grad):
        handle.remove()
        if graph_ref() is not None:
            node.grad_norm = tracing.norm(grad._data if isinstance(grad, Tensor) else np.asarray(grad))
    handle = t.register_hook(hook)


def _small_value(data):
    data = np.asarray(data)
    return data.item() if data.size == 1 and data.dtype.kind in "biuf" else None


def _label(n):
    lines = [n.name]
    if n.kind in ("input", "constant") and n.value is not None:
        lines = [f"{n.name} {n.value:.4g}" if isinstance(n.value, float) else f"{n.name} {n.value}"]
    elif n.kind == "module" and n.value:
        lines.append(n.value)
    if n.shape is not None:
        lines.append(f"{n.shape} {n.dtype}" if n.dtype is not None else str(n.shape))
    if n.grad_norm is not None:
        lines.append(f"grad norm {n.grad_norm:.4g}")
    return "\n".join(lines)


_STYLES = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#dbe8fb"',
    "module": 'shape=box3d, style=filled, fillcolor="#c6dbef"',
    "param": 'shape=box, style=filled, fillcolor="#d9f0d3"',
    "leaf": 'shape=box, style=filled, fillcolor="#fde5c8"',
    "input": 'shape=ellipse, style=filled, fillcolor="#eeeeee"',
    "constant": 'shape=ellipse, style=filled, fillcolor="#f7f7f7", fontsize=9',
}


def _style(n, is_output):
    return f'label="{_escape(_label(n))}", {_STYLES[n.kind]}' + (", penwidth=2.5" if is_output else "")


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _module_label(name, classes):
    return f"{name} ({classes[name]})" if name in classes else name


def _clusters(boxes, classes):
    """Nested `subgraph cluster_...` boxes, one per module path, with their nodes inside."""
    paths = sorted({p[:i + 1] for p in boxes for i in range(len(p))})
    lines, open_, names = [], [], {}
    for path in [()] + paths:
        while open_ and open_[-1] != path[:len(open_[-1])]:
            open_.pop()
            lines.append("  " * (len(open_) + 1) + "}")
        if path:
            names[path] = f"cluster_{len(names)}"
            indent = "  " * (len(open_) + 1)
            label = _escape(_module_label(path[-1], classes))
            lines.append(f'{indent}subgraph {names[path]} {{ label="{label}"; style="rounded,dashed"; color="#777777";')
            open_.append(path)
        lines += ["  " * len(open_) + line for line in boxes.get(path, [])]
    while open_:
        open_.pop()
        lines.append("  " * (len(open_) + 1) + "}")
    return lines
