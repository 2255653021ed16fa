"""Keeping a store healthy for years: doctor (checks and safe repairs) and usage statistics.

    from localchat import open_store
    from localchat.maintenance import check_store, store_stats

    store = open_store("/tmp/maint-example.db")
    with store.session():
        pass                                      # creates the store
    report = check_store(store)                   # reads only; repair=True fixes what is safe
    assert report.exit_code == 0, report.problems
    with store.read_session() as s:
        totals = store_stats(s, by="month").totals
    assert totals["responses"]["messages"] == 0

See docs/maintenance.md for the ``localchat doctor`` and ``localchat stats`` commands.
"""

from .doctor import DoctorReport, Finding, check_store
from .prune import PruneReport, prune, vacuum_store
from .stats import STATS_PERIODS, StatsReport, plot_stats, store_stats

__all__ = [
    "DoctorReport",
    "Finding",
    "check_store",
    "PruneReport",
    "prune",
    "vacuum_store",
    "STATS_PERIODS",
    "StatsReport",
    "store_stats",
    "plot_stats",
]
