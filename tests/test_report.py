"""What --report and --plot show: read back from the files and checked against what the run printed."""
import re
import struct
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest

from tinygrad_cnn.datasets import load_mnist
from test_demo import demo, tiny_mnist  # noqa: F401  (a fixture)
from test_demo_errors import run

# 3 epochs of 30 steps, a line every 10 steps; few enough epochs that some test digits stay wrong.
RUN = ["--train-size", "300", "--test-size", "100", "--batch-size", "10", "--epochs", "3", "--lr", "0.004",
       "--log-every", "10"]


class Page(HTMLParser):
    """Every tag with its attributes, the text of each <span id=...>, and the confusion table's numbers."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.spans, self.confusion = [], {}, []
        self._span = self._cell = None
        self._in_confusion = False
        self.feed(text)
        self.close()

    def find(self, tag, cls=None):
        return [a for t, a in self.tags if t == tag and (cls is None or a.get("class") == cls)]

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "span" and "id" in attrs:
            self._span = attrs["id"]
            self.spans[self._span] = ""
        self._in_confusion |= tag == "table" and attrs.get("id") == "confusion"
        if self._in_confusion and tag == "tr":
            self.confusion.append([])
        if self._in_confusion and tag == "td":
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "span":
            self._span = None
        if tag == "table":
            self._in_confusion = False
        if tag == "td" and self._cell is not None:
            self.confusion[-1].append(int(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._span:
            self.spans[self._span] += data
        if self._cell is not None:
            self._cell += data


def decode_png(data):
    """Pixels of an 8-bit grey or RGB PNG without filters, read by the PNG spec (CRCs checked)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and b"IEND" in chunks
    channels = {0: 1, 2: 3}[colour]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, 1 + width * channels)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, channels).squeeze(-1 if channels == 1 else ())


def inline_png(img):
    import base64
    prefix = "data:image/png;base64,"
    assert img["src"].startswith(prefix)
    return decode_png(base64.b64decode(img["src"][len(prefix):]))


def test_report_shows_what_the_run_printed(tmp_path, tiny_mnist):
    result = run(tmp_path, "--data-dir", tiny_mnist, *RUN, "--report", "out")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Saved report to out/report.html" in out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.html"]  # no temporary file left
    page = Page((tmp_path / "out" / "report.html").read_text(encoding="utf-8"))

    accuracy = re.search(r"^Test Accuracy: (.*)$", out, re.M).group(1)
    assert page.spans["test-accuracy"] == accuracy and page.spans["test-size"] == "100"
    assert page.spans["test-loss"] == re.search(r"^Test Loss: (.*)$", out, re.M).group(1)

    confusion = np.array([row for row in page.confusion if row])  # the header row has no <td>
    assert confusion.shape == (10, 10) and confusion.sum() == 100
    assert np.trace(confusion) / 100 == float(accuracy)
    test_labels = load_mnist("test", tiny_mnist)[1][:100]
    np.testing.assert_array_equal(confusion.sum(axis=1), np.bincount(test_labels, minlength=10))  # rows: true

    steps = re.findall(r"Average Loss (\d\.\d{3}) \| Accuracy: (\d+)%", out)
    assert len(steps) == 9
    losses = page.find("circle", "train-loss")
    assert [f"{float(c['data-value']):.3f}" for c in losses] == [loss for loss, _ in steps]
    assert [int(c["data-step"]) for c in losses] == list(range(10, 91, 10))  # steps since the start
    assert [round(100 * float(c["data-value"])) for c in page.find("circle", "train-accuracy")] == [
        int(a) for _, a in steps]
    tests = page.find("circle", "test-accuracy")
    assert [int(c["data-step"]) for c in tests] == [30, 60, 90] and tests[-1]["data-value"] == accuracy
    assert len(page.find("rect", "epoch")) == 2 * 3  # in both charts
    assert len(page.find("polyline")) == 3

    filters = inline_png(page.find("img", "filters")[0])
    assert filters.shape == (7, 15, 3)  # 8 filters of 3x3 in 2 rows of 4, one pixel apart

    wrong = page.find("img", "digit")
    assert 0 < len(wrong) == min(24, 100 - np.trace(confusion))
    test_images = load_mnist("test", tiny_mnist)[0]
    for img in wrong:
        index = int(img["alt"].removeprefix("test image "))
        np.testing.assert_array_equal(inline_png(img), test_images[index])


def test_filter_colours_share_one_scale():
    filters = np.array([[[0.5, -0.5], [0, 0.25]], [[-0.25, 0, ], [0.125, 0]]])
    grid = demo.filter_grid(filters)
    assert grid.shape == (2, 5) and np.isnan(grid[:, 2]).all()  # two filters side by side, a gap between
    rgb = demo.diverging(grid, 0.5)
    assert rgb[0, 0].tolist() == [255, 0, 0] and rgb[0, 1].tolist() == [0, 0, 255]  # +scale red, -scale blue
    assert rgb[1, 0].tolist() == [255, 255, 255] and rgb[0, 2].tolist() == [217, 217, 217]  # 0 white, gap grey
    # The second filter's largest weight (0.25) is half the scale, not stretched to a full colour of its own.
    assert rgb[0, 3].tolist() == [128, 128, 255] and rgb[1, 3].tolist() == [255, 191, 191]


def test_report_of_an_evaluation_only_run(tiny_mnist, tmp_path, capsys):
    args = ["--data-dir", tiny_mnist, "--epochs", "0", "--test-size", "50", "--report", str(tmp_path)]
    loss, accuracy = demo.main(args)
    page = Page((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert not page.find("circle", "train-loss") and not page.find("rect", "epoch")
    assert [c["data-value"] for c in page.find("circle", "test-accuracy")] == [repr(accuracy)]
    assert np.array([row for row in page.confusion if row]).sum() == 50


def test_report_and_plot_leave_the_results_unchanged(tiny_mnist, tmp_path, capsys):
    args = ["--data-dir", tiny_mnist, *RUN, "--epochs", "2"]
    assert demo.main(args) == demo.main(args + ["--report", str(tmp_path)])  # the extra test passes draw nothing


# --- --plot (matplotlib is optional: these skip without it) ---------------------------------------

@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Runs the demo and returns the figure --plot would have written, and the run's curves."""
    pytest.importorskip("matplotlib", reason="matplotlib is an optional extra: pip install -e '.[plot]'")
    monkeypatch.chdir(tmp_path)
    seen = {}

    def keep(path, curves, filters, log_every):
        seen.update(fig=demo.figure(curves, filters, log_every), curves=curves, filters=filters)
    monkeypatch.setattr(demo, "plot", keep)

    def draw(*args):
        demo.main([*args, "--plot", "unused.png"])
        return seen["fig"], seen["curves"], seen["filters"]
    yield draw
    import matplotlib.pyplot as plt
    plt.close("all")


@pytest.mark.parametrize("args,points", [
    (["--train-size", "10", "--log-every", "100"], [10, 20, 30]),  # no line printed at all: a point per epoch
    (["--train-size", "300", "--batch-size", "16", "--log-every", "5"],  # 19 steps an epoch
     [s + 19 * e for e in range(3) for s in (5, 10, 15, 19)]),
])
def test_plot_shows_points_for_short_and_batched_runs(drawn, tiny_mnist, args, points):
    fig, curves, filters = drawn("--data-dir", tiny_mnist, "--test-size", "50", *args)
    loss_ax, acc_ax, filter_ax = fig.axes[:3]
    (loss,) = loss_ax.get_lines()
    assert loss.get_xdata().tolist() == points and loss.get_marker() == "o"
    train_acc, test_acc = acc_ax.get_lines()
    assert test_acc.get_xdata().tolist() == curves.epochs == points[len(points) // 3 - 1::len(points) // 3]
    np.testing.assert_allclose(test_acc.get_ydata(), [100 * a for _, a in curves.test])
    assert sum("epoch" in t.get_text() for t in loss_ax.texts) == 3  # each epoch marked

    (image,) = filter_ax.get_images()
    shown = image.get_array()
    assert np.isfinite(shown).sum() == filters.size == 8 * 9  # every filter of the first layer
    scale = np.abs(filters).max()
    assert image.norm.vmin == -scale and image.norm.vmax == scale  # one colour scale for all
    assert len(fig.axes) == 4  # and its colour bar


def test_plot_writes_the_picture_atomically(tiny_mnist, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is an optional extra: pip install -e '.[plot]'")
    for name, magic in [("curves.png", b"\x89PNG\r\n\x1a\n"), ("curves.svg", b"<?xml"), ("curves.pdf", b"%PDF")]:
        demo.main(["--data-dir", tiny_mnist, "--train-size", "30", "--test-size", "30", "--epochs", "1",
                   "--plot", str(tmp_path / name)])
        assert (tmp_path / name).read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("curves")) == [
        "curves.pdf", "curves.png", "curves.svg"] and not list(tmp_path.glob(".tmp-*"))
