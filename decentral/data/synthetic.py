"""Synthetic tasks generated node by node from a seed: linear regression with a known
optimum and Gaussian classification, each with a heterogeneity knob (any n, O(n) memory)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .checks import node_count, positive
from .containers import FederatedData, NodeData


# The generators draw ONE flat normal vector per node and one for the global quantities and
# the test set, then slice it: XLA compiles each threefry draw separately and slowly, so
# this keeps the first call (one compilation per shape) cheap. Node i's draw comes from
# fold_in(key, i), so its data does not depend on n. Test point t comes from node t mod n.


@functools.partial(jax.jit, static_argnames=("num_nodes", "dim", "samples_per_node", "test_samples"))
def _regression_arrays(key, noise, heterogeneity, *, num_nodes, dim, samples_per_node, test_samples):
    m, t = samples_per_node, test_samples
    shared = jax.random.normal(jax.random.fold_in(key, 0), (dim + t * dim + t,))
    w_star = shared[:dim]
    k_nodes = jax.random.fold_in(key, 1)

    def node(i):
        z = jax.random.normal(jax.random.fold_in(k_nodes, i), (dim + m * dim + m,))
        w = w_star + heterogeneity * z[:dim]
        x = z[dim: dim + m * dim].reshape(m, dim)
        return x, x @ w + noise * z[dim + m * dim:], w

    x, y, w = jax.vmap(node)(jnp.arange(num_nodes))
    x_test = shared[dim: dim + t * dim].reshape(t, dim)
    who = jnp.arange(t) % num_nodes
    y_test = jnp.sum(x_test * w[who], axis=1) + noise * shared[dim + t * dim:]
    return x, y, w, w_star, x_test, y_test


def synthetic_regression(num_nodes: int, *, seed=0, dim: int = 10, samples_per_node: int = 50,
                         noise: float = 0.1, heterogeneity: float = 0.0, test_samples: int = 1000) -> FederatedData:
    """Linear regression generated node by node: y = x . w_i + noise * e, x, e ~ N(0, I).

    w* ~ N(0, I_dim); node i's optimum is w_i = w* + heterogeneity * z_i, z_i ~ N(0, I)
    (heterogeneity = 0: iid nodes). Node i's data comes from ``fold_in(key, i)``, so it does
    not depend on n, and nothing global is materialised. The test set is the equal mixture
    of the nodes' distributions (point t from node t mod n), whose least-squares minimiser
    is mean_i w_i: the minimiser of the average of the nodes' population losses.

    Args:
        num_nodes: n.
        seed: data seed.
        dim: p, input features.
        samples_per_node: m, samples per node (every count is m).
        noise: sigma >= 0 of the target noise.
        heterogeneity: spread >= 0 of the node optima around w*.
        test_samples: T.

    Returns:
        FederatedData (task "regression", y f32) with ``optimum`` = each node's w_i in
        ``models.Linear`` layout ({"w": f32[n, p, 1], "b": zeros f32[n, 1]}) and
        ``info["w_star"]`` f32[p].

    Raises:
        ValueError: a non-positive size or a negative noise / heterogeneity.
    """
    owner = "synthetic_regression"
    n = node_count(owner, num_nodes)
    dim = positive(owner, "dim", dim, integer=True)
    m = positive(owner, "samples_per_node", samples_per_node, integer=True)
    test_samples = positive(owner, "test_samples", test_samples, integer=True)
    noise = positive(owner, "noise", noise, zero=True)
    heterogeneity = positive(owner, "heterogeneity", heterogeneity, zero=True)
    x, y, w, w_star, x_test, y_test = _regression_arrays(
        jax.random.key(seed), jnp.float32(noise), jnp.float32(heterogeneity),
        num_nodes=n, dim=dim, samples_per_node=m, test_samples=test_samples,
    )
    train = NodeData(x, y, jnp.full((n,), m, jnp.int32))
    optimum = {"w": w[:, :, None], "b": jnp.zeros((n, 1), jnp.float32)}
    info = {"w_star": w_star, "noise": noise, "heterogeneity": heterogeneity}
    return FederatedData(owner, "regression", train, x_test, y_test, (dim,), 1, optimum, info)


@functools.partial(jax.jit, static_argnames=("num_nodes", "dim", "num_classes", "samples_per_node", "test_samples"))
def _classification_arrays(key, separation, heterogeneity, *, num_nodes, dim, num_classes, samples_per_node, test_samples):
    m, t, c = samples_per_node, test_samples, num_classes
    shared = jax.random.normal(jax.random.fold_in(key, 0), (c * dim + t * dim + t,))
    directions = shared[: c * dim].reshape(c, dim)
    centres = separation * directions / jnp.linalg.norm(directions, axis=1, keepdims=True)
    k_nodes = jax.random.fold_in(key, 1)

    def sample(noise, normal, priors):
        # Inverse-CDF categorical draw: u = Phi(normal) is uniform on (0, 1).
        u = jax.scipy.special.ndtr(normal)
        thresholds = jnp.cumsum(priors)[:-1]
        y = jnp.sum(u[:, None] > thresholds[None, :], axis=1).astype(jnp.int32)
        return centres[y] + noise, y

    def node(i):
        z = jax.random.normal(jax.random.fold_in(k_nodes, i), (c + m * dim + m,))
        priors = jax.nn.softmax(heterogeneity * z[:c])
        x, y = sample(z[c: c + m * dim].reshape(m, dim), z[c + m * dim:], priors)
        return x, y, priors

    x, y, priors = jax.vmap(node)(jnp.arange(num_nodes))
    who = jnp.arange(t) % num_nodes
    test_noise = shared[c * dim: c * dim + t * dim].reshape(t, dim)
    x_test, y_test = jax.vmap(sample, in_axes=(0, 0, 0))(test_noise[:, None, :], shared[c * dim + t * dim:, None], priors[who])
    return x, y, priors, centres, x_test[:, 0], y_test[:, 0]


def synthetic_classification(num_nodes: int, *, seed=0, dim: int = 10, num_classes: int = 10,
                             samples_per_node: int = 50, separation: float = 2.0,
                             heterogeneity: float = 0.0, test_samples: int = 1000) -> FederatedData:
    """Gaussian classes generated node by node: y ~ Categorical(pi_i), x = mu_y + N(0, I).

    Class centres mu_c = separation * u_c, u_c uniform on the unit sphere of R^dim. Node
    i's class priors are pi_i = softmax(heterogeneity * g_i), g_i ~ N(0, I_C)
    (heterogeneity = 0: uniform priors, iid nodes; larger: label skew). Node data comes from
    ``fold_in(key, i)`` (independent of n). The test set is the equal mixture of the nodes'
    distributions (point t from node t mod n). With a
    shared identity covariance the Bayes classifier is linear, argmax_c mu_c . x -
    |mu_c|^2 / 2 + log pi_c, i.e. ``models.Logistic`` parameters (given in ``info``).

    Args:
        num_nodes: n.
        seed: data seed.
        dim: p, input features.
        num_classes: C >= 2.
        samples_per_node: m.
        separation: norm of every class centre (> 0).
        heterogeneity: label-skew strength (>= 0).
        test_samples: T.

    Returns:
        FederatedData (task "classification", y int32) with ``info`` holding "centres"
        f32[C, p], "priors" f32[n, C] and "bayes_params" ({"w": f32[p, C], "b": f32[C]},
        the Bayes classifier for the test mixture).

    Raises:
        ValueError: a non-positive size or separation, num_classes < 2, heterogeneity < 0.
    """
    owner = "synthetic_classification"
    n = node_count(owner, num_nodes)
    dim = positive(owner, "dim", dim, integer=True)
    num_classes = positive(owner, "num_classes", num_classes, integer=True)
    if num_classes < 2:
        raise ValueError(f"{owner}: num_classes must be at least 2; got {num_classes}.")
    m = positive(owner, "samples_per_node", samples_per_node, integer=True)
    test_samples = positive(owner, "test_samples", test_samples, integer=True)
    separation = positive(owner, "separation", separation)
    heterogeneity = positive(owner, "heterogeneity", heterogeneity, zero=True)
    x, y, priors, centres, x_test, y_test = _classification_arrays(
        jax.random.key(seed), jnp.float32(separation), jnp.float32(heterogeneity),
        num_nodes=n, dim=dim, num_classes=num_classes, samples_per_node=m, test_samples=test_samples,
    )
    train = NodeData(x, y, jnp.full((n,), m, jnp.int32))
    bayes = {"w": centres.T, "b": -0.5 * jnp.sum(centres**2, axis=1) + jnp.log(jnp.mean(priors, axis=0))}
    info = {"centres": centres, "priors": priors, "bayes_params": bayes,
            "separation": separation, "heterogeneity": heterogeneity}
    return FederatedData(owner, "classification", train, x_test, y_test, (dim,), num_classes, None, info)


def least_squares_optimum(node_data: NodeData, nodes=None) -> dict:
    """The exact minimiser of the nodes' average mean-squared loss, in ``models.Linear`` layout.

    Solves min_{w, b} sum_{i in nodes} (1/count_i) sum_{r < count_i} (x_ir . w + b - y_ir)^2
    (each node's loss is a mean, as in decentralized SGD with doubly stochastic mixing) by
    the normal equations in float64 (least-norm solution if singular).

    Args:
        node_data: NodeData with f32 targets y [n, m].
        nodes: optional node ids or bool[n] mask (e.g. the honest nodes); default all.

    Returns:
        {"w": f32[p, 1], "b": f32[1]} with p = prod(input_shape).
    """
    x = np.asarray(node_data.x, dtype=np.float64)
    y = np.asarray(node_data.y, dtype=np.float64)
    count = np.asarray(node_data.count)
    valid = np.asarray(node_data.mask, dtype=np.float64)
    if nodes is not None:
        x, y, count, valid = x[nodes], y[nodes], count[nodes], valid[nodes]
    n, m = y.shape
    design = np.concatenate([x.reshape(n, m, -1) * valid[..., None], valid[..., None]], axis=2)
    scale = (1.0 / np.maximum(count, 1))[:, None, None]
    gram = np.sum(np.einsum("nmp,nmq->npq", design, design) * scale, axis=0)
    rhs = np.sum(np.einsum("nmp,nm->np", design, y * valid) * scale[:, :, 0], axis=0)
    solution = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return {"w": jnp.asarray(solution[:-1, None], jnp.float32), "b": jnp.asarray(solution[-1:], jnp.float32)}
