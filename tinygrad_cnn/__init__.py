"""tinygrad_cnn: a tiny, fast reverse-mode autograd framework on numpy."""
from . import malloc  # noqa: F401  (predictable speed: see malloc.py)
from .tensor import Tensor, no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from . import ops  # attaches the Tensor methods
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from . import autograd, functional, nn, optim

__all__ = ["Tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "gradcheck",
           "gradgradcheck", "GradcheckError", "autograd", "functional", "nn", "optim"]
__version__ = "0.1.0"
