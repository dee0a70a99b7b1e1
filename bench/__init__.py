"""Benchmarks of Relance: webhook ingest, e-mail dispatch, claim/cancel at scale.

Run all of them with `make bench` (`.venv/bin/python -m bench.run_all`), or one with
`.venv/bin/python -m bench.ingest`, `-m bench.dispatch`, `-m bench.scale`.
See docs/performance.md.
"""
