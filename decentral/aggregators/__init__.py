"""Robust aggregation rules over one node's inbox, and their registry.

Every rule: ``rule(x: f32[K, d], *, f=0, mask=None, weights=None, key=None, **hyper) -> f32[d]``,
row 0 being the receiving node's own vector. Pre-aggregators (``nnm``, ``arc``, ``clip``,
``bucketing``) return ``(x, mask, weights)`` and compose in front of any rule
(``resolve(["nnm", "trimmed_mean"])``). Specs (frozen dataclasses, JAX pytrees) live in
:data:`AGGREGATORS`; :func:`register` adds a user's rule, :func:`resolve` builds one from a
config value.
"""

from ._functions import aksel as aksel
from ._functions import arc as arc
from ._functions import bucketing as bucketing
from ._functions import bulyan as bulyan
from ._functions import centered_clipping as centered_clipping
from ._functions import cge as cge
from ._functions import clip as clip
from ._functions import clipped_gossip as clipped_gossip
from ._functions import cs_plus as cs_plus
from ._functions import geometric_median as geometric_median
from ._functions import krum as krum
from ._functions import mda as mda
from ._functions import mda_greedy as mda_greedy
from ._functions import meamed as meamed
from ._functions import mean as mean
from ._functions import median as median
from ._functions import multi_krum as multi_krum
from ._functions import nna as nna
from ._functions import nnm as nnm
from ._functions import phocas as phocas
from ._functions import trimmed_mean as trimmed_mean
from ._functions import ios as ios
from ._inbox import tie_key as tie_key
from ._rules import MDA_EXACT_MAX_INBOX as MDA_EXACT_MAX_INBOX
from ._spec import AGGREGATORS as AGGREGATORS
from ._spec import Chain as Chain
from ._spec import Rule as Rule
from ._spec import hyperparameter as hyperparameter
from ._spec import register as register
from ._spec import resolve as resolve
from ._spec import rule_spec as rule_spec
