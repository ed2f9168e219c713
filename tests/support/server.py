"""Run ``bannertrack api`` as a real server process on a free loopback port."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

# Listening ports come from below the kernel's ephemeral range (32768-60999 here), a
# block of their own per xdist worker: a port the kernel hands out (bind to 0) can be
# taken by an outgoing connection, or by the other worker's server, between the check
# here and the server's own bind ("Address already in use" in a fresh-clone run).
_BLOCK = 4000
_FIRST = 20000
_next_offset = random.Random(os.getpid()).randrange(_BLOCK)


def _worker_number() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ...; absent: one process
    return int(name[2:]) if name[2:].isdigit() else 0


def free_port() -> int:
    """A loopback port free now, from this test process's own block."""
    global _next_offset
    base = _FIRST + (_worker_number() % 3) * _BLOCK
    for _ in range(_BLOCK):
        port = base + _next_offset
        _next_offset = (_next_offset + 1) % _BLOCK
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {base}-{base + _BLOCK - 1}")


class ServerProcess:
    """``bannertrack api`` in a child process; its output goes to ``log_path``."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
        wrapper: tuple[str, ...] = (),
    ) -> None:
        """``wrapper`` runs the server through another command (``unshare ...``)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._env = {
            **os.environ,
            "BANNERTRACK_DATABASE_URL": database_url,
            "BANNERTRACK_PORT": str(self.port),
            "BANNERTRACK_HOST": "127.0.0.1",
            **(env or {}),
        }
        self._args = args
        self._wrapper = wrapper
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> ServerProcess:
        """Returns once /healthz answers 200 (a deadline, not a wait: a quiet machine
        starts in about a second; two busy cores shared by many took over 30 s)."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*self._wrapper, sys.executable, "-m", "bannertrack", "api", *self._args],
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                self._log.close()
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        code = self.proc.returncode
        self.proc = None
        return code

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
