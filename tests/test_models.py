"""decentral.models: shapes, training, vmap over nodes, flattening, numpy references, registry."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral import models
from decentral.models import CNN, MLP, MODELS, Linear, Logistic, make_model

# (spec, one example's shape, outputs): small enough for CPU, every model and image size.
CASES = {
    "linear": (Linear(), (5,), 1),
    "linear_multi": (Linear(), (2, 3), 2),
    "logistic": (Logistic(), (6,), 3),
    "mlp": (MLP(hidden=(8, 4)), (6,), 3),
    "mlp_no_hidden": (MLP(hidden=()), (6,), 3),
    "cnn_28": (CNN(), (28, 28, 1), 10),
    "cnn_32": (CNN(channels=(4, 8), hidden=(16,)), (32, 32, 3), 10),
    "cnn_8": (CNN(channels=(4,)), (8, 8, 1), 4),
}


def _data(case, batch=6, seed=0):
    model, shape, outputs = CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, *shape)).astype(np.float32)
    if model.task == "regression":
        y = rng.normal(size=(batch,) if outputs == 1 else (batch, outputs)).astype(np.float32)
    else:
        y = rng.integers(0, outputs, size=batch).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(y)


@pytest.mark.parametrize("case", sorted(CASES))
def test_shapes_dtypes_and_metrics(case):
    model, shape, outputs = CASES[case]
    params = model.init(jax.random.key(0), shape, outputs)
    x, y = _data(case)
    out = jax.eval_shape(model.apply, params, x)
    assert out.shape == (6, outputs) and out.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    metrics = jax.jit(model.metrics)(params, x, y)
    expected = {"loss", "error"} | ({"accuracy"} if model.task == "classification" else set())
    assert set(metrics) == expected
    assert all(m.shape == () and np.isfinite(m) for m in metrics.values())
    assert model.num_parameters(shape, outputs) == sum(leaf.size for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_decreases_under_sgd(case):
    model, shape, outputs = CASES[case]
    params = model.init(jax.random.key(1), shape, outputs)
    x, y = _data(case, batch=16, seed=1)
    learning_rate = 0.1 if isinstance(model, CNN) else 0.3

    @jax.jit
    def step(params):
        loss, grads = jax.value_and_grad(model.loss)(params, x, y)
        return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads), loss

    losses = []
    for _ in range(30):
        params, loss = step(params)
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("case", ["linear", "logistic", "mlp", "cnn_8"])
def test_vmap_over_nodes_equals_per_node(case):
    model, shape, outputs = CASES[case]
    n = 3
    per_node = [model.init(jax.random.key(10 + i), shape, outputs) for i in range(n)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *per_node)
    xs, ys = zip(*(_data(case, seed=s) for s in range(n)))
    x, y = jnp.stack(xs), jnp.stack(ys)

    def both(params, x, y):
        return jax.value_and_grad(model.loss)(params, x, y), model.apply(params, x)

    (losses, grads), outs = jax.jit(jax.vmap(both))(stacked, x, y)
    single = jax.jit(both)
    for i in range(n):
        (loss_i, grads_i), out_i = single(per_node[i], x[i], y[i])
        np.testing.assert_allclose(losses[i], loss_i, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(outs[i], out_i, rtol=1e-5, atol=1e-5)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_i)):
            np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5)  # conv batching reorders sums


@pytest.mark.parametrize("case", sorted(CASES))
def test_flatten_round_trip(case):
    model, shape, outputs = CASES[case]
    flat = model.flattener(shape, outputs)
    params = model.init(jax.random.key(3), shape, outputs)
    vector, back = jax.jit(lambda p: (flat.flatten(p), flat.unflatten(flat.flatten(p))))(params)
    assert vector.shape == (flat.size,) and vector.dtype == jnp.float32
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # Stacked nodes: the same layout per row, and the same as vmapping the one-node version.
    stacked = jax.tree.map(lambda leaf: jnp.stack([leaf, 2 * leaf, -leaf]), params)

    @jax.jit
    def views(stacked):
        rows = flat.flatten(stacked)
        return rows, jax.vmap(flat.flatten)(stacked), flat.unflatten(rows)

    rows, vmapped, unstacked = views(stacked)
    assert rows.shape == (3, flat.size)
    np.testing.assert_array_equal(rows, vmapped)
    np.testing.assert_array_equal(rows[1], 2 * vector)
    for a, b in zip(jax.tree.leaves(unstacked), jax.tree.leaves(stacked)):
        np.testing.assert_array_equal(a, b)


def test_flattener_layout_and_errors():
    params = {"b": jnp.arange(2.0), "a": jnp.arange(6.0).reshape(2, 3)}
    flat = models.flattener(params)
    np.testing.assert_array_equal(flat.flatten(params), [0, 1, 2, 3, 4, 5, 0, 1])  # sorted keys, C order
    with pytest.raises(ValueError, match="structure"):
        flat.flatten({"a": params["a"]})
    with pytest.raises(ValueError, match="expected shape"):
        flat.flatten({"b": jnp.arange(3.0), "a": params["a"]})
    with pytest.raises(ValueError, match="d=8"):
        flat.unflatten(jnp.zeros(7))


def test_linear_loss_and_gradient_match_numpy():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(9, 4)).astype(np.float32)
    y = rng.normal(size=9).astype(np.float32)
    w = rng.normal(size=(4, 1)).astype(np.float32)
    b = rng.normal(size=1).astype(np.float32)
    mask = np.array([1, 1, 0, 1, 0, 1, 1, 1, 0], dtype=bool)
    model = Linear()
    value_and_grad = jax.jit(jax.value_and_grad(model.loss))
    error = jax.jit(model.error)
    for m in (None, mask):
        keep = np.ones(9, bool) if m is None else m
        xs, ys = x[keep].astype(np.float64), y[keep].astype(np.float64)
        residual = xs @ w[:, 0] + b[0] - ys
        loss = np.mean(residual**2)
        grad_w = 2.0 / len(ys) * xs.T @ residual
        grad_b = 2.0 / len(ys) * residual.sum()
        params = {"w": jnp.asarray(w), "b": jnp.asarray(b)}
        value, grads = value_and_grad(params, x, y, m)
        np.testing.assert_allclose(value, loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grads["w"][:, 0], grad_w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grads["b"][0], grad_b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(error(params, x, y, m), loss, rtol=1e-5)


def test_softmax_cross_entropy_and_accuracy_match_numpy():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(12, 5)).astype(np.float32)
    y = rng.integers(0, 4, size=12).astype(np.int32)
    model = Logistic()
    params = model.init(jax.random.key(0), (5,), 4)
    logits = x.astype(np.float64) @ np.asarray(params["w"], np.float64) + np.asarray(params["b"], np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    metrics = jax.jit(model.metrics)(params, x, y)
    np.testing.assert_allclose(metrics["loss"], -np.mean(log_softmax[np.arange(12), y]), rtol=1e-5)
    np.testing.assert_allclose(metrics["accuracy"], np.mean(logits.argmax(1) == y), rtol=1e-6)


def test_masked_rows_do_not_matter():
    model, shape, outputs = CASES["mlp"]
    params = model.init(jax.random.key(0), shape, outputs)
    x, y = _data("mlp")
    mask = jnp.array([True, True, False, True, False, False])
    garbage = x.at[2].set(1e6).at[4].set(-1e6)
    metrics = jax.jit(model.metrics)
    masked, kept = metrics(params, garbage, y, mask), metrics(params, x[mask], y[mask])
    for name in ("loss", "error", "accuracy"):
        np.testing.assert_allclose(masked[name], kept[name], rtol=1e-6)
    assert metrics(params, x, y, jnp.zeros(6, bool))["loss"] == 0.0


def test_specs_are_static_pytrees_and_hashable():
    spec = make_model("mlp", hidden=[8])
    assert spec == MLP(hidden=(8,)) and hash(spec) == hash(MLP(hidden=(8,)))
    assert jax.tree.leaves(spec) == []
    params = spec.init(jax.random.key(0), (3,), 2)
    out = jax.jit(lambda model, p, x: model.apply(p, x))(spec, params, jnp.ones((2, 3)))
    assert out.shape == (2, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.hidden = (4,)


def test_registry_builds_every_model():
    assert sorted(MODELS) == ["cnn", "linear", "logistic", "mlp"]
    for name, cls in MODELS.items():
        assert make_model(name) == cls() and cls.name == name


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make_model("mpl"), r"Unknown model 'mpl'\. Did you mean 'mlp'\?.*cnn, linear, logistic, mlp"),
        (lambda: make_model("mlp", hiden=[3]), r"unknown parameter 'hiden'\. Did you mean 'hidden'\?"),
        (lambda: make_model("cnn", chanels=[3]), r"Did you mean 'channels'\?"),
        (lambda: make_model("mlp", hidden=[8, 0]), r"hidden must be a list of positive ints"),
        (lambda: make_model("cnn", kernel_size=0), r"kernel_size must be a positive int"),
        (lambda: CNN().init(jax.random.key(0), (64,), 10), r"cnn needs image inputs"),
        (lambda: CNN(channels=(4, 4, 4, 4)).init(jax.random.key(0), (8, 8, 1), 10), r"too small for 4 2x2 poolings"),
        (lambda: Logistic().init(jax.random.key(0), (4,), 0), r"num_outputs must be a positive int"),
        (lambda: CNN().apply(CNN().init(jax.random.key(0), (8, 8, 1), 2), jnp.ones((2, 64))), r"images f32\[B, H, W, C\]"),
    ],
)
def test_bad_input_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
