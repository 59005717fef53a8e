"""Any model into jaxreg's contract: plain function pairs, Flax linen modules, Equinox modules.

The contract (see :mod:`jaxreg.models`) is ``init(key) -> (params, state)`` and
``apply(params, state, x, *, key=None, train=False) -> (logits, state)``. Each adapter here
wraps a model written for another convention into a :class:`jaxreg.Model`:

* :func:`from_functions`: ``init(key) -> params`` and ``apply(params, x, ...) -> logits``;
* :func:`from_flax`: a ``flax.linen.Module`` (its ``params`` collection is trained, every
  other collection, such as ``batch_stats``, is state);
* :func:`from_equinox`: a function ``key -> equinox.Module`` (or a built module), applied to
  one example at a time and batched with ``vmap``, as Equinox layers expect.

Flax and Equinox are optional: they are imported only when their adapter is used
(``pip install 'jaxreg[flax]'`` or ``'jaxreg[equinox]'``). Dropout inside such a model is the
model's own, at the rate it was built with; jaxreg's swept ``dropout`` and ``dropconnect``
rates apply to jaxreg's own models (the adapters' models take none, and a rate above 0 for
them is an error). Likewise a Flax ``nn.BatchNorm`` keeps the momentum and epsilon it was
built with (``hparams.bn_momentum`` and ``bn_epsilon`` are jaxreg's own batch norm's) and is
not switched to its running statistics in a frozen layer. L2, L1 and weight decay work on any
model: they select weights by role; transfer learning's ``trainable_layers`` and
``layer_lr_decay`` on any model whose params are a dict keyed by layer (Flax's are).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxreg.errors import InputError, check_positive_ints
from jaxreg.models import Model, check_training_key

Array = jax.Array


def _keywords(fn: Callable) -> set[str]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return {"key", "train"}
    return {p.name for p in parameters}


def _output_size(init, apply, input_shape) -> int:
    params, state = jax.eval_shape(init, jax.random.key(0))
    x = jax.ShapeDtypeStruct((2, *input_shape), jnp.float32)
    logits, _ = jax.eval_shape(lambda p, s, x: apply(p, s, x), params, state, x)
    if len(logits.shape) != 2 or logits.shape[0] != 2:
        raise InputError(f"model: expected logits of shape (batch, outputs) from apply, got shape "
                         f"{tuple(logits.shape)} for a batch of 2")
    return int(logits.shape[1])


def from_functions(init: Callable, apply: Callable, input_shape: Sequence[int], *,
                   stateful: bool = False) -> Model:
    """A plain pair of functions as a :class:`jaxreg.Model`.

    Args:
        init: ``init(key) -> params`` (or ``-> (params, state)`` when ``stateful``).
        apply: ``apply(params, x) -> logits`` for a batch ``x``; if it takes ``key`` and
            ``train`` keywords, they are passed (training mode draws from ``key``). When
            ``stateful``, ``apply(params, state, x, ...) -> (logits, state)``.
        input_shape: the shape of one example.
        stateful: whether the pair already follows jaxreg's stateful contract.

    >>> import jax, jax.numpy as jnp
    >>> model = from_functions(lambda key: {"w": jax.random.normal(key, (3, 2))},
    ...                        lambda params, x: x @ params["w"], input_shape=(3,))
    >>> params, state = model.init(jax.random.key(0))
    >>> model.apply(params, state, jnp.ones((4, 3)))[0].shape
    (4, 2)
    """
    input_shape = check_positive_ints("input_shape", input_shape)
    takes = _keywords(apply)

    def init_fn(key):
        return init(key) if stateful else (init(key), {})

    def apply_fn(params, state, x, *, key=None, train=False):
        check_training_key(key, train)
        kwargs = {name: value for name, value in (("key", key), ("train", train)) if name in takes}
        if stateful:
            return apply(params, state, x, **kwargs)
        return apply(params, x, **kwargs), state

    return Model(init_fn, apply_fn, input_shape, _output_size(init_fn, apply_fn, input_shape))


def from_flax(module, input_shape: Sequence[int], *, rng_collections: Sequence[str] = ("dropout",)) -> Model:
    """A ``flax.linen.Module`` as a :class:`jaxreg.Model`.

    ``params`` are the module's ``params`` collection; every other collection it creates
    (``batch_stats`` of ``nn.BatchNorm``) is the model state, updated in training mode. If the
    module's ``__call__`` takes ``train`` (or ``deterministic``), it is passed; training mode
    gives the module ``rngs`` for each of ``rng_collections`` from the step's key.

    Args:
        module: the linen module; its output is the logits.
        input_shape: the shape of one example.
        rng_collections: the rng streams the module draws from in training mode.
    """
    input_shape = check_positive_ints("input_shape", input_shape)
    takes = _keywords(module.__call__)

    def mode(train: bool) -> dict:
        if "train" in takes:
            return {"train": train}
        if "deterministic" in takes:
            return {"deterministic": not train}
        return {}

    def init_fn(key):
        keys = jax.random.split(key, 1 + len(rng_collections))
        rngs = {"params": keys[0], **dict(zip(rng_collections, keys[1:]))}
        variables = dict(module.init(rngs, jnp.zeros((1, *input_shape), jnp.float32), **mode(False)))
        params = variables.pop("params", {})
        return params, variables

    def apply_fn(params, state, x, *, key=None, train=False):
        check_training_key(key, train)
        variables = {"params": params, **state}
        if not train:
            return module.apply(variables, x, **mode(False)), state
        rngs = dict(zip(rng_collections, jax.random.split(key, len(rng_collections))))
        if not state:
            return module.apply(variables, x, rngs=rngs, **mode(True)), state
        logits, updated = module.apply(variables, x, rngs=rngs, mutable=list(state), **mode(True))
        return logits, {**state, **updated}

    return Model(init_fn, apply_fn, input_shape, _output_size(init_fn, apply_fn, input_shape))


def from_equinox(make, input_shape: Sequence[int]) -> Model:
    """An Equinox model as a :class:`jaxreg.Model`.

    Args:
        make: a function ``key -> equinox.Module`` (each member's init then comes from its own
            key), or a built module (every member then starts from the same weights). The
            module acts on ONE example, as Equinox layers do; it is batched with ``vmap``. If
            its ``__call__`` takes ``key``, training mode passes one key per example, and
            ``equinox.nn.inference_mode`` switches its dropout layers off for evaluation.
        input_shape: the shape of one example.

    The trained params are the module's floating-point arrays; everything else is static.
    """
    try:
        import equinox as eqx
    except ImportError:
        raise ImportError("from_equinox needs Equinox: pip install 'jaxreg[equinox]'") from None

    input_shape = check_positive_ints("input_shape", input_shape)
    build = (lambda key: make) if isinstance(make, eqx.Module) else make
    template = build(jax.random.key(0))
    if not isinstance(template, eqx.Module):
        raise InputError(f"model: expected an equinox.Module or a function key -> equinox.Module, "
                         f"got {type(template).__name__}")
    _, static = eqx.partition(template, eqx.is_inexact_array)
    takes = _keywords(template.__call__)

    def init_fn(key):
        params, _ = eqx.partition(build(key), eqx.is_inexact_array)
        return params, {}

    def apply_fn(params, state, x, *, key=None, train=False):
        check_training_key(key, train)
        model = eqx.nn.inference_mode(eqx.combine(params, static), value=not train)
        if train and "key" in takes:
            return jax.vmap(lambda xi, k: model(xi, key=k))(x, jax.random.split(key, x.shape[0])), state
        return jax.vmap(model)(x), state

    return Model(init_fn, apply_fn, input_shape, _output_size(init_fn, apply_fn, input_shape))


def _builds_equinox(make: Callable) -> bool:
    """Whether ``make(key)`` returns an ``equinox.Module`` (built once, on the CPU, to tell)."""
    try:
        made = make(jax.random.key(0))
    except Exception:
        return False
    return "equinox" in {c.__module__.split(".")[0] for c in type(made).__mro__}


def as_model(model: Any, input_shape: Sequence[int] | None = None) -> Model:
    """Whatever describes a model, as a :class:`jaxreg.Model`.

    Accepts a :class:`jaxreg.Model` (returned as is), a ``flax.linen.Module``, an
    ``equinox.Module`` or a function ``key -> equinox.Module``, or an ``(init, apply)`` pair;
    all but the first need ``input_shape``.
    """
    if isinstance(model, Model):
        return model
    if input_shape is None:
        raise InputError(f"input_shape: expected the shape of one example to wrap a "
                         f"{type(model).__name__}, got None")
    bases = {c.__module__.split(".")[0] for c in type(model).__mro__}
    if "flax" in bases:
        return from_flax(model, input_shape)
    if "equinox" in bases:
        return from_equinox(model, input_shape)
    if isinstance(model, tuple) and len(model) == 2 and all(map(callable, model)):
        return from_functions(*model, input_shape)
    if callable(model) and _builds_equinox(model):
        return from_equinox(model, input_shape)
    raise InputError(f"model: expected a jaxreg.Model, a flax.linen.Module, an equinox.Module (or a "
                     f"function key -> equinox.Module) or an (init, apply) pair, got {type(model).__name__}")
