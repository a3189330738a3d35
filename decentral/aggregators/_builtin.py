"""The built-in rules and pre-aggregators, registered in :data:`AGGREGATORS` in the order
they are listed (``decentral list rules`` and the tests read that order)."""

from __future__ import annotations

from ._spec import AGGREGATORS
from .coordinatewise import Mean, Meamed, Median, Phocas, TrimmedMean
from .gossip import ClippedGossip, CSPlus
from .iterative import IOS, CenteredClipping, GeometricMedian
from .preaggregators import ARC, NNM, Bucketing, Clip
from .selection import CGE, MDA, NNA, Aksel, Bulyan, Krum, MDAGreedy, MultiKrum
from .spectral import CAF, QUE, SMEA, DnC, Filter, SoftFilter

BUILT_IN = (
    Mean, Median, TrimmedMean, Meamed, Phocas, Krum, MultiKrum, Bulyan, GeometricMedian, CenteredClipping,
    MDA, MDAGreedy, CGE, Aksel, NNA, IOS, ClippedGossip, CSPlus, Filter, SoftFilter, CAF, QUE, DnC, SMEA, NNM, ARC, Clip, Bucketing,
)  # fmt: skip

for _spec in BUILT_IN:
    AGGREGATORS[_spec.name] = _spec
