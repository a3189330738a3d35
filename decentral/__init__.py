"""decentral: a JAX simulator of Byzantine-robust decentralized learning.

The public entry points: :func:`simulate` runs a :class:`Scenario` (built in Python or read
by :func:`load_scenario` from TOML) and returns a :class:`Result`. The rules live in
``decentral.aggregators``, graphs in ``topologies``, attacks in ``attacks``.
"""

from .scenario import Scenario as Scenario
from .scenario import load_scenario as load_scenario
from .simulation import Result as Result
from .simulation import simulate as simulate

__version__ = "0.1.0"
