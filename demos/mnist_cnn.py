"""Train a CNN on real MNIST with tinygrad_cnn.

With no arguments this is the from-scratch tutorial's experiment, written with the Tensor API:
conv 3x3 (8 filters) -> max-pool 2 -> dense 1352->10 -> softmax cross-entropy, SGD lr 0.005,
batch size 1, the first 1,000 training and test images, 3 epochs. Its gradients come from the
generic backward pass, not from hand-written layers.

  python demos/mnist_cnn.py                                        # the tutorial's run
  python demos/mnist_cnn.py --train-size 60000 --test-size 10000   # the same net, all of MNIST
  python demos/mnist_cnn.py --model deep --save deep.npz           # a deeper CNN, >= 99% test accuracy
  python demos/mnist_cnn.py --model deep --epochs 0 --load deep.npz  # evaluate saved weights only
  python demos/mnist_cnn.py --plot curves.png --report report/     # pictures of the run
  python demos/mnist_cnn.py --graph step.svg --profile             # the tape: one step's graph, a per-op profile
  python demos/mnist_cnn.py --detect-anomaly --lr 1e6              # the first NaN or inf, named with its line

A mistake in the flags or files ends in a message naming the flag or file, never a traceback;
exit status 2 for a bad flag (an output that cannot be written included), 1 for a file or data
problem or a missing tool, 130 for Ctrl-C.
"""
import argparse
import base64
import contextlib
import html
import math
import os
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

try:
    import tinygrad_cnn  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinygrad_cnn import AnomalyError, Tensor, detect_anomaly, nn, no_grad, optim, profile, viz
from tinygrad_cnn.datasets import FILES, MNISTError, MNISTNotFoundError, load_mnist
from tinygrad_cnn.progress import progress

PROG = "mnist_cnn.py"


def tutorial_net():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, bias=False, init="tutorial"),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(13 * 13 * 8, 10, init="tutorial"),
    )


def deep_net():
    # Pooling before ReLU gives the same result (both are monotone) on 4x fewer elements.
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(32, 64, 3), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(128, 10),
    )


NETS = {"tutorial": tutorial_net, "deep": deep_net}
DEFAULTS = {  # each model's flags when not given; final_lr_factor scales the lr in the last epoch
    "tutorial": dict(train_size=1000, test_size=1000, epochs=3, batch_size=1, optimizer="sgd", lr=0.005,
                     final_lr_factor=1.0),
    "deep": dict(train_size=60000, test_size=10000, epochs=3, batch_size=64, optimizer="adam", lr=1e-3,
                 final_lr_factor=0.3),
}


# --- flags ---------------------------------------------------------------------------------------

class UserError(ValueError):
    """A mistake in the flags, files or data the user gave: shown as a message, never a traceback."""
    status = 1


class FlagError(UserError):
    """A flag's value found wrong after parsing (an output that cannot be written): exit 2, as argparse's."""
    status = 2


class Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse would print its whole usage (seven lines here) above the one line that matters.
        self.exit(2, f"{self.prog}: error: {message}\n  `{self.prog} --help` lists every flag\n")


def whole(lo, hi=None, why=""):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lo or hi is not None and value > hi:
            bounds = f"from {lo} to {hi}{why}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value
    return parse


def real(check, requirement):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value
    return parse


def parse_args(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=NETS, default="tutorial",
                   help="'tutorial' (default): the tutorial's network; 'deep': conv32-conv64-dense128 with dropout")
    p.add_argument("--train-size", metavar="N", type=whole(1, 60000, " (MNIST has 60,000 training images)"),
                   help="training images to use, up to 60000 (tutorial: 1000, deep: 60000)")
    p.add_argument("--test-size", metavar="N", type=whole(1, 10000, " (MNIST has 10,000 test images)"),
                   help="test images to use, up to 10000 (tutorial: 1000, deep: 10000)")
    p.add_argument("--epochs", metavar="N", type=whole(0),
                   help="passes over the training images (default 3); 0 with --load evaluates saved weights "
                        "without training")
    p.add_argument("--batch-size", metavar="N", type=whole(1),
                   help="images per step, run as one NCHW tensor (tutorial: 1, deep: 64; more than --train-size: "
                        "one batch of all)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], help="tutorial: sgd, deep: adam")
    p.add_argument("--lr", type=real(lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
                   help="learning rate (tutorial: 0.005 with SGD, deep: 0.001 with Adam, times 0.3 in the last epoch)")
    p.add_argument("--momentum", type=real(lambda v: 0 <= v < 1, "in [0, 1)"),
                   help="SGD momentum, in [0, 1) (default 0)")
    p.add_argument("--seed", metavar="N", type=whole(0, 2**32 - 1), default=0,
                   help="seed for initialisation, shuffling and dropout (default 0)")
    p.add_argument("--log-every", metavar="N", type=whole(1), default=100,
                   help="steps between the progress lines (default 100)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="directory with the four MNIST IDX files, gzipped or not (default: $MNIST_DIR, "
                        "else ~/.cache/tinygrad_cnn/mnist, downloaded if missing)")
    p.add_argument("--load", metavar="FILE", help="start from weights saved with --save (.npz)")
    p.add_argument("--save", metavar="FILE", help="write the trained weights here (.npz, atomically)")
    p.add_argument("--plot", metavar="FILE",
                   help="write a picture (.png, .pdf, .svg, ...) of the training loss and accuracy per --log-every "
                        "steps, the test accuracy per epoch and all first-layer filters "
                        "(needs matplotlib: pip install -e '.[plot]')")
    p.add_argument("--report", metavar="DIR",
                   help="write DIR/report.html: curves, first-layer filters, confusion matrix and misclassified "
                        "test digits in one self-contained page (no extra packages needed)")
    p.add_argument("--graph", metavar="FILE",
                   help="draw the graph of the first training step: .dot (Graphviz text, needs nothing), or .svg, "
                        ".png, .pdf (need Graphviz's `dot` program)")
    p.add_argument("--profile", action="store_true",
                   help="print a per-op table of the training: calls, forward and backward time, bytes saved, "
                        "gradient norm, share of zero gradients")
    p.add_argument("--profile-trace", metavar="FILE",
                   help="with --profile, also write a trace (.json) for chrome://tracing or ui.perfetto.dev")
    p.add_argument("--detect-anomaly", action="store_true",
                   help="check every op's result, forward and backward; stop at the first NaN or inf, naming the "
                        "op and the line that created it (slower)")
    args = p.parse_args(argv)
    if args.profile_trace and not args.profile:
        p.error("argument --profile-trace: needs --profile")
    optimizer = args.optimizer or DEFAULTS[args.model]["optimizer"]
    if args.momentum is not None and optimizer != "sgd":
        p.error(f"argument --momentum: applies to --optimizer sgd only, and this run uses {optimizer}; "
                f"add --optimizer sgd or drop --momentum")
    for key, value in DEFAULTS[args.model].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.momentum = args.momentum or 0.0
    return args


# --- checks made before any data is read or any step is taken -----------------------------------

FILE_OUTPUTS = ("save", "plot", "graph", "profile_trace")  # the flags that write one file (--report: a directory)


def check_outputs(args):
    """Fail now, not after an hour of training, when an output cannot be written."""
    for flag in FILE_OUTPUTS:
        path = getattr(args, flag, None)
        if path and Path(path).is_dir():
            raise FlagError(f"--{flag.replace('_', '-')} {path}: is a directory; give a file name")
    if args.save and Path(args.save).suffix != ".npz":
        raise FlagError(f"--save {args.save}: weights are written as .npz; name the file "
                        f"{Path(args.save).stem}.npz")
    if args.graph and Path(args.graph).suffix.lower().lstrip(".") not in viz.FORMATS:
        suffix = Path(args.graph).suffix
        kind = f"unsupported picture format {suffix!r}" if suffix else "no extension to tell the picture format"
        *most, last = ["." + f for f in viz.FORMATS if f != "gv"]
        raise FlagError(f"--graph {args.graph}: {kind}; use a file name ending in {', '.join(most)} or {last}")
    if args.profile_trace and Path(args.profile_trace).suffix != ".json":
        raise FlagError(f"--profile-trace {args.profile_trace}: a trace is JSON; name the file "
                        f"{Path(args.profile_trace).stem}.json")
    for flag in FILE_OUTPUTS:
        path = getattr(args, flag, None)
        if path:
            check_writable(f"--{flag.replace('_', '-')} {path}", Path(path).absolute().parent)
    if args.report:
        report = Path(args.report).absolute()
        if report.exists() and not report.is_dir():
            raise FlagError(f"--report {args.report}: is a file; --report takes a directory (it writes report.html)")
        check_writable(f"--report {args.report}", report if report.is_dir() else report.parent)
    # Last, what needs another program: a wrong place or name is said even where it is not installed.
    if args.plot:
        check_plot_format(args.plot)
    if args.graph:
        try:
            viz.check_output(args.graph)
        except viz.GraphvizNotFoundError as e:
            raise UserError(f"--graph {args.graph}: {str(e).removeprefix('viz: ')}") from None


def check_plot_format(path):
    try:
        import matplotlib  # noqa: F401  (first: a submodule imported earlier would hide its absence)
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        sys.exit(f"{PROG}: error: --plot needs matplotlib, which is not installed: pip install -e '.[plot]'")
    formats = FigureCanvasBase.get_supported_filetypes()  # what this installation can write
    suffix = Path(path).suffix
    if suffix.lower().lstrip(".") not in formats:
        kind = f"{suffix} files" if suffix else "a name without an extension"
        raise FlagError(f"--plot {path}: matplotlib cannot write {kind}; end the name in one of "
                        f"{', '.join('.' + f for f in sorted(formats))}")


def check_writable(what, directory):
    if not directory.is_dir():
        state = "is not a directory" if directory.exists() else "does not exist"
        raise FlagError(f"{what}: {directory} {state}; create it first or choose another place")
    try:  # os.access() says yes to root on a read-only mount; only a real file tells
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as e:
        raise FlagError(f"{what}: cannot write in {directory} ({e.strerror}); choose another place") from None


# --- weights -------------------------------------------------------------------------------------

def load_weights(model, args):
    """nn.load, after finding out what is wrong with a file it would refuse, to say so in our terms."""
    path = args.load
    state = read_npz(path)
    wrong = mismatch(model, state)
    if wrong:
        others = [name for name, make in NETS.items() if name != args.model and not mismatch(make(), state)]
        if others:
            raise UserError(f"--load {path}: holds weights for --model {others[0]}, not --model {args.model}\n"
                            f"  add --model {others[0]} to use them")
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise UserError(f"--load {path}: does not fit --model {args.model}: {wrong[0]}{more}\n"
                        f"  load a file that --save wrote with the same --model")
    try:
        nn.load(model, path)
    except (ValueError, OSError, KeyError) as e:
        raise UserError(f"--load {path}: could not load it into --model {args.model} ({type(e).__name__})") from None


def mismatch(model, state):
    problems = []
    for name, value in model.state_dict().items():
        if name not in state:
            problems.append(f"it has no {name}")
        elif np.shape(state[name]) != np.shape(value):
            problems.append(f"{name} has shape {np.shape(state[name])}, expected {np.shape(value)}")
    return problems


SIGNATURES = [  # how a file starts -> what it is
    (b"\x93NUMPY", "a single numpy array (.npy, as np.save writes)"),
    (b"\x1f\x8b", "a gzip file"), (b"\x89HDF", "an HDF5 file (such as Keras' .h5)"),
    (b"\x89PNG", "a PNG picture"), (b"%PDF", "a PDF document"), (b"\x80", "a Python pickle"),
]


def read_npz(path):
    """The arrays in the .npz at `path`, or a UserError that says what the file is instead."""
    if not os.path.exists(path):
        raise UserError(f"--load {path}: no such file")
    if os.path.isdir(path):
        raise UserError(f"--load {path}: is a directory, not a weights file written by --save")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise UserError(f"--load {path}: cannot read it ({e.strerror})") from None
    if not head.startswith(b"PK"):
        kind = next((what for sig, what in SIGNATURES if head.startswith(sig)), None)
        if kind is None:
            kind = "an empty file" if not head else "a text file" if head.isascii() and all(
                c >= 32 or c in b"\t\r\n" for c in head) else "binary data of an unknown kind"
        raise UserError(f"--load {path}: is {kind}, not the .npz weights file that --save writes")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UserError(f"--load {path}: is a damaged .npz (zip) file ({e}); write it again with --save") from None
    if not members or not all(m.endswith(".npy") for m in members):
        torch = " (a PyTorch checkpoint?)" if any(m.endswith("data.pkl") for m in members) else ""
        raise UserError(f"--load {path}: is a zip archive{torch} without numpy arrays; it holds "
                        f"{', '.join(members[:4]) or 'nothing'}, not what --save writes")
    state = {}
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            try:
                state[name] = archive[name]
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                if holds_objects(path, name):
                    raise UserError(f"--load {path}: its array {name!r} holds Python objects, not numbers; "
                                    f"--load reads only plain arrays, as --save writes them") from None
                why = "its data is cut short or malformed" if isinstance(e, ValueError) else e
                raise UserError(f"--load {path}: is a damaged .npz file ({name!r}: {why}); "
                                f"write it again with --save") from None
    return state


def holds_objects(path, member):
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member + ".npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return read(f)[2].hasobject
    except Exception:  # a header we cannot even read: the file is damaged, which the caller says
        return False


# --- data ----------------------------------------------------------------------------------------

def read_split(split, args):
    try:
        return load_mnist(split, args.data_dir)
    except MNISTNotFoundError as e:
        raise UserError(missing_message(e)) from None
    except (MNISTError, OSError) as e:
        where = "--data-dir" if args.data_dir else "$MNIST_DIR" if os.environ.get("MNIST_DIR") else None
        if isinstance(e, OSError):  # not readable (permissions, a directory under a file's name, ...)
            e, todo = f"{e.filename}: cannot read it ({e.strerror})", "make it readable"
        else:
            todo = "replace that file with an intact copy" if where else "delete that file to download it again"
        todo += f", or point {where} at another copy of MNIST" if where else ", or pass --data-dir DIR with MNIST"
        raise UserError(f"{e}\n  {todo}") from None


def missing_message(e):
    """The loader's facts in two lines, in this demo's terms (--data-dir, not load_mnist(data_dir=...))."""
    origin = {"data_dir": "--data-dir", "$MNIST_DIR": "$MNIST_DIR"}.get(e.source, "the download cache")
    four = ", ".join(n for pair in FILES.values() for n in pair)
    todo = f"pass --data-dir DIR with the four MNIST files: {four} (each .gz or gunzipped)"
    if e.source == "$MNIST_DIR":
        todo = "fix $MNIST_DIR, or " + todo
    if e.found is None and e.source:
        state = "is not a directory" if e.directory.exists() else "no such directory"
        return f"{origin} {e.directory}: {state}\n  {todo}"
    files = " and ".join(e.missing)
    holds = f"it holds {', '.join(e.found[:6])}{' ...' if len(e.found) > 6 else ''}" if e.found else "it is empty"
    if e.source:
        return f"{origin} {e.directory}: no {files} (.gz or gunzipped); {holds}\n  {todo}"
    failure = e.failures[0] if e.failures else "no mirror answered"
    first = "; ".join(e.notes + [f"{files} (.gz) missing in {e.directory} ({origin})"])
    return (f"{first}; downloading failed ({failure}{' and other mirrors' if len(e.failures) > 1 else ''})\n"
            f"  check the network, or {todo}")


def prepare(images, labels, n):
    """The tutorial's scaling, image / 255 - 0.5, as float32 NCHW."""
    return images[:n, None] / np.float32(255) - np.float32(0.5), labels[:n].astype(np.int64)


def note(message):
    print(f"note: {message}", file=sys.stderr)


def take(images, labels, split, args, flag):
    wanted = getattr(args, flag)
    if wanted > len(images):
        note(f"the {split} data has {len(images)} images; using them all (--{flag.replace('_', '-')} {wanted})")
        setattr(args, flag, len(images))
    return prepare(images, labels, getattr(args, flag))


# --- training and evaluation ---------------------------------------------------------------------

class Curves:
    """What --plot and --report draw, with x = training steps since the start."""

    def __init__(self):
        self.train = []   # (step, mean loss, accuracy) per --log-every steps and for each epoch's tail
        self.test = []    # (step, test accuracy) after each epoch
        self.epochs = []  # the step at which each epoch ended

    @property
    def step(self):
        return self.epochs[-1] if self.epochs else 0


def train_step(model, opt, x, y, graph_path=None):
    with viz.record_modules() if graph_path else contextlib.nullcontext() as modules:
        logits = model(Tensor(x))
        loss = logits.cross_entropy(y)
    if graph_path:  # captured before backward() releases the tape; the backward fills in gradient norms
        graph = viz.draw(loss, params=model, modules=modules)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if graph_path:
        graph.save(graph_path)
        print(f"Saved the graph of the first training step to {graph_path}")
    return loss.item(), logits.data


def train_epoch(model, opt, images, labels, args, curves):
    order = np.random.permutation(len(images))
    images, labels = images[order], labels[order]
    loss_sum, correct, seen = 0.0, 0, 0
    bs = args.batch_size
    steps = (len(images) + bs - 1) // bs
    with progress(len(images), "train", unit="img") as bar:
        for step in range(steps):
            x, y = images[step * bs:(step + 1) * bs], labels[step * bs:(step + 1) * bs]
            first = args.graph if curves.step + step == 0 else None
            loss, logits = train_step(model, opt, x, y, graph_path=first)
            loss_sum += loss * len(y)
            correct += int((logits.argmax(axis=1) == y).sum())
            seen += len(y)
            bar.update(len(y))
            if (step + 1) % args.log_every == 0 or step + 1 == steps:
                curves.train.append((curves.step + step + 1, loss_sum / seen, correct / seen))
                if (step + 1) % args.log_every == 0:  # an epoch's tail is drawn, not printed: the tutorial's format
                    bar.write(f"[Step {step + 1}] Past {args.log_every} steps: Average Loss {loss_sum / seen:.3f} | "
                              f"Accuracy: {round(100 * correct / seen)}%")
                loss_sum, correct, seen = 0.0, 0, 0
    curves.epochs.append(curves.step + steps)


@no_grad()
def evaluate(model, images, labels, batch_size=1000):
    """(mean loss, accuracy, predicted classes) over the test images."""
    was_training = model.training
    model.eval()
    loss_sum, predicted = 0.0, np.empty(len(images), np.int64)
    for start in range(0, len(images), batch_size):
        x, y = images[start:start + batch_size], labels[start:start + batch_size]
        logits = model(Tensor(x))
        loss_sum += logits.cross_entropy(y).item() * len(y)
        predicted[start:start + len(y)] = logits.data.argmax(axis=1)
    model.train(was_training)
    return loss_sum / len(images), int((predicted == labels).sum()) / len(images), predicted


# --- pictures ------------------------------------------------------------------------------------

def first_filters(model):
    weight = next(p.data for p in model.parameters() if p.data.ndim == 4)
    return weight.reshape(-1, *weight.shape[-2:])  # one tile per (output, input) channel pair


def filter_grid(filters):
    """All filters in one image, NaN between them, about twice as wide as tall."""
    n, h, w = filters.shape
    cols = math.ceil(math.sqrt(2 * n))
    rows = -(-n // cols)
    tiles = np.full((rows * cols, h + 1, w + 1), np.nan)
    tiles[:n, :h, :w] = filters
    return tiles.reshape(rows, cols, h + 1, w + 1).transpose(0, 2, 1, 3).reshape(rows * (h + 1), -1)[:-1, :-1]


def write_atomically(path, write):
    """write(tmp) beside `path`, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def plot(path, curves, filters, log_every):
    import matplotlib.pyplot as plt
    fig = figure(curves, filters, log_every)
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower()))
    finally:
        plt.close(fig)


def figure(curves, filters, log_every):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 7.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
    loss_ax, acc_ax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    if curves.train:  # markers as well as lines: a short run (one point per epoch) still shows its points
        steps, losses, accs = zip(*curves.train)
        label = f"training, mean per logging interval (--log-every {log_every}, or an epoch's end)"
        loss_ax.plot(steps, losses, "o-", ms=3, label=label)
        acc_ax.plot(steps, np.multiply(accs, 100), "o-", ms=3, label=label)
    test_steps, test_accs = zip(*curves.test)
    acc_ax.plot(test_steps, np.multiply(test_accs, 100), "s--", ms=6, color="C3", label="test, after each epoch")
    for ax, title in [(loss_ax, "loss"), (acc_ax, "accuracy (%)")]:
        for k, (begin, end) in enumerate(zip([0] + curves.epochs[:-1], curves.epochs)):
            ax.axvspan(begin, end, color="0.93" if k % 2 else "1.0", lw=0, zorder=0)
            if len(curves.epochs) <= 12:
                ax.text((begin + end) / 2, 0.02, f"epoch {k + 1}", transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=8, color="0.4")
        ax.set_title(title)
        ax.set_xlabel("training step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
        if not curves.epochs:
            ax.text(0.5, 0.75, "no training (--epochs 0)", transform=ax.transAxes, ha="center", color="0.4")
    filt_ax = fig.add_subplot(grid[1, :])
    scale = float(np.abs(filters).max()) or 1.0
    colours = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.85")  # the gaps between filters: grey, not "0"
    image = filt_ax.imshow(filter_grid(filters), cmap=colours, vmin=-scale, vmax=scale)
    filt_ax.set_title(f"all {len(filters)} filters of the first layer, one colour scale")
    filt_ax.axis("off")
    fig.colorbar(image, ax=filt_ax, shrink=0.8, label="weight")
    fig.tight_layout()
    return fig


def png(pixels):
    """PNG bytes of a uint8 array, (h, w) grey or (h, w, 3) RGB: a zlib stream is all the format needs."""
    h, w = pixels.shape[:2]
    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.reshape(h, -1)], axis=1)  # filter byte 0 per row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", w, h, 8, 0 if pixels.ndim == 2 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes()))
            + chunk(b"IEND", b""))


def img(pixels, cls, scale, alt):
    h, w = pixels.shape[:2]
    data = base64.b64encode(png(pixels)).decode()
    return (f'<img class="{cls}" alt="{html.escape(alt)}" width="{w * scale}" height="{h * scale}" '
            f'src="data:image/png;base64,{data}">')


def diverging(values, scale):
    """Blue (-scale) through white (0) to red (+scale) as uint8 RGB; NaN (the gaps) light grey."""
    t = np.clip(np.nan_to_num(values / scale), -1, 1)
    rgb = np.stack([1 - np.maximum(-t, 0), 1 - np.abs(t), 1 - np.maximum(t, 0)], axis=-1)
    rgb[np.isnan(values)] = 0.85
    return np.round(rgb * 255).astype(np.uint8)


def svg_chart(cls, title, series, epochs, percent=False, width=520, height=240):
    """An inline SVG line chart. series = [(class, label, colour, [(x, y), ...])]; each point is a dot
    carrying its numbers (data-step, data-value) and a tooltip; the epochs are shaded alternately."""
    left, right, top, bottom = 48, 12, 18 + 13 * len(series), 34  # the legend goes above the plot
    xs = [x for *_, pts in series for x, _ in pts] + epochs
    ys = [y for *_, pts in series for _, y in pts]
    x1 = max(xs, default=1) or 1
    y0, y1 = (min(ys), max(ys)) if ys else (0, 1)
    if percent:  # whole tens of percent around the data
        y0, y1 = math.floor(y0 * 10) / 10, math.ceil(y1 * 10) / 10
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def px(x):
        return left + x / x1 * (width - left - right)

    def py(y):
        return top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom)

    def tick(y):
        return f"{100 * y:.0f}%" if percent else f"{y:.3g}"
    out = [f'<svg class="{cls}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
           f'<text x="{left}" y="15" font-size="13">{html.escape(title)}</text>']
    for k, (begin, end) in enumerate(zip([0] + epochs[:-1], epochs)):
        out.append(f'<rect class="epoch" x="{px(begin):.1f}" y="{top}" width="{px(end) - px(begin):.1f}" '
                   f'height="{height - top - bottom}" fill="{"#eee" if k % 2 else "#fff"}"/>'
                   f'<text x="{(px(begin) + px(end)) / 2:.1f}" y="{height - bottom - 4}" font-size="10" fill="#888" '
                   f'text-anchor="middle">epoch {k + 1}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
               f'fill="none" stroke="#888"/>')
    out += [f'<text x="{left - 4}" y="{py(y) + 4:.1f}" font-size="10" text-anchor="end">{tick(y)}</text>'
            for y in (y0, y1)]
    out.append(f'<text x="{left}" y="{height - 18}" font-size="10" text-anchor="middle">0</text>'
               f'<text x="{px(x1)}" y="{height - 18}" font-size="10" text-anchor="end">{x1}</text>'
               f'<text x="{(left + px(x1)) / 2}" y="{height - 4}" font-size="10" text-anchor="middle">'
               f'training step</text>')
    for i, (name, label, colour, pts) in enumerate(series):
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline class="{name}" points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        out += [f'<circle class="{name}" data-step="{x}" data-value="{y!r}" cx="{px(x):.1f}" cy="{py(y):.1f}" '
                f'r="2.5" fill="{colour}"><title>{label}, step {x}: {y:.4g}</title></circle>' for x, y in pts]
        out.append(f'<text x="{width - right}" y="{14 + 13 * i}" font-size="11" fill="{colour}" '
                   f'text-anchor="end">{html.escape(label)}</text>')
    return "\n".join(out + ["</svg>"])


def report_html(args, curves, filters, test_images, test_labels, predicted, test_loss, test_acc):
    train = curves.train
    interval = f"mean per {args.log_every} steps or an epoch's end"
    loss_chart = svg_chart("loss", "loss", [("train-loss", f"training ({interval})", "#1f77b4",
                                            [(s, loss) for s, loss, _ in train])], curves.epochs)
    acc_chart = svg_chart("accuracy", "accuracy", [
        ("train-accuracy", f"training ({interval})", "#1f77b4", [(s, a) for s, _, a in train]),
        ("test-accuracy", "test, after each epoch", "#d62728", curves.test)], curves.epochs, percent=True)
    scale = float(np.abs(filters).max()) or 1.0
    filter_img = img(diverging(filter_grid(filters), scale), "filters", 20, "first-layer filters")

    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (test_labels, predicted), 1)
    head = "".join(f"<th>{c}</th>" for c in range(10))
    rows = "".join(f"<tr><th>{t}</th>" + "".join(f'<td{" class=diag" if t == p else ""}>{confusion[t, p]}</td>'
                                                 for p in range(10)) + "</tr>" for t in range(10))
    wrong = np.flatnonzero(predicted != test_labels)[:24]
    digits = [np.round((test_images[i, 0] + 0.5) * 255).clip(0, 255).astype(np.uint8) for i in wrong]
    figures = "".join(f'<figure>{img(d, "digit", 2, f"test image {i}")}<figcaption>#{i}: true {test_labels[i]}, '
                      f'predicted {predicted[i]}</figcaption></figure>' for i, d in zip(wrong, digits))
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                     if v is not None and k not in ("final_lr_factor",))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MNIST CNN report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto}} td,th{{padding:2px 6px;text-align:right}}
td.diag{{background:#cde}} figure{{display:inline-block;margin:4px;text-align:center;font-size:11px}}
img{{image-rendering:pixelated;border:1px solid #ccc}}</style></head><body>
<h1>MNIST CNN: {100 * test_acc:.2f}% test accuracy</h1>
<p>Test accuracy <span id="test-accuracy">{test_acc}</span> and loss <span id="test-loss">{test_loss}</span>
on <span id="test-size">{len(test_labels)}</span> test images after {len(curves.epochs)} epochs of {args.train_size}
training images.</p>
<p><code>{html.escape(flags)}</code></p>
<h2>Training curves</h2>
{loss_chart}
{acc_chart}
<h2>First-layer filters</h2>
<p>All {len(filters)} filters, one colour scale: blue -{scale:.3g}, white 0, red +{scale:.3g}.</p>
{filter_img}
<h2>Confusion matrix</h2>
<p>Rows: true digit; columns: predicted digit.</p>
<table id="confusion"><tr><th>true \\ predicted</th>{head}</tr>{rows}</table>
<h2>Misclassified test digits</h2>
<p>{np.count_nonzero(predicted != test_labels)} of {len(test_labels)} test images are misclassified; the first
{len(wrong)}:</p>
<div id="misclassified">{figures}</div>
</body></html>
"""


def write_report(directory, page):
    directory = Path(directory)
    directory.mkdir(exist_ok=True)
    path = directory / "report.html"
    write_atomically(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path


# --- the run -------------------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(argv)
    check_outputs(args)
    np.random.seed(args.seed)
    model = NETS[args.model]()
    if args.load:
        load_weights(model, args)
    train = read_split("train", args) if args.epochs else None  # evaluating needs no training images
    test = read_split("test", args)
    train_images = train_labels = None
    if train:
        train_images, train_labels = take(*train, "train", args, "train_size")
        if args.batch_size > args.train_size:
            note(f"--batch-size {args.batch_size} is more than the {args.train_size} training images; "
                 f"using one batch of {args.train_size} per epoch")
            args.batch_size = args.train_size
    test_images, test_labels = take(*test, "test", args, "test_size")

    if args.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=args.lr)
    else:
        opt = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    print("MNIST CNN initialized!")

    with detect_anomaly() if args.detect_anomaly else contextlib.nullcontext():
        return run(args, model, opt, train_images, train_labels, test_images, test_labels)


def run(args, model, opt, train_images, train_labels, test_images, test_labels):
    """Train, test, and write what the flags ask for; returns (test loss, test accuracy)."""
    curves, train_time = Curves(), 0.0
    prof = profile() if args.profile else contextlib.nullcontext()
    for epoch in range(args.epochs):
        if epoch == args.epochs - 1 and epoch > 0:
            opt.lr = args.lr * args.final_lr_factor
        print(f"--- Epoch {epoch + 1} ---")
        start = time.perf_counter()
        with prof:
            train_epoch(model, opt, train_images, train_labels, args, curves)
        train_time += time.perf_counter() - start
        if (args.plot or args.report) and epoch < args.epochs - 1:  # the last epoch's is the test below
            curves.test.append((curves.step, evaluate(model, test_images, test_labels)[1]))

    print("\n--- Testing the CNN ---")
    test_loss, test_acc, predicted = evaluate(model, test_images, test_labels)
    curves.test.append((curves.step, test_acc))
    print("Test Loss:", test_loss)
    print("Test Accuracy:", test_acc)
    if args.epochs:
        print(f"\nTrained on {args.train_size} images x {args.epochs} epochs in {train_time:.1f} s "
              f"({args.train_size * args.epochs / max(train_time, 1e-9):,.0f} images/s), batch size {args.batch_size}")
    else:
        print(f"\nNo training (--epochs 0): evaluated "
              f"{f'the weights from {args.load}' if args.load else f'an untrained --model {args.model}'}")

    if args.profile:
        print(f"\nProfile of the training (--profile):\n{prof.table()}")
        if args.profile_trace:
            prof.export_chrome_trace(args.profile_trace)
            print(f"Saved the trace to {args.profile_trace} (open it in chrome://tracing or ui.perfetto.dev)")
    if args.save:
        nn.save(model, args.save)
        print(f"Saved weights to {args.save}")
    if args.plot:
        plot(args.plot, curves, first_filters(model), args.log_every)
        print(f"Saved plot to {args.plot}")
    if args.report:
        page = report_html(args, curves, first_filters(model), test_images, test_labels, predicted, test_loss, test_acc)
        print(f"Saved report to {write_report(args.report, page)}")
    return test_loss, test_acc


def command_line(main, prog, argv=None, interrupted=""):
    """main(argv) for the command line (this demo's and the others'): a user's mistake becomes a
    message and an exit status (2 for a bad flag, 1 for a file or data problem, 130 for Ctrl-C)."""
    try:
        main(argv)
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.status
    except AnomalyError as e:  # --detect-anomaly found the first NaN or inf
        print(f"{prog}: --detect-anomaly stopped the run: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (Ctrl-C){interrupted}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `| head`: the reader has gone; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:  # a full disk, a directory removed mid-run: the machine's state, not a bug here
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


def cli(argv=None):
    return command_line(main, PROG, argv, interrupted="; nothing more was written")


if __name__ == "__main__":
    sys.exit(cli())
