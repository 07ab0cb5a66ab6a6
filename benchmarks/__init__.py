"""certdesk's benchmark harness: ``make bench`` (``python -m benchmarks``).

Not timed tests: one run measures raw signing, the daemon end to end, drop-to-receipt
latency, CRLs, a store of a million certificates and an ``openssl`` shell loop, prints
one table and writes it to ``docs/benchmarks.md``. ``--smoke`` runs every step with tiny
sizes (``tests/test_bench_smoke.py``).
"""
