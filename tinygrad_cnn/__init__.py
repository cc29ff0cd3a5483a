"""tinygrad_cnn: a tiny, fast reverse-mode autograd framework on numpy."""
from . import malloc  # noqa: F401  (predictable speed: see malloc.py)
from .blas import set_num_threads, get_num_threads  # noqa: F401  (BLAS threads on a busy machine: see blas.py)
from .tensor import Tensor, no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from . import ops  # attaches the Tensor methods
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from . import autograd, functional, nn, optim

__all__ = ["Tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "gradcheck",
           "gradgradcheck", "GradcheckError", "autograd", "functional", "nn", "optim"]
from . import viz  # noqa: E402  (tape tools: graph pictures, profile, anomaly mode)
from .profiler import profile  # noqa: E402
from .anomaly import detect_anomaly, AnomalyError  # noqa: E402
__all__ += ["viz", "profile", "detect_anomaly", "AnomalyError", "set_num_threads", "get_num_threads"]
from . import export  # noqa: E402,F401  (the tape written out as numpy code)
__version__ = "0.1.0"
