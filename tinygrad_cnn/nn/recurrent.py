"""Recurrent layers, unrolled over time with Tensor ops: RNN (tanh or relu), GRU, LSTM, and
their one-step cells. Weights and their names, shapes and initialization follow PyTorch."""
import numpy as np

from .. import functional as F
from ..ops.shape import stack
from ..tensor import Tensor
from .layers import check_int
from .module import Module, Parameter


def _rnn_step(x_proj, h, w_hh, b_hh, nonlinearity):
    pre = x_proj + F.linear(h, w_hh, b_hh)
    return (pre.tanh() if nonlinearity == "tanh" else pre.relu()), None


def _gru_step(x_proj, h, w_hh, b_hh, _):
    n = h.shape[-1]
    h_proj = F.linear(h, w_hh, b_hh)
    reset_update = (x_proj[..., :2 * n] + h_proj[..., :2 * n]).sigmoid()
    r, z = reset_update[..., :n], reset_update[..., n:]
    candidate = (x_proj[..., 2 * n:] + r * h_proj[..., 2 * n:]).tanh()
    return candidate + z * (h - candidate), None  # (1 - z) * candidate + z * h


def _lstm_step(x_proj, state, w_hh, b_hh, _):
    h, c = state
    n = h.shape[-1]
    gates = x_proj + F.linear(h, w_hh, b_hh)
    s = gates.sigmoid()  # the input, forget and output gates (and an unused quarter)
    c = s[..., n:2 * n] * c + s[..., :n] * gates[..., 2 * n:3 * n].tanh()
    return s[..., 3 * n:] * c.tanh(), c


_STEPS = {"RNN": (1, _rnn_step), "GRU": (3, _gru_step), "LSTM": (4, _lstm_step)}


def _uniform(shape, hidden_size):
    bound = 1 / np.sqrt(hidden_size)
    return Parameter(np.random.uniform(-bound, bound, shape).astype(np.float32))


def _dtype_check(name, x, w):
    if x.dtype != w.dtype:
        raise TypeError(f"{name}: the input is {x.dtype} {x.shape} but the layer's weights are {w.dtype}; convert "
                        f"one, e.g. model.to(np.float64) or Tensor(data, dtype=np.float32)")


class _RNNBase(Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, nonlinearity="tanh"):
        self.mode = mode
        self.input_size = check_int(mode, "input_size", input_size)
        self.hidden_size = check_int(mode, "hidden_size", hidden_size)
        self.num_layers = check_int(mode, "num_layers", num_layers)
        if bidirectional:
            raise ValueError(f"{mode}: bidirectional=True is not supported")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"{mode}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{mode}: dropout must be in [0, 1), got {dropout}")
        self.bias, self.batch_first, self.dropout, self.nonlinearity = bias, batch_first, dropout, nonlinearity
        gates = _STEPS[mode][0] * hidden_size
        for k in range(num_layers):
            setattr(self, f"weight_ih_l{k}", _uniform((gates, input_size if k == 0 else hidden_size), hidden_size))
            setattr(self, f"weight_hh_l{k}", _uniform((gates, hidden_size), hidden_size))
            if bias:
                setattr(self, f"bias_ih_l{k}", _uniform(gates, hidden_size))
                setattr(self, f"bias_hh_l{k}", _uniform(gates, hidden_size))

    def _layer(self, k):
        get = lambda name: getattr(self, f"{name}_l{k}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def forward(self, input, hx=None):
        """input (L, N, input_size), or (N, L, input_size) with batch_first, or (L, input_size)
        unbatched. Returns (output, h_n): the last layer's h at every step, and every layer's
        last h, shaped (num_layers, N, hidden_size); for an LSTM h_n is the pair (h_n, c_n)."""
        name, lstm = self.mode, self.mode == "LSTM"
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected an input (L, N, {self.input_size}) (or (N, L, {self.input_size}) with "
                             f"batch_first, or (L, {self.input_size})), got shape {input.shape}")
        if input.shape[0] == 0 if input.ndim == 2 or not self.batch_first else input.shape[1] == 0:
            raise ValueError(f"{name}: the input sequence is empty (shape {input.shape})")
        _dtype_check(name, input, self.weight_ih_l0)
        batched = input.ndim == 3
        x = input if not batched else input.transpose(0, 1) if self.batch_first else input
        if not batched:
            x = x.reshape(x.shape[0], 1, x.shape[1])
        state_shape = (self.num_layers, x.shape[1], self.hidden_size)
        states = self._initial_states(hx, state_shape, batched, x.dtype)
        step = _STEPS[name][1]
        last = []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._layer(k)
            if k and self.dropout and self.training:
                x = F.dropout(x, self.dropout)
            projected = F.linear(x, w_ih, b_ih)  # every time step's input term at once
            h = (states[0][k], states[1][k]) if lstm else states[k]
            outputs = []
            for t in range(x.shape[0]):
                h_new, c = step(projected[t], h, w_hh, b_hh, self.nonlinearity)
                h = (h_new, c) if lstm else h_new
                outputs.append(h_new)
            last.append(h)
            x = stack(outputs)
        if not batched:
            x = x.reshape(x.shape[0], x.shape[2])
        elif self.batch_first:
            x = x.transpose(0, 1)
        if lstm:
            return x, tuple(self._final(stack([h[i] for h in last]), batched) for i in (0, 1))
        return x, self._final(stack(last), batched)

    def _final(self, h, batched):
        return h if batched else h.reshape(h.shape[0], h.shape[2])

    def _initial_states(self, hx, shape, batched, dtype):
        if hx is None:
            zeros = Tensor(np.zeros(shape, dtype))
            return (zeros, zeros) if self.mode == "LSTM" else zeros
        pair = self.mode == "LSTM"
        if pair != isinstance(hx, tuple) or pair and len(hx) != 2:
            raise ValueError(f"{self.mode}: the initial state must be "
                             + ("a pair (h_0, c_0)" if pair else "one tensor"))
        out = []
        for h in (hx if pair else (hx,)):
            expected = shape if batched else (shape[0], shape[2])
            if h.shape != expected:
                raise ValueError(f"{self.mode}: the initial state must have shape {expected}, got {h.shape}")
            out.append(h if batched else h.reshape(shape))
        return tuple(out) if pair else out[0]

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        text += f", num_layers={self.num_layers}" if self.num_layers != 1 else ""
        text += f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else ""
        text += ", bias=False" if not self.bias else ""
        text += ", batch_first=True" if self.batch_first else ""
        return text + (f", dropout={self.dropout}" if self.dropout else "")


class RNN(_RNNBase):
    """h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), layer on layer."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False):
        super().__init__("RNN", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         nonlinearity)


class GRU(_RNNBase):
    """Gated recurrent unit: reset, update and candidate gates stacked in that order (PyTorch's)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)


class LSTM(_RNNBase):
    """Long short-term memory: input, forget, cell and output gates stacked in that order (PyTorch's)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
