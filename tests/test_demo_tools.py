"""demos/mnist_cnn.py's tape tools: --graph, --profile (and --profile-trace), --detect-anomaly."""
import json
import re
from pathlib import Path

import pytest

from test_demo import demo, tiny_mnist  # noqa: F401  (a fixture)
from test_demo_errors import cli, error_lines  # noqa: F401  (a fixture)

RUN = ["--train-size", "20", "--test-size", "10", "--epochs", "1"]


def test_graph_writes_the_first_steps_tape_as_dot(tiny_mnist, tmp_path, capsys):
    path = tmp_path / "step.dot"
    demo.main(["--data-dir", tiny_mnist, *RUN, "--graph", str(path)])
    assert f"Saved the graph of the first training step to {path}" in capsys.readouterr().out
    dot = path.read_text()
    assert dot.startswith("digraph")
    ops = re.findall(r'label="(\w+)\\n', dot)
    for op in ("CrossEntropy", "Linear", "Reshape", "MaxPool2d", "Conv2d"):  # the tutorial's network, one box each
        assert ops.count(op) == 1, ops
    assert "0.weight" in dot and "3.weight" in dot and "3.bias" in dot  # leaves named as the model names them
    assert re.search(r"Conv2d\\n\(1, 8, 26, 26\) float32\\ngrad norm \d", dot)  # the backward filled in norms


def test_profile_prints_a_table_of_the_training_and_writes_a_trace(tiny_mnist, tmp_path, capsys):
    trace = tmp_path / "trace.json"
    demo.main(["--data-dir", tiny_mnist, *RUN, "--profile", "--profile-trace", str(trace)])
    out = capsys.readouterr().out
    table = out[out.index("Profile of the training"):]
    for op in ("Conv2d", "MaxPool2d", "Linear", "CrossEntropy"):
        row = re.search(rf"^{op}\s+(\d+)\s", table, re.MULTILINE)
        assert row and int(row.group(1)) == 20, table  # one call per training step, batch size 1
    events = json.loads(trace.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert any(e.get("name") == "Conv2d" for e in events)


def test_detect_anomaly_names_the_op_and_the_line(tiny_mnist, cli):
    result = cli("--data-dir", tiny_mnist, *RUN, "--detect-anomaly", "--lr", "1e30")
    assert result.returncode == 1 and "Traceback" not in result.stderr  # a report the user asked for: several lines
    first = next(line for line in result.stderr.splitlines() if line.startswith("mnist_cnn.py"))
    assert first.startswith("mnist_cnn.py: --detect-anomaly stopped the run: ")
    line = next(i for i, text in enumerate(Path(demo.__file__).read_text().splitlines(), 1)
                if "logits = model(Tensor(x))" in text)
    assert re.search(rf"(inf|NaN).* from mnist_cnn.py:{line}: logits = model\(Tensor\(x\)\)", first), first


def test_detect_anomaly_leaves_a_healthy_run_unchanged(tiny_mnist):
    args = ["--data-dir", tiny_mnist, *RUN]
    assert demo.main(args + ["--detect-anomaly"]) == demo.main(args)


@pytest.mark.parametrize("args, message", [
    (["--graph", "g.xyz"], "--graph g.xyz: unsupported picture format '.xyz'; use a file name ending in .dot, "
                           ".svg, .png or .pdf"),
    (["--graph", "g"], "--graph g: no extension to tell the picture format; use a file name ending in .dot, "),
    (["--graph", "."], "--graph .: is a directory; give a file name"),
    (["--profile-trace", "t.json"], "argument --profile-trace: needs --profile"),
    (["--profile", "--profile-trace", "t.txt"], "--profile-trace t.txt: a trace is JSON; name the file t.json"),
    (["--profile", "--profile-trace", "."], "--profile-trace .: is a directory; give a file name"),
    (["--graph", "/nonexistent/g.dot"], "--graph /nonexistent/g.dot: /nonexistent does not exist"),
])
def test_tool_flag_mistakes_are_named_before_any_work(cli, args, message):
    result = cli("--data-dir", "/nonexistent/mnist", *args)  # data is never read: the check comes first
    first, *_ = error_lines(result, status=2)
    assert message in first
    assert "format=" not in first  # the library's argument, not this demo's flag


def test_graph_as_a_picture_without_graphviz_says_how_to_get_it(cli, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    result = cli("--data-dir", "/nonexistent/mnist", "--graph", "g.svg")
    assert result.returncode == 1
    assert "--graph g.svg: drawing SVG needs Graphviz's `dot` program" in result.stderr
    assert ".dot" in result.stderr  # and the way that needs nothing
