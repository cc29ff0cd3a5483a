"""demos/curvature.py: Hessian-vector products by double backward on the tutorial's network,
checked against finite differences of gradients, and training through a gradient penalty."""
import gzip
import importlib.util
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.datasets import FILES

DEMO = Path(__file__).resolve().parent.parent / "demos" / "curvature.py"
spec = importlib.util.spec_from_file_location("curvature_demo", DEMO)
curvature = importlib.util.module_from_spec(spec)
spec.loader.exec_module(curvature)


@pytest.fixture
def random_mnist(tmp_path):
    """Random images (no flat background, so no max-pool ties for a finite difference to cross)."""
    rng = np.random.default_rng(0)
    for split, n in [("train", 128), ("test", 64)]:
        for name, magic, array in [(FILES[split][0], 0x803, rng.integers(0, 256, (n, 28, 28))),
                                   (FILES[split][1], 0x801, rng.integers(0, 10, n))]:
            header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return str(tmp_path)


def test_demo_runs_and_its_hessian_vector_products_match_finite_differences(random_mnist, capsys):
    eigenvalue, rel = curvature.main(["--data-dir", random_mnist, "--train-size", "128", "--curvature-size", "16",
                                      "--iterations", "4", "--penalty", "0.5"])
    out = capsys.readouterr().out
    assert rel < 1e-6, out
    assert np.isfinite(eigenvalue)
    assert re.search(r"top eigenvalue -?\d+\.\d+ over 13602 parameters", out)
    assert re.search(r"plain\s+\d+\.\d+%", out) and re.search(r"penalty 0.5\s+\d+\.\d+%", out)


def test_power_iteration_finds_the_top_eigenvalue_of_a_known_matrix():
    """For loss = x^T A x / 2 the Hessian is A: the demo's Hessian-vector product must give A v,
    its finite difference too, and its power iteration A's top eigenvalue."""
    from tinygrad_cnn import Tensor

    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a = q @ np.diag([5.0, 2.0, 1.0, 0.5, -0.3, 0.1]) @ q.T
    x = Tensor(rng.standard_normal(6), requires_grad=True)
    loss_fn = lambda: (x @ Tensor(a) @ x) * 0.5  # noqa: E731
    v = rng.standard_normal(6)
    np.testing.assert_allclose(curvature.hessian_vector_product(loss_fn, [x], v), a @ v, rtol=1e-12)
    np.testing.assert_allclose(curvature.finite_difference_hvp(loss_fn, [x], v, 1e-4), a @ v, rtol=1e-8)
    top, vec, _ = curvature.top_eigenvalue(loss_fn, [x], 200, rng)
    np.testing.assert_allclose(top, 5.0, rtol=1e-6)


def test_bad_flags_are_refused(capsys):
    with pytest.raises(SystemExit):
        curvature.parse_args(["--iterations", "1"])
    assert "argument --iterations: must be at least 2, got 1" in capsys.readouterr().err
