"""Robust aggregation rules over one node's inbox, and their registry.

Every rule: ``rule(x: f32[K, d], *, f=0, mask=None, weights=None, key=None, **hyper) -> f32[d]``,
row 0 being the receiving node's own vector. Pre-aggregators (``nnm``, ``arc``, ``clip``,
``bucketing``) return ``(x, mask, weights)`` and compose in front of any rule
(``resolve(["nnm", "trimmed_mean"])``). Specs (frozen dataclasses, JAX pytrees) live in
:data:`AGGREGATORS`; :func:`register` adds a user's rule, :func:`resolve` builds one from a
config value. :mod:`decentral.aggregators.ops` holds the primitives the rules are written
with.

Common arguments (every function):
    x: f32[K, d], one node's inbox; row 0 is the node's own vector.
    f: int (or traced int32), the number of Byzantine rows the rule must tolerate.
    mask: bool[K], valid rows (default all); row 0 must be valid. Masked rows are ignored
        whatever they hold (NaN, 1e6 padding).
    weights: f32[K], mixing weights (default uniform over valid rows); only weighted rules
        use them, and they are renormalised over the valid rows.
    key: a JAX PRNG key, for randomized rules only.

Every rule checks ``count >= min_count(f)`` (count = valid rows) before compilation when
its inputs are concrete, raising ``ValueError``. Under ``jit`` an inbox that has lost rows
below that count returns the node's own vector ``x[0]`` (pre-aggregators return their
inputs). Ties are broken by value (see ``tie_key``), never by row index.

The rules by family: ``coordinatewise``, ``selection``, ``iterative``, ``gossip``,
``spectral``, ``preaggregators``; each spec carries its documentation and defaults, and its public
function here is derived from it.
"""

from . import _builtin as _builtin
from . import ops as ops
from ._spec import AGGREGATORS as AGGREGATORS
from ._spec import ROBUSTNESS_CLAIMS as ROBUSTNESS_CLAIMS
from ._spec import Chain as Chain
from ._spec import Rule as Rule
from ._spec import hyperparameter as hyperparameter
from ._spec import register as register
from ._spec import resolve as resolve
from ._spec import rule_spec as rule_spec
from ._subsets import SUBSET_LIMIT as SUBSET_LIMIT
from .coordinatewise import meamed as meamed
from .coordinatewise import mean as mean
from .coordinatewise import median as median
from .coordinatewise import phocas as phocas
from .coordinatewise import trimmed_mean as trimmed_mean
from .gossip import clipped_gossip as clipped_gossip
from .gossip import cs_plus as cs_plus
from .iterative import centered_clipping as centered_clipping
from .iterative import geometric_median as geometric_median
from .iterative import ios as ios
from .ops import tie_key as tie_key
from .preaggregators import arc as arc
from .preaggregators import bucketing as bucketing
from .preaggregators import clip as clip
from .preaggregators import nnm as nnm
from .selection import aksel as aksel
from .selection import bulyan as bulyan
from .selection import cge as cge
from .selection import krum as krum
from .selection import mda as mda
from .selection import mda_greedy as mda_greedy
from .selection import multi_krum as multi_krum
from .selection import nna as nna
from .spectral import caf as caf
from .spectral import dnc as dnc
from .spectral import filter_ as filter
from .spectral import que as que
from .spectral import smea as smea
from .spectral import soft_filter as soft_filter
