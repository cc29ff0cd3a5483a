"""The README's "Writing a model" example runs as written, so it cannot rot."""
import ast
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"
HEADING = "## Writing a model"


def section_code(heading):
    """The ```python blocks between `heading` and the next level-2 heading, joined."""
    text = README.read_text(encoding="utf-8")
    assert heading in text.splitlines(), f"README.md has no {heading!r} section"
    section = text.split(heading + "\n", 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.MULTILINE)[0]
    return "\n".join(re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL))


def test_writing_a_model_example_runs(tmp_path, monkeypatch, capsys):
    code = section_code(HEADING)
    tree = ast.parse(code)
    asserts = [node for node in ast.walk(tree) if isinstance(node, ast.Assert)]
    assert len(asserts) >= 2, "the example should check its own results"

    monkeypatch.chdir(tmp_path)  # the example saves its weights to the working directory
    namespace = {"__name__": "readme_example"}
    # optimize=0: the asserts run even under `python -O`; a failing one fails this test.
    exec(compile(tree, f"{README}:{HEADING}", "exec", optimize=0), namespace)

    assert namespace["accuracy"] > 0.9
    assert namespace["model"].training is False
    assert [p.name for p in tmp_path.iterdir()] == ["small_cnn.npz"]
    with np.load(tmp_path / "small_cnn.npz") as saved:
        assert sorted(saved.files) == sorted(namespace["model"].state_dict())
    assert "test accuracy" in capsys.readouterr().out


def test_tensor_api_example_runs_and_gives_gradients_of_the_right_shapes():
    namespace = {}
    exec(compile(section_code("## The Tensor API"), f"{README}:The Tensor API", "exec"), namespace)
    for name in ("f", "w", "b"):
        t = namespace[name]
        assert t.grad is not None and t.grad.shape == t.shape and np.isfinite(t.grad).all()
    assert np.isfinite(namespace["loss"].item())


def test_autograd_section_runs_and_its_custom_ops_check_out():
    namespace = {}
    exec(compile(section_code("## Autograd"), f"{README}:Autograd", "exec"), namespace)
    x = namespace["x"]
    np.testing.assert_allclose(namespace["g"].data, 3 * x.data ** 2)  # the block's own checks are asserts
    np.testing.assert_allclose(namespace["h"].data, 6 * x.data)


def test_tape_tools_section_runs_and_prints_what_it_shows(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = section_code("## See what the tape did")
    code = code[:code.index("import numpy as np\nfrom tinygrad_cnn.ops.conv")]  # the export sample is output
    exec(compile(code, f"{README}:See what the tape did", "exec"), {"__name__": "readme_tools"})
    out = capsys.readouterr().out
    assert (tmp_path / "step.dot").read_text().startswith("digraph")
    assert "Conv2d" in out and "zero grad" in out  # the profile table
    assert "log got 640 zeros (-> -inf) in (64, 10)" in out  # anomaly mode's report
