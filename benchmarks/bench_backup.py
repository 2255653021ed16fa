"""Backup of a large store while a writer appends messages, then restore.

    $ python -m benchmarks.bench_backup                          # 1000 MB database + 1000 MB files
    $ python -m benchmarks.bench_backup --db-mb 200 --files-mb 200 --workdir /tmp/bb
    $ python -m benchmarks.bench_backup --workdir /tmp/bb     # again: reuses /tmp/bb/big.db

The store is built fast (``benchmarks.data``: executemany, not timed) until
the database file reaches ``--db-mb``; ``--files-mb`` of random (so
incompressible) bytes are stored as documents of 10 MB each through
``create_document_with_file``. Then one thread appends messages through
``get_session()`` + ``add_message`` in a loop, timing every call, first for
``--baseline`` seconds alone and then while ``backup_store`` runs. Reported:
backup time and archive size, the longest and the 99th-percentile time of
one append during the backup (against the baseline), and the time to restore
the archive into a new location.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import data


def build(workdir: Path, db_mb: int, files_mb: int) -> Path:
    """The store in ``workdir`` (``big.db``); one already there is reused."""
    from localchat import close_all, get_session
    from localchat.repository import documents

    if (workdir / "big.db").exists():
        return workdir / "big.db"
    template = data.make_template(workdir)
    probe = data.build_store(
        template, workdir / "probe.db", n_conversations=100, per_conversation=100
    )
    per_message = (probe.stat().st_size - template.stat().st_size) / 10_000
    n = max(100, int(db_mb * 1e6 / per_message / 100))
    path = data.build_store(template, workdir / "big.db", n_conversations=n, per_conversation=100)
    probe.unlink()
    upload = workdir / "upload.bin"
    with get_session(path) as s:
        for _ in range(files_mb // 10):
            upload.write_bytes(os.urandom(10_000_000))
            documents.create_document_with_file(s, upload)
    upload.unlink()
    close_all()
    return path


def _appender(path: Path, stop: threading.Event, lat: list[tuple[float, float]]) -> None:
    from localchat import get_session
    from localchat.repository import add_message

    while not stop.is_set():
        t0 = time.monotonic()
        with get_session(path) as s:
            add_message(s, 1, "user", "written while the backup runs")
        lat.append((t0, time.monotonic() - t0))


def _stats(lat: list[tuple[float, float]], started: float) -> str:
    """Count, longest (and when it began, in s from the backup's start) and p99 of appends."""
    if not lat:
        return "no writes"
    ordered = sorted(d for _, d in lat)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    at, longest = max(lat, key=lambda x: x[1])
    return (
        f"{len(lat)} appends, longest {longest * 1000:.1f} ms (began at {at - started:+.1f} s), "
        f"p99 {p99 * 1000:.1f} ms"
    )


def measure(workdir: Path, db_mb: int, files_mb: int, baseline: float) -> None:
    from localchat import close_all
    from localchat.backup import backup_store, restore_store

    t0 = time.monotonic()
    path = build(workdir, db_mb, files_mb)
    files = path.with_name(path.name + "-files")
    files_mb = sum(p.stat().st_size for p in files.iterdir()) / 1e6
    print(f"built {path}: database {path.stat().st_size / 1e6:.0f} MB, files {files_mb:.0f} MB, "
          f"in {time.monotonic() - t0:.0f} s")  # fmt: skip
    stop, lat = threading.Event(), list[tuple[float, float]]()
    writer = threading.Thread(target=_appender, args=(path, stop, lat))
    writer.start()
    time.sleep(baseline)
    started = time.monotonic()
    for old in (workdir / "big.zip", workdir / "restored"):
        shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
    result = backup_store(workdir / "big.zip", path)
    ended = time.monotonic()
    time.sleep(0.5)
    stop.set()
    writer.join()
    close_all()
    during = [(t, d) for (t, d) in lat if started <= t < ended]
    before = [(t, d) for (t, d) in lat if t < started]
    after = [(t, d) for (t, d) in lat if t >= ended]
    archive_mb = Path(result.archive).stat().st_size / 1e6
    print(f"backup: {result.seconds:.1f} s for {result.total_bytes / 1e6:.0f} MB "
          f"({result.files} files), archive {archive_mb:.0f} MB")  # fmt: skip
    print(f"  writer alone ({baseline:.0f} s): {_stats(before, started)}")
    print(f"  writer during the backup:  {_stats(during, started)}")
    print(f"  writer in the 0.5 s after: {_stats(after, started)}")
    target = workdir / "restored" / "chat.db"
    restored = restore_store(result.archive, target)
    print(f"restore: {restored.seconds:.1f} s into {target} "
          f"(hashes, integrity_check, swap)")  # fmt: skip
    conn = sqlite3.connect(str(target))
    (count,) = conn.execute("SELECT count(*) FROM message").fetchone()
    conn.close()
    print(f"  restored store holds {count} messages")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-mb", type=int, default=1000)
    parser.add_argument("--files-mb", type=int, default=1000)
    parser.add_argument("--baseline", type=float, default=3.0, help="seconds of writing alone")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="localchat-bench-backup-"))
    workdir.mkdir(parents=True, exist_ok=True)
    measure(workdir, args.db_mb, args.files_mb, args.baseline)


if __name__ == "__main__":
    main()
