"""What the example demos (lenet5.py, resnet.py, unet.py, char_rnn.py) share: their common flags,
MNIST as float32 NCHW, the training loop with the tutorial's progress lines, and the command-line
wrapper that turns a user's mistake into a message. The flag parsing, data reading and evaluation
are mnist_cnn.py's own, imported, so that every demo answers a bad flag or file the same way."""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # mnist_cnn, when this is imported from elsewhere (tests)
    sys.path.insert(0, HERE)
from mnist_cnn import Parser, UserError, evaluate, note, read_split, real, take, whole  # noqa: E402,F401 (re-exported)
from mnist_cnn import command_line as run  # noqa: E402,F401  (main(argv) for the command line)

from tinygrad_cnn import Tensor  # noqa: E402  (mnist_cnn made it importable from a checkout)
from tinygrad_cnn.progress import progress  # noqa: E402

positive = real(lambda v: np.isfinite(v) and v > 0, "a finite number > 0")


def parser(prog, doc, epochs, batch_size, lr, train_size=60000, test_size=10000, mnist=True):
    """An argparse parser with the flags every demo has; the demo adds its own."""
    p = Parser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", metavar="N", type=whole(1), default=epochs,
                   help=f"passes over the training data (default {epochs})")
    p.add_argument("--batch-size", metavar="N", type=whole(1), default=batch_size,
                   help=f"examples per step (default {batch_size})")
    p.add_argument("--lr", type=positive, default=lr, help=f"(peak) learning rate (default {lr})")
    p.add_argument("--seed", metavar="N", type=whole(0, 2**32 - 1), default=0,
                   help="seed for initialisation, shuffling and sampling (default 0)")
    p.add_argument("--log-every", metavar="N", type=whole(1), default=100,
                   help="steps between the progress lines (default 100)")
    if mnist:
        p.add_argument("--train-size", metavar="N", type=whole(1, 60000, " (MNIST has 60,000 training images)"),
                       default=train_size, help=f"training images to use (default {train_size})")
        p.add_argument("--test-size", metavar="N", type=whole(1, 10000, " (MNIST has 10,000 test images)"),
                       default=test_size, help=f"test images to use (default {test_size})")
        p.add_argument("--data-dir", metavar="DIR",
                       help="directory with the four MNIST IDX files, gzipped or not (default: $MNIST_DIR, "
                            "else ~/.cache/tinygrad_cnn/mnist, downloaded if missing)")
    return p


def mnist(args):
    """(train images, train labels, test images, test labels): images float32 (N, 1, 28, 28) scaled
    to [-0.5, 0.5] as in the tutorial, labels int64."""
    train = take(*read_split("train", args), "train", args, "train_size")
    test = take(*read_split("test", args), "test", args, "test_size")
    if args.batch_size > args.train_size:
        note(f"--batch-size {args.batch_size} is more than the {args.train_size} training images; "
             f"using one batch of {args.train_size} per step")
        args.batch_size = args.train_size
    return (*train, *test)


def classify(model, x, y):
    """The classifiers' loss: softmax cross-entropy, and the batch's correct predictions."""
    logits = model(Tensor(x))
    return logits.cross_entropy(y), int((logits.data.argmax(axis=1) == y).sum())


def train_epoch(model, opt, inputs, targets, args, loss_fn=classify, scheduler=None):
    """One pass over (inputs, targets) in shuffled mini-batches of args.batch_size, printing the mean
    loss (and accuracy, if loss_fn counts correct answers) every args.log_every steps. A scheduler
    given here is stepped after every batch (OneCycleLR); per-epoch ones are the caller's.
    Returns the epoch's mean loss."""
    model.train()
    order = np.random.permutation(len(inputs))
    bs, n = args.batch_size, len(inputs)
    steps = -(-n // bs)
    total, window, seen, correct = 0.0, 0.0, 0, 0  # window: the loss summed since the last line
    with progress(n, "train", unit="ex") as bar:
        for step in range(steps):
            batch = order[step * bs:(step + 1) * bs]
            loss, right = loss_fn(model, inputs[batch], targets[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()
            summed = loss.item() * len(batch)
            total, window, seen = total + summed, window + summed, seen + len(batch)
            correct = None if right is None else correct + right
            bar.update(len(batch))
            if (step + 1) % args.log_every == 0:
                line = f"[Step {step + 1}] Past {args.log_every} steps: Average Loss {window / seen:.3f}"
                bar.write(line + ("" if correct is None else f" | Accuracy: {round(100 * correct / seen)}%"))
                window, seen, correct = 0.0, 0, 0
    return total / n


def lr_of(opt):
    return opt.param_groups[0]["lr"]


def finished(examples, epochs, seconds, batch_size):
    print(f"\nTrained on {examples} examples x {epochs} epochs in {seconds:.1f} s "
          f"({examples * epochs / max(seconds, 1e-9):,.0f} examples/s), batch size {batch_size}")


def describe(model):
    """The model's layers and its parameter count, printed before training."""
    print(model)
    count = sum(p.data.size for p in model.parameters())
    print(f"{count:,} parameters in {len(model.parameters())} tensors")


class Timer:
    """Seconds spent inside `with timer:` blocks, summed (training time without the evaluations)."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self.start
