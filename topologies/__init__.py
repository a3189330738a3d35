"""topologies: graph builders, mixing weights, Byzantine placement, and spectral/robustness analysis.

Builders return networkx graphs with nodes 0..n-1 (undirected unless named otherwise);
random ones take `seed` keyword-only. `decentral.network` turns a graph into engine tables.
This package imports only numpy, networkx and matplotlib.
"""

from ._analysis import Report as Report
from ._analysis import Robustness as Robustness
from ._analysis import analyze as analyze
from ._analysis import byzantine_counts as byzantine_counts
from ._analysis import robustness as robustness
from ._attach import ADDING as ADDING
from ._attach import attach as attach
from ._builders import circulant as circulant
from ._builders import complete as complete
from ._builders import dumbbell as dumbbell
from ._builders import exponential as exponential
from ._builders import grid as grid
from ._builders import hypercube as hypercube
from ._builders import ring as ring
from ._builders import star as star
from ._builders import torus as torus
from ._builders import two_cliques as two_cliques
from ._checks import check_graph as check_graph
from ._draw import draw as draw
from ._dynamic import one_peer_exponential as one_peer_exponential
from ._dynamic import random_matchings as random_matchings
from ._imported import from_edgelist as from_edgelist
from ._imported import from_networkx as from_networkx
from ._random import barabasi_albert as barabasi_albert
from ._random import erdos_renyi as erdos_renyi
from ._random import random_geometric as random_geometric
from ._random import random_regular as random_regular
from ._random import small_world as small_world
from ._random import stochastic_block as stochastic_block
from ._weights import WEIGHTS as WEIGHTS
from ._weights import inbox_links as inbox_links
from ._weights import mixing_weights as mixing_weights
from ._weights import read_weight_matrix as read_weight_matrix
from ._placement import STRATEGIES as STRATEGIES
from ._placement import STRATEGY_SUMMARIES as STRATEGY_SUMMARIES
from ._placement import place as place
from ._placement import placed as placed
from ._placement import repair_placement as repair_placement

#: Every graph builder by name (time-varying ones return a tuple of per-round graphs).
BUILDERS = {
    builder.__name__: builder
    for builder in (
        complete, ring, circulant, torus, grid, star, hypercube, erdos_renyi, random_regular, small_world,
        barabasi_albert, stochastic_block, random_geometric, two_cliques, dumbbell, exponential,
        from_networkx, from_edgelist, random_matchings, one_peer_exponential,
    )
}  # fmt: skip
