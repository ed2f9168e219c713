"""Prometheus metrics, one registry per application (tests build many apps).

Cache and database counters are read from their sources at scrape time by a custom
collector, so the exposition always agrees exactly with ``/api/v1/cache/stats`` and
nothing is counted twice on the hot path. Request latency (``api/timing.py``) and click
counts are observed as they happen.

With ``--workers N`` each worker process has its own registry; ``merged_exposition``
answers a scrape with every worker's series, each labelled with its ``pid`` (the other
workers' from their latest snapshot, ``bannertrack.bootstrap.workers``), so a query sums them
with ``sum without (pid) (...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from bannertrack.cache import COUNTER_FIELDS, CacheStats
from bannertrack.models import BusStats, CopyStats, SpoolStats

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class _SourceCollector(Collector):
    def __init__(
        self,
        cache_stats: Callable[[], CacheStats | None],
        db_queries: Callable[[], int],
        bus_stats: Callable[[], BusStats | None],
        tier_counters: Callable[[], Any],
    ) -> None:
        self._cache_stats = cache_stats
        self._db_queries = db_queries
        self._bus_stats = bus_stats
        self._tier_counters = tier_counters
        self.spool_stats: Callable[[], SpoolStats | None] = lambda: None
        self.copy_stats: Callable[[], CopyStats | None] = lambda: None

    def collect(self) -> Iterator[Any]:
        queries = CounterMetricFamily(
            "bannertrack_db_queries", "Statements sent to the database by this process."
        )
        queries.add_metric([], self._db_queries())
        yield queries
        yield from self._bus()
        yield from self._tier()
        yield from self._spool()
        yield from self._copy()
        stats = self._cache_stats()
        if stats is None:
            return
        counters = {
            name: CounterMetricFamily(
                f"bannertrack_cache_{name}", f"Cache {name} by namespace.", labels=["namespace"]
            )
            for name in COUNTER_FIELDS
        }
        size = GaugeMetricFamily(
            "bannertrack_cache_entries", "Entries held by namespace.", labels=["namespace"]
        )
        for ns, ns_stats in sorted(stats.namespaces.items()):
            for name, family in counters.items():
                family.add_metric([ns], getattr(ns_stats, name))
            size.add_metric([ns], ns_stats.size)
        yield from counters.values()
        yield size
        capacity = GaugeMetricFamily("bannertrack_cache_capacity", "Cache capacity bound.")
        capacity.add_metric([], stats.max_entries)
        yield capacity

    def _bus(self) -> Iterator[Any]:
        bus = self._bus_stats()
        if bus is None:
            return
        up = GaugeMetricFamily(
            "bannertrack_bus_connected",
            "1 while the invalidation bus is connected; 0 during an outage.",
            labels=["kind"],
        )
        up.add_metric([bus.kind], 1.0 if bus.connected else 0.0)
        yield up
        for name, help_text in (
            ("published", "Invalidations published to other instances."),
            ("publish_failures", "Publishes that failed (each marks an outage)."),
            ("publishes_skipped", "Publishes skipped while the bus was down."),
            ("applied", "Invalidations from other instances applied here."),
            ("outages", "Bus outages detected."),
            ("recoveries", "Bus recoveries (each clears the local cache)."),
        ):
            family = CounterMetricFamily(f"bannertrack_bus_{name}", help_text, labels=["kind"])
            family.add_metric([bus.kind], getattr(bus, name))
            yield family
        if bus.delay_ms_p99 is not None:
            delay = GaugeMetricFamily(
                "bannertrack_bus_delay_ms",
                "Publish-to-apply delay of recent invalidations from other instances.",
                labels=["quantile"],
            )
            delay.add_metric(["0.5"], bus.delay_ms_p50 or 0.0)
            delay.add_metric(["0.99"], bus.delay_ms_p99)
            yield delay

    def _copy(self) -> Iterator[Any]:
        copy = self.copy_stats()
        if copy is None:
            return
        for name, help_text, value in (
            ("loaded", "1 once the in-memory copy of the clicks answers.", copy.loaded),
            ("clicks", "Clicks in this process's in-memory copy.", copy.clicks),
            ("bytes", "Bytes of the copy's columns.", copy.bytes),
            ("gaps", "Ids skipped by a later commit, still awaited.", copy.gaps),
        ):
            gauge = GaugeMetricFamily(f"bannertrack_filter_copy_{name}", help_text)
            gauge.add_metric([], float(value))
            yield gauge

    def _spool(self) -> Iterator[Any]:
        spool = self.spool_stats()
        if spool is None:
            return
        for name, help_text, value in (
            ("batches", "Batches in this process's outage spool.", spool.batches),
            ("clicks", "Clicks in this process's outage spool (its depth).", spool.clicks),
            ("oldest_age_seconds", "Age of the oldest spooled batch.", spool.oldest_age_s),
            ("bytes", "Bytes of spooled batches.", spool.bytes),
            ("database_down", "1 while the database is known to be down.", spool.database_down),
        ):
            gauge = GaugeMetricFamily(f"bannertrack_spool_{name}", help_text)
            gauge.add_metric([], float(value))
            yield gauge
        for name, help_text, value in (
            ("spooled_clicks", "Clicks acknowledged from the spool.", spool.spooled_clicks),
            ("rejected_batches", "Spooled batches the database refused.", spool.rejected_batches),
        ):
            counter = CounterMetricFamily(f"bannertrack_spool_{name}", help_text)
            counter.add_metric([], value)
            yield counter

    def _tier(self) -> Iterator[Any]:
        counters = self._tier_counters()
        if counters is None:
            return
        family = CounterMetricFamily(
            "bannertrack_redis_tier", "Redis L2 tier operations by outcome.", labels=["outcome"]
        )
        for outcome in ("hits", "misses", "stores", "stores_refused", "invalidations", "errors"):
            family.add_metric([outcome], getattr(counters, outcome))
        yield family


class Metrics:
    def __init__(
        self,
        cache_stats: Callable[[], CacheStats | None],
        db_queries: Callable[[], int],
        bus_stats: Callable[[], BusStats | None] = lambda: None,
        tier_counters: Callable[[], Any] = lambda: None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._sources = _SourceCollector(cache_stats, db_queries, bus_stats, tier_counters)
        self.registry.register(self._sources)
        self.request_seconds = Histogram(
            "bannertrack_request_seconds",
            "Request latency by route.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.clicks_recorded = Counter(
            "bannertrack_clicks_recorded",
            "Clicks committed to the database.",
            registry=self.registry,
        )
        self.click_batches = Histogram(
            "bannertrack_click_batch_size",
            "Clicks per group-commit transaction.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
            registry=self.registry,
        )
        self.unknown_banner = Counter(
            "bannertrack_unknown_banner_requests",
            "Tracking requests for banner ids that do not exist.",
            ["endpoint"],
            registry=self.registry,
        )
        self.clicks_flagged = Counter(
            "bannertrack_clicks_flagged",
            "Recorded clicks set apart as bot or repeat (answered by this process).",
            ["flag"],
            registry=self.registry,
        )
        self.clicks_replayed = Counter(
            "bannertrack_spool_replayed_clicks",
            "Spooled clicks replayed into the database by this process.",
            registry=self.registry,
        )
        self.impressions_recorded = Counter(
            "bannertrack_impressions_recorded",
            "Impressions written to the database by this process.",
            registry=self.registry,
        )

    def watch_spool(self, stats: Callable[[], SpoolStats | None]) -> None:
        """Expose the outage spool's figures (set once the spool exists)."""
        self._sources.spool_stats = stats

    def watch_copy(self, stats: Callable[[], CopyStats]) -> None:
        """Expose the in-memory copy of the clicks (when the service keeps one)."""
        self._sources.copy_stats = stats

    def on_batch(self, size: int, _seconds: float) -> None:
        self.clicks_recorded.inc(size)
        self.click_batches.observe(size)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ByWorker(Collector):
    """The families of several workers as one exposition, each sample labelled ``pid``.

    A family appears once (one HELP and TYPE) with the samples of every worker, as the
    text format requires.
    """

    def __init__(self, parts: list[tuple[int, Iterable[Metric]]]) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for pid, families in self._parts:
            for family in families:
                out = merged.get(family.name)
                if out is None:
                    out = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                out.samples.extend(
                    Sample(s.name, {**s.labels, "pid": str(pid)}, s.value, s.timestamp, s.exemplar)
                    for s in family.samples
                )
        yield from merged.values()


def merged_exposition(own: Metrics, own_pid: int, others: Iterable[tuple[int, str]]) -> bytes:
    """This worker's series and the others' (pid, exposition text), labelled by pid."""
    parts: list[tuple[int, Iterable[Metric]]] = [(own_pid, own.registry.collect())]
    parts += [(pid, text_string_to_metric_families(text)) for pid, text in others]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ByWorker(parts))
    return generate_latest(registry)
