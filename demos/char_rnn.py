"""A character-level recurrent network that learns a text and then writes in its style.

  character ids -> nn.Embedding(vocab, 32) -> nn.GRU(32, 128) -> nn.Linear(128, vocab)

At every position the network predicts the next character. The text is cut into --batch-size
parallel streams and read --seq-len characters at a time; the hidden state is carried from one
chunk to the next but detached from its graph (truncated backpropagation through time: the
gradient looks back at most --seq-len steps, while the state remembers further). Gradients are
clipped to a total norm of --clip (optim.clip_grad_norm_) against the occasional exploding step.
At the end the network writes --sample characters, one at a time, each drawn from its predicted
distribution and fed back in.

The default text is the Zen of Python (`import this`, 856 characters), which ships with Python:

  python demos/char_rnn.py                              # learn the Zen of Python
  python demos/char_rnn.py --cell rnn                   # a plain tanh RNN instead of a GRU
  python demos/char_rnn.py --text README.md --epochs 3  # any UTF-8 text file
"""
import codecs
import contextlib
import io
import math
import sys
import time
from pathlib import Path

import numpy as np

from common import UserError, parser, real, run, whole
from tinygrad_cnn import nn, no_grad, optim

PROG = "char_rnn.py"
CELLS = {"gru": nn.GRU, "rnn": nn.RNN, "lstm": nn.LSTM}


class CharRNN(nn.Module):
    def __init__(self, vocab, embed=32, hidden=128, cell="gru"):
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = CELLS[cell](embed, hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids, state=None):
        """ids (L, N) -> logits (L, N, vocab) and the state after the last step."""
        out, state = self.rnn(self.embed(ids), state)
        return self.head(out), state


def detach(state):
    """The state's values without their history: where truncated backpropagation cuts."""
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def zen_of_python():
    with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the Zen
        import this
    return codecs.decode(this.s, "rot13")


def read_text(args):
    if args.text is None:
        return "the Zen of Python", zen_of_python()
    try:
        text = Path(args.text).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--text {args.text}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"--text {args.text}: is a directory; give a text file") from None
    except UnicodeDecodeError as e:
        raise UserError(f"--text {args.text}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if len(text) < 2 * args.batch_size:
        raise UserError(f"--text {args.text}: {len(text)} characters are too few for {args.batch_size} streams; "
                        f"give a longer text or a smaller --batch-size")
    return args.text, text


def streams(ids, n):
    """(inputs, targets), each (length, n): n contiguous slices of the text side by side, the
    targets one character ahead of the inputs."""
    length = (len(ids) - 1) // n
    x = ids[:n * length].reshape(n, length).T
    y = ids[1:n * length + 1].reshape(n, length).T
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def train_epoch(model, opt, x, y, args, log):
    state, loss_sum, count = None, 0.0, 0
    for start in range(0, len(x), args.seq_len):
        xs, ys = x[start:start + args.seq_len], y[start:start + args.seq_len]
        logits, state = model(xs, state)
        state = detach(state)
        loss = logits.reshape(-1, logits.shape[-1]).cross_entropy(ys.reshape(-1))
        opt.zero_grad()
        loss.backward()
        norm = optim.clip_grad_norm_(model.parameters(), args.clip).item()
        opt.step()
        log(loss.item(), norm, ys.size)
        loss_sum, count = loss_sum + loss.item() * ys.size, count + ys.size
    return loss_sum / count


@no_grad()
def sample(model, chars, prompt, length, temperature, rng):
    """`prompt` followed by `length` characters drawn one at a time from the model."""
    index = {c: i for i, c in enumerate(chars)}
    model.eval()
    logits, state = model(np.array([[index[c]] for c in prompt]))
    out = []
    for _ in range(length):
        z = logits.data[-1, 0].astype(np.float64) / temperature
        p = np.exp(z - z.max())
        out.append(rng.choice(len(chars), p=p / p.sum()))
        logits, state = model(np.array([[out[-1]]]), state)
    model.train()
    return prompt + "".join(chars[i] for i in out)


def parse_args(argv=None):
    p = parser(PROG, __doc__, epochs=60, batch_size=8, lr=3e-3, mnist=False)
    p.set_defaults(log_every=20)
    p.add_argument("--text", metavar="FILE", help="a UTF-8 text file to learn (default: the Zen of Python)")
    p.add_argument("--cell", choices=sorted(CELLS), default="gru", help="the recurrent layer (default gru)")
    p.add_argument("--hidden", metavar="N", type=whole(1), default=128, help="hidden state size (default 128)")
    p.add_argument("--seq-len", metavar="N", type=whole(1), default=32,
                   help="characters per truncated-backprop chunk (default 32)")
    p.add_argument("--clip", type=real(lambda v: v > 0, "> 0"), default=1.0,
                   help="maximum total gradient norm (default 1.0)")
    p.add_argument("--sample", metavar="N", type=whole(0), default=300,
                   help="characters to write at the end (default 300)")
    p.add_argument("--prompt", default=None, help="the sample's first characters (default: the text's first 9)")
    p.add_argument("--temperature", type=real(lambda v: v > 0, "> 0"), default=0.5,
                   help="sampling temperature: lower is safer, higher more inventive (default 0.5)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    np.random.seed(args.seed)
    name, text = read_text(args)
    chars = sorted(set(text))
    prompt = text[:9] if args.prompt is None else args.prompt
    unknown = sorted(set(prompt) - set(chars))
    if unknown or not prompt:
        raise UserError(f"--prompt {prompt!r}: " + (f"the text has no {''.join(unknown)!r}" if unknown else "empty"))
    ids = np.array([chars.index(c) for c in text], np.int64)
    x, y = streams(ids, args.batch_size)
    model = CharRNN(len(chars), hidden=args.hidden, cell=args.cell)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    print(f"Text: {name}, {len(text):,} characters, {len(chars)} distinct; {args.batch_size} streams of {len(x)}, "
          f"read {args.seq_len} at a time")
    print(model)
    print(f"A uniform guess costs ln({len(chars)}) = {math.log(len(chars)):.3f} nats per character")

    stats = dict(step=0, loss=0.0, norm=0.0, clipped=0, chars=0, n=0)

    def log(loss, norm, n_chars):
        s = stats
        s["step"] += 1
        s["loss"] += loss * n_chars
        s["chars"] += n_chars
        s["norm"] += norm
        s["clipped"] += norm > args.clip
        s["n"] += 1
        if s["step"] % args.log_every == 0:
            per_char = s["loss"] / s["chars"]
            print(f"[Step {s['step']}] Past {s['n']} steps: Loss {per_char:.3f} nats/char "
                  f"({per_char / math.log(2):.2f} bits) | gradient norm {s['norm'] / s['n']:.2f}, "
                  f"clipped in {s['clipped']} of {s['n']} steps", flush=True)
            s.update(loss=0.0, norm=0.0, clipped=0, chars=0, n=0)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        loss = train_epoch(model, opt, x, y, args, log)
    seconds = time.perf_counter() - start
    print(f"\nTrained {args.epochs} epochs ({stats['step']} steps) in {seconds:.1f} s; "
          f"last epoch's loss {loss:.3f} nats/char ({loss / math.log(2):.2f} bits)")
    if args.sample:
        print(f"\n--- Sample (temperature {args.temperature}) ---")
        print(sample(model, chars, prompt, args.sample, args.temperature, np.random.default_rng(args.seed)))
    return loss


if __name__ == "__main__":
    sys.exit(run(main, PROG))
