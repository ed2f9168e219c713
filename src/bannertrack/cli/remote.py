"""The CLI's HTTP client for a running server: one clear line on every failure."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from rich.console import Console

err = Console(stderr=True, soft_wrap=True)


def stdout_console() -> Console:
    """Rich output for stdout: a pipe or a file has no width, so tables are not cut to 80.

    On a terminal Rich fits the table to the window; elsewhere (``| less``, ``> file``,
    CI logs) a fixed 80 columns would truncate headers and numbers into "…".
    """
    return Console(width=None if sys.stdout.isatty() else 240)


class RemoteError(Exception):
    """Printed as one line by the CLI, which then exits non-zero."""


class Remote:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        token = token if token is not None else os.environ.get("BANNERTRACK_ADMIN_TOKEN", "")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.has_token = bool(token)
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise RemoteError(
                f"cannot reach bannertrack at {self.url} (is `bannertrack api` running?)"
            ) from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"request to {self.url}{path} failed: {exc}") from None
        self._check(response, method, path)
        return response

    def _check(self, response: httpx.Response, method: str, path: str) -> None:
        if response.status_code in (401, 403):
            hint = (
                "set BANNERTRACK_ADMIN_TOKEN to the server's admin token"
                if not self.has_token
                else "the server refused the admin token"
            )
            raise RemoteError(f"{hint} ({response.status_code}: {_message(response)})")
        if response.status_code >= 400:
            raise RemoteError(
                f"{method} {path} answered {response.status_code}: {_message(response)}"
            )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    @contextmanager
    def stream(self, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """GET ``path`` with the body left unread, for downloads; the same one-line errors.

        A body that breaks off (the server stopped, the database went away mid-way) is
        reported too: a half file must never look like a whole one.
        """
        try:
            with self.http.stream("GET", path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response, "GET", path)
                yield response
        except httpx.ConnectError:
            raise RemoteError(
                f"cannot reach bannertrack at {self.url} (is `bannertrack api` running?)"
            ) from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"download from {self.url}{path} broke off: {exc}") from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except Exception:
        return response.text[:200] or response.reason_phrase
