"""Native CPU kernels for the distance passes of the rules, built on first use.

XLA on CPU emits a reduction over the long last axis of a fused computation as scalar
code, runs a pairwise-distance pass pair by pair over rows streamed from L2, and runs
each step of an iterative rule as separate passes over all inboxes: the distance and
iterative rules measured 5-15x ``mean`` however their JAX code was written (README,
Performance). ``_native.cc`` holds small C++ kernels, called through XLA's FFI as custom
calls inside the jitted programs, that read each inbox from memory once:

- ``pair_sums``: ``sum_d (x_i - x_j)^2`` for the pairs i < j and the tie-key projections
  ``x_k . u`` (Krum, Multi-Krum, Bulyan, MDA, NNM);
- ``center_sums``: ``sum_d (x_k - center)^2`` (center: a vector, or row 0) and the same
  projections (NNA, CGE, Aksel, ARC, clip, ClippedGossip, CS+);
- ``reweighted``: all iterations of centered clipping or of smoothed Weiszfeld;
- ``outlier_scissor``: IOS's scissor steps and final mean.

Each is the rule's portable JAX code (which runs on other platforms, and on CPU where
the kernels are not built) written again, step for step, with the same tie-breaking;
``tests/test_native.py`` holds the two to each other. Vmapped, one custom call covers
every inbox, shared among the threads of XLA's CPU pool; operands may be batched along
any subset of the vmap axes.

The source is compiled once per machine with the system C++ compiler (``$CXX``, else
``c++``/``g++``/``clang++``; ``-O3 -march=native``) into
``$XDG_CACHE_HOME/decentral/native`` (``~/.cache/decentral/native``), keyed by the source,
the flags, jaxlib's version and the CPU; about 10 s, on the first use of a distance rule.
Where no compiler works, or with ``DECENTRAL_NATIVE=0``, the rules use their JAX code
instead (same results up to float32 summation order; slower on CPU), with one warning
when a build failed. On other platforms (GPU) the JAX code always runs: the custom calls
exist for the CPU only (``jax.lax.platform_dependent``).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

SOURCE = Path(__file__).with_name("_native.cc")

#: Compiler flags; ``-march=native`` because the library is built where it runs.
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w")

_TARGETS = {
    "pair_sums": "DecentralPairSums",
    "center_sums": "DecentralCenterSums",
    "reweighted": "DecentralReweighted",
    "outlier_scissor": "DecentralOutlierScissor",
}

#: Seconds a build may take (about 10 here) before the portable code is used instead.
BUILD_TIMEOUT = 300

#: ``reweighted`` kinds (``kind`` attribute of the kernel).
CLIPPING, WEISZFELD = 0, 1


def _compiler() -> str | None:
    for candidate in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU model and its flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "".join(line for line in lines if line.startswith(("model name", "flags")))[:4096]
    except OSError:
        return platform.processor() or platform.machine()


def library_path(compiler: str) -> Path:
    """Where the compiled kernels for this source, compiler, jaxlib and CPU are kept."""
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), compiler.encode(), " ".join(FLAGS).encode(), jaxlib.__version__.encode(), _cpu_signature().encode()):
        digest.update(part)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "decentral" / "native" / f"kernels-{digest.hexdigest()[:16]}.so"


def _build(compiler: str, target: Path) -> None:
    """Compile ``SOURCE`` to ``target`` (atomically: concurrent builds cannot clash)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        partial = Path(scratch) / target.name
        command = [compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", str(partial)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"`{' '.join(command)}` took over {BUILD_TIMEOUT} s") from None
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` failed:\n{done.stderr.strip()[-2000:]}")
        os.replace(partial, target)


@functools.cache
def available() -> bool:
    """True when the kernels are built and registered with XLA (built on the first call)."""
    if os.environ.get("DECENTRAL_NATIVE", "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    compiler = _compiler()
    if compiler is None:
        return _unavailable("no C++ compiler found (set CXX, or install g++ or clang++)")
    target = library_path(compiler)
    try:
        if not target.exists():
            _build(compiler, target)
        library = ctypes.cdll.LoadLibrary(str(target))
        for name, symbol in _TARGETS.items():
            jax.ffi.register_ffi_target(f"decentral_{name}", jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
    except (OSError, RuntimeError, AttributeError) as error:
        return _unavailable(str(error))
    return True


def _unavailable(reason: str) -> bool:
    warnings.warn(
        f"decentral: the native CPU kernels of the distance rules could not be built ({reason}); "
        "using their JAX code, which gives the same results more slowly on CPU. "
        "Set DECENTRAL_NATIVE=0 to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )
    return False


def _call(name, outputs, *operands, **attributes):
    if not available():
        raise RuntimeError("decentral's native kernels are not built here; call the rules, which fall back to their JAX code.")
    return jax.ffi.ffi_call(f"decentral_{name}", outputs, vmap_method="expand_dims")(*operands, **attributes)


def _vector_or_row_0(vector):
    """A vector operand, or an empty one standing for row 0 of the inbox."""
    return jnp.zeros((0,), jnp.float32) if vector is None else jnp.asarray(vector, jnp.float32)


def pair_sums(x, direction):
    """``(sums [K(K-1)/2], projections [K])`` of one inbox ``x: f32[K, d]`` (CPU only):
    ``sum_d (x_i - x_j)^2`` for the pairs i < j in ``np.triu_indices`` order, and
    ``x_k . direction``. Vmapped, one custom call covers every inbox."""
    size = x.shape[0]
    outputs = (jax.ShapeDtypeStruct((size * (size - 1) // 2,), jnp.float32), jax.ShapeDtypeStruct((size,), jnp.float32))
    return _call("pair_sums", outputs, x.astype(jnp.float32), direction)


def center_sums(x, center, direction):
    """``(squares [K], projections [K])`` of one inbox ``x: f32[K, d]`` (CPU only):
    ``sum_d (x_k - center)^2``, ``center`` a vector [d] or None for row 0, and
    ``x_k . direction``."""
    size = x.shape[0]
    outputs = (jax.ShapeDtypeStruct((size,), jnp.float32), jax.ShapeDtypeStruct((size,), jnp.float32))
    return _call("center_sums", outputs, x.astype(jnp.float32), _vector_or_row_0(center), direction)


def reweighted(x, weights, start, parameter, *, iterations: int, kind: int):
    """``iterations`` steps of centered clipping (``kind=CLIPPING``, ``parameter`` = radius)
    or of smoothed Weiszfeld (``kind=WEISZFELD``, ``parameter`` = smoothing) on one inbox
    ``x: f32[K, d]`` with normalized ``weights`` [K], from ``start`` [d] (None: row 0).
    Each inbox is read from memory once; its steps run on the cached copy."""
    operands = (x.astype(jnp.float32), jnp.asarray(weights, jnp.float32), _vector_or_row_0(start), jnp.asarray(parameter, jnp.float32))
    output = jax.ShapeDtypeStruct(x.shape[1:], jnp.float32)
    return _call("reweighted", output, *operands, iterations=np.int64(iterations), kind=np.int64(kind))


def outlier_scissor(x, weights, mask, f, direction):
    """The IOS rule on one inbox ``x: f32[K, d]`` with normalized ``weights`` [K], valid
    rows ``mask`` [K] and ``f`` (int32): ``f`` scissor steps, then the weighted mean of the
    rows left; ties broken by ``x_k . direction``, then weight, then index (the order of
    ``iterative.IOS``). Each inbox is read from memory once."""
    operands = (x.astype(jnp.float32), jnp.asarray(weights, jnp.float32), jnp.asarray(mask, bool), jnp.asarray(f, jnp.int32), direction)
    return _call("outlier_scissor", jax.ShapeDtypeStruct(x.shape[1:], jnp.float32), *operands)
