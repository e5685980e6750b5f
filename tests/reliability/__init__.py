"""Reliability and security tests (issue 6), all over real HTTP to the local endpoint.

- test_fault_matrix.py: every fault × the three SDK adapters × stream/non-stream, via the runner.
- test_crash_safety.py: SIGKILL loop with torn lines, SIGINT (CLI, script, running event loop),
  the explorer's Stop.
- test_secrets.py: known keys searched in every artifact.
- test_bad_input.py: endpoint hardening and hypothesis fuzzing of the endpoint and the loaders.
- test_load.py: 256 in flight for ~60 s with 5% faults; prints throughput and RSS.

Knobs (environment): RELIABILITY_SEED, RELIABILITY_KILLS (default 22), RELIABILITY_FUZZ_EXAMPLES
(default 300), RELIABILITY_LOAD_PROMPTS (per deployment, default 1700). Run with `-s` to see the
measured numbers.
"""
