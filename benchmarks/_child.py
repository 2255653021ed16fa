"""Work that must run in a fresh process: W6 (cold start) and W7 (export, peak RSS).

    python -m benchmarks._child cold IMPL DB_PATH CONVERSATION_ID PRAGMAS_JSON
    python -m benchmarks._child export IMPL DB_PATH OUT_PATH PRAGMAS_JSON

Only the implementation under test is imported, so a cold start measures
exactly what that implementation loads. ``export`` prints one JSON object.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time

__all__ = ["main"]

MODULES = {"sqlite3": "impl_raw", "sqlalchemy": "impl_sqlalchemy", "localchat": "impl_localchat"}


def _peak_rss_mb() -> float:
    # VmHWM: the peak of this process image only. ru_maxrss would also count the
    # parent's memory, which Linux carries across fork and exec.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str]) -> int:
    action, impl, db_path, arg, pragmas_json = argv
    module = importlib.import_module(f"benchmarks.{MODULES[impl]}")
    pragmas = json.loads(pragmas_json)
    if action == "cold":
        rows = module.cold_read(db_path, pragmas, int(arg))
        return 0 if rows else 1
    before = _peak_rss_mb()
    t0 = time.perf_counter()
    with open(arg, "w", encoding="utf-8") as fp:
        rows = module.export(db_path, pragmas, fp)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "rss_before_mb": before,
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
