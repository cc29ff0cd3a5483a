"""A small ResNet on MNIST: BatchNorm, skip connections and the one-cycle learning-rate policy.

  stem   conv 3x3, W filters -> BatchNorm -> ReLU -> max-pool 2        28x28 -> 14x14, W channels
  block  [conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN] + x -> ReLU        14x14, W channels
  block  [conv 3x3 stride 2 -> BN -> ReLU -> conv 3x3 -> BN]
           + (conv 1x1 stride 2 -> BN)(x) -> ReLU                      7x7, 2W channels
  block  the same again                                                4x4, 4W channels
  head   global average pool -> dense 4W -> 10

Each block learns a correction added to its input (the skip connection), which is what lets deep
stacks of them train. Trained with SGD (Nesterov momentum 0.9, weight decay 5e-4) under
OneCycleLR, stepped after every batch: the lr rises from --lr/25 to --lr over the first 30% of the
steps, then falls to almost 0, which is when the test accuracy jumps. BatchNorm normalizes with
each batch's statistics in train() and with running statistics, averaged during training, in
eval(): the end of the run compares the two.

  python demos/resnet.py                  # W=16, 3 stages, 4 epochs on all of MNIST
  python demos/resnet.py --stages 2       # without the 4x4 stage: 20k instead of 78k parameters
"""
import sys

import numpy as np

from common import Timer, describe, evaluate, finished, lr_of, mnist, parser, run, train_epoch, whole
from tinygrad_cnn import Tensor, nn, no_grad, optim
from tinygrad_cnn.optim import lr_scheduler

PROG = "resnet.py"


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm, added to the input (the skip connection): the block only
    has to learn a correction to the identity. With a stride or a new width, the skip is a
    1x1 conv + BatchNorm, so that the shapes match."""

    def __init__(self, cin, cout, stride=1):
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)  # BN's shift makes a bias redundant
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else \
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out))
        return (out + self.shortcut(x)).relu()


def resnet(width=16, stages=3):
    """A stem, then one BasicBlock per stage: the first keeps the 14x14 size, each further one
    halves it and doubles the channels (14x14 W, 7x7 2W, 4x4 4W)."""
    widths = [width * 2 ** k for k in range(stages)]
    blocks = [BasicBlock(width, width)] + [BasicBlock(cin, cout, stride=2) for cin, cout in zip(widths, widths[1:])]
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        *blocks,
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(widths[-1], 10),
    )


def parse_args(argv=None):
    p = parser(PROG, __doc__, epochs=4, batch_size=64, lr=0.1)
    p.add_argument("--width", metavar="W", type=whole(1), default=16,
                   help="channels of the first stage; each further stage doubles them (default 16)")
    p.add_argument("--stages", metavar="N", type=whole(1, 3), default=3, help="1 to 3 stages (default 3)")
    return p.parse_args(argv)


@no_grad()
def batchnorm_modes(model, images, labels):
    """Accuracy on `images` in eval() (running statistics) and in train() (each batch's own
    statistics, for batches of 1000 and of 10). train() also updates the running statistics, so
    they are saved first and restored after: they are buffers, part of state_dict()."""
    saved = model.state_dict()
    model.eval()
    results = {"eval(), batches of 1000": evaluate(model, images, labels)[1]}
    model.train()
    for size in (1000, 10):
        right = sum(int((model(Tensor(images[i:i + size])).data.argmax(1) == labels[i:i + size]).sum())
                    for i in range(0, len(images), size))
        results[f"train(), batches of {size}"] = right / len(images)
    model.load_state_dict(saved)
    model.eval()
    return results


def main(argv=None):
    args = parse_args(argv)
    np.random.seed(args.seed)
    train_x, train_y, test_x, test_y = mnist(args)
    model = resnet(args.width, args.stages)
    describe(model)
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps_per_epoch = -(-len(train_x) // args.batch_size)
    schedule = lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch)
    print(f"SGD (Nesterov momentum, weight decay 5e-4), batch {args.batch_size}; OneCycleLR to max lr {args.lr} "
          f"over {args.epochs * steps_per_epoch} steps")

    timer = Timer()
    for epoch in range(args.epochs):
        print(f"--- Epoch {epoch + 1} (lr {lr_of(opt):.4g} at its start) ---")
        with timer:
            train_epoch(model, opt, train_x, train_y, args, scheduler=schedule)
        loss, acc, _ = evaluate(model, test_x, test_y)  # evaluate() switches to eval() and back
        print(f"Test Loss: {loss:.4f} | Test Accuracy: {100 * acc:.2f}%")
    finished(len(train_x), args.epochs, timer.seconds, args.batch_size)

    bn = model[1]
    print("\n--- BatchNorm: train() vs eval() ---")
    print(f"The stem's BatchNorm2d tracked {int(bn.num_batches_tracked.item())} batches: running_mean[:4] = "
          f"{np.round(bn.running_mean.data[:4], 3)}, running_var[:4] = {np.round(bn.running_var.data[:4], 3)}")
    for mode, accuracy in batchnorm_modes(model, test_x, test_y).items():
        print(f"Test accuracy in {mode}: {100 * accuracy:.2f}%")
    return loss, acc


if __name__ == "__main__":
    sys.exit(run(main, PROG))
