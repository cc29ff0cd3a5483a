"""A tiny U-Net that removes noise from MNIST digits: skip connections by concatenation (cat) and
learned upsampling (ConvTranspose2d).

  encoder  conv 3x3 -> W ch, 28x28 ----------------------------------------.  (skip)
           max-pool, conv 3x3 -> 2W ch, 14x14 --------------------.        |
           max-pool, conv 3x3 -> 4W ch, 7x7                       |        |
  decoder  conv-transpose 2x2 stride 2 -> 2W ch, 14x14, cat with -'        |
           conv 3x3 -> 2W ch                                               |
           conv-transpose 2x2 stride 2 -> W ch, 28x28, cat with -----------'
           conv 3x3 -> W ch, conv 1x1 -> 1 ch: the noise, subtracted from the input
  (every conv 3x3 is followed by ReLU)

Each training image gets fresh Gaussian noise of standard deviation --noise (pixels in [0, 1]);
the loss is the mean squared error to the clean image (nn.MSELoss). The test images get noise
from a fixed seed, and the result is reported as PSNR (peak signal-to-noise ratio, in dB: higher
is cleaner) of the noisy and of the denoised images, with one test digit drawn in text.

  python demos/unet.py                  # W=8, 2 epochs on 20,000 images
  python demos/unet.py --no-skip        # the same network without the two cats, for comparison

Without the cats the decoder sees only the 7x7 bottleneck: it can no longer tell which pixels of
the input are noise, and the noise it subtracts is almost nothing (try it: the PSNR barely moves).
"""
import math
import sys

import numpy as np

from common import Timer, describe, finished, mnist, parser, real, run, train_epoch, whole
from tinygrad_cnn import Tensor, nn, no_grad, optim
from tinygrad_cnn.functional import cat
from tinygrad_cnn.optim import lr_scheduler

PROG = "unet.py"


def conv_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    def __init__(self, width=8, skip=True):
        w, self.skip = width, skip
        self.enc1, self.enc2, self.mid = conv_relu(1, w), conv_relu(w, 2 * w), conv_relu(2 * w, 4 * w)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)  # 7x7 -> 14x14
        self.dec2 = conv_relu(4 * w if skip else 2 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)  # 14x14 -> 28x28
        self.dec1 = conv_relu(2 * w if skip else w, w)
        self.out = nn.Conv2d(w, 1, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(e1.max_pool2d(2))
        d2 = self.up2(self.mid(e2.max_pool2d(2)))
        # The skips hand the decoder the encoder's full-resolution features, which pooling lost
        d2 = self.dec2(cat([d2, e2], dim=1) if self.skip else d2)
        d1 = self.up1(d2)
        d1 = self.dec1(cat([d1, e1], dim=1) if self.skip else d1)
        return x - self.out(d1)  # predicting the noise is easier than drawing the digit


def add_noise(images, sigma, rng):
    return (images + sigma * rng.standard_normal(images.shape)).astype(np.float32)


def psnr(mse):
    """In dB, for pixels spanning 1 (from -0.5 to 0.5)."""
    return 10 * math.log10(1 / mse)


@no_grad()
def test_mse(model, noisy, clean, batch_size=500):
    """Mean squared error of the noisy and of the denoised images (and the denoised images)."""
    model.eval()
    out = np.concatenate([model(Tensor(noisy[i:i + batch_size])).data for i in range(0, len(noisy), batch_size)])
    model.train()
    return float(np.mean((noisy - clean) ** 2)), float(np.mean((out - clean) ** 2)), out


def ascii_images(*images, shades=" .:-=+*#%@"):
    """28x28 images in [-0.5, 0.5] side by side as text, two pixel rows per line (characters are tall)."""
    rows = []
    for img in images:
        pairs = np.clip(img.reshape(14, 2, 28).mean(axis=1) + 0.5, 0, 1)
        rows.append(np.array(list(shades))[np.round(pairs * (len(shades) - 1)).astype(int)])
    return "\n".join("   ".join("".join(r[y]) for r in rows) for y in range(14))


def parse_args(argv=None):
    p = parser(PROG, __doc__, epochs=2, batch_size=32, lr=2e-3, train_size=20000, test_size=2000)
    p.add_argument("--width", metavar="W", type=whole(1), default=8, help="channels of the first level (default 8)")
    p.add_argument("--noise", metavar="SIGMA", type=real(lambda v: 0 < v <= 2, "in (0, 2]"), default=0.5,
                   help="standard deviation of the Gaussian noise, pixels being in [0, 1] (default 0.5)")
    p.add_argument("--no-skip", dest="skip", action="store_false", help="leave out the skip connections (the cats)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    np.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_x, _, test_x, _ = mnist(args)
    test_noisy = add_noise(test_x, args.noise, np.random.default_rng(12345))
    model = UNet(args.width, args.skip)
    describe(model)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    schedule = lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * -(-len(train_x) // args.batch_size))
    mse = nn.MSELoss()
    print(f"Denoising Gaussian noise of sigma {args.noise}{'' if args.skip else ' (no skip connections)'}; Adam, "
          f"lr {args.lr} annealed to 0 by CosineAnnealingLR per batch, batch {args.batch_size}")

    def loss_fn(model, clean, _):
        noisy = add_noise(clean, args.noise, rng)  # fresh noise every time: the network cannot memorise it
        return mse(model(Tensor(noisy)), Tensor(clean)), None

    timer = Timer()
    for epoch in range(args.epochs):
        print(f"--- Epoch {epoch + 1} ---")
        with timer:
            train_epoch(model, opt, train_x, train_x, args, loss_fn=loss_fn, scheduler=schedule)
        noisy_mse, out_mse, denoised = test_mse(model, test_noisy, test_x)
        print(f"Test MSE: noisy {noisy_mse:.4f} -> denoised {out_mse:.4f} | PSNR: noisy {psnr(noisy_mse):.2f} dB "
              f"-> denoised {psnr(out_mse):.2f} dB")
    finished(len(train_x), args.epochs, timer.seconds, args.batch_size)
    print("\nTest image 0: clean, noisy, denoised")
    print(ascii_images(test_x[0, 0], test_noisy[0, 0], denoised[0, 0]))
    return noisy_mse, out_mse


if __name__ == "__main__":
    sys.exit(run(main, PROG))
