"""Keep the garbage collector's full passes short once the service has started.

A started worker holds some 160,000 long-lived objects (Litestar's app, SQLAlchemy's
compiled statements, the user-agent parser's rules, cached entries). Under click load
CPython's full collection ran about twice a second and walked all of them each time:
90-100 ms with the event loop stopped, which was the tracking link's p99. Everything
alive once start-up is done lives as long as the process, so it is moved out of the
collector's sight (``gc.freeze``) and only objects made while serving are walked.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect what start-up left behind, then freeze the rest (call once, after start-up)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)
