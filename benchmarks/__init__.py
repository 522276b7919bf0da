"""Performance benchmarks of the Kamen portal: `make bench` / `python -m benchmarks`.

Three benchmarks, each writing ``benchmarks/results/<name>.json``:

- ``ingest``: heartbeats/s through real HTTP (gunicorn, PostgreSQL, Redis);
- ``detection``: one detection pass over 100,000 live sessions;
- ``payout``: members paid per second by a real Celery worker after a
  platform-wide incident, and the worker's peak memory.

See benchmarks/README.md.
"""
