"""The semantics version: which results an unchanged config gives.

A run's id in a results database hashes its config together with
:data:`SEMANTICS_VERSION`, so a database never serves a point computed under older
semantics as "done": it runs again, under a new id, and ``decentral run``/``sweep``/
``reproduce`` say how many runs of another version the database holds.

Bump the version in the same commit as any change that alters results for an unchanged
config (a bug fix in the engine, a new default of an attack or a data split), and add a
line below; ``tests/test_results.py`` pins the current version's run id of a fixed config.

History:
  1. Every result before versions were recorded.
  2. With ``[run] gossip_steps > 1``, an attack's state (Mimic's warm-up counter)
     advances once per round instead of once per gossip step.
  3. Training data is split (or generated) over the honest nodes only, in id order; each
     Byzantine node holds a copy of an honest node's data (``decentral.data.layout``).
     Runs with Byzantine nodes and ``task = "train"`` change.
     A run whose honest parameters (or metrics) become non-finite stops at that
     evaluation and is stored as diverged there (``runs.diverged_round``), its metrics at that round NaN
     (they were read from NaN models: an accuracy of 0.10 on ten classes); each run
     stores its threat-model diagnostics.
"""

SEMANTICS_VERSION = 3
