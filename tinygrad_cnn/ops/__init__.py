"""Every differentiable op, grouped by family; each op's forward and backward sit side by side.

Importing the families attaches their Tensor methods (see tensor.register).
"""
from ..tensor import Function, once_differentiable  # noqa: F401
from .common import unbroadcast, check_labels, check_same_dtype, class_indices  # noqa: F401
from .elementwise import Add, Sub, Mul, Div, Pow, Neg, Exp, Log, Where, Maximum  # noqa: F401
from .activation import ReLU, Sigmoid, Tanh  # noqa: F401
from . import creation, inplace  # noqa: F401
from .reduce import Sum, Mean, Max  # noqa: F401
from .shape import Reshape, Permute, BroadcastTo, GetItem, IndexAdd  # noqa: F401
from .linalg import MatMul, Linear  # noqa: F401
from .conv import Conv2d, ConvTranspose, ConvWeight, MaxPool2d, PoolScatter, PoolGather  # noqa: F401
from .loss import Softmax, LogSoftmax, CrossEntropy  # noqa: F401
from .reduce import Cumsum  # noqa: F401
