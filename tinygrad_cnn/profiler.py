"""Where the time goes, op by op:

    with tinygrad_cnn.profile() as prof:
        for x, y in batches:
            loss = model(x).cross_entropy(y)
            opt.zero_grad(); loss.backward(); opt.step()
    print(prof.table(sort_by="total"))       # per op type; per_instance=True: per call site
    prof.export_chrome_trace("trace.json")   # open in chrome://tracing or ui.perfetto.dev

Each op's forward and backward are timed alone (a backward's time excludes the ops it records
under create_graph). What the ops do not cover is reported as time outside ops: Python between
ops, data loading, the optimizer, the walk's own bookkeeping (summing the gradients of a tensor
used twice), and the profiler itself. It also counts the bytes each op saved for backward, the
norm of the gradient reaching each op's output, and the share of exactly-zero entries in the
gradients an op passes to its inputs (dead ReLUs, the losers of max-pool windows).
Off, it costs nothing: no tracer is installed.
"""
import json
import os
import time
import weakref
from collections import namedtuple

import numpy as np

from . import tracing
from .tensor import Tensor

__all__ = ["profile", "OpStats"]

_Event = namedtuple("_Event", "key phase start duration self_time saved grad_norm zeros entries")

OpStats = namedtuple("OpStats", "name site calls backward_calls forward_ms backward_ms total_ms share "
                                "saved_bytes grad_norm zero_share")
OpStats.__doc__ = """One row of profile.stats(): an op type (site None) or, per instance, one call
site (a tracing.Site: file, line, modules). forward_ms/backward_ms: time in the op alone, summed;
share: total_ms over the profiled wall time; saved_bytes: summed over the recorded calls;
grad_norm: mean over backward calls of the norm of the gradient reaching the op's output;
zero_share: exactly-zero entries over all entries of the gradients it passed to its inputs."""

SORT_KEYS = {"total": lambda s: -s.total_ms, "forward": lambda s: -s.forward_ms,
             "backward": lambda s: -s.backward_ms, "calls": lambda s: -s.calls,
             "saved": lambda s: -s.saved_bytes, "grad_norm": lambda s: -(s.grad_norm or 0),
             "zero_share": lambda s: -(s.zero_share or 0), "name": lambda s: (s.name, str(s.site or ""))}


class profile:
    """Context manager recording every op's forward and backward. It may be entered again
    (`with prof:` around each step you want): the figures add up."""
    order = 2  # innermost: the other tools' checks are not timed as the op's

    def __init__(self):
        self.events = []
        self.wall = 0.0        # seconds inside the `with` blocks
        self.blocks = []       # (start, duration) of each block, for the trace
        self._keys = weakref.WeakKeyDictionary()  # ctx -> (op name, site)
        self._open = []        # time of the traced ops nested in each running one

    def __enter__(self):
        tracing.install(self)
        self._entered = time.perf_counter()
        return self

    def __exit__(self, *exc):
        tracing.uninstall(self)
        end = time.perf_counter()
        self.blocks.append((self._entered, end - self._entered))
        self.wall += end - self._entered
        self._open.clear()

    # ---- the tracer ----
    def _timed(self, run):
        self._open.append(0.0)
        start = time.perf_counter()
        try:
            result = run()
        finally:
            duration = time.perf_counter() - start
            nested = self._open.pop()
            if self._open:
                self._open[-1] += duration
        return result, start, duration, duration - nested

    def forward(self, op, inputs, kwargs, run):
        key = (op.__name__, tracing.call_site())
        out, start, duration, own = self._timed(run)
        ctx, saved = out._ctx, 0
        if ctx is not None:  # recorded: what it keeps until backward
            self._keys[ctx] = key
            saved = saved_bytes(ctx.saved)
        self.events.append(_Event(key, "forward", start, duration, own, saved, None, 0, 0))
        return out

    def backward(self, ctx, output, grad, run):
        grads, start, duration, own = self._timed(run)
        key = self._keys.get(ctx) or (type(ctx).__name__, None)
        zeros = entries = 0
        for g in grads if type(grads) is tuple else (grads,):
            if g is not None:
                g = g._data if isinstance(g, Tensor) else np.asarray(g)
                zeros += g.size - np.count_nonzero(g)
                entries += g.size
        norm = tracing.norm(grad._data if isinstance(grad, Tensor) else np.asarray(grad))
        self.events.append(_Event(key, "backward", start, duration, own, 0, norm, zeros, entries))
        return grads

    # ---- the figures ----
    @property
    def total_ms(self):
        """Time in ops (forward and backward, each op alone), in ms."""
        return 1000 * sum(e.self_time for e in self.events)

    @property
    def wall_ms(self):
        return 1000 * self.wall

    def stats(self, sort_by="total", per_instance=False):
        """One OpStats per op type (per call site with per_instance=True), sorted."""
        if sort_by not in SORT_KEYS:
            raise ValueError(f"profile: cannot sort by {sort_by!r}; use one of {', '.join(SORT_KEYS)}")
        rows = {}
        for e in self.events:
            key = e.key if per_instance else e.key[0]
            r = rows.setdefault(key, [0, 0, 0.0, 0.0, 0, [], 0, 0])
            if e.phase == "forward":
                r[0] += 1
                r[2] += e.self_time
                r[4] += e.saved
            else:
                r[1] += 1
                r[3] += e.self_time
                r[5].append(e.grad_norm)
                r[6] += e.zeros
                r[7] += e.entries
        wall = self.wall or float("inf")
        out = [OpStats(key[0] if per_instance else key, key[1] if per_instance else None, fc, bc,
                       1000 * ft, 1000 * bt, 1000 * (ft + bt), (ft + bt) / wall, saved,
                       float(np.mean(norms)) if norms else None, zeros / entries if entries else None)
               for key, (fc, bc, ft, bt, saved, norms, zeros, entries) in rows.items()]
        return sorted(out, key=SORT_KEYS[sort_by])

    def table(self, sort_by="total", per_instance=False, limit=None):
        """The stats as a text table, with the time outside ops at the end."""
        rows = self.stats(sort_by, per_instance)[:limit]
        header = ("op", "calls", "forward ms", "backward ms", "% of time", "saved/call", "grad norm", "zero grad")
        body = [(_row_name(r), str(r.calls), f"{r.forward_ms:.3f}", f"{r.backward_ms:.3f}", f"{100 * r.share:.1f}%",
                 _size(r.saved_bytes / r.calls) if r.calls else "-",
                 f"{r.grad_norm:.4g}" if r.grad_norm is not None else "-",
                 f"{100 * r.zero_share:.1f}%" if r.zero_share is not None else "-") for r in rows]
        widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
        fmt = lambda line: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
        outside = self.wall_ms - self.total_ms
        lines = [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(line) for line in body] + [
            f"ops: {self.total_ms:.3f} ms of {self.wall_ms:.3f} ms profiled; outside ops (Python between ops, data, "
            f"optimizer, gradient sums, this profiler): {outside:.3f} ms",
            "grad norm: mean norm of the gradient reaching the op's output; zero grad: exactly-zero share of "
            "the gradients it passed to its inputs"]
        return "\n".join(lines)

    __str__ = table

    def export_chrome_trace(self, path):
        """Write the events as Chrome trace JSON (chrome://tracing, ui.perfetto.dev), atomically."""
        starts = [s for s, _ in self.blocks] + [e.start for e in self.events]
        origin = min(starts) if starts else 0.0
        us = lambda t: round(1e6 * t, 3)
        pid = os.getpid()
        events = [{"name": "profiled block", "cat": "profile", "ph": "X", "ts": us(s - origin), "dur": us(d),
                   "pid": pid, "tid": 0} for s, d in self.blocks]
        for e in self.events:
            name, site = e.key
            args = {"site": str(site) if site is not None else None}
            if site is not None and site.modules:
                args["module"] = site.module
            if e.phase == "forward":
                args["saved bytes"] = e.saved
            else:
                args.update({"grad norm": e.grad_norm, "zero share": e.zeros / e.entries if e.entries else None})
            events.append({"name": name if e.phase == "forward" else f"{name} backward", "cat": e.phase, "ph": "X",
                           "ts": us(e.start - origin), "dur": us(e.duration), "pid": pid, "tid": 0, "args": args})
        text = json.dumps({"traceEvents": events, "displayTimeUnit": "ms"})
        tracing.write_atomically(os.fspath(path), text.encode())
        return path


def saved_bytes(saved):
    """The bytes of the arrays in ctx.saved (nested tuples too), each array once."""
    seen, total, stack = set(), 0, list(saved or ())
    while stack:
        s = stack.pop()
        if isinstance(s, (tuple, list)):
            stack.extend(s)
        elif isinstance(s, np.ndarray) and id(s) not in seen:
            seen.add(id(s))
            total += s.nbytes
    return total


def _row_name(r):
    if r.site is None:
        return r.name
    module = f" [{r.site.modules[-1]}]" if r.site.modules else ""
    return f"{r.name}{module} {r.site.short()}"


def _size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
