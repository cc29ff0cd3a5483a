"""Layers, losses and the Module they are built on, with PyTorch's names (torch.nn).

`nn.functional` is tinygrad_cnn.functional (`import tinygrad_cnn.nn.functional as F` works);
`nn.init` holds the weight initializers; `nn.save` / `nn.load` write and read a state_dict.
"""
import sys

from .. import functional
from . import init
from .module import Module, Parameter
from .container import Sequential, ModuleList, ModuleDict
from .layers import (Identity, Linear, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten,
                     Unflatten, Dropout, Embedding)
from .activation import (ReLU, Tanh, Sigmoid, LeakyReLU, ELU, GELU, SiLU, Softplus, Softmax, LogSoftmax, Hardtanh,
                         ReLU6, SELU, Mish, Hardsigmoid, Hardswish, LogSigmoid, Softsign)
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm
from .recurrent import RNN, GRU, LSTM
from .loss import (CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss,
                   BCEWithLogitsLoss)
from .utils import save, load

sys.modules[__name__ + ".functional"] = functional  # so that `import tinygrad_cnn.nn.functional` finds it
