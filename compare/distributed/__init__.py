"""Sharded runs: one run over several processes (`workers=N`) or a Ray cluster (`ray=ADDRESS`).

The key space (prompt × deployment × repeat) is cut by a stable hash (shards.py); each shard is
the in-process runner on its own keys (worker.py), appending to its own record file in the one
run directory. The limits that must hold across shards — each deployment's requests/min,
tokens/min and concurrency, shared_limits groups, Retry-After pauses — live in one Coordinator
(coordinator.py), reached in batches (client.py) over a Unix socket (socket_transport.py) or as
a Ray actor (ray_engine.py). driver.py plans the shards and feeds one progress bar;
local_engine.py and ray_engine.py start, watch and restart them.

Nothing here imports Ray unless `ray=` is given.
"""
