"""deploy/'s nginx and Caddy configurations, run as written, in front of two workers.

Each file is read from deploy/ and only its certificate, ports and server name are
replaced (each replacement must match, so the test follows the file). Clients connect
to the proxy over TLS from distinct loopback addresses (127.0.0.5, .6, .7); the service
trusts 127.0.0.1, the address the proxy connects from. Checked: the address the service
sees is the client's (a report naming that address afterwards is a repeat of the same
visitor), a client's own X-Forwarded-For does not pose as another, the dashboard's
snippet reads https:// (X-Forwarded-Proto), clicking it through the proxy redirects, and
/metrics is closed at the proxy. Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.support.server import ServerProcess, free_port
from tests.support.services import redis_server
from tests.support.waiting import wait_until_sync

pytestmark = pytest.mark.slow

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
BANNER = {
    "name": "proxied",
    "image_url": "https://cdn.example/b.png",
    "target_url": "https://shop.example/landing",
}


def replaced(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, f"deploy file no longer has {old!r}: update this test with it"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("proxied")
    with redis_server() as redis_url:
        env = {
            "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "BANNERTRACK_REDIS_URL": redis_url,
            "BANNERTRACK_REDIS_PREFIX": "proxied:",
            "BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1",
            "BANNERTRACK_LOG_LEVEL": "WARNING",
        }
        server = ServerProcess(
            f"sqlite:///{tmp / 'p.db'}", tmp / "server.log", env=env, args=("--workers", "2")
        )
        with server:
            yield server


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def nginx(tmp: Path, port: int, app_port: int, cert: Path, key: Path) -> list[str]:
    site = replaced(
        (DEPLOY / "nginx-bannertrack.conf").read_text(),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{app_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
        ("listen [::]:80;", ""),
        ("/etc/letsencrypt/live/ads.example.com/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/ads.example.com/privkey.pem", str(key)),
    )
    (tmp / "site.conf").write_text(site)
    (tmp / "nginx.conf").write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nworker_processes 1;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n"
        f"  fastcgi_temp_path {tmp}/fcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n"
        f"  scgi_temp_path {tmp}/scgi;\n  include {tmp}/site.conf;\n}}\n"
    )
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    return [nginx_bin, "-e", f"{tmp}/error.log", "-p", str(tmp), "-c", f"{tmp}/nginx.conf",
            "-g", "daemon off;"]  # fmt: skip


def caddy(tmp: Path, port: int, app_port: int, cert: Path, key: Path) -> list[str]:
    site = replaced(
        (DEPLOY / "Caddyfile").read_text(),
        ("ads.example.com {", f"https://127.0.0.1:{port} {{\n\ttls {cert} {key}"),
        ("reverse_proxy 127.0.0.1:8080", f"reverse_proxy 127.0.0.1:{app_port}"),
    )
    globals_ = f"{{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system {tmp}\n}}\n"
    (tmp / "Caddyfile").write_text(globals_ + site)
    return ["caddy", "run", "--adapter", "caddyfile", "--config", str(tmp / "Caddyfile")]


PROXIES = {"nginx": nginx, "caddy": caddy}


@pytest.fixture(params=sorted(PROXIES))
def proxy(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    app: ServerProcess,
    certificate: tuple[Path, Path],
) -> Iterator[str]:
    """The proxy's https:// URL, once it answers."""
    name = str(request.param)
    port = free_port()
    command = PROXIES[name](tmp_path, port, app.port, *certificate)
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path),
           "PATH": "/usr/sbin:/usr/bin:/bin"}  # fmt: skip
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"https://127.0.0.1:{port}"
    try:
        context = ssl.create_default_context(cafile=str(certificate[0]))

        def answers() -> bool:
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
            try:
                httpx.get(f"{url}/healthz", verify=context, timeout=1)
            except httpx.HTTPError:
                return False
            return True

        wait_until_sync(answers, timeout=20)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def client_from(address: str, cafile: Path) -> httpx.Client:
    """A browser-like client whose connections leave from ``address``."""
    context = ssl.create_default_context(cafile=str(cafile))
    transport = httpx.HTTPTransport(local_address=address, verify=context)
    return httpx.Client(transport=transport, headers={"User-Agent": BROWSER}, timeout=10)


def test_through_the_proxy(proxy: str, app: ServerProcess, certificate: tuple[Path, Path]) -> None:
    cafile = certificate[0]
    banner = httpx.post(f"{app.url}/api/v1/banners", json=BANNER, headers=ADMIN).json()
    bid = banner["id"]

    # The snippet names the proxy's https URL, from X-Forwarded-Proto and the Host.
    with client_from("127.0.0.5", cafile) as browser:
        page = browser.get(f"{proxy}/banners/{bid}").text
        link = f"{proxy}/c/{bid}"
        assert f'value="{link}"' in page, "the tracking-link snippet is the public https URL"
        r = browser.get(f"{link}?utm_source=proxy")
        assert r.status_code == 302, r.text
        assert r.headers["location"] == "https://shop.example/landing?utm_source=proxy"
        assert r.headers["cache-control"] == "private, no-store"
        assert browser.get(f"{proxy}/metrics").status_code == 403
    with client_from("127.0.0.6", cafile) as browser:
        assert browser.get(link).status_code == 302
    with client_from("127.0.0.7", cafile) as browser:
        # Poses as 127.0.0.5; the proxy's own entry follows it, and that one counts.
        assert browser.get(link, headers={"X-Forwarded-For": "127.0.0.5"}).status_code == 302

    stats = httpx.get(f"{app.url}/api/v1/banners/{bid}/stats").json()
    # Three visitors (three addresses), none a repeat of another, none the proxy itself.
    assert (stats["total_clicks"], stats["valid_clicks"], stats["repeat_clicks"]) == (3, 3, 0)

    def report(ip: str) -> dict[str, object]:
        r = httpx.post(
            f"{app.url}/api/v1/banners/{bid}/clicks",
            json={"ip": ip, "user_agent": BROWSER},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    # Each address the service saw is one visitor: naming it again is a repeat ...
    for seen in ("127.0.0.5", "127.0.0.6", "127.0.0.7"):
        assert report(seen)["repeat"] is True, seen
    # ... and the proxy's own address was never taken for a visitor.
    assert report("127.0.0.1")["repeat"] is False
