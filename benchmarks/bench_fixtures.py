"""What the pytest fixtures add to a test run: N tests using one, minus N tests that do not.

    $ python benchmarks/bench_fixtures.py                  # 1,000 tests, best of 3
    $ python benchmarks/bench_fixtures.py --tests 2000 --repeat 5 --fixture make_message
    $ python benchmarks/bench_fixtures.py -n 2             # under pytest-xdist

Two generated test files, identical except that every test of one requests the
fixture (default ``localchat_session``), are each run by pytest in a fresh
subprocess; the best wall time of ``--repeat`` runs is kept. The difference is
the fixture's whole cost: the template migrated once, then one copied store
and one session per test. The budget is 5 s for 1,000 tests; the exit status
is 1 when the measured figure is over it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "run_pytest", "write_tests"]

BUDGET_SECONDS_PER_1000 = 5.0


def write_tests(path: Path, count: int, fixture: str | None) -> Path:
    """A test module of ``count`` trivial tests, each requesting ``fixture`` if given."""
    arg = fixture or ""
    body = "".join(f"def test_{i}({arg}):\n    pass\n\n\n" for i in range(count))
    path.write_text(body)
    return path


def run_pytest(test_file: Path, extra: Sequence[str] = ()) -> float:
    """Seconds of wall time for one pytest run of ``test_file`` in a subprocess."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-o", "addopts=", *extra, test_file.name]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=test_file.parent, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"pytest failed on {test_file.name}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000, help="tests per file (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per file; best kept (3)")
    parser.add_argument("--fixture", default="localchat_session", help="fixture to measure")
    parser.add_argument("-n", dest="workers", help="pytest-xdist workers (e.g. 2 or auto)")
    args = parser.parse_args(argv)
    extra = ["-n", args.workers] if args.workers else []
    with tempfile.TemporaryDirectory(prefix="localchat-bench-") as folder:
        without = write_tests(Path(folder) / "test_without_fixture.py", args.tests, None)
        with_ = write_tests(Path(folder) / "test_with_fixture.py", args.tests, args.fixture)
        run_pytest(without, extra)  # warm the OS caches and .pyc files once
        base, used = [], []
        for _ in range(args.repeat):  # interleaved, so load changes hit both alike
            base.append(run_pytest(without, extra))
            used.append(run_pytest(with_, extra))
    added = min(used) - min(base)
    per_1000 = added * 1000 / args.tests
    print(f"{args.tests} tests without a fixture:  {min(base):6.2f} s (best of {args.repeat})")
    print(f"{args.tests} tests using {args.fixture}: {min(used):6.2f} s (best of {args.repeat})")
    print(f"added by {args.fixture}: {added:.2f} s = {per_1000 / 1000 * 1e3:.2f} ms per test")
    print(f"budget: {BUDGET_SECONDS_PER_1000:.1f} s per 1,000 tests: ", end="")
    print("ok" if per_1000 < BUDGET_SECONDS_PER_1000 else "OVER")
    return 0 if per_1000 < BUDGET_SECONDS_PER_1000 else 1


if __name__ == "__main__":
    sys.exit(main())
