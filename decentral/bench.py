"""Benchmarks (``decentral bench ...``): speeds reported as ratios measured in the same run."""

from __future__ import annotations

import dataclasses
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from . import aggregators as agg
from .aggregators import _native, ops
from .testing import largest_f

#: Hyperparameters used for the rules in the benchmark (defaults otherwise).
BENCH_HYPERPARAMETERS = {"clip": {"radius": 1.0}, "centered_clipping": {"radius": 1.0}}


def _centered_gram(x, mask):
    return ops.centered_gram(ops.inbox_geometry(x, mask).distances, mask.astype(x.dtype))


def _covariance_spectrum(x, mask):
    weights = mask.astype(x.dtype)
    return ops.covariance_spectrum(ops.centered_gram(ops.inbox_geometry(x, mask).distances, weights), weights)


#: Primitives of ``decentral.aggregators.ops`` timed like rules (``--rules ops.centered_gram``):
#: one node's inbox and mask -> what the primitive gives (a [K, K] matrix, not a [d] vector).
PRIMITIVES = {
    "ops.centered_gram": _centered_gram,
    "ops.covariance_spectrum": _covariance_spectrum,
}


@dataclasses.dataclass(frozen=True)
class RuleTiming:
    """One rule's time per round over n inboxes of K rows of dimension d.

    ``ratio_to_floor`` compares with reading the inboxes once (``jnp.sum`` of all of
    them), the memory floor of any rule, timed in the same run.
    """

    rule: str
    milliseconds: float
    ratio_to_mean: float
    ratio_to_floor: float
    gigabytes_per_second: float
    peak_megabytes: float
    note: str = ""


def _aggregate_all(spec, block):
    """Apply ``spec`` to every node's inbox, ``block`` nodes at a time (memory ~ block*K*d).

    The compiled function takes the previous round's output and writes the new one into
    its buffer (donated), as the engine's round loop does: a fresh output buffer would
    be faulted in page by page on every call (``malloc`` maps large blocks anew), which
    measured ~10 ms per round here, most of ``mean``'s time.
    """

    def one(inbox, f, key):
        out = spec(inbox, f=f, key=key)
        return out[0][0] if isinstance(out, tuple) else out

    def run(inboxes, f, keys, previous):
        del previous  # its buffer receives the output
        fs = jnp.full(inboxes.shape[0], f, jnp.int32)
        return jax.lax.map(lambda args: one(*args), (inboxes, fs, keys), batch_size=block)

    return jax.jit(run, donate_argnums=3, keep_unused=True)


def _primitive_all(primitive, block):
    """Apply ``primitive`` to every node's inbox (all rows valid), ``block`` nodes at a time."""

    def run(inboxes):
        mask = jnp.ones(inboxes.shape[1], bool)
        return jax.lax.map(lambda inbox: primitive(inbox, mask), inboxes, batch_size=block)

    return jax.jit(run)


def _peak_megabytes(compiled) -> float:
    stats = compiled.memory_analysis()
    if stats is None:
        return float("nan")
    total = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
    return total / 2**20


def _time(fn, *args, repeats):
    """Best wall time of ``fn(*args)`` over ``repeats`` calls after a warm-up."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def _time_rounds(fn, inboxes, f, keys, output_shape, *, repeats):
    """Best wall time of one round, each call writing into the previous output's buffer."""
    output = jax.block_until_ready(fn(inboxes, f, keys, jnp.zeros(output_shape.shape, output_shape.dtype)))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        output = jax.block_until_ready(fn(inboxes, f, keys, output))
        best = min(best, time.perf_counter() - start)
    return best


def bench_aggregators(
    *, nodes=1000, inbox=11, dim=10_000, rules=None, f=2, block=None, repeats=3, seed=0
) -> list[RuleTiming]:
    """Time each rule on ``nodes`` pre-gathered inboxes ``f32[nodes, inbox, dim]``.

    Returns one :class:`RuleTiming` per rule, ``mean`` first; ratios are to ``mean``
    measured in the same run. The floor for a round is reading the inboxes once. Names
    of :data:`PRIMITIVES` (``"ops.centered_gram"``) time that primitive instead; by
    default every registered rule and every primitive runs.
    """
    names = list(rules or [*agg.AGGREGATORS, *PRIMITIVES])  # names, or lists for chains
    names = ["mean"] + [name for name in names if name != "mean"]
    block = block or nodes
    rng = np.random.default_rng(seed)
    inboxes = jnp.asarray(rng.normal(size=(nodes, inbox, dim)).astype(np.float32))
    keys = jax.random.split(jax.random.key(seed), nodes)
    read_gigabytes = inboxes.size * 4 / 1e9
    floor = jax.jit(jnp.sum).lower(inboxes).compile()
    floor_seconds = _time(floor, inboxes, repeats=repeats)
    timings = [RuleTiming("(floor: read once)", floor_seconds * 1e3, float("nan"), 1.0, read_gigabytes / floor_seconds, float("nan"))]
    mean_seconds = None
    for config in names:
        name = "+".join(config) if isinstance(config, list) else config
        if name in PRIMITIVES:
            compiled = _primitive_all(PRIMITIVES[name], block).lower(inboxes).compile()
            seconds = _time(compiled, inboxes, repeats=repeats)
            timings.append(_timing(name, seconds, mean_seconds, floor_seconds, read_gigabytes, compiled, "per node: [K, K]"))
            continue
        spec = agg.resolve(config, **BENCH_HYPERPARAMETERS.get(name, {}))
        rule_f = min(f, largest_f(spec, inbox))
        spec = spec.with_largest_f(rule_f)
        fn = _aggregate_all(spec, block)
        output_shape = jax.ShapeDtypeStruct((nodes, dim), inboxes.dtype)
        compiled = fn.lower(inboxes, rule_f, keys, output_shape).compile()
        seconds = _time_rounds(compiled, inboxes, rule_f, keys, output_shape, repeats=repeats)
        mean_seconds = mean_seconds or seconds
        timings.append(_timing(name, seconds, mean_seconds, floor_seconds, read_gigabytes, compiled, f"f={rule_f}" if rule_f != f else ""))
    return timings


def _timing(name, seconds, mean_seconds, floor_seconds, read_gigabytes, compiled, note) -> RuleTiming:
    return RuleTiming(
        rule=name,
        milliseconds=seconds * 1e3,
        ratio_to_mean=seconds / mean_seconds,
        ratio_to_floor=seconds / floor_seconds,
        gigabytes_per_second=read_gigabytes / seconds,
        peak_megabytes=_peak_megabytes(compiled),
        note=note,
    )


def _fmt(value: float, digits: int) -> str:
    return "-" if np.isnan(value) else f"{value:.{digits}f}"


def machine_summary() -> str:
    """One line naming the machine the numbers came from, and whether the distance rules
    ran on the native CPU kernels (``decentral.aggregators._native``)."""
    device = jax.devices()[0]
    native = "native CPU kernels" if device.platform == "cpu" and _native.available() else "portable JAX code"
    return f"{platform.machine()}, {os.cpu_count()} cores, JAX {jax.__version__} on {device.platform}, {native}"


def format_table(timings: list[RuleTiming], *, nodes, inbox, dim, block) -> str:
    """A Markdown table of the timings, with the floor for reading the inbox once."""
    lines = [
        f"n={nodes} nodes, K={inbox} rows, d={dim}, blocks of {block or nodes} nodes ({machine_summary()})",
        "",
        "| rule | ms / round | x mean | x floor | GB/s | peak MB | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for t in timings:
        lines.append(
            f"| {t.rule} | {t.milliseconds:.1f} | {_fmt(t.ratio_to_mean, 2)} | {_fmt(t.ratio_to_floor, 2)} "
            f"| {_fmt(t.gigabytes_per_second, 1)} | {_fmt(t.peak_megabytes, 0)} | {t.note} |"
        )
    return "\n".join(lines)
