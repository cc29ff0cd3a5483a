"""Train a CNN on real MNIST with tinygrad_cnn.

With no arguments this is the from-scratch tutorial's experiment, written with the Tensor API:
conv 3x3 (8 filters) -> max-pool 2 -> dense 1352->10 -> softmax cross-entropy, SGD lr 0.005,
batch size 1, the first 1,000 training and test images, 3 epochs. Its gradients come from the
generic backward pass, not from hand-written layers.

  python demos/mnist_cnn.py                                        # the tutorial's run
  python demos/mnist_cnn.py --train-size 60000 --test-size 10000   # the same net, all of MNIST
  python demos/mnist_cnn.py --model deep                           # a deeper CNN, >= 99% test accuracy
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    import tinygrad_cnn  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinygrad_cnn import Tensor, nn, no_grad, optim
from tinygrad_cnn.datasets import load_mnist
from tinygrad_cnn.progress import progress


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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=NETS, default="tutorial",
                   help="'tutorial' (default): the tutorial's network; 'deep': conv32-conv64-dense128 with dropout")
    p.add_argument("--train-size", type=int, help="training images to use, up to 60000 (tutorial: 1000, deep: 60000)")
    p.add_argument("--test-size", type=int, help="test images to use, up to 10000 (tutorial: 1000, deep: 10000)")
    p.add_argument("--epochs", type=int, help="passes over the training images (default 3)")
    p.add_argument("--batch-size", type=int,
                   help="images per step, run as one NCHW tensor (tutorial: 1, deep: 64)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], help="tutorial: sgd, deep: adam")
    p.add_argument("--lr", type=float, help="learning rate (tutorial: 0.005 with SGD, deep: 0.001 with Adam, "
                                            "times 0.3 in the last epoch)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and dropout (default 0)")
    p.add_argument("--log-every", type=int, default=100, help="steps between the tutorial's progress lines")
    p.add_argument("--data-dir", help="directory with the four MNIST .gz files (default: $MNIST_DIR, "
                                      "else ~/.cache/tinygrad_cnn/mnist, downloaded if missing)")
    p.add_argument("--load", metavar="PATH", help="start from weights saved with --save (.npz)")
    p.add_argument("--save", metavar="PATH", help="write the trained weights here (.npz, atomically)")
    p.add_argument("--plot", metavar="PATH",
                   help="write a PNG with the loss and accuracy curves and the first layer's learned filters "
                        "(needs matplotlib: pip install -e '.[plot]')")
    args = p.parse_args(argv)
    for key, value in DEFAULTS[args.model].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if not 0 < args.train_size <= 60000 or not 0 < args.test_size <= 10000:
        p.error("--train-size must be in 1..60000 and --test-size in 1..10000")
    if args.batch_size < 1 or args.epochs < 0 or args.log_every < 1:
        p.error("--batch-size and --log-every must be >= 1 and --epochs >= 0")
    return args


def prepare(images, labels, n):
    """The tutorial's scaling, image / 255 - 0.5, as float32 NCHW."""
    return images[:n, None] / np.float32(255) - np.float32(0.5), labels[:n].astype(np.int64)


def train_epoch(model, opt, images, labels, args, history):
    order = np.random.permutation(len(images))
    images, labels = images[order], labels[order]
    loss_sum, correct, seen = 0.0, 0, 0
    bs = args.batch_size
    steps = (len(images) + bs - 1) // bs
    with progress(len(images), "train", unit="img") as bar:
        for step in range(steps):
            x, y = images[step * bs:(step + 1) * bs], labels[step * bs:(step + 1) * bs]
            logits = model(Tensor(x))
            loss = logits.cross_entropy(y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.data.argmax(axis=1) == y).sum())
            seen += len(y)
            bar.update(len(y))
            if (step + 1) % args.log_every == 0:
                print(f"[Step {step + 1}] Past {args.log_every} steps: Average Loss {loss_sum / seen:.3f} | "
                      f"Accuracy: {round(100 * correct / seen)}%")
                history.append((loss_sum / seen, correct / seen))
                loss_sum, correct, seen = 0.0, 0, 0


@no_grad()
def evaluate(model, images, labels, batch_size=1000):
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        x, y = images[start:start + batch_size], labels[start:start + batch_size]
        logits = model(Tensor(x))
        loss_sum += logits.cross_entropy(y).item() * len(y)
        correct += int((logits.data.argmax(axis=1) == y).sum())
    model.train(was_training)
    return loss_sum / len(images), correct / len(images)


def plot(path, history, log_every, filters):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 6))
    steps = np.arange(1, len(history) + 1) * log_every
    for i, (title, values) in enumerate([("training loss", [h[0] for h in history]),
                                         ("training accuracy", [h[1] for h in history])]):
        ax = fig.add_subplot(2, 2, i + 1)
        ax.plot(steps, values)
        ax.set_title(f"{title} (mean over {log_every} steps)")
        ax.set_xlabel("step")
    for i, f in enumerate(filters[:8]):
        ax = fig.add_subplot(2, 8, 9 + i)
        ax.imshow(f[0], cmap="gray")
        ax.set_title(f"filter {i}")
        ax.axis("off")
    fig.tight_layout()
    # Written beside the target, then renamed: a crash never leaves a half-written PNG.
    tmp = Path(path).with_name(f".tmp-{os.getpid()}-{Path(path).name}")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.exit("--plot needs matplotlib, which is not installed: pip install -e '.[plot]'")
    np.random.seed(args.seed)
    train_images, train_labels = prepare(*load_mnist("train", args.data_dir), args.train_size)
    test_images, test_labels = prepare(*load_mnist("test", args.data_dir), args.test_size)

    model = NETS[args.model]()
    if args.load:
        nn.load(model, args.load)
    if args.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=args.lr)
    else:
        opt = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    print("MNIST CNN initialized!")

    history, start = [], time.perf_counter()
    for epoch in range(args.epochs):
        if epoch == args.epochs - 1 and epoch > 0:
            opt.lr = args.lr * args.final_lr_factor
        print(f"--- Epoch {epoch + 1} ---")
        train_epoch(model, opt, train_images, train_labels, args, history)
    train_time = time.perf_counter() - start

    print("\n--- Testing the CNN ---")
    test_loss, test_acc = evaluate(model, test_images, test_labels)
    print("Test Loss:", test_loss)
    print("Test Accuracy:", test_acc)
    print(f"\nTrained on {args.train_size} images x {args.epochs} epochs in {train_time:.1f} s "
          f"({args.train_size * args.epochs / max(train_time, 1e-9):,.0f} images/s), batch size {args.batch_size}")

    if args.save:
        nn.save(model, args.save)
        print(f"Saved weights to {args.save}")
    if args.plot:
        plot(args.plot, history, args.log_every, model.parameters()[0].data)
        print(f"Saved plot to {args.plot}")
    return test_loss, test_acc


if __name__ == "__main__":
    main()
