"""Second derivatives of a trained MNIST CNN: its loss's sharpest curvature, and training through
a gradient penalty. Both need the autograd to differentiate its own backward.

1. Train the tutorial's network (conv 3x3x8 -> max-pool 2 -> dense 1352->10) for one epoch.
2. Find the top eigenvalue of the Hessian of its loss (with respect to all 13,602 parameters)
   by power iteration on Hessian-vector products: H v is the gradient of (grad L . v), one
   double backward, never forming H. Check H v against a finite difference of gradients,
   (grad L(w + eps v) - grad L(w - eps v)) / (2 eps).
3. Train two copies from the same start, one with an input-gradient penalty
   lambda * ||d loss / d images||^2 added to its loss (trained through double backward), and
   compare how sensitive each is to its input, their accuracy and their sharpness.

  python demos/curvature.py                      # about a minute on 2 cores
  python demos/curvature.py --help

A mistake in the flags or files ends in a message naming the flag or file, never a traceback;
exit status 2 for a bad flag, 1 for a file or data problem, 130 for Ctrl-C.
"""
import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

try:
    import tinygrad_cnn  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Parser, note, read_split, real, run, take, whole  # noqa: E402
from mnist_cnn import prepare, tutorial_net  # noqa: E402
from tinygrad_cnn import Tensor, autograd, no_grad, optim  # noqa: E402

PROG = "curvature.py"


def flat(arrays):
    return np.concatenate([np.asarray(a).ravel() for a in arrays])


def split_like(vector, params):
    out, start = [], 0
    for p in params:
        out.append(vector[start:start + p.data.size].reshape(p.shape))
        start += p.data.size
    return out


def gradient(loss_fn, params):
    return flat(g.data for g in autograd.grad(loss_fn(), params))


def hessian_vector_product(loss_fn, params, v):
    """H v by double backward: the gradient of (grad L . v) with respect to the parameters."""
    grads = autograd.grad(loss_fn(), params, create_graph=True)
    dot = sum((g * vi).sum() for g, vi in zip(grads, split_like(v, params)))
    return flat(h.data for h in autograd.grad(dot, params))


def finite_difference_hvp(loss_fn, params, v, eps):
    original = [p.data.copy() for p in params]
    results = []
    for sign in (1, -1):
        for p, w, vi in zip(params, original, split_like(v, params)):
            p.data = w + sign * eps * vi
        results.append(gradient(loss_fn, params))
    for p, w in zip(params, original):
        p.data = w
    return (results[0] - results[1]) / (2 * eps)


def top_eigenvalue(loss_fn, params, iterations, rng):
    """Power iteration on H v; returns (eigenvalue, eigenvector, [estimates per iteration])."""
    v = rng.standard_normal(sum(p.data.size for p in params))
    v /= np.linalg.norm(v)
    estimates = []
    for _ in range(iterations):
        hv = hessian_vector_product(loss_fn, params, v)
        estimates.append(float(v @ hv))  # the Rayleigh quotient v^T H v
        v = hv / np.linalg.norm(hv)
    return estimates[-1], v, estimates


def input_gradient_norm(model, images, labels):
    """Mean over images of ||d loss_i / d image_i||, a measure of sensitivity to the input."""
    x = Tensor(images, requires_grad=True)
    loss = model(x).cross_entropy(labels) * len(images)  # the sum over images: per-image gradients
    g, = autograd.grad(loss, x)
    return float(np.sqrt((g.data.reshape(len(images), -1) ** 2).sum(1)).mean())


def train(model, images, labels, epochs, batch_size, lr, penalty, rng):
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(images), batch_size):
            idx = order[start:start + batch_size]
            x = Tensor(images[idx], requires_grad=penalty > 0)
            loss = model(x).cross_entropy(labels[idx])
            if penalty > 0:  # lambda * ||d loss / d x||^2, differentiated again by backward()
                gx, = autograd.grad(loss, x, create_graph=True)
                loss = loss + penalty * (gx * gx).sum() * len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()


@no_grad()
def accuracy(model, images, labels):
    return float((model(Tensor(images)).data.argmax(1) == labels).mean())


def parse_args(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", metavar="DIR",
                   help="directory with the four MNIST IDX files, gzipped or not (default: $MNIST_DIR, "
                        "else ~/.cache/tinygrad_cnn/mnist, downloaded if missing)")
    p.add_argument("--train-size", metavar="N", type=whole(64, 60000, " (MNIST has 60,000 training images)"),
                   default=60000, help="training images, at least one batch of 64 (default 60000)")
    p.add_argument("--curvature-size", metavar="N", type=whole(1, 60000, " (MNIST has 60,000 training images)"),
                   default=1000, help="training images whose mean loss's Hessian is measured (default 1000)")
    p.add_argument("--iterations", metavar="N", type=whole(2), default=20, help="power iterations (default 20)")
    p.add_argument("--penalty", type=real(lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
                   default=1.0, help="weight of the input-gradient penalty in part 3 (default 1.0)")
    p.add_argument("--penalty-epochs", metavar="N", type=whole(1), default=1,
                   help="epochs for each model of part 3 (default 1)")
    p.add_argument("--seed", metavar="N", type=whole(0, 2**32 - 1), default=0, help="random seed (default 0)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    train_images, train_labels = take(*read_split("train", args), "train", args, "train_size")
    test_images, test_labels = prepare(*read_split("test", args), 10000)
    if args.curvature_size > args.train_size:
        note(f"--curvature-size {args.curvature_size} is more than the {args.train_size} training images; "
             f"measuring the Hessian over all {args.train_size}")
        args.curvature_size = args.train_size
    rng = np.random.default_rng(args.seed)
    np.random.seed(args.seed)

    print("1. Training the tutorial's network for one epoch (batch 64, SGD 0.05, momentum 0.9)...")
    model = tutorial_net()
    start = time.perf_counter()
    train(model, train_images, train_labels, 1, 64, 0.05, 0.0, rng)
    print(f"   test accuracy {accuracy(model, test_images, test_labels):.2%} ({time.perf_counter() - start:.1f} s)")

    print(f"\n2. Top Hessian eigenvalue of the mean loss over {args.curvature_size} training images, "
          f"by power iteration on Hessian-vector products (float64):")
    model.to(np.float64)
    images, labels = train_images[:args.curvature_size].astype(np.float64), train_labels[:args.curvature_size]
    params = model.parameters()
    loss_fn = lambda: model(Tensor(images)).cross_entropy(labels)  # noqa: E731
    n = sum(p.data.size for p in params)
    start = time.perf_counter()
    eigenvalue, v, estimates = top_eigenvalue(loss_fn, params, args.iterations, rng)
    seconds = time.perf_counter() - start
    shown = ", ".join(f"{e:.4f}" for e in estimates[:4]) + ", ..., " + ", ".join(f"{e:.4f}" for e in estimates[-2:])
    print(f"   Rayleigh quotients v^T H v: {shown}")
    print(f"   top eigenvalue {eigenvalue:.4f} over {n} parameters; {args.iterations} Hessian-vector products in "
          f"{seconds:.1f} s ({1e3 * seconds / args.iterations:.0f} ms each)")
    hv = hessian_vector_product(loss_fn, params, v)
    # Max-pooling makes the loss piecewise smooth: a step of eps along v that switches some
    # window's maximum spoils the difference quotient, so it is shown for three step sizes.
    rels = {}
    for eps in (1e-4, 1e-5, 1e-6):
        fd = finite_difference_hvp(loss_fn, params, v, eps)
        rels[eps] = np.linalg.norm(hv - fd) / np.linalg.norm(fd)
    rel = min(rels.values())
    print("   check: H v by double backward vs a finite difference of gradients, (grad L(w + eps v) - "
          "grad L(w - eps v)) / 2 eps:\n          relative difference " +
          ", ".join(f"{r:.1e} (eps {eps:g})" for eps, r in rels.items()))
    print(f"   check: ||H v - lambda v|| / ||H v|| = {np.linalg.norm(hv - eigenvalue * v) / np.linalg.norm(hv):.1e} "
          f"(0 for an exact eigenvector)")

    print(f"\n3. Two models from the same start, {args.penalty_epochs} epoch(s) each (batch 64), one with the input-"
          f"gradient penalty {args.penalty} * ||d loss / d images||^2 trained through double backward:")
    print(f"   {'model':<22} {'test accuracy':>13} {'mean ||d loss_i / d image_i||':>31} {'top eigenvalue':>15} "
          f"{'train time':>11}")
    initial = tutorial_net().state_dict()
    for name, weight in [("plain", 0.0), (f"penalty {args.penalty}", args.penalty)]:
        model = tutorial_net()
        model.load_state_dict(initial)
        start = time.perf_counter()
        train(model, train_images, train_labels, args.penalty_epochs, 64, 0.05, weight, np.random.default_rng(1))
        seconds = time.perf_counter() - start
        acc = accuracy(model, test_images, test_labels)
        sensitivity = input_gradient_norm(model, test_images[:2000], test_labels[:2000])
        model.to(np.float64)
        top, _, _ = top_eigenvalue(lambda: model(Tensor(images)).cross_entropy(labels), model.parameters(), 10,
                                   np.random.default_rng(2))
        print(f"   {name:<22} {acc:>13.2%} {sensitivity:>31.4f} {top:>15.3f} {seconds:>10.1f}s")
    return eigenvalue, rel


if __name__ == "__main__":
    sys.exit(run(main, PROG))
