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
