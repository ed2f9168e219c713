"""Checks ``bannertrack api`` makes before handing the socket to granian."""

from __future__ import annotations

import contextlib
import importlib.util
import resource
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from granian.constants import Loops

from bannertrack.errors import InvalidInputError


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be ours (another server holds it), or None when it is free.

    granian sets SO_REUSEPORT, so a second instance on a taken port would start and share
    the traffic (and split it between two databases). A plain bind without SO_REUSEPORT
    fails while any socket listens there, which is the check wanted. SO_REUSEADDR keeps
    connections in TIME_WAIT from a previous run from counting as "in use".
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server?)"
    return None


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one: each connection is a descriptor.

    A default soft limit of 1024 would cap the server at about a thousand concurrent
    connections long before ``http_backpressure``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def event_loop(choice: str) -> Loops:
    """The granian loop for ``http_loop``, refused early when it is not installed.

    Always named, never granian's "auto": that takes whichever loop package happens to be
    installed, rloop first, and rloop cannot open the Unix socket a local PostgreSQL
    listens on.
    """
    if choice != "asyncio" and importlib.util.find_spec(choice) is None:
        raise InvalidInputError(
            f"BANNERTRACK_HTTP_LOOP={choice} needs the {choice} package: pip install {choice}"
        )
    return Loops(choice)


@contextlib.contextmanager
def workers_dir(configured: str) -> Iterator[str]:
    """The directory the workers share their figures in (``bannertrack.bootstrap.workers``).

    The configured one is made if missing and left in place; without one, a private
    directory (mode 0700) is made for this run and removed when the server stops.
    """
    if configured:
        Path(configured).mkdir(parents=True, exist_ok=True)
        yield configured
        return
    made = tempfile.mkdtemp(prefix="bannertrack-workers-")
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)
