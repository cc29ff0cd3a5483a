"""tinygrad_cnn: a tiny, fast reverse-mode autograd framework on numpy."""
from . import malloc  # noqa: F401  (predictable speed: see malloc.py)
from .tensor import Tensor, no_grad
from .gradcheck import gradcheck, GradcheckError
from . import functional, nn, optim

__all__ = ["Tensor", "no_grad", "gradcheck", "GradcheckError", "functional", "nn", "optim"]
__version__ = "0.1.0"
