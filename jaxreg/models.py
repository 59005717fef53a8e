"""Models as pairs of pure functions, with state and named layers.

The contract every model meets (jaxreg's own here; Flax, Equinox and plain function pairs
through :mod:`jaxreg.adapters`):

* ``init(key) -> (params, state)``: ``params`` are the trainable arrays, a pytree keyed by
  layer name (``{"dense_0": {"w": ..., "b": ...}, ...}``); ``state`` holds what a layer
  updates but does not train (batch statistics), ``{}`` when there is none.
* ``apply(params, state, x, *, key=None, train=False, dropout=..., dropconnect=...)
  -> (logits, state)``: ``x`` is a batch; ``train=True`` needs a ``key`` (a missing key in
  training mode is an error, never a silent no-op) and makes dropout and DropConnect drop;
  evaluation (``train=False``) never drops. The outputs are logits, what the losses take.

Dropout and DropConnect rates are arguments, not construction-time constants, so they may be
traced arrays that differ between the members of a vmapped sweep. Penalties select weights
by role, not by name: every leaf with two or more dimensions (see :mod:`jaxreg.penalties`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from collections.abc import Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg.drop import check_rate
from jaxreg.drop import dropconnect as drop_weights
from jaxreg.drop import dropout as drop_units
from jaxreg.drop import spatial_dropout as drop_channels
from jaxreg.errors import InputError, check_choice, check_positive_int, check_positive_ints
from jaxreg.names import INITS

Array = jax.Array
Params = Any

ACTIVATIONS = ("relu", "relu_book", "tanh", "sigmoid", "linear")
OUTPUTS = ("linear", "sigmoid", "softmax")


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


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A model: ``init(key) -> (params, state)`` and ``apply(params, state, x, *, key=None,
    train=False, ...) -> (logits, state)`` (the module docstring states the contract).

    Attributes:
        init, apply: the two pure functions.
        input_shape: the shape of one example.
        output_size: the number of logits per example.
        num_dropout: length of the per-layer dropout vector ``apply`` takes (0: it takes none).
        num_dropconnect: length of the per-layer DropConnect vector (0: it takes none).
        identity: a hashable description of the model (jaxreg's own models: their
            arguments). Two models with equal identities are equal and hash alike, so equal
            training configs share one compiled program; ``None`` compares the functions.
        layers: the top-level keys of ``params``, input first, head last: what transfer
            learning freezes (``hparams.trainable_layers``) and what layer-wise learning-rate
            decay counts. ``None``: the keys in the order ``init`` creates them (see
            :meth:`layer_names`); set it with ``dataclasses.replace(model, layers=(...))``.
        taps: whether ``apply`` takes ``taps``, a dict it fills with each hidden layer's
            activations by layer name (for histograms; jaxreg's own models do).
        batch_norm: whether ``apply`` takes ``bn_momentum``, ``bn_epsilon`` and ``bn_frozen``
            (one 0/1 per layer of ``layers``: a frozen layer's batch norm uses its running
            statistics and leaves them as they are, Keras's semantics).
    """

    init: Callable[[Array], tuple[Params, Any]]
    apply: Callable[..., tuple[Array, Any]]
    input_shape: tuple[int, ...]
    output_size: int
    num_dropout: int = 0
    num_dropconnect: int = 0
    identity: Hashable | None = None
    layers: tuple[str, ...] | None = None
    batch_norm: bool = False
    taps: bool = False

    def _key(self):
        functions = (self.init, self.apply) if self.identity is None else (self.identity,)
        return (*functions, self.input_shape, self.output_size, self.num_dropout, self.num_dropconnect,
                self.layers, self.batch_norm, self.taps)

    def layer_names(self, params=None) -> tuple[str, ...]:
        """The layers, input first: ``layers``, or the top-level keys of ``params`` in the order
        ``init`` made them (Flax: the order the layers are called). Without ``params``, ``init``
        is traced once to see that order (JAX's own pytree functions would sort the keys)."""
        if self.layers is not None:
            return self.layers
        if params is None:
            made = []
            jax.eval_shape(lambda key: made.append(self.init(key)[0]), jax.random.key(0))
            params = made[0]
        if not isinstance(params, dict):
            raise InputError(f"model: expected params as a dict keyed by layer name (or Model.layers) "
                             f"to count layers, got {type(params).__name__}")
        return tuple(params)

    def __eq__(self, other):
        return isinstance(other, Model) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


def check_training_key(key, train: bool) -> None:
    """Training mode draws masks from ``key``: without one it is an error, not a silent no-op."""
    if train and key is None:
        raise InputError("key: expected a jax PRNG key when train=True, got None")


def _check_scale(init_scale) -> None:
    if not isinstance(init_scale, (int, float, np.floating)) or not 0 < init_scale < np.inf:
        raise InputError(f"init_scale: expected a finite number > 0, got {init_scale!r}")


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
        raise InputError(f"{name}: expected a scalar or {n} per-layer rates, got shape {rates.shape}")
    return rates


def _layer_keys(key: Array | None, n_units: int, n_weights: int, dropout, dropconnect):
    """Independent keys for each layer's dropout mask and each weight array's DropConnect mask.

    A family whose rates are the Python number 0 gets no keys: no mask is drawn for it (the
    same outputs, fewer kernels). The keys of the other family are the same either way.
    """
    units, weights = [None] * n_units, [None] * n_weights
    if key is None:
        return units, weights
    units_key, weights_key = jax.random.split(key)
    if not _static_zero(dropout):
        units = list(jax.random.split(units_key, n_units))
    if not _static_zero(dropconnect):
        weights = list(jax.random.split(weights_key, n_weights))
    return units, weights


def _static_zero(rate) -> bool:
    return isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate == 0


def _dense(key, layer, x, connect_rate):
    w = drop_weights(key, layer["w"], connect_rate)
    z = x @ w
    return z + layer["b"] if "b" in layer else z


def batch_norm(layer, stats, h: Array, *, train: bool, momentum=0.99, epsilon=1e-5, frozen=0.0):
    """Batch normalization of ``h`` over every axis but the last (features or channels).

    Args:
        layer: the layer's params, with ``scale`` and ``offset`` (one per feature).
        stats: ``{"mean", "var"}``, the running statistics.
        h: the pre-activations, ``(batch, ..., features)``.
        train: normalize by the batch's statistics (the biased variance, as Keras and Flax do)
            and update the running ones; else normalize by the running statistics.
        momentum: ``running = momentum * running + (1 - momentum) * batch`` (Keras and Flax;
            PyTorch's ``momentum=0.1`` is 0.9 here). May be traced.
        epsilon: added to the variance. May be traced.
        frozen: 1 for a frozen layer (transfer learning): it normalizes by the running
            statistics and leaves them unchanged, also in training.

    Returns:
        ``(normalized, stats)``.
    """
    if train:
        axes = tuple(range(h.ndim - 1))
        mean, var = h.mean(axes), h.var(axes)
        frozen = jnp.asarray(frozen, h.dtype) > 0
        new = {"mean": momentum * stats["mean"] + (1 - momentum) * mean,
               "var": momentum * stats["var"] + (1 - momentum) * var}
        stats = {k: jnp.where(frozen, stats[k], new[k]) for k in stats}
        mean, var = jnp.where(frozen, stats["mean"], mean), jnp.where(frozen, stats["var"], var)
    else:
        mean, var = stats["mean"], stats["var"]
    return (h - mean) * jax.lax.rsqrt(var + epsilon) * layer["scale"] + layer["offset"], stats


_normalize = batch_norm  # the factories' argument of that name hides the function


def _norm_init(n: int, dtype) -> tuple[dict, dict]:
    return ({"scale": jnp.ones((n,), dtype), "offset": jnp.zeros((n,), dtype)},
            {"mean": jnp.zeros((n,), dtype), "var": jnp.ones((n,), dtype)})


def _frozen_layers(bn_frozen, n: int, dtype) -> Array:
    frozen = jnp.asarray(bn_frozen, dtype)
    return jnp.broadcast_to(frozen, (n,)) if frozen.ndim == 0 else frozen


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    output: str = "linear",
    bias: bool = True,
    init: str = "he_normal",
    init_scale: float = 0.1,
    batch_norm: bool = False,
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
        batch_norm: normalize every hidden layer's pre-activations (:func:`batch_norm`, before
            the activation); its ``scale`` and ``offset`` live in the layer's params, its running
            statistics in the state.
        dtype: parameter dtype.

    Returns:
        A :class:`Model` whose layers are named ``dense_0``, ``dense_1``, ... and whose
        ``apply(..., logits=False)`` applies the output activation. Its dropout vector has one rate per layer that feeds a weight
        matrix: the input and every hidden layer, input first (the notebook's keep
        probabilities ``(1, 0.5, 0.5, 1)`` are drop rates ``(0, 0.5, 0.5)``; the output is
        never dropped). DropConnect takes one rate per weight matrix. Inputs of more than two
        dimensions (images, ``(n, H, W[, C])``) are flattened to one row per example.

    >>> import jax
    >>> net = mlp((2, 8, 1), output="sigmoid")
    >>> params, state = net.init(jax.random.key(0))
    >>> logits, state = net.apply(params, state, jax.numpy.zeros((5, 2)))
    >>> logits.shape
    (5, 1)
    """
    sizes = check_positive_ints("sizes", sizes)
    if len(sizes) < 2:
        raise InputError(f"sizes: expected at least an input and an output size, got {list(sizes)}")
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("output", output, OUTPUTS)
    check_choice("init", init, INITS)
    _check_scale(init_scale)
    n_layers = len(sizes) - 1
    weight_init = _weight_init(init, init_scale)
    act, out_fn = _ACTIVATION_FNS[activation], _OUTPUT_FNS[output]

    names = [f"dense_{i}" for i in range(n_layers)]  # sorted as numbered for up to 10 layers

    def init_fn(key: Array) -> tuple[Params, dict]:
        params = {}
        for name, layer_key, (n_in, n_out) in zip(names, jax.random.split(key, n_layers),
                                                  zip(sizes[:-1], sizes[1:])):
            layer = {"w": weight_init(layer_key, (n_in, n_out), dtype)}
            if bias:
                layer["b"] = jnp.zeros((n_out,), dtype)
            params[name] = layer
        state = {}
        if batch_norm:
            for name, n_out in zip(names[:-1], sizes[1:-1]):
                norm, state[name] = _norm_init(n_out, dtype)
                params[name].update(norm)
        return params, state

    def apply_fn(params, state, x, *, key=None, train=False, dropout=0.0, dropconnect=0.0, logits=True,
                 bn_momentum=0.99, bn_epsilon=1e-5, bn_frozen=0.0, taps=None):
        check_training_key(key, train)
        drop = _per_layer(dropout, n_layers, "dropout", x.dtype)
        connect = _per_layer(dropconnect, n_layers, "dropconnect", x.dtype)
        drop_keys, connect_keys = _layer_keys(key if train else None, n_layers, n_layers, dropout, dropconnect)
        frozen = _frozen_layers(bn_frozen, n_layers, x.dtype)
        h, state = (x.reshape((x.shape[0], -1)) if x.ndim > 2 else x), dict(state)  # images: one row each
        for i, name in enumerate(names):
            h = drop_units(drop_keys[i], h, drop[i])
            z = _dense(connect_keys[i], params[name], h, connect[i])
            if batch_norm and i < n_layers - 1:
                z, state[name] = _normalize(params[name], state[name], z, train=train, momentum=bn_momentum,
                                             epsilon=bn_epsilon, frozen=frozen[i])
            h = act(z) if i < n_layers - 1 else z
            if taps is not None and i < n_layers - 1:
                taps[name] = h
        return (h if logits else out_fn(h)), state

    identity = ("mlp", sizes, activation, output, bias, init, float(init_scale), jnp.dtype(dtype).name)
    if batch_norm:
        identity += ("batch_norm",)
    return Model(init_fn, apply_fn, (sizes[0],), sizes[-1], n_layers, n_layers, identity, tuple(names),
                 bool(batch_norm), taps=True)


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
    batch_norm: bool = False,
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
        batch_norm: normalize each conv block (per channel, before the activation) and each
            hidden dense layer, as for :func:`mlp`.

    Returns:
        A :class:`Model`. Its dropout vector is input first, then one rate per conv block
        (spatial dropout of whole channels, applied to the block's pooled output), then one
        per hidden dense layer. DropConnect takes one rate per weight array (kernels included).
    """
    input_shape = check_positive_ints("input_shape", input_shape)
    if len(input_shape) != 3:
        raise InputError(f"input_shape: expected (height, width, channels), got {list(input_shape)}")
    channels = check_positive_ints("channels", channels)
    hidden = check_positive_ints("hidden", hidden)
    num_outputs, kernel_size = check_positive_int("num_outputs", num_outputs, "a positive integer"), check_positive_int(
        "kernel_size", kernel_size, "a positive integer")
    check_choice("pool", pool, ("max", "avg"))
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("output", output, OUTPUTS)
    check_choice("init", init, INITS)
    _check_scale(init_scale)
    weight_init = _weight_init(init, init_scale)
    act, out_fn = _ACTIVATION_FNS[activation], _OUTPUT_FNS[output]
    height, width, c_in = input_shape
    for _ in channels:
        height, width = (height + 1) // 2, (width + 1) // 2
    dense_sizes = (height * width * (channels[-1] if channels else c_in), *hidden, num_outputs)
    n_conv, n_dense = len(channels), len(dense_sizes) - 1
    n_drop, n_weights = 1 + n_conv + n_dense - 1, n_conv + n_dense

    names = [f"conv_{i}" for i in range(n_conv)] + [f"dense_{j}" for j in range(n_dense)]

    def init_fn(key: Array) -> tuple[Params, dict]:
        keys = jax.random.split(key, n_weights)
        params, c_prev = {}, c_in
        for name, k, c_out in zip(names, keys[:n_conv], channels):
            shape = (kernel_size, kernel_size, c_prev, c_out)
            params[name] = {"w": weight_init(k, shape, dtype), "b": jnp.zeros((c_out,), dtype)}
            c_prev = c_out
        for name, k, (n_in, n_out) in zip(names[n_conv:], keys[n_conv:], zip(dense_sizes[:-1], dense_sizes[1:])):
            params[name] = {"w": weight_init(k, (n_in, n_out), dtype), "b": jnp.zeros((n_out,), dtype)}
        state = {}
        if batch_norm:
            for name, n_out in zip(names[:-1], (*channels, *dense_sizes[1:-1])):
                norm, state[name] = _norm_init(n_out, dtype)
                params[name].update(norm)
        return params, state

    def pool_fn(h):
        window, pad = (1, 2, 2, 1), ((0, 0), (0, h.shape[1] % 2), (0, h.shape[2] % 2), (0, 0))
        if pool == "max":
            return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, window, window, pad)
        # Odd-sized maps are padded at the far edge: average over the real pixels only.
        ones = jnp.ones((1, *h.shape[1:3], 1), h.dtype)
        count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, window, pad)
        return jax.lax.reduce_window(h, 0.0, jax.lax.add, window, window, pad) / count

    def apply_fn(params, state, x, *, key=None, train=False, dropout=0.0, dropconnect=0.0, logits=True,
                 bn_momentum=0.99, bn_epsilon=1e-5, bn_frozen=0.0, taps=None):
        check_training_key(key, train)
        drop = _per_layer(dropout, n_drop, "dropout", x.dtype)
        connect = _per_layer(dropconnect, n_weights, "dropconnect", x.dtype)
        drop_keys, connect_keys = _layer_keys(key if train else None, n_drop, n_weights, dropout, dropconnect)
        frozen = _frozen_layers(bn_frozen, n_weights, x.dtype)
        state = dict(state)

        def norm(i, z):
            if not batch_norm:
                return z
            z, state[names[i]] = _normalize(params[names[i]], state[names[i]], z, train=train,
                                            momentum=bn_momentum, epsilon=bn_epsilon, frozen=frozen[i])
            return z

        h = drop_units(drop_keys[0], x.reshape((x.shape[0], *input_shape)), drop[0])
        for i in range(n_conv):
            layer = params[names[i]]
            kernel = drop_weights(connect_keys[i], layer["w"], connect[i])
            h = jax.lax.conv_general_dilated(h, kernel, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = pool_fn(act(norm(i, h + layer["b"])))
            if taps is not None:
                taps[names[i]] = h
            h = drop_channels(drop_keys[1 + i], h, drop[1 + i])
        h = h.reshape((h.shape[0], -1))
        for j in range(n_dense):
            layer = params[names[n_conv + j]]
            if j > 0:
                h = drop_units(drop_keys[n_conv + j], h, drop[n_conv + j])
            z = _dense(connect_keys[n_conv + j], layer, h, connect[n_conv + j])
            h = act(norm(n_conv + j, z)) if j < n_dense - 1 else z
            if taps is not None and j < n_dense - 1:
                taps[names[n_conv + j]] = h
        return (h if logits else out_fn(h)), state

    identity = ("cnn", input_shape, num_outputs, channels, kernel_size, pool, hidden, activation, output,
                init, float(init_scale), jnp.dtype(dtype).name)
    if batch_norm:
        identity += ("batch_norm",)
    return Model(init_fn, apply_fn, input_shape, num_outputs, n_drop, n_weights, identity, tuple(names),
                 bool(batch_norm), taps=True)


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
        Params as :func:`mlp` names them, ``{"dense_0": {"w": array}, ...}``.
    """
    sizes = check_positive_ints("sizes", sizes)
    rng = np.random.RandomState(seed)
    return {f"dense_{i}": {"w": (2 * scale * rng.random_sample((n_in, n_out)) - scale).astype(dtype)}
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))}
