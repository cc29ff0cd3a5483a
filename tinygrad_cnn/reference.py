"""The CNN from Victor Zhou's "CNNs from scratch" tutorial (parts 1 and 2).

This is the tutorial's code, written from its derivations: three layers
(Conv3x3 -> MaxPool2 -> Softmax) working on ONE image in HWC layout, each with
a hand-derived ``backprop`` written as Python loops over image regions.

It is kept for two reasons:

* it is the ground truth for the reference tests (``tests/test_reference.py``),
  which check that the generic autograd engine reproduces these hand-derived
  gradients exactly;
* it is the baseline the benchmark times as "the tutorial's loop code", so the
  loops are deliberately NOT vectorized.

It imports nothing from ``tinygrad_cnn`` (only numpy), otherwise comparing the
engine against it would prove nothing.

Small additions to the tutorial, for testability only: every layer takes an
optional ``dtype`` and explicit initial parameters, and every ``backprop``
stores the gradients it computed (``last_d_*`` attributes) before applying the
SGD update (``learn_rate=0`` means no update).
"""
import numpy as np


class Conv3x3:
    """3x3 convolution, no padding, no bias: (h, w) -> (h-2, w-2, num_filters)."""

    def __init__(self, num_filters=8, filters=None, dtype=np.float64):
        self.num_filters = num_filters
        if filters is None:
            filters = np.random.randn(num_filters, 3, 3) / 9
        self.filters = np.array(filters, dtype=dtype)  # a copy: updated in place

    def iterate_regions(self, image):
        h, w = image.shape
        for i in range(h - 2):
            for j in range(w - 2):
                yield image[i:i + 3, j:j + 3], i, j

    def forward(self, input):
        self.last_input = input
        h, w = input.shape
        output = np.zeros((h - 2, w - 2, self.num_filters), dtype=self.filters.dtype)
        for im_region, i, j in self.iterate_regions(input):
            output[i, j] = np.sum(im_region * self.filters, axis=(1, 2))
        return output

    def backprop(self, d_L_d_out, learn_rate):
        d_L_d_filters = np.zeros(self.filters.shape, dtype=self.filters.dtype)
        for im_region, i, j in self.iterate_regions(self.last_input):
            for f in range(self.num_filters):
                d_L_d_filters[f] += d_L_d_out[i, j, f] * im_region
        self.last_d_filters = d_L_d_filters
        self.filters -= learn_rate * d_L_d_filters
        return None  # first layer: the input gradient is not needed


class MaxPool2:
    """2x2 max pooling, stride 2: (h, w, c) -> (h // 2, w // 2, c)."""

    def iterate_regions(self, image):
        h, w, _ = image.shape
        for i in range(h // 2):
            for j in range(w // 2):
                yield image[i * 2:i * 2 + 2, j * 2:j * 2 + 2], i, j

    def forward(self, input):
        self.last_input = input
        h, w, num_filters = input.shape
        output = np.zeros((h // 2, w // 2, num_filters), dtype=input.dtype)
        for im_region, i, j in self.iterate_regions(input):
            output[i, j] = np.amax(im_region, axis=(0, 1))
        return output

    def backprop(self, d_L_d_out):
        # Every position equal to its region's max gets the gradient (ties: all).
        d_L_d_input = np.zeros(self.last_input.shape, dtype=self.last_input.dtype)
        for im_region, i, j in self.iterate_regions(self.last_input):
            h, w, f = im_region.shape
            amax = np.amax(im_region, axis=(0, 1))
            for i2 in range(h):
                for j2 in range(w):
                    for f2 in range(f):
                        if im_region[i2, j2, f2] == amax[f2]:
                            d_L_d_input[i * 2 + i2, j * 2 + j2, f2] = d_L_d_out[i, j, f2]
        self.last_d_input = d_L_d_input
        return d_L_d_input


class Softmax:
    """Dense layer on the flattened (HWC) input, followed by softmax."""

    def __init__(self, input_len=13 * 13 * 8, nodes=10, weights=None, biases=None,
                 dtype=np.float64):
        if weights is None:
            weights = np.random.randn(input_len, nodes) / input_len
        if biases is None:
            biases = np.zeros(nodes)
        self.weights = np.array(weights, dtype=dtype)  # copies: updated in place
        self.biases = np.array(biases, dtype=dtype)

    def forward(self, input):
        self.last_input_shape = input.shape
        input = input.flatten()
        self.last_input = input
        totals = np.dot(input, self.weights) + self.biases
        self.last_totals = totals
        exp = np.exp(totals)
        return exp / np.sum(exp, axis=0)

    def backprop(self, d_L_d_out, learn_rate):
        # d_L_d_out is the cross-entropy gradient: only entry [label] is nonzero.
        for i, gradient in enumerate(d_L_d_out):
            if gradient == 0:
                continue
            # Gradients of out[i] against the totals.
            t_exp = np.exp(self.last_totals)
            S = np.sum(t_exp)
            d_out_d_t = -t_exp[i] * t_exp / (S ** 2)
            d_out_d_t[i] = t_exp[i] * (S - t_exp[i]) / (S ** 2)
            # Gradients of the totals against weights / biases / input.
            d_t_d_w = self.last_input
            d_t_d_b = 1
            d_t_d_inputs = self.weights
            # Chain rule.
            d_L_d_t = gradient * d_out_d_t
            d_L_d_w = d_t_d_w[np.newaxis].T @ d_L_d_t[np.newaxis]
            d_L_d_b = d_L_d_t * d_t_d_b
            d_L_d_inputs = d_t_d_inputs @ d_L_d_t
            self.last_d_weights, self.last_d_biases = d_L_d_w, d_L_d_b
            self.last_d_input = d_L_d_inputs.reshape(self.last_input_shape)
            self.weights -= learn_rate * d_L_d_w
            self.biases -= learn_rate * d_L_d_b
            return self.last_d_input


def initial_gradient(out, label):
    """dL/dout of L = -log(out[label]): zeros except [label] = -1 / out[label]."""
    gradient = np.zeros(out.shape[-1], dtype=out.dtype)
    gradient[label] = -1 / out[label]
    return gradient


class ReferenceCNN:
    """The tutorial's network and its forward / train functions, for one image.

    ``forward`` scales the raw image like the tutorial (image / 255 - 0.5);
    pass ``normalize=False`` to feed already-scaled float images.
    """

    def __init__(self, num_filters=8, filters=None, weights=None, biases=None,
                 input_len=13 * 13 * 8, nodes=10, dtype=np.float64, normalize=True):
        self.conv = Conv3x3(num_filters, filters, dtype)
        self.pool = MaxPool2()
        self.softmax = Softmax(input_len, nodes, weights, biases, dtype)
        self.normalize = normalize

    def forward(self, image, label):
        out = self.conv.forward(image / 255 - 0.5 if self.normalize else image)
        out = self.pool.forward(out)
        out = self.softmax.forward(out)
        loss = -np.log(out[label])
        acc = 1 if np.argmax(out) == label else 0
        return out, loss, acc

    def train(self, image, label, lr=0.005):
        out, loss, acc = self.forward(image, label)
        gradient = initial_gradient(out, label)
        gradient = self.softmax.backprop(gradient, lr)
        gradient = self.pool.backprop(gradient)
        self.conv.backprop(gradient, lr)
        return loss, acc
