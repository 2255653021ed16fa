"""Benchmarks: localchat against raw ``sqlite3`` and the SQLAlchemy 2 ORM.

    pip install -e '.[bench]'
    python -m benchmarks            # full run, updates docs/performance.{md,json,png}
    python -m benchmarks --quick    # smaller sizes, results in benchmarks/results/

See ``docs/performance.md`` for the workloads, the targets and the latest results,
and ``benchmarks/run.py`` for how an extra ``bench_*.py`` module plugs in.
"""
