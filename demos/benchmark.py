"""Benchmark tinygrad_cnn on the tutorial's CNN, against the tutorial's loop code and PyTorch.

The network: conv 3x3x8 (no bias) -> max-pool 2 -> flatten -> dense 1352->10 -> softmax
cross-entropy, float32. Also timed: the same batch-1 step with the loss written from generic
ops (log_softmax, integer-array indexing, mean) instead of the fused cross_entropy, the deep
model of demos/mnist_cnn.py at batch 64, and a Hessian-vector product of the tutorial
network's loss (double backward: the gradient of grad(L) . v with respect to the parameters).
"tutorial" is the from-scratch tutorial's hand-written loop layers (tinygrad_cnn/reference.py, float64 as written, timed on fewer steps). PyTorch (CPU) is optional
and never a dependency: without it its column says "not installed". By default it runs in a
process of its own. The timings are taken in --repeats rounds, ours then PyTorch's in each, so
that a slow spell of a shared machine hits both sides; each timed figure is the median over the
rounds (each timed after warm-up). Memory is measured once, before the timings. Ratios are our
figure / their figure.

--contended runs every row a second time while a competing CPU-bound process (a Python busy
loop in a session of its own, as a program started from another terminal) keeps a core busy,
and prints a second table, with the deep model's slowdown (contended / idle). The benchmark
starts and stops that process itself; it also ends by itself if the benchmark is killed.

  python demos/benchmark.py                  # default counts: about a minute
  python demos/benchmark.py --quick          # tiny counts: checks that it runs; timings are noise
  python demos/benchmark.py --json out.json  # also write the numbers as JSON
  python demos/benchmark.py --contended      # idle, then with a competing busy process
"""
import argparse
import contextlib
import importlib.util
import itertools
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from operator import ge, le
from pathlib import Path

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
if __name__ == "__main__":  # --blas-threads must reach the environment before numpy loads OpenBLAS
    _early = argparse.ArgumentParser(add_help=False)
    _early.add_argument("--blas-threads", type=int)
    _threads = _early.parse_known_args()[0].blas_threads
    if _threads:
        os.environ.update(dict.fromkeys(THREAD_VARS, str(_threads)))

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))         # mnist_cnn.tutorial_net
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # a checkout without `pip install -e .`
from mnist_cnn import deep_net, prepare, tutorial_net  # noqa: E402
from tinygrad_cnn import Tensor, autograd, get_num_threads, no_grad, optim  # noqa: E402
from tinygrad_cnn.blas import policy as blas_policy  # noqa: E402
from tinygrad_cnn.reference import ReferenceCNN  # noqa: E402

EPOCH_STEPS = 938  # ceil(60000 / 64)
POOL = 6400        # images that every benchmark cycles through
DEFAULTS = dict(steps=300, repeats=5, tutorial_steps=20, memory_steps=1000, chain=10000)
QUICK = dict(steps=4, repeats=2, tutorial_steps=1, memory_steps=10, chain=300)
ROWS = [  # key, label, lower is better (None: no ratio), [(target, compared: ours or ours/their, op, bound)]
    ("step_b1", "train step, batch 1 (ms)", True, [("<=0.28 ms", "ours", le, 0.28),
                                                   (">=100x tutorial", "tutorial", le, 0.01),
                                                   (">=2x PyTorch", "pytorch", le, 0.5)]),
    ("epoch_b64", f"epoch 60k, b64 (s; {EPOCH_STEPS} x step time)", True,
     [("<=3 s", "ours", le, 3), ("ours/PyTorch <=0.7", "pytorch", le, 0.7)]),
    ("step_b1_generic", "train step, b1, generic loss (ms)", True, [("ours/PyTorch <=0.5", "pytorch", le, 0.5)]),
    ("deep_b64", "deep model train step, b64 (ms)", True, []),
    ("hvp_b64", "Hessian-vector product, b64 (ms)", True, []),
    ("faults_b64", "page faults per b64 step", None, []),
    ("infer_b1000", "inference, b1000 (img/s)", False, [(">=40,000 img/s", "ours", ge, 40000)]),
    ("tape_us", "tape, fwd+bwd per op (us)", True, []),
    ("tape_overhead_us", "  of which overhead beyond numpy (us)", True, [("<=5 us", "ours", le, 5)]),
    ("rss_warm", "RSS after warm-up (MB)", None, []),
    ("rss_end", "RSS after {memory_steps} b64 steps (MB)", None, []),
    ("rss_growth", "RSS growth (MB)", None, [("<=5 MB", "ours", le, 5)]),
    ("rss_peak", "peak RSS of the run, ru_maxrss (MB)", None, []),
]
SLOWDOWN = ("deep_b64_slowdown", "deep b64 step, contended / idle", None, [("<=1.3", "ours", le, 1.3)])
# The competing process: busy until its parent (the benchmark) is gone, whatever ended it
COMPETITOR = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n    for _ in range(10 ** 5):\n        pass\n"


class Ours:
    no_grad, grad, deep_net = no_grad, staticmethod(autograd.grad), staticmethod(deep_net)

    def net(self): return tutorial_net()
    def blas_threads(self): return get_num_threads() or float("nan")  # None: not OpenBLAS
    def labels(self, y): return y
    def sgd(self, model, lr, momentum): return optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    def tensor(self, a, requires_grad=False): return Tensor(a, requires_grad=requires_grad)
    def loss(self, logits, y): return logits.cross_entropy(y)
    def generic_loss(self, logits, y): return -logits.log_softmax(1)[np.arange(len(y)), y].mean()


class Torch:
    def __init__(self, torch):
        self.torch, self.no_grad, self.grad = torch, torch.no_grad, torch.autograd.grad

    def net(self):
        nn = self.torch.nn
        return nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1352, 10))

    def deep_net(self):  # demos/mnist_cnn.py's deep_net
        nn = self.torch.nn
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.MaxPool2d(2),
                             nn.ReLU(), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Dropout(0.25),
                             nn.Linear(128, 10))

    def blas_threads(self): return self.torch.get_num_threads()
    def labels(self, y): return self.torch.from_numpy(y)
    def sgd(self, model, lr, momentum): return self.torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    def tensor(self, a, requires_grad=False): return self.torch.from_numpy(a).requires_grad_(requires_grad)
    def loss(self, logits, y): return self.torch.nn.functional.cross_entropy(logits, y)
    def generic_loss(self, logits, y): return -logits.log_softmax(1)[self.torch.arange(len(y)), y].mean()


def per_call(fn, inputs, calls, warmup):
    """Seconds per fn(*args), over `calls` calls cycling through `inputs`, after `warmup` calls."""
    feed = itertools.cycle(inputs)
    for _ in range(warmup):
        fn(*next(feed))
    start = time.perf_counter()
    for _ in range(calls):
        fn(*next(feed))
    return (time.perf_counter() - start) / calls


def trainer(fw, lr, momentum=0.0, net=None, generic=False):
    model = (net or fw.net)()
    opt, loss_fn = fw.sgd(model, lr, momentum), fw.generic_loss if generic else fw.loss

    def step(x, y):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, step


def hvp(fw, model, x, y, v):
    """The Hessian of the loss with respect to the parameters, times v (one array per
    parameter): the gradient of grad(L) . v, by differentiating the first backward."""
    params = list(model.parameters())
    grads = fw.grad(fw.loss(model(x), y), params, create_graph=True)
    return fw.grad(sum((g * vi).sum() for g, vi in zip(grads, v)), params)


def chain(x0, w, b, n):
    """n small elementwise ops (mul, add, tanh in turn) on a tiny tensor, then backward."""
    x = x0
    for i in range(n):
        x = x * w if i % 3 == 0 else x + b if i % 3 == 1 else x.tanh()
    x.sum().backward()
    grads = [leaf.grad for leaf in (x0, w, b)]
    x0.grad = w.grad = b.grad = None
    return grads


def numpy_chain(x0, w, b, n):
    """`chain`'s arithmetic, forward and backward, by hand in plain numpy: the cost of the
    numbers without a framework, which the tape overhead is measured beyond."""
    values = [x0]
    for i in range(n):
        x = values[-1]
        values.append(x * w if i % 3 == 0 else x + b if i % 3 == 1 else np.tanh(x))
    grad, grad_w, grad_b = np.ones_like(x0), np.zeros_like(w), np.zeros_like(b)
    for i in reversed(range(n)):
        if i % 3 == 0:
            grad_w += grad * values[i]
            grad = grad * w
        elif i % 3 == 1:
            grad_b += grad
        else:
            grad = grad * (1 - values[i + 1] * values[i + 1])
    return grad, grad_w, grad_b


def rss_mb():
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return float("nan")  # no /proc (not Linux): only the peak is known


def batches(fw, data, size):
    return [(fw.tensor(data["images"][i:i + size]), fw.labels(data["labels"][i:i + size]))
            for i in range(0, POOL - size + 1, size)]


def measure(fw, data, a):
    """One round of the timed figures of one framework, as {row key: value}."""
    warm, fig = max(2, a.steps // 10), {}
    fig["step_b1"] = 1e3 * per_call(trainer(fw, 0.005)[1], batches(fw, data, 1), a.steps, warm)
    fig["step_b1_generic"] = 1e3 * per_call(trainer(fw, 0.005, generic=True)[1], batches(fw, data, 1), a.steps, warm)
    deep, threads = trainer(fw, 0.01, 0.9, net=fw.deep_net)[1], []
    fig["deep_b64"] = 1e3 * per_call(lambda x, y: (deep(x, y), threads.append(fw.blas_threads())),
                                     batches(fw, data, 64), warm, warm)
    fig["blas_threads"] = statistics.mean(threads)
    model, rng = fw.net(), np.random.default_rng(0)
    v = [fw.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)) for p in model.parameters()]
    fig["hvp_b64"] = 1e3 * per_call(lambda x, y: hvp(fw, model, x, y, v), batches(fw, data, 64), warm, 2)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fig["epoch_b64"] = EPOCH_STEPS * per_call(trainer(fw, 0.05, 0.9)[1], batches(fw, data, 64), a.steps, warm)
    fig["faults_b64"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (warm + a.steps)
    with fw.no_grad():
        inputs = [(x,) for x, _ in batches(fw, data, 1000)]
        fig["infer_b1000"] = 1000 / per_call(trainer(fw, 0.05)[0], inputs, max(2, a.steps // 10), 2)
    leaves = [fw.tensor(np.linspace(-1, 1, 4, dtype=np.float32) * s, requires_grad=True) for s in (1, 0.9, 0.01)]
    fig["tape_us"] = 1e6 * per_call(chain, [(*leaves, a.chain)], 1, 1) / a.chain
    arrays = [np.linspace(-1, 1, 4, dtype=np.float32) * s for s in (1, 0.9, 0.01)]
    fig["tape_overhead_us"] = fig["tape_us"] - 1e6 * per_call(numpy_chain, [(*arrays, a.chain)], 1, 1) / a.chain
    return fig


def measure_memory(fw, data, a):
    """Resident memory before and after a.memory_steps batch-64 training steps, and the peak."""
    fig = {}
    feed, step = itertools.cycle(batches(fw, data, 64)), trainer(fw, 0.05, 0.9)[1]
    for _ in range(max(2, a.memory_steps // 10)):
        step(*next(feed))
    fig["rss_warm"] = rss_mb()
    for _ in range(a.memory_steps):
        step(*next(feed))
    fig["rss_end"] = rss_mb()
    fig["rss_growth"] = fig["rss_end"] - fig["rss_warm"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    fig["rss_peak"] = peak / 2**20 if sys.platform == "darwin" else peak / 1024
    return fig


def tutorial_step_ms(data, a):
    net = ReferenceCNN()  # float64, fed raw uint8 images that it scales itself, as the tutorial does
    pairs = list(zip(data["raw"], data["labels"].tolist()))
    return 1e3 * statistics.median(per_call(lambda img, y: net.train(img, y, 0.005), pairs, a.tutorial_steps, 1)
                                   for _ in range(a.repeats))


def load_data(data_dir):
    raw, note = None, "RANDOM data of MNIST's shape (set MNIST_DIR or --data-dir for real MNIST)"
    if data_dir:
        from tinygrad_cnn.datasets import load_mnist
        try:
            raw, labels = (a[:POOL].copy() for a in load_mnist("train", data_dir))
            note = f"real MNIST, the first {POOL} training images, from {data_dir}"
        except (OSError, ValueError) as e:  # MNISTError is a ValueError
            note = f"RANDOM data: could not read MNIST from {data_dir}: {str(e).splitlines()[0]}"
    if raw is None:
        rng = np.random.default_rng(0)
        raw, labels = rng.integers(0, 256, (POOL, 28, 28), np.uint8), rng.integers(0, 10, POOL)
    images, labels = prepare(raw, labels, len(raw))
    return dict(images=images, labels=labels, raw=raw, note=note)


def machine_info(torch_version, a, load):
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas['name']} {blas.get('version', '?')}"
    except (TypeError, KeyError):  # numpy < 1.26 has no mode="dicts"
        blas = "unknown (np.show_config() prints it)"
    env = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in THREAD_VARS)
    return [f"machine: {os.cpu_count()} cores (os.cpu_count()), {platform.machine()} {platform.system()}, "
            f"Python {platform.python_version()}, load average {load[0]:.2f} at start, {load[1]:.2f} at end",
            f"numpy {np.__version__}, BLAS {blas}; {env} (unset: tinygrad_cnn's thread policy decides, next line)",
            f"PyTorch {torch_version}: torch.set_num_threads({a.torch_threads}) (--torch-threads, default "
            f"os.cpu_count()); measured in " + ("its own process with glibc's default allocator (--torch-process)"
                                                if a.torch_process == "separate" else
                                                "this process, with the allocator as tinygrad_cnn set it")
            if torch_version else "PyTorch: not installed"]


def ratio(ours, theirs, lower_better):
    """(ours / theirs, the same as text with the speed-up), or (None, "-")."""
    if lower_better is None or not isinstance(theirs, float) or min(ours, theirs) <= 0:
        return None, "-"
    r = ours / theirs
    faster = 1 / r if lower_better else r
    return r, f"{r:.3g} ({faster:.3g}x faster)" if faster >= 1 else f"{r:.3g} ({1 / faster:.3g}x slower)"


def fmt(v):
    if v is None or isinstance(v, str):
        return v or "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, help="timed training steps per round; inference times steps/10 batches")
    p.add_argument("--repeats", type=int, help="rounds of timed runs (ours, then PyTorch's); each figure is the median over them")
    p.add_argument("--tutorial-steps", type=int, help="steps per repeat of the (slow) tutorial loop code")
    p.add_argument("--memory-steps", type=int, help="batch-64 training steps of the memory check")
    p.add_argument("--chain", type=int, help="ops in the tape micro-benchmark")
    p.add_argument("--quick", action="store_true", help=f"tiny counts {QUICK}, for tests: timings are noise")
    p.add_argument("--data-dir", default=os.environ.get("MNIST_DIR"),
                   help="MNIST directory (default $MNIST_DIR; without one: random data of MNIST's shape)")
    p.add_argument("--blas-threads", type=int, help=f"set {' and '.join(THREAD_VARS)} before numpy is imported "
                                                    "(command line only; default: leave them as they are)")
    p.add_argument("--torch-threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: cores)")
    p.add_argument("--torch-process", choices=["separate", "same"], default="separate",
                   help="measure PyTorch in its own process with glibc's default allocator (default), or in this "
                        "one, where importing tinygrad_cnn has tuned the allocator for both")
    p.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-memory", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--contended", action="store_true",
                   help="run every row again while a competing CPU-bound process runs, and print both tables")
    p.add_argument("--json", metavar="PATH", help="also write the numbers here as JSON")
    a = p.parse_args(argv)
    for key, default in (QUICK if a.quick else DEFAULTS).items():
        setattr(a, key, default if getattr(a, key) is None else getattr(a, key))
    if min(getattr(a, key) for key in DEFAULTS) < 1:
        p.error(f"{', '.join('--' + k.replace('_', '-') for k in DEFAULTS)} must be >= 1")
    if a.blas_threads and any(os.environ.get(v) != str(a.blas_threads) for v in THREAD_VARS):
        p.error("--blas-threads works only from the command line (numpy was already imported)")
    return a


def compare(a, ours, tut, theirs, rows=ROWS):
    """The printed table's rows and the JSON report's rows, with ratios and targets."""
    table, report = [], []
    for key, label, lower_better, goals in rows:
        label = label.format(memory_steps=a.memory_steps)
        o, tu, th = ours[key], tut if key == "step_b1" else None, theirs.get(key, "not installed")
        (r_tut, r_tut_text), (r_th, r_th_text) = ratio(o, tu, lower_better), ratio(o, th, lower_better)
        compared = dict(ours=o, tutorial=r_tut, pytorch=r_th)
        targets = [dict(target=text, met=None if compared[what] is None else bool(op(compared[what], bound)))
                   for text, what, op, bound in goals]
        table.append([label, fmt(o), fmt(tu), fmt(th), r_tut_text, r_th_text, "; ".join(
            f"{t['target']}: {'n/a' if t['met'] is None else 'yes' if t['met'] else 'NO'}" for t in targets) or "-"])
        report.append(dict(key=key, label=label, lower_is_better=lower_better, ours=o, tutorial=tu, pytorch=th,
                           ours_over_tutorial=r_tut, ours_over_pytorch=r_th, targets=targets))
    return table, report


def import_torch():
    try:
        import torch
    except ImportError:  # not installed, or installed but broken
        return None
    return torch


def measure_torch(torch, data, a, memory):
    """One round of PyTorch's figures, after its memory figures if `memory`."""
    torch.manual_seed(0)
    torch.set_num_threads(a.torch_threads)
    fig = measure_memory(Torch(torch), data, a) if memory else {}
    return {**fig, **measure(Torch(torch), data, a)}


def torch_in_own_process(a, memory):
    """measure_torch in a fresh process with glibc's default allocator settings, as a PyTorch
    user runs it: importing tinygrad_cnn tunes malloc for the whole process (see
    tinygrad_cnn/malloc.py), which would speed PyTorch up too (--torch-process same).
    Returns PyTorch's version (None if it does not import) and its figures."""
    counts = [f"--{k.replace('_', '-')}={getattr(a, k)}" for k in DEFAULTS]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "torch.json")
        cmd = [sys.executable, __file__, "--torch-only", "--json", out, f"--torch-threads={a.torch_threads}", *counts]
        cmd += [f"--data-dir={a.data_dir}"] if a.data_dir else []
        cmd += ["--torch-memory"] if memory else []
        subprocess.run(cmd, check=True, env={**os.environ, "TINYGRAD_CNN_MALLOC": "default"})
        with open(out) as f:
            child = json.load(f)
    return child["version"], child["figures"]


def medians(rounds):
    return {key: statistics.median(r[key] for r in rounds if key in r) for key in rounds[0]}


def run_mode(a, data):
    """Every row once, ours and PyTorch's alternating over the rounds: (ours, the tutorial's
    batch-1 step, theirs ({} without PyTorch), PyTorch's version or None, load averages)."""
    load = os.getloadavg()[0]
    np.random.seed(0)
    ours_memory = measure_memory(Ours(), data, a)  # first, as PyTorch's is in its process
    torch = import_torch() if a.torch_process == "same" else None
    maybe_torch = torch is not None or a.torch_process == "separate" and importlib.util.find_spec("torch")
    torch_version, ours_rounds, theirs_rounds = None, [], []
    for r in range(a.repeats):
        ours_rounds.append(measure(Ours(), data, a))
        if torch:
            torch_version, theirs = torch.__version__, measure_torch(torch, data, a, memory=r == 0)
        elif maybe_torch:
            torch_version, theirs = torch_in_own_process(a, memory=r == 0)
            maybe_torch = torch_version is not None  # None: torch is there but does not import
        if torch_version:
            theirs_rounds.append(theirs)
    ours = {**medians(ours_rounds), **ours_memory}
    theirs = medians(theirs_rounds) if theirs_rounds else {}
    return ours, tutorial_step_ms(data, a), theirs, torch_version, (load, os.getloadavg()[0])


def _terminated(signum, frame):
    sys.exit(128 + signum)  # unwinds through `finally`, which stops the competitor


@contextlib.contextmanager
def competitor(settle=1.0):
    """One CPU-bound process for the length of the with block, in a session of its own (as a
    program started from another terminal: on Linux with autogroup scheduling it gets its own
    share of the CPU). Stopped on leaving the block, also by an exception, Ctrl-C or SIGTERM;
    if this process is killed outright, it notices that its parent is gone and ends within
    milliseconds. Waits `settle` seconds first, so that the BLAS thread policy has seen it."""
    proc = subprocess.Popen([sys.executable, "-c", COMPETITOR, str(os.getpid())], start_new_session=True)
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: Ctrl-C and exceptions are still covered
        previous = None
    try:
        time.sleep(settle)
        yield proc
    finally:
        proc.kill()
        proc.wait()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def print_table(a, table, torch_version):
    header = ["measure", "ours", "tutorial (f64)", f"PyTorch ({a.torch_threads} thr)" if torch_version else "PyTorch",
              "ours/tutorial", "ours/PyTorch", "target met? (ours)"]
    widths = [max(len(row[i]) for row in [header] + table) for i in range(len(header))]
    for i, row in enumerate([header] + table):
        print(" | ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("-+-".join("-" * w for w in widths))


def mode_line(name, ours, load):
    threads = ours.get("blas_threads")
    threads = "unknown (not OpenBLAS)" if threads is None or math.isnan(threads) else f"{threads:.2g} on average"
    return (f"{name}: load average {load[0]:.2f} at start, {load[1]:.2f} at end; "
            f"our BLAS threads during the deep-model row: {threads}")


def main(argv=None):
    a = parse_args(argv)
    if a.torch_only:  # the child process of torch_in_own_process
        torch = import_torch()
        theirs = measure_torch(torch, load_data(a.data_dir), a, a.torch_memory) if torch else {}
        with open(a.json, "w") as f:
            json.dump(dict(version=torch and torch.__version__, figures=theirs), f)
        return theirs
    data = load_data(a.data_dir)
    ours, tut, theirs, torch_version, load = run_mode(a, data)
    contended = None
    if a.contended:
        with competitor(0.3 if a.quick else 1.0) as proc:
            c_ours, c_tut, c_theirs, _, c_load = run_mode(a, data)
        for fig, idle in ((c_ours, ours), (c_theirs, theirs)):
            if "deep_b64" in fig and "deep_b64" in idle:
                fig[SLOWDOWN[0]] = fig["deep_b64"] / idle["deep_b64"]
        contended = dict(pid=proc.pid, ours=c_ours, tut=c_tut, theirs=c_theirs, load=c_load)

    table, report = compare(a, ours, tut, theirs)
    info = machine_info(torch_version, a, load) + [blas_policy(), f"data: {data['note']}"]
    print("\n".join(info))
    print(f"counts: {a.steps} steps x {a.repeats} rounds, ours then PyTorch (median), tutorial {a.tutorial_steps} steps, "
          f"memory {a.memory_steps} steps, chain {a.chain} ops; deep model and Hessian-vector product "
          f"{max(2, a.steps // 10)} steps" + (" -- QUICK: timings are noise" if a.quick else ""))
    modes = [mode_line("idle (no competing process started)", ours, load)]
    print(modes[0])
    print_table(a, table, torch_version)
    if contended:
        c_table, c_report = compare(a, contended["ours"], contended["tut"], contended["theirs"], ROWS + [SLOWDOWN])
        modes.append(mode_line(f"contended (one CPU-bound competing process, pid {contended['pid']}, in its own "
                               f"session)", contended["ours"], contended["load"]))
        print(modes[1])
        print_table(a, c_table, torch_version)
    print(f"ratio = our figure / their figure. Training step: forward, cross-entropy, zero_grad, backward, SGD step;"
          f" batch 1 lr 0.005, batch 64 lr 0.05 momentum 0.9; the generic loss is -log_softmax(logits)[arange(N), "
          f"labels].mean(); the deep model (demos/mnist_cnn.py) with SGD lr 0.01 momentum 0.9.\nHessian-vector "
          f"product: grad(grad(L) . v) over the tutorial network's parameters, both by autograd (create_graph=True)."
          f"\nTape: {a.chain} ops (mul, add, tanh in turn) on shape "
          f"(4,), forward + backward time / forward ops; the overhead is that minus the same arithmetic in plain numpy.")
    if ours["faults_b64"] > 100:
        print(f"note: {ours['faults_b64']:,.0f} page faults per batch-64 step: freed buffers go back to the OS and "
              f"are faulted in again each step (kernel time, included above); see tinygrad_cnn/malloc.py.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(info=info, modes=modes, quick=a.quick, real_data=data["note"].startswith("real"),
                           counts={k: getattr(a, k) for k in DEFAULTS}, rows=report,
                           blas_threads=ours.get("blas_threads"),
                           contended=contended and dict(competitor_pid=contended["pid"], rows=c_report,
                                                        blas_threads=contended["ours"].get("blas_threads"))),
                      f, indent=1)
    return report


if __name__ == "__main__":
    main()
