"""tinygrad_cnn: a tiny, fast reverse-mode autograd framework on numpy."""
from . import malloc  # noqa: F401  (predictable speed: see malloc.py)
from .blas import set_num_threads, get_num_threads  # BLAS threads on a busy machine: see blas.py
from .tensor import Tensor, no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from . import ops  # noqa: F401  (attaches the Tensor methods)
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from . import autograd, functional, nn, optim
from .functional import cat, stack, where  # torch.cat, torch.stack, torch.where
from . import viz, export  # the tape: pictures, and written out as numpy code
from .profiler import profile
from .anomaly import detect_anomaly, AnomalyError

__all__ = ["Tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "gradcheck",
           "gradgradcheck", "GradcheckError", "autograd", "functional", "nn", "optim", "cat", "stack", "where",
           "viz", "export", "profile", "detect_anomaly", "AnomalyError", "set_num_threads", "get_num_threads"]
__version__ = "0.2.0"
