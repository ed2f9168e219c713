"""One settings object, read once from ``BANNERTRACK_*`` environment variables.

Every field has a default that lets ``bannertrack api`` run with no set-up at all
(SQLite in the working directory, no Redis, no admin token), and a one-line reason.
The README's configuration table is generated from the same fields, so keep the
descriptions short and true.

Longer than 300 lines on purpose: one field per setting with its description, and the
checks that run when the settings are read; splitting one settings object would only
scatter the table the README is generated from.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bannertrack.errors import InvalidInputError

# A DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
HOST_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
PUBLIC_SCHEMES = frozenset({"http", "https"})


def check_public_url(value: str) -> str:
    """``BANNERTRACK_PUBLIC_URL`` as the service writes it (``""`` stays empty).

    Raises ``ValueError`` (the settings name the variable) for anything but
    ``http(s)://host[:port]`` with at most a trailing slash.
    """
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if (
        parts.scheme not in PUBLIC_SCHEMES
        or not parts.netloc
        or not HOST_PATTERN.match(parts.netloc)
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            "must be http(s)://host[:port] such as https://ads.example.com "
            "(no path, query, fragment or user)"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BANNERTRACK_", frozen=True, extra="ignore")

    database_url: str = Field(
        "sqlite:///bannertrack.db",
        description="Database URL as users write it (sqlite:///path or postgresql://...); "
        "the async driver is picked automatically.",
    )
    auto_migrate: bool = Field(
        True, description="Apply pending migrations when the API starts (off for managed rollouts)."
    )
    admin_token: str = Field(
        "",
        description="Bearer token for banner writes and cache management; empty refuses them.",
    )
    ingest_token: str = Field(
        "",
        description="Bearer token for servers that report clicks (POST /api/v1/banners/{id}/"
        "clicks); the admin token works too; with neither set, reports are refused.",
    )
    dashboard_token: str = Field(
        "",
        description="Password the dashboard pages ask for (HTTP Basic, any user name); "
        "empty leaves them open to read.",
    )
    session_dir: str = Field(
        "~/.local/state/bannertrack/sessions",
        description="Directory of the dashboard's sign-in sessions (shared by the workers of "
        "one host); with BANNERTRACK_REDIS_URL set they live in Redis instead.",
    )
    host: str = Field("127.0.0.1", description="Address `bannertrack api` binds to.")
    port: int = Field(8080, description="Port `bannertrack api` listens on.")
    workers: int = Field(1, ge=1, description="Worker processes of `bannertrack api`.")
    workers_dir: str = Field(
        "",
        description="Directory where the workers of one server share their figures (cache "
        "stats, /metrics), one per server; empty: `bannertrack api` makes a private one.",
    )
    db_pool_size: int = Field(10, ge=1, description="PostgreSQL connection pool size per worker.")
    db_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds one database statement may take (PostgreSQL statement_timeout, "
        "with the client's command timeout 1 s later; SQLite busy timeout) before the request "
        "answers 503.",
    )
    db_connect_timeout: float = Field(
        3.0, gt=0, description="Seconds opening a PostgreSQL connection may take."
    )
    db_pool_timeout: float = Field(
        3.0, gt=0, description="Seconds a request waits for a free pooled connection."
    )

    cache_enabled: bool = Field(True, description="Serve reads through the in-memory cache.")
    cache_max_entries: int = Field(100_000, ge=1, description="Capacity bound of the L1 cache.")
    cache_cleanup_interval: float = Field(
        30.0, gt=0, description="Seconds between background sweeps of expired entries."
    )
    cache_ttl_banner: float = Field(300.0, gt=0, description="TTL of banner:{id} (seconds).")
    cache_ttl_click_stats: float = Field(
        120.0, gt=0, description="TTL of click_stats:{id} (seconds)."
    )
    cache_ttl_banner_stats: float = Field(
        180.0, gt=0, description="TTL of banner_stats:{id} (seconds)."
    )
    cache_ttl_top_banners: float = Field(
        60.0, gt=0, description="TTL of top_banners:{limit} (seconds)."
    )
    cache_ttl_breakdown: float = Field(
        120.0, gt=0, description="TTL of breakdown:{id|all}:... (seconds)."
    )
    cache_ttl_placement: float = Field(
        300.0,
        gt=0,
        description="TTL of placement:{id}, a placement's serve candidates (seconds; every "
        "banner and placement write drops them at once).",
    )

    ingest_max_batch: int = Field(
        1000, ge=1, description="Most clicks written in one group-commit transaction."
    )
    ingest_max_wait: float = Field(
        0.002, ge=0, description="Seconds a short batch waits for more clicks before writing."
    )
    ingest_max_queue: int = Field(
        20_000, ge=1, description="Clicks waiting to be written before new ones get 503."
    )

    redis_url: str = Field(
        "",
        description="Redis URL (redis://host:6379/0); turns on the L2 cache tier and the "
        "cross-instance invalidation bus.",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses/CIDRs whose X-Forwarded-For, -Proto and -Host "
        "are honoured.",
    )
    public_url: str = Field(
        "",
        description="Base of every absolute URL the service writes (snippets, served click "
        "URLs), e.g. https://ads.example.com; empty: the request's scheme and host, or "
        "X-Forwarded-Proto/-Host from a trusted proxy.",
    )
    log_level: str = Field("INFO", description="Log level of the service.")
    salt_key: str = Field(
        "",
        description="Secret (32+ characters) sealing the day's visitor salt in the database; "
        "the same on every instance. Empty: read from the key file.",
    )
    salt_key_file: str = Field(
        "~/.local/state/bannertrack/salt.key",
        description="File holding the salt key when BANNERTRACK_SALT_KEY is empty; created "
        "with mode 0600 on first start. Keep it out of database backups.",
    )
    log_fault_interval: float = Field(
        10.0,
        gt=0,
        description="Seconds between log lines of one recurring fault (the line carries a "
        "count of those held back).",
    )
    health_probe_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between the database write probes `/healthz` runs (at most one "
        "per interval, whatever the request rate).",
    )

    # Limits and timeouts against slow or hostile clients (docs/security.md).
    http_max_body: int = Field(
        65_536, ge=1024, description="Largest request body in bytes; a larger one gets 413."
    )
    http_body_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a request body may take to arrive in full; a slower one gets 408 "
        "and frees its slot.",
    )
    http_header_timeout: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Seconds a client may take to send a request's headers (granian HTTP/1 "
        "header read timeout; also bounds an idle keep-alive connection).",
    )
    http_keep_alive: bool = Field(
        True, description="Keep HTTP/1 connections open between requests."
    )
    http_backpressure: int = Field(
        8192,
        ge=1,
        description="Requests one worker handles at once (granian backpressure); more wait "
        "in the listen backlog.",
    )
    http_backlog: int = Field(
        2048, ge=128, description="Connections the kernel queues before the server accepts them."
    )
    http_loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio",
        description="Event loop of each worker: asyncio (the standard library's) or uvloop "
        "(`pip install uvloop` first; one worker served 2-12 % more tracking-link and 17 % "
        "more cached-read req/s, two workers no more, docs/benchmarks.md).",
    )

    # Counts a marketer can trust (docs/counting.md).
    dedup_window: float = Field(
        3600.0,
        ge=0,
        le=86400,
        description="Seconds within which a visitor's further clicks on a banner are repeats "
        "(0 turns repeat detection off; at most a day, the life of a visitor key).",
    )
    retention_days: int = Field(
        395, ge=1, description="Days raw clicks are kept; rollups (all counts) stay forever."
    )
    conversion_window_days: int = Field(
        30,
        ge=1,
        description="Days after a click within which a reported conversion is credited to it "
        "(at most BANNERTRACK_RETENTION_DAYS: the click must still be kept).",
    )
    retention_interval: float = Field(
        3600.0, gt=0, description="Seconds between background runs of the retention cleanup."
    )
    retention_batch: int = Field(
        5000, ge=1, description="Most rows one retention DELETE removes before it pauses."
    )
    filter_copy_rows: int = Field(
        2_000_000,
        ge=0,
        description="Raw clicks each worker keeps in memory, column by column, to answer "
        "filtered figures (about 30 MB per million; loaded at the first filtered read). "
        "Days older than the newest this many clicks, and every read until the copy is "
        "loaded, ask the database; 0: no copy.",
    )
    breakdown_top_n: int = Field(
        50,
        ge=1,
        le=1000,
        description="Values with a row of their own per banner, day and breakdown dimension; "
        'later new values count as "(other)".',
    )
    impression_flush_interval: float = Field(
        0.5,
        gt=0,
        le=1.0,
        description="Seconds impressions are summed in memory before one write.",
    )
    impressions_refresh: float = Field(
        0.5,
        gt=0,
        le=1.0,
        description="Seconds between refreshes of the impression totals laid over cached "
        "ClickStats (one query per refresh per instance).",
    )

    # Placements (docs/api.md, "Placements"; docs/counting.md, "Frequency caps").
    click_url_validity: float = Field(
        86_400.0,
        gt=0,
        description="Seconds a placement's signed click URL stays valid; an older click is "
        "still redirected but set apart (bot_reason signature_expired).",
    )
    placement_cap_entries: int = Field(
        200_000,
        ge=1,
        description="Most (visitor, banner) pairs one process counts per day for frequency "
        "caps; beyond it a capped banner is not served to a new visitor.",
    )

    # Scale-out: the Redis L2 tier and the invalidation bus (docs/scale-out.md).
    redis_prefix: str = Field(
        "bt:",
        description="Prefix of every Redis key and of the bus channel, so deployments can "
        "share one Redis database.",
    )
    redis_timeout: float = Field(
        0.25,
        gt=0,
        description="Seconds a Redis command or connect may take before the request goes on "
        "without Redis.",
    )
    spool_enabled: bool = Field(
        True,
        description="On PostgreSQL, keep click and impression batches the database cannot take "
        "in a local spool (acknowledged once fsync'd) and replay them exactly once; off: 503.",
    )
    spool_dir: str = Field(
        "~/.local/state/bannertrack/spool",
        description="Directory of the spool files (one per process, in a folder per database).",
    )
    spool_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=4096,
        description="Most bytes of spooled batches per process; beyond, clicks get 503.",
    )
    spool_after: float = Field(
        0.2,
        gt=0,
        description="Seconds a click batch waits for PostgreSQL's commit before it is spooled "
        "(none while the database is known to be down).",
    )
    spool_replay_interval: float = Field(
        0.5, gt=0, description="Seconds between replay attempts while the database is down."
    )
    cache_stale_if_error: float = Field(
        86_400.0,
        ge=0,
        description="Seconds past its TTL a cached banner may still answer the link, the pixel "
        "and serves when the database is unavailable or too slow (stale-if-error); 0: never.",
    )
    cache_stale_wait: float = Field(
        0.2,
        gt=0,
        description="Seconds such a read waits for the database before the stale copy answers "
        "(none while the database is known to be down).",
    )
    bus_degraded_ttl: float = Field(
        5.0,
        gt=0,
        description="Longest life of an in-memory entry while the invalidation bus is down "
        "(its staleness bound then).",
    )
    bus_heartbeat: float = Field(
        1.0,
        gt=0,
        description="Seconds between liveness checks of the bus connection; a silent one is "
        "dropped after three.",
    )
    bus_backoff_max: float = Field(
        2.0,
        gt=0,
        description="Longest wait between attempts to reconnect the invalidation bus.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return check_public_url(value)

    @model_validator(mode="after")
    def _window_within_retention(self) -> Settings:
        # A click past retention is deleted with its id, and a conversion could no longer
        # find it: a window longer than retention would promise what cannot be kept.
        if self.conversion_window_days > self.retention_days:
            raise ValueError(
                "BANNERTRACK_CONVERSION_WINDOW_DAYS must not exceed BANNERTRACK_RETENTION_DAYS"
            )
        return self


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; callers pass the result down instead of re-reading.

    A value the settings refuse raises ``InvalidInputError`` naming the variable, so the
    CLI can say which one is wrong instead of printing pydantic's traceback.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            name = "_".join(map(str, e["loc"]))
            # A refused secret or URL (which may hold a password) is not echoed.
            shown = "" if name in _SECRETS else f"={e.get('input')!r}"
            problems.append(f"BANNERTRACK_{name.upper()}{shown}: {e['msg']}")
        raise InvalidInputError(f"invalid setting: {'; '.join(problems)}") from None


_SECRETS = frozenset(
    {"database_url", "redis_url", "admin_token", "ingest_token", "dashboard_token", "salt_key"}
)


def settings_table() -> str:
    """The README's configuration table, generated so docs and defaults cannot drift."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        if isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        rows.append(f"| `BANNERTRACK_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
