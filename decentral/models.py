"""Plain-JAX models for one node: parameters as pytrees, specs as frozen dataclasses.

A model spec holds only static hyperparameters (hidden widths, channels); it is hashable,
registered as a static JAX pytree, and has no state. Every spec has the same methods:

    init(key, input_shape, num_outputs) -> params            # one node's parameter pytree
    apply(params, inputs: f32[B, *input_shape]) -> f32[B, num_outputs]
    loss(params, inputs, targets, mask=None) -> f32[]        # mean over valid examples
    error(params, inputs, targets, mask=None) -> f32[]       # MSE, or misclassification rate
    metrics(params, inputs, targets, mask=None) -> dict[str, f32[]]

Everything is written for one node; stack nodes on axis 0 and ``jax.vmap`` (the engine's
job). The engine aggregates flat vectors: :class:`Flattener` maps one node's pytree (or a
stack of them, any leading axes) to ``f32[..., d]`` and back; build it once per model shape
with :meth:`Model.flattener`.

Registry: :data:`MODELS`; :func:`make_model` builds a spec by name with close-match errors.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from attacks._registry import build_from_registry

Params = Any

__all__ = [
    "CNN",
    "MLP",
    "MODELS",
    "Flattener",
    "Linear",
    "Logistic",
    "Model",
    "flattener",
    "make_model",
]


# --------------------------------------------------------------------------- helpers


def _masked_mean(values, mask):
    """Mean of ``values: f32[B]`` over ``mask: bool[B]`` (all rows when None); 0 if none valid."""
    if mask is None:
        return jnp.mean(values)
    mask = jnp.asarray(mask, dtype=bool)
    if mask.shape != values.shape:
        raise ValueError(f"mask has shape {mask.shape}; expected one flag per example, shape {values.shape}.")
    total = jnp.sum(jnp.where(mask, values, jnp.zeros_like(values)))
    return total / jnp.maximum(jnp.sum(mask), 1).astype(values.dtype)


def _draw_weights(key, layers) -> list:
    """Weights for ``layers = [(shape, fan_in, relu), ...]``, each ~ N(0, gain / fan_in).

    gain is 2 before a relu (He) and 1 otherwise (LeCun). All weights come from ONE flat
    normal draw, sliced: XLA compiles each threefry draw separately and slowly (several
    times slower again for multi-axis shapes), so one draw keeps ``init`` cheap to compile.
    """
    sizes = [math.prod(shape) for shape, _, _ in layers]
    flat = jax.random.normal(key, (sum(sizes),), jnp.float32)
    weights, start = [], 0
    for (shape, fan_in, relu), size in zip(layers, sizes):
        gain = 2.0 if relu else 1.0
        weights.append(math.sqrt(gain / fan_in) * flat[start:start + size].reshape(shape))
        start += size
    return weights


def _dense_layers(widths: Sequence[int]) -> list:
    """(shape, fan_in, relu) of dense layers widths[0] -> widths[1] -> ..., relu between, none after the last."""
    return [((a, b), a, i < len(widths) - 2) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]


def _dense_stack(key, widths: Sequence[int]) -> list[dict]:
    """Dense layers for ``widths`` (see :func:`_dense_layers`), zero biases."""
    weights = _draw_weights(key, _dense_layers(widths))
    return [{"w": w, "b": jnp.zeros((w.shape[1],), jnp.float32)} for w in weights]


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def _jit_init(model, key, shape, num_outputs):
    return model._init(key, shape, num_outputs)


def _dense(layer: dict, x):
    """x f32[B, fan_in] -> x W + b, f32[B, fan_out]."""
    return x @ layer["w"] + layer["b"][None, :]


def _flat_inputs(inputs, name: str):
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 1:
        raise ValueError(f"{name}.apply: inputs must be batched, shape [B, ...]; got a scalar.")
    if inputs.ndim == 1:
        return inputs.astype(jnp.float32)[:, None]
    return inputs.astype(jnp.float32).reshape(inputs.shape[0], -1)


def _check_shape(name: str, input_shape, num_outputs) -> tuple[tuple[int, ...], int]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except TypeError:
        raise ValueError(
            f"{name}.init: input_shape must be a tuple of ints (one example's shape); got {input_shape!r}."
        ) from None
    if any(s < 1 for s in shape):
        raise ValueError(f"{name}.init: input_shape must have positive sizes; got {shape}.")
    if isinstance(num_outputs, bool) or not isinstance(num_outputs, numbers.Integral) or num_outputs < 1:
        raise ValueError(f"{name}.init: num_outputs must be a positive int; got {num_outputs!r}.")
    return shape, int(num_outputs)


def _positive_ints(name: str, field: str, value) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{name}: {field} must be a list of positive ints, e.g. [64, 64]; got {value!r}.")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 1:
            raise ValueError(f"{name}: {field} must be a list of positive ints, e.g. [64, 64]; got {list(value)!r}.")
        out.append(int(item))
    return tuple(out)


# --------------------------------------------------------------------------- base spec


class Model:
    """Base of every model spec: shared loss, metrics and flattening.

    Subclasses set ``name``, ``task`` and define ``init``, ``apply`` and
    ``per_example_loss``; classifiers also get ``accuracy``.
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = ""  # "regression" or "classification"

    def init(self, key, input_shape, num_outputs) -> Params:
        """One node's parameters for examples of ``input_shape`` and ``num_outputs`` outputs.

        Weights are normal with variance gain / fan_in (gain 2 before a relu, He; else 1,
        LeCun); biases are zero. The whole initialisation is one compiled function per
        (spec, shapes), so it is cheap to call per node or under ``jax.vmap``.

        Args:
            key: a PRNG key.
            input_shape: one example's shape, e.g. ``(64,)`` or ``(28, 28, 1)``.
            num_outputs: classes, or regression outputs.

        Returns:
            the parameter pytree (float32 leaves).

        Raises:
            ValueError: a bad shape, or one the architecture cannot take.
        """
        shape, num_outputs = _check_shape(self.name, input_shape, num_outputs)
        self._check_input(shape)
        return _jit_init(self, key, shape, num_outputs)

    def _check_input(self, shape: tuple[int, ...]) -> None:
        del shape

    def _init(self, key, shape: tuple[int, ...], num_outputs: int) -> Params:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, params: Params, inputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def per_example_loss(self, params: Params, inputs, targets):  # pragma: no cover - abstract
        raise NotImplementedError

    def per_example_error(self, params: Params, inputs, targets):  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, params: Params, inputs, targets, mask=None):
        """Mean per-example loss over the valid examples.

        Args:
            params: one node's parameter pytree.
            inputs: f32[B, *input_shape].
            targets: int32[B] labels (classifiers) or f32[B] / f32[B, num_outputs] (linear).
            mask: bool[B] valid examples (default all), e.g. ``arange(m) < count`` for padded
                node data; a batch with no valid example has loss 0.

        Returns:
            f32[], differentiable in ``params``.
        """
        return _masked_mean(self.per_example_loss(params, inputs, targets), mask)

    def error(self, params: Params, inputs, targets, mask=None):
        """Task error over the valid examples: MSE (regression) or misclassification rate.

        Args: as :meth:`loss`.

        Returns:
            f32[].
        """
        return _masked_mean(self.per_example_error(params, inputs, targets), mask)

    def metrics(self, params: Params, inputs, targets, mask=None) -> dict:
        """``{"loss", "error"}`` and, for classifiers, ``"accuracy"`` (each f32[])."""
        out = {
            "loss": self.loss(params, inputs, targets, mask),
            "error": self.error(params, inputs, targets, mask),
        }
        if self.task == "classification":
            out["accuracy"] = self.accuracy(params, inputs, targets, mask)
        return out

    def flattener(self, input_shape, num_outputs) -> Flattener:
        """The :class:`Flattener` for this model's parameters (no parameters are computed).

        Args:
            input_shape: one example's shape, e.g. ``(64,)`` or ``(28, 28, 1)``.
            num_outputs: classes, or regression outputs.

        Returns:
            Flattener with ``size`` = the number of parameters d.
        """
        shapes = jax.eval_shape(lambda key: self.init(key, input_shape, num_outputs), jax.random.key(0))
        return Flattener.from_params(shapes)

    def num_parameters(self, input_shape, num_outputs) -> int:
        """d, the length of one node's flat parameter vector."""
        return self.flattener(input_shape, num_outputs).size


class _Classifier(Model):
    task: ClassVar[str] = "classification"

    def per_example_loss(self, params, inputs, targets):
        """Softmax cross-entropy: logsumexp(z) - z[y], with z = apply(params, inputs), y int labels."""
        logits = self.apply(params, inputs)
        labels = jnp.asarray(targets).astype(jnp.int32).reshape(logits.shape[0], 1)
        picked = jnp.take_along_axis(logits, labels, axis=1)[:, 0]
        return jax.nn.logsumexp(logits, axis=1) - picked

    def _correct(self, params, inputs, targets):
        logits = self.apply(params, inputs)
        labels = jnp.asarray(targets).astype(jnp.int32).reshape(logits.shape[0])
        return jnp.argmax(logits, axis=1) == labels

    def per_example_error(self, params, inputs, targets):
        """1 where the arg-max logit is not the label, else 0; f32[B]."""
        return 1.0 - self._correct(params, inputs, targets).astype(jnp.float32)

    def accuracy(self, params: Params, inputs, targets, mask=None):
        """Fraction of valid examples whose arg-max logit is the label (ties: lowest class).

        Args: as :meth:`loss`.

        Returns:
            f32[] in [0, 1].
        """
        return _masked_mean(self._correct(params, inputs, targets).astype(jnp.float32), mask)


# --------------------------------------------------------------------------- models


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Linear(Model):
    """Least-squares linear regression: y_hat = x W + b, loss = mean_i ||y_hat_i - y_i||^2.

    Inputs of any example shape are flattened to p = prod(input_shape) features. The loss
    is the plain mean squared error (no 1/2), summed over outputs when num_outputs > 1, so
    its gradient in W is (2/B) X^T (X W + b - Y).

    Params:
        ``{"w": f32[p, num_outputs], "b": f32[num_outputs]}``.

    Example:
        >>> model = Linear(); params = model.init(key, (10,), 1)
        >>> model.loss(params, x, y)  # x: f32[B, 10], y: f32[B]

    References:
        Ordinary least squares; the synthetic regression task in ``decentral.data`` has its
        minimiser in this layout.
    """

    name: ClassVar[str] = "linear"
    task: ClassVar[str] = "regression"

    def init(self, key, input_shape, num_outputs=1) -> Params:
        """LeCun-normal weights f32[p, num_outputs] and zero bias; p = prod(input_shape)."""
        return super().init(key, input_shape, num_outputs)

    def _init(self, key, shape, num_outputs):
        return _dense_stack(key, (math.prod(shape), num_outputs))[0]

    def apply(self, params: Params, inputs):
        """Predictions f32[B, num_outputs] for inputs f32[B, *input_shape]."""
        return _dense(params, _flat_inputs(inputs, self.name))

    def per_example_loss(self, params, inputs, targets):
        """Squared error ||x_i W + b - y_i||^2 per example, f32[B]; targets f32[B] or f32[B, k]."""
        predictions = self.apply(params, inputs)
        targets = jnp.asarray(targets, jnp.float32).reshape(predictions.shape)
        return jnp.sum(jnp.square(predictions - targets), axis=1)

    def per_example_error(self, params, inputs, targets):
        return self.per_example_loss(params, inputs, targets)


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Logistic(_Classifier):
    """Multinomial logistic (softmax) regression: z = x W + b, cross-entropy with integer labels.

    Inputs of any example shape are flattened to p = prod(input_shape) features.

    Params:
        ``{"w": f32[p, num_classes], "b": f32[num_classes]}``.

    References:
        Convex; the synthetic classification task's Bayes classifier has this form
        (Gaussian classes with a shared identity covariance).
    """

    name: ClassVar[str] = "logistic"

    def _init(self, key, shape, num_outputs):
        return _dense_stack(key, (math.prod(shape), num_outputs))[0]

    def apply(self, params: Params, inputs):
        """Logits f32[B, num_classes]."""
        return _dense(params, _flat_inputs(inputs, self.name))


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class MLP(_Classifier):
    """Fully connected relu network: h_0 = x, h_{l+1} = relu(h_l W_l + b_l), logits = h_L W + b.

    Args:
        hidden: widths of the hidden layers (default one layer of 64); ``()`` is logistic
            regression.

    Params:
        ``{"layers": [{"w": f32[fan_in, fan_out], "b": f32[fan_out]}, ...]}``, the last
        layer mapping to num_classes.
    """

    name: ClassVar[str] = "mlp"
    hidden: tuple[int, ...] = (64,)

    def __post_init__(self):
        object.__setattr__(self, "hidden", _positive_ints(self.name, "hidden", self.hidden))

    def _init(self, key, shape, num_outputs):
        return {"layers": _dense_stack(key, (math.prod(shape), *self.hidden, num_outputs))}

    def apply(self, params: Params, inputs):
        """Logits f32[B, num_classes]."""
        h = _flat_inputs(inputs, self.name)
        *hidden, last = params["layers"]
        for layer in hidden:
            h = jax.nn.relu(_dense(layer, h))
        return _dense(last, h)


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class CNN(_Classifier):
    """Small convolutional net for images f32[B, H, W, C] (NHWC), e.g. 28x28x1 or 32x32x3.

    Each stage is a 3x3 'SAME' convolution, relu and 2x2 max pooling (stride 2, floor), then
    optional dense relu layers and a dense output layer:
    z = dense(relu(...pool(relu(conv_2(pool(relu(conv_1(x))))))...)).

    Args:
        channels: output channels of the convolution stages (default (8, 16): about 9k
            parameters on 28x28x1, 11k on 32x32x3).
        hidden: widths of dense relu layers after the convolutions (default none).
        kernel_size: side of the square convolution kernels (default 3).

    Params:
        ``{"conv": [{"w": f32[k, k, c_in, c_out], "b": f32[c_out]}, ...],
        "dense": [{"w", "b"}, ...]}``.

    Raises:
        ValueError: (init) an input_shape that is not (H, W, C), or an image too small for
            one 2x2 pooling per stage.
    """

    name: ClassVar[str] = "cnn"
    channels: tuple[int, ...] = (8, 16)
    hidden: tuple[int, ...] = ()
    kernel_size: int = 3

    def __post_init__(self):
        object.__setattr__(self, "channels", _positive_ints(self.name, "channels", self.channels))
        object.__setattr__(self, "hidden", _positive_ints(self.name, "hidden", self.hidden))
        if isinstance(self.kernel_size, bool) or not isinstance(self.kernel_size, numbers.Integral) or self.kernel_size < 1:
            raise ValueError(f"cnn: kernel_size must be a positive int; got {self.kernel_size!r}.")
        object.__setattr__(self, "kernel_size", int(self.kernel_size))

    def _check_input(self, shape):
        if len(shape) != 3:
            raise ValueError(
                f"cnn needs image inputs of shape (height, width, channels); got input_shape={shape}. "
                "Use an image dataset (mnist, fashion_mnist, cifar10, or digits or mnist5k with image=True) "
                "or a flat model (logistic, mlp)."
            )
        height, width, c_in = shape
        stages = len(self.channels)
        if height >> stages < 1 or width >> stages < 1:
            raise ValueError(
                f"cnn: a {height}x{width} image is too small for {stages} 2x2 poolings "
                f"(channels={list(self.channels)}); use at most {int(math.log2(min(height, width)))} stages."
            )

    def _init(self, key, shape, num_outputs):
        height, width, c_in = shape
        stages = len(self.channels)
        size, channels = self.kernel_size, (c_in, *self.channels)
        features = (height >> stages) * (width >> stages) * self.channels[-1]
        widths = (features, *self.hidden, num_outputs)
        conv_layers = [((size, size, a, b), size * size * a, True) for a, b in zip(channels[:-1], channels[1:])]
        weights = _draw_weights(key, conv_layers + _dense_layers(widths))
        conv = [{"w": w, "b": jnp.zeros((w.shape[-1],), jnp.float32)} for w in weights[:stages]]
        dense = [{"w": w, "b": jnp.zeros((w.shape[-1],), jnp.float32)} for w in weights[stages:]]
        return {"conv": conv, "dense": dense}

    def apply(self, params: Params, inputs):
        """Logits f32[B, num_classes] for images f32[B, H, W, C]."""
        x = jnp.asarray(inputs, jnp.float32)
        if x.ndim != 4:
            raise ValueError(f"cnn.apply: inputs must be images f32[B, H, W, C]; got shape {x.shape}.")
        for layer in params["conv"]:
            x = jax.lax.conv_general_dilated(
                x, layer["w"], window_strides=(1, 1), padding="SAME",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
            x = jax.nn.relu(x + layer["b"].reshape(1, 1, 1, -1))
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = x.reshape(x.shape[0], -1)
        *hidden, last = params["dense"]
        for layer in hidden:
            h = jax.nn.relu(_dense(layer, h))
        return _dense(last, h)


# --------------------------------------------------------------------------- flattening


@dataclasses.dataclass(frozen=True, eq=False)
class Flattener:
    """Maps a parameter pytree to one f32 vector and back, for one node or a stack of nodes.

    The layout is the pytree's leaf order (``jax.tree.flatten``), each leaf raveled in C
    order, so flatten(params) = concat_l ravel(leaf_l). Leading axes beyond a leaf's own
    shape (nodes, repeats) are kept: a stack ``params[n]`` maps to ``f32[n, d]``.

    Attributes:
        treedef: the pytree structure.
        shapes: each leaf's shape for one node.
        dtypes: each leaf's dtype (restored by :meth:`unflatten`).
        size: d, the flat length.
    """

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[Any, ...]
    size: int

    @classmethod
    def from_params(cls, params: Params) -> Flattener:
        """Build from one node's parameters (arrays or ``jax.ShapeDtypeStruct`` leaves)."""
        leaves, treedef = jax.tree.flatten(params)
        shapes = tuple(tuple(int(s) for s in leaf.shape) for leaf in leaves)
        dtypes = tuple(jnp.dtype(leaf.dtype) for leaf in leaves)
        return cls(treedef, shapes, dtypes, int(sum(math.prod(s) for s in shapes)))

    def _lead(self, leaves) -> tuple[int, ...]:
        lead = None
        for leaf, shape in zip(leaves, self.shapes):
            ndim = jnp.ndim(leaf)
            if ndim < len(shape) or tuple(jnp.shape(leaf)[ndim - len(shape):]) != shape:
                raise ValueError(
                    f"Flattener: a leaf of shape {jnp.shape(leaf)} does not end in the expected shape {shape}; "
                    "build the flattener from this model's parameters."
                )
            this = tuple(jnp.shape(leaf)[: ndim - len(shape)])
            if lead is not None and this != lead:
                raise ValueError(f"Flattener: leaves have different leading axes, {lead} and {this}.")
            lead = this
        return lead or ()

    def flatten(self, params: Params):
        """params (leaves of shape [*lead, *shape]) -> f32[*lead, d]."""
        leaves, treedef = jax.tree.flatten(params)
        if treedef != self.treedef:
            raise ValueError(f"Flattener: parameter structure {treedef} differs from the expected {self.treedef}.")
        lead = self._lead(leaves)
        if not leaves:
            return jnp.zeros((*lead, 0), jnp.float32)
        parts = [jnp.reshape(jnp.asarray(leaf, jnp.float32), (*lead, -1)) for leaf in leaves]
        return jnp.concatenate(parts, axis=-1)

    def unflatten(self, flat) -> Params:
        """f32[*lead, d] -> params with leaves of shape [*lead, *shape] and their own dtypes."""
        flat = jnp.asarray(flat)
        if flat.ndim < 1 or flat.shape[-1] != self.size:
            raise ValueError(f"Flattener: expected a last axis of length d={self.size}; got shape {flat.shape}.")
        lead = flat.shape[:-1]
        leaves, start = [], 0
        for shape, dtype in zip(self.shapes, self.dtypes):
            stop = start + math.prod(shape)
            leaves.append(jnp.reshape(flat[..., start:stop], (*lead, *shape)).astype(dtype))
            start = stop
        return jax.tree.unflatten(self.treedef, leaves)


def flattener(params: Params) -> Flattener:
    """The :class:`Flattener` of one node's parameter pytree (see :meth:`Model.flattener`)."""
    return Flattener.from_params(params)


# --------------------------------------------------------------------------- registry


#: Every model spec, by config name.
MODELS: dict[str, type[Model]] = {"linear": Linear, "logistic": Logistic, "mlp": MLP, "cnn": CNN}


def make_model(name: str, **params) -> Model:
    """Build a model spec from its registry name and hyperparameters.

    Args:
        name: a key of :data:`MODELS` ("linear", "logistic", "mlp", "cnn").
        **params: the spec's fields, e.g. ``hidden=[128, 64]`` for mlp.

    Returns:
        Model, a frozen (hashable) spec.

    Raises:
        ValueError: an unknown name or parameter (with a close-match suggestion and the
            valid ones), or an invalid value.

    Example:
        >>> make_model("mlp", hidden=[32])  # MLP(hidden=(32,))
    """
    if isinstance(name, Model):
        if params:
            raise ValueError(f"make_model: parameters {sorted(params)} given with a built spec {name!r}.")
        return name
    return build_from_registry("model", MODELS, name, params)

