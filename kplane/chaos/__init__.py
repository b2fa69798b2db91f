"""`kplane chaos`: faults against a running `kplane up` cluster, and scenarios that inject them
while checking invariants.

- :mod:`.faults`: find the cluster (its state file and control channel), kill/freeze/thaw/restart
  nodes and components, fault records;
- :mod:`.scenario`: the scenario file (schema, strict validation with field paths);
- :mod:`.record`: the timeline a run records (watch events and faults) and the cluster state
  replayed from it;
- :mod:`.invariants`: checks over a recorded timeline; recovery times per node fault;
- :mod:`.runner`: runs a scenario's steps against the cluster, recording as it goes;
- :mod:`.report`: the terminal summary and the self-contained HTML report.

Only the modules that talk to the apiserver import gRPC, and only inside functions.
"""
