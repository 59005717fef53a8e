"""Models as pairs of pure functions: ``init(key) -> params`` and ``apply(params, x, ...)``.

Params are plain pytrees: a list with one dict per layer, leaves named ``w`` (weights or conv
kernels) and ``b`` (biases), so penalties and decay masks can tell them apart by name.
``apply`` trains when given a key (dropout and DropConnect active) and evaluates without one.
Dropout and DropConnect rates are arguments, not construction-time constants, so they may be
traced arrays that differ between the members of a vmapped sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg.drop import check_rate
from jaxreg.drop import dropconnect as drop_weights
from jaxreg.drop import dropout as drop_units
from jaxreg.drop import spatial_dropout as drop_channels

Array = jax.Array
Params = Any

ACTIVATIONS = ("relu", "relu_book", "tanh", "sigmoid", "linear")
OUTPUTS = ("linear", "sigmoid", "softmax")
INITS = ("uniform", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform")


@jax.custom_jvp
def relu_book(x: Array) -> Array:
    """ReLU whose derivative is the one *Grokking Deep Learning* ch. 8 uses.

    The book computes ``relu2deriv(layer_1)`` with ``relu2deriv = lambda x: x >= 0`` applied to
    the layer's OUTPUT, which is never negative: the mask is all ones, so the backward pass
    treats the ReLU as the identity. Not the true gradient; kept to replay the book's numbers.
    """
    return jnp.maximum(x, 0)


@relu_book.defjvp
def _relu_book_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    out = relu_book(x)
    return out, t * (out >= 0).astype(t.dtype)


_ACTIVATION_FNS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "relu_book": relu_book,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda x: x,
}
_OUTPUT_FNS: dict[str, Callable[[Array], Array]] = {
    "linear": lambda z: z,
    "sigmoid": jax.nn.sigmoid,
    "softmax": jax.nn.softmax,
}


class Model(NamedTuple):
    """A model: ``init(key) -> params`` and ``apply(params, x, *, key=None, ...) -> outputs``.

    ``apply(params, x, *, key=None, dropout=0.0, dropconnect=0.0, logits=False)``:
    ``x`` is a batch; with ``key`` the dropout and DropConnect rates drop (training), without
    it nothing is dropped (evaluation). ``logits=True`` returns the pre-activation of the
    output layer, which the losses take for numerical stability.
    """

    init: Callable[..., Params]
    apply: Callable[..., Array]
    input_shape: tuple[int, ...]
    output_size: int
    num_dropout: int  # length of the per-layer dropout vector: input layer first
    num_dropconnect: int  # number of weight layers, the length of a per-layer DropConnect vector


def _choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")


def _positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    values = tuple(values)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in values):
        raise ValueError(f"{name}: expected positive integers, got {list(values)}")
    return tuple(int(v) for v in values)


def _positive_int(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _check_scale(init_scale) -> None:
    if not isinstance(init_scale, (int, float, np.floating)) or not 0 < init_scale < np.inf:
        raise ValueError(f"init_scale: expected a finite number > 0, got {init_scale!r}")


def _weight_init(scheme: str, scale: float) -> Callable:
    if scheme == "uniform":
        def uniform(key, shape, dtype):
            return jax.random.uniform(key, shape, dtype, -scale, scale)
        return uniform
    family, dist = scheme.split("_")
    make = jax.nn.initializers.he_normal if family == "he" else jax.nn.initializers.glorot_normal
    if dist == "uniform":
        make = jax.nn.initializers.he_uniform if family == "he" else jax.nn.initializers.glorot_uniform
    return make()


def _per_layer(rates, n: int, name: str, dtype) -> Array:
    """Broadcasts a scalar or length-``n`` vector of rates to shape ``(n,)``."""
    check_rate(rates, name)
    rates = jnp.asarray(rates, dtype)
    if rates.ndim == 0:
        return jnp.broadcast_to(rates, (n,))
    if rates.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or {n} per-layer rates, got shape {rates.shape}")
    return rates


def _layer_keys(key: Array | None, n_units: int, n_weights: int):
    """Independent keys for each layer's dropout mask and each weight array's DropConnect mask."""
    if key is None:
        return [None] * n_units, [None] * n_weights
    units_key, weights_key = jax.random.split(key)
    return list(jax.random.split(units_key, n_units)), list(jax.random.split(weights_key, n_weights))


def _dense(key, layer, x, connect_rate):
    w = drop_weights(key, layer["w"], connect_rate)
    z = x @ w
    return z + layer["b"] if "b" in layer else z


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    output: str = "linear",
    bias: bool = True,
    init: str = "he_normal",
    init_scale: float = 0.1,
    dtype=jnp.float32,
) -> Model:
    """A multilayer perceptron of any depth and width.

    Args:
        sizes: layer widths, input first and output last, e.g. ``(784, 40, 10)``.
        activation: hidden activation, one of ``ACTIVATIONS``; ``"relu_book"`` is ReLU with the
            book's derivative (see :func:`relu_book`).
        output: output activation, one of ``OUTPUTS``.
        bias: whether layers have biases (the book's MNIST network has none).
        init: weight init, one of ``INITS``; ``"uniform"`` draws from U(-init_scale, init_scale)
            (the book: 0.1). Biases start at zero.
        init_scale: half-width of the uniform init.
        dtype: parameter dtype.

    Returns:
        A :class:`Model`. Its dropout vector has one rate per layer that feeds a weight
        matrix: the input and every hidden layer, input first (the notebook's keep
        probabilities ``(1, 0.5, 0.5, 1)`` are drop rates ``(0, 0.5, 0.5)``; the output is
        never dropped). DropConnect takes one rate per weight matrix.

    >>> import jax
    >>> net = mlp((2, 8, 1), output="sigmoid")
    >>> params = net.init(jax.random.key(0))
    >>> net.apply(params, jax.numpy.zeros((5, 2))).shape
    (5, 1)
    """
    sizes = _positive_ints("sizes", sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least an input and an output size, got {list(sizes)}")
    _choice("activation", activation, ACTIVATIONS)
    _choice("output", output, OUTPUTS)
    _choice("init", init, INITS)
    _check_scale(init_scale)
    n_layers = len(sizes) - 1
    weight_init = _weight_init(init, init_scale)
    act, out_fn = _ACTIVATION_FNS[activation], _OUTPUT_FNS[output]

    def init_fn(key: Array) -> Params:
        params = []
        for layer_key, (n_in, n_out) in zip(jax.random.split(key, n_layers), zip(sizes[:-1], sizes[1:])):
            layer = {"w": weight_init(layer_key, (n_in, n_out), dtype)}
            if bias:
                layer["b"] = jnp.zeros((n_out,), dtype)
            params.append(layer)
        return params

    def apply_fn(params, x, *, key=None, dropout=0.0, dropconnect=0.0, logits=False):
        drop = _per_layer(dropout, n_layers, "dropout", x.dtype)
        connect = _per_layer(dropconnect, n_layers, "dropconnect", x.dtype)
        drop_keys, connect_keys = _layer_keys(key, n_layers, n_layers)
        h = x
        for i, layer in enumerate(params):
            h = drop_units(drop_keys[i], h, drop[i])
            z = _dense(connect_keys[i], layer, h, connect[i])
            h = act(z) if i < n_layers - 1 else z
        return h if logits else out_fn(h)

    return Model(init_fn, apply_fn, (sizes[0],), sizes[-1], n_layers, n_layers)


def cnn(
    input_shape: Sequence[int],
    num_outputs: int,
    *,
    channels: Sequence[int] = (16, 32),
    kernel_size: int = 3,
    pool: str = "max",
    hidden: Sequence[int] = (64,),
    activation: str = "relu",
    output: str = "linear",
    init: str = "he_normal",
    init_scale: float = 0.1,
    dtype=jnp.float32,
) -> Model:
    """A small convolutional network: [conv -> activation -> 2x2 pool] * n, then dense layers.

    Args:
        input_shape: ``(height, width, channels)``; ``apply`` also accepts flattened inputs
            and reshapes them, so the same data arrays serve MLPs and CNNs.
        num_outputs: output units.
        channels: output channels of each conv block ('SAME' padding, stride 1).
        kernel_size: square kernel size.
        pool: ``"max"`` or ``"avg"`` 2x2 pooling with stride 2.
        hidden: widths of the dense layers after flattening.
        activation, output, init, init_scale, dtype: as for :func:`mlp`.

    Returns:
        A :class:`Model`. Its dropout vector is input first, then one rate per conv block
        (spatial dropout of whole channels, applied to the block's pooled output), then one
        per hidden dense layer. DropConnect takes one rate per weight array (kernels included).
    """
    input_shape = _positive_ints("input_shape", input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape: expected (height, width, channels), got {list(input_shape)}")
    channels = _positive_ints("channels", channels)
    hidden = _positive_ints("hidden", hidden)
    num_outputs, kernel_size = _positive_int("num_outputs", num_outputs), _positive_int(
        "kernel_size", kernel_size)
    _choice("pool", pool, ("max", "avg"))
    _choice("activation", activation, ACTIVATIONS)
    _choice("output", output, OUTPUTS)
    _choice("init", init, INITS)
    _check_scale(init_scale)
    weight_init = _weight_init(init, init_scale)
    act, out_fn = _ACTIVATION_FNS[activation], _OUTPUT_FNS[output]
    height, width, c_in = input_shape
    for _ in channels:
        height, width = (height + 1) // 2, (width + 1) // 2
    dense_sizes = (height * width * (channels[-1] if channels else c_in), *hidden, num_outputs)
    n_conv, n_dense = len(channels), len(dense_sizes) - 1
    n_drop, n_weights = 1 + n_conv + n_dense - 1, n_conv + n_dense

    def init_fn(key: Array) -> Params:
        keys = jax.random.split(key, n_weights)
        params, c_prev = [], c_in
        for k, c_out in zip(keys[:n_conv], channels):
            shape = (kernel_size, kernel_size, c_prev, c_out)
            params.append({"w": weight_init(k, shape, dtype), "b": jnp.zeros((c_out,), dtype)})
            c_prev = c_out
        for k, (n_in, n_out) in zip(keys[n_conv:], zip(dense_sizes[:-1], dense_sizes[1:])):
            params.append({"w": weight_init(k, (n_in, n_out), dtype), "b": jnp.zeros((n_out,), dtype)})
        return params

    def pool_fn(h):
        window, pad = (1, 2, 2, 1), ((0, 0), (0, h.shape[1] % 2), (0, h.shape[2] % 2), (0, 0))
        if pool == "max":
            return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, window, window, pad)
        # Odd-sized maps are padded at the far edge: average over the real pixels only.
        ones = jnp.ones((1, *h.shape[1:3], 1), h.dtype)
        count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, window, pad)
        return jax.lax.reduce_window(h, 0.0, jax.lax.add, window, window, pad) / count

    def apply_fn(params, x, *, key=None, dropout=0.0, dropconnect=0.0, logits=False):
        drop = _per_layer(dropout, n_drop, "dropout", x.dtype)
        connect = _per_layer(dropconnect, n_weights, "dropconnect", x.dtype)
        drop_keys, connect_keys = _layer_keys(key, n_drop, n_weights)
        h = drop_units(drop_keys[0], x.reshape((x.shape[0], *input_shape)), drop[0])
        for i in range(n_conv):
            kernel = drop_weights(connect_keys[i], params[i]["w"], connect[i])
            h = jax.lax.conv_general_dilated(h, kernel, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = pool_fn(act(h + params[i]["b"]))
            h = drop_channels(drop_keys[1 + i], h, drop[1 + i])
        h = h.reshape((h.shape[0], -1))
        for j in range(n_dense):
            layer = params[n_conv + j]
            if j > 0:
                h = drop_units(drop_keys[n_conv + j], h, drop[n_conv + j])
            z = _dense(connect_keys[n_conv + j], layer, h, connect[n_conv + j])
            h = act(z) if j < n_dense - 1 else z
        return h if logits else out_fn(h)

    return Model(init_fn, apply_fn, input_shape, num_outputs, n_drop, n_weights)


def numpy_uniform_init(sizes: Sequence[int], *, seed: int = 1, scale: float = 0.1,
                       dtype=np.float64) -> Params:
    """Bias-free MLP weights drawn exactly as *Grokking Deep Learning* draws them.

    ``np.random.seed(seed)`` then ``2 * scale * np.random.random((n_in, n_out)) - scale`` for
    each weight matrix in order. Pass the result as initial params to replay the book.

    Args:
        sizes: layer widths, input first.
        seed: the NumPy legacy seed (the book: 1).
        scale: half-width of the uniform range (the book: 0.1).
        dtype: NumPy dtype of the returned arrays.

    Returns:
        A list of ``{"w": array}`` dicts, one per layer.
    """
    sizes = _positive_ints("sizes", sizes)
    rng = np.random.RandomState(seed)
    return [{"w": (2 * scale * rng.random_sample((n_in, n_out)) - scale).astype(dtype)}
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]
