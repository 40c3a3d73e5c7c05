"""The operations: lookup, export, audit, signing in, the source inventory.

Each is a plain function over a :class:`~bitkey_dir.ops.run.Run` that returns a typed result.
Operations open and close sources, run them concurrently, collect warnings, apply the access
trail and reason policy (policy.py), and decide the exit code by one rule (outcome.py). They
reach the person only through the run's Interaction and never print. The CLI and the library
(``bitkey_dir.api``) both call them, so both behave the same.
"""
