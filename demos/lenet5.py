"""LeNet-5 on MNIST: the classic convolutional network (LeCun et al., 1998), with average pooling.

  conv 5x5, 6 filters, padding 2 -> tanh -> avg-pool 2      28x28 -> 14x14
  conv 5x5, 16 filters          -> tanh -> avg-pool 2      14x14 -> 5x5
  dense 400 -> 120 -> tanh -> 84 -> tanh -> 10

Trained with SGD (momentum 0.9) and a learning rate that follows a cosine from --lr down to 0 over
the epochs (optim.lr_scheduler.CosineAnnealingLR, stepped once per epoch).

  python demos/lenet5.py                        # 5 epochs on all of MNIST
  python demos/lenet5.py --activation relu      # the modern variant
  python demos/lenet5.py --schedule step        # StepLR: the lr times 0.1 every 2 epochs instead
"""
import sys

import numpy as np

from common import Timer, describe, evaluate, finished, lr_of, mnist, parser, run, train_epoch
from tinygrad_cnn import nn, optim
from tinygrad_cnn.optim import lr_scheduler

PROG = "lenet5.py"


def lenet5(activation="tanh"):
    act = nn.Tanh if activation == "tanh" else nn.ReLU
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), act(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, 10),
    )


def parse_args(argv=None):
    p = parser(PROG, __doc__, epochs=5, batch_size=64, lr=0.05)
    p.add_argument("--activation", choices=["tanh", "relu"], default="tanh", help="tanh (default, as in 1998) or relu")
    p.add_argument("--schedule", choices=["cosine", "step"], default="cosine",
                   help="cosine (default): CosineAnnealingLR to 0 over the epochs; step: StepLR, x0.1 every 2 epochs")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    np.random.seed(args.seed)
    train_x, train_y, test_x, test_y = mnist(args)
    model = lenet5(args.activation)
    describe(model)
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    if args.schedule == "cosine":
        schedule = lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    else:
        schedule = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    print(f"SGD, momentum 0.9, batch {args.batch_size}; lr schedule: {type(schedule).__name__}")

    timer = Timer()
    for epoch in range(args.epochs):
        print(f"--- Epoch {epoch + 1} (lr {lr_of(opt):.4g}) ---")
        with timer:
            train_epoch(model, opt, train_x, train_y, args)
        schedule.step()  # once per epoch, after the optimizer's steps
        loss, acc, _ = evaluate(model, test_x, test_y)
        print(f"Test Loss: {loss:.4f} | Test Accuracy: {100 * acc:.2f}%")
    finished(len(train_x), args.epochs, timer.seconds, args.batch_size)
    return loss, acc


if __name__ == "__main__":
    sys.exit(run(main, PROG))
