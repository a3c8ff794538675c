"""deploy/nginx.conf itself, on Debian's nginx, in front of two real nodes sharing PostgreSQL and Redis.

The topology of tests/deploy/topology.py runs a generated configuration; this module runs the
production file, rendered for loopback by substituting only what belongs to the machine it runs on:
upstream addresses, listening addresses, the certificate, the pid file, the error log and nginx's
temporary directories. Each substitution must match exactly one line, so an edit of the production
file that the rendering no longer fits fails here loudly instead of quietly testing something else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import io
import ipaddress
import os
import re
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
import yarl
from aiohttp import web

from tests.signaling.peer import Participant
from tests.support.mailbox import MailboxThread
from tests.support.nodes import (ADMIN, Node, ROOT, SECOND_ADMIN, SECOND_ADMIN_PASSWORD, create_admin, diagnosing,
                                 node_environment, start_nodes)
from tests.support.services import HOST, NginxServer, PostgresServer, RedisServer, free_port
from tests.support.walk import Http, application, scheduled_case

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

PRODUCTION_CONF = ROOT / "deploy" / "nginx.conf"
HSTS = "max-age=63072000"
MAX_BODY = 1024 * 1024  # client_max_body_size 1m
APPLICATION_BUDGET = 2  # MEDIATION_APPLICATIONS_PER_MINUTE of the nodes, per client address and node
# Loopback addresses other than the proxy's own stand for clients on the internet: the nodes trust
# only 127.0.0.1 (MEDIATION_TRUSTED_PROXIES), so these are the clients' addresses to them.
CLIENT_A, CLIENT_B = "127.0.0.2", "127.0.0.3"


# --- rendering --------------------------------------------------------------------------------------


class RenderError(Exception):
    """deploy/nginx.conf no longer has a line the test rendering replaces."""


def render(source: str, *, upstreams: tuple[int, int], http_port: int, https_port: int, ipv6: bool,
           directory: Path, log_path: Path) -> str:
    """deploy/nginx.conf with its machine-specific values replaced by loopback ones under ``directory``."""
    node_a, node_b = upstreams
    substitutions = [
        (r"^(pid )/var/run/nginx\.pid;", rf"\g<1>{directory}/nginx.pid;"),
        (r"^(error_log )/dev/stderr( \w+;)", rf"\g<1>{log_path}\2"),
        # The package's compiled-in temporary directories (/var/lib/nginx) are writable by root only.
        (r"^(http \{)$", "\\1\n" + "".join(f"    {kind}_temp_path {directory}/{kind};\n"
                                          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))),
        (r"^(\s*server )node-a:8080( )", rf"\g<1>{HOST}:{node_a}\2"),
        (r"^(\s*server )node-b:8080( )", rf"\g<1>{HOST}:{node_b}\2"),
        (r"^(\s*listen )80;", rf"\g<1>{HOST}:{http_port};"),
        (r"^(\s*listen )443( ssl\b)", rf"\g<1>{HOST}:{https_port}\2"),
        (r"^(\s*listen )\[::\]:80;", rf"\g<1>[::1]:{http_port};" if ipv6 else ""),
        (r"^(\s*listen )\[::\]:443( ssl\b)", rf"\g<1>[::1]:{https_port}\2" if ipv6 else ""),
        (r"^(\s*ssl_certificate )/etc/nginx/tls/fullchain\.pem;", rf"\g<1>{directory}/fullchain.pem;"),
        (r"^(\s*ssl_certificate_key )/etc/nginx/tls/privkey\.pem;", rf"\g<1>{directory}/privkey.pem;"),
    ]
    text = source
    for pattern, replacement in substitutions:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        if count != 1:
            raise RenderError(f"deploy/nginx.conf: {count} lines match {pattern!r}; the test rendering expects "
                              "exactly one: update render() in tests/deploy/test_proxy.py with the file")
    directives = re.sub(r"#.*", "", text)  # the file's comments may name production paths
    leftover = re.search(r"\bnode-[a-z0-9]+:\d+|/etc/nginx/", directives)
    if leftover is not None:
        raise RenderError(f"deploy/nginx.conf names {leftover.group()!r}, which the test rendering does not replace")
    return text


def ipv6_loopback() -> bool:
    """True when ::1 can be bound here (some containers run without IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def write_certificate(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for 127.0.0.1, ::1 and localhost; the cert file is its own trust anchor."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy test")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(HOST)), x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


class ProductionNginx(NginxServer):
    """Debian's nginx running deploy/nginx.conf as render() adapts it; HTTPS on ``port``, HTTP on ``http_port``.

    nginx is started as the container starts it (``-g "daemon off;"``), with ``-p`` and ``-e`` pointing
    into the temporary directory so that it needs nothing outside it.
    """

    def __init__(self, upstreams: tuple[int, int]) -> None:
        super().__init__(list(upstreams))
        self.http_port: int | None = None
        self.ipv6 = ipv6_loopback()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def cert_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "fullchain.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this proxy's certificate and nothing else."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def config(self) -> str:
        assert self.tmpdir is not None and self.port is not None and self.http_port is not None
        a, b = self.upstreams
        return render(PRODUCTION_CONF.read_text(), upstreams=(a, b), http_port=self.http_port,
                      https_port=self.port, ipv6=self.ipv6, directory=self.tmpdir, log_path=self.log_path)

    def _prepare(self) -> None:
        assert self.tmpdir is not None and self.binary is not None
        self.tmpdir.chmod(0o755)  # workers run as nobody when the tests run as root
        self.port = self._free_port()
        self.http_port = self._free_port()
        while self.http_port == self.port:
            self.http_port = self._free_port()
        write_certificate(self.cert_path, self.tmpdir / "privkey.pem")
        self.conf_path.write_text(self.config())
        checked = subprocess.run([*self._command(), "-t"], capture_output=True, text=True, timeout=30, check=False)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the rendered deploy/nginx.conf:\n{checked.stdout}{checked.stderr}"
                               f"{self.log_tail()}")

    def _free_port(self) -> int:
        """A port free on 127.0.0.1 and, when nginx listens there too, on ::1."""
        for _ in range(100):
            port = free_port()
            if not self.ipv6:
                return port
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
                with contextlib.suppress(OSError):
                    sock.bind(("::1", port))
                    return port
        raise RuntimeError("no port is free on both 127.0.0.1 and ::1")

    def _command(self) -> list[str]:
        assert self.binary is not None and self.tmpdir is not None
        return [self.binary, "-p", f"{self.tmpdir}/", "-c", str(self.conf_path), "-e", str(self.log_path),
                "-g", "daemon off;"]

    def _is_ready(self) -> bool:
        try:
            for port in (self.port, self.http_port):
                with socket.create_connection((HOST, port), timeout=1):
                    pass
        except OSError:
            return False
        return True


# --- the deployment ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Deployment:
    proxy: ProductionNginx
    nodes: list[Node]
    mailbox: MailboxThread  # the parties' mail, where their one-time codes go

    @property
    def url(self) -> str:
        return self.proxy.url

    def diagnosed(self) -> contextlib.AbstractContextManager[None]:
        """On failure, print what nginx and the nodes logged."""
        return diagnosing(self.nodes, self.proxy)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("proxy")
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(RedisServer(appendonly=True))
        postgres = stack.enter_context(PostgresServer())
        ports = (free_port(), free_port())
        proxy = stack.enter_context(ProductionNginx(ports))
        mailbox = MailboxThread().start()
        stack.callback(mailbox.stop)
        secrets_dir = workdir / "secrets"
        secrets_dir.mkdir(mode=0o700)
        env = node_environment(**{
            "MEDIATION_DATABASE_URL": postgres.dsn,
            "MEDIATION_REDIS_URL": redis.url,
            "MEDIATION_DATA_DIR": str(workdir / "shared"),
            "MEDIATION_AUDIT_KEY_FILE": str(secrets_dir / "audit-signing.key"),
            "MEDIATION_PUBLIC_URL": proxy.url,
            "MEDIATION_ALLOWED_ORIGINS": proxy.url,
            "MEDIATION_COOKIE_SECURE": "true",
            "MEDIATION_TRUSTED_PROXIES": HOST,
            "MEDIATION_APPLICATIONS_PER_MINUTE": str(APPLICATION_BUDGET),
            **mailbox.environment(),
        })
        create_admin(env)  # migrates the schema and makes the shared signing key before either node starts
        create_admin(env, SECOND_ADMIN, SECOND_ADMIN_PASSWORD)  # approves the staff accounts the first makes
        nodes = [Node(name=name, port=port, env={**env, "MEDIATION_PORT": str(port)},
                      log_path=workdir / f"node-{name}.log") for name, port in zip("ab", ports)]
        for node in nodes:
            stack.callback(node.stop)
        start_nodes(nodes)
        yield Deployment(proxy=proxy, nodes=nodes, mailbox=mailbox)


class ClosingConnector(aiohttp.TCPConnector):
    """A TLS connector whose owner can wait until every connection it opened has really closed.

    A websocket leaves the pool when it upgrades, so closing the session does not close it; its TLS
    close handshake then runs on after the socket.io client is done. Until it ends, the plain socket
    under it is open, and a test that ends first leaves that socket to the garbage collector.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.opened: list[Any] = []

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        protocol = await super()._create_connection(req, traces, timeout)
        self.opened.append(protocol)
        return protocol

    async def all_closed(self) -> None:
        pending = [closed for protocol in self.opened if (closed := protocol.closed) is not None]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout=60)


@contextlib.asynccontextmanager
async def tls_session(context: ssl.SSLContext, source: str | None = None) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that verifies ``context``'s certificate and ends only when its sockets have closed."""
    connector = ClosingConnector(ssl=context, local_addr=(source, 0) if source is not None else None)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session
    await connector.all_closed()


@contextlib.asynccontextmanager
async def client(deployment: Deployment, source: str | None = None) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client that verifies the proxy's certificate, connecting from ``source`` if given."""
    async with tls_session(deployment.proxy.ssl_context(), source) as session:
        yield session


def room_participant(deployment: Deployment, session: aiohttp.ClientSession, auth: dict[str, Any]) -> Participant:
    """A room client as the web client makes it: websocket transport only, the public origin, over TLS."""
    return Participant(deployment.url, auth, headers={"Origin": deployment.url},
                       client=socketio.AsyncClient(reconnection=False, http_session=session))


# --- tests --------------------------------------------------------------------------------------------


def test_render_of_a_file_it_no_longer_fits_fails_naming_the_pattern(tmp_path: Path) -> None:
    source = PRODUCTION_CONF.read_text()
    arguments = dict(upstreams=(1, 2), http_port=3, https_port=4, ipv6=True, directory=tmp_path,
                     log_path=tmp_path / "nginx.log")
    assert "[::1]" in render(source, **arguments)
    assert "[::" not in render(source, **{**arguments, "ipv6": False})
    with pytest.raises(RenderError, match="443"):
        render(source.replace("listen 443 ssl;", "listen 8443 ssl;"), **arguments)
    with pytest.raises(RenderError, match="node-c:8080"):
        render(source.replace("server node-b:8080", "server node-b:8080 max_fails=1;\n        server node-c:8080"),
               **arguments)


async def test_plain_http_redirects_to_https_keeping_path_and_query(deployment: Deployment) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(deployment.proxy.http_url + "/join/abc?lang=zh", allow_redirects=False) as response:
            assert response.status == 301
            # The production listener is 443, so the redirect names no port.
            assert response.headers["Location"] == f"https://{HOST}/join/abc?lang=zh"


async def test_health_and_readiness_answer_over_verified_tls_with_hsts(deployment: Deployment) -> None:
    urls = [deployment.url]
    if deployment.proxy.ipv6:
        urls.append(f"https://[::1]:{deployment.proxy.port}")
    async with client(deployment) as session:
        for url in urls:
            for path in ("/healthz", "/readyz"):
                async with session.get(url + path) as response:
                    assert response.status == 200, f"{url}{path}: {await response.text()}"
                    assert (await response.json())["status"] == "ok"
                    assert response.headers.get("Strict-Transport-Security") == HSTS
                    assert response.headers.get("Server") == "nginx"  # server_tokens off: no version
    # The clients above verified the certificate: one that does not trust it is refused.
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(deployment.url + "/healthz")


async def test_metrics_are_hidden_by_proxy_but_served_by_each_node(deployment: Deployment) -> None:
    async with client(deployment) as session:
        # Spellings included that a node itself serves as /metrics (a query, an escaped letter).
        for path in ("/metrics", "/metrics?format=text", "/%6Detrics", "//metrics", "/metrics/"):
            async with session.get(yarl.URL(deployment.url + path, encoded=True)) as response:
                assert response.status == 404, path
                assert "mediation_" not in await response.text(), path
                assert response.headers.get("Strict-Transport-Security") == HSTS
    async with aiohttp.ClientSession() as session:
        for node in deployment.nodes:
            async with session.get(node.base + "/metrics") as response:
                assert response.status == 200, node.name
                assert "mediation_http_requests_total" in await response.text()


async def test_room_socket_through_proxy_joins_a_scheduled_session(deployment: Deployment) -> None:
    async with client(deployment) as session:
        with deployment.diagnosed():
            case = await scheduled_case(Http(session, deployment.url), deployment.mailbox)
            mediator = room_participant(deployment, session, case.auth("mediator"))
            try:
                joined = await mediator.join()
                assert mediator.client.transport() == "websocket"
            finally:
                await mediator.close()
    assert joined["ok"] and joined["participant_id"], joined


async def assert_refused_by_a_node(deployment: Deployment, session: aiohttp.ClientSession) -> None:
    """A room socket without credentials is refused with the node's own code, through the proxy."""
    stranger = room_participant(deployment, session, {})
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await stranger.connect()
    finally:
        await stranger.close()
    assert isinstance(stranger.refusal, dict) and stranger.refusal.get("code") == "bad_token", stranger.refusal


async def test_room_socket_without_credentials_is_refused_by_a_node(deployment: Deployment) -> None:
    async with client(deployment) as session:
        # The refusal is the node's own: the upgrade went through the proxy to a node and back.
        await assert_refused_by_a_node(deployment, session)


async def test_nodes_limit_each_client_address_the_proxy_forwards(deployment: Deployment) -> None:
    # Budgets are per node: 2 * budget + 1 applications from A exceed at least one node's. B, another
    # address, keeps its whole budget on every node. Were the nodes to see the proxy's address for
    # everyone, B would share A's spent budget.
    async with client(deployment, CLIENT_A) as session:
        http = Http(session, deployment.url)
        statuses = [(await http.request("POST", "/api/applications", json_body=application()))[0]
                    for _ in range(2 * APPLICATION_BUDGET + 1)]
    assert set(statuses) <= {201, 429} and 429 in statuses, statuses
    async with client(deployment, CLIENT_B) as session:
        http = Http(session, deployment.url)
        for _ in range(APPLICATION_BUDGET):
            await http.call("POST", "/api/applications", json_body=application(), expect=201)


async def test_proxy_tells_upstreams_the_client_address_host_and_https() -> None:
    # No node reads X-Forwarded-Proto, so two header echoes stand in for the nodes here.
    seen: list[tuple[aiohttp.HttpVersion, dict[str, str]]] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append((request.version, dict(request.headers)))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        for _ in range(2):
            await web.TCPSite(runner, HOST, 0).start()
        a, b = (port for _, port in runner.addresses)
        proxy = ProductionNginx((a, b))
        await asyncio.to_thread(proxy.start)
        try:
            async with tls_session(proxy.ssl_context(), CLIENT_A) as session:
                forged = {"X-Forwarded-For": "203.0.113.9"}
                async with session.get(proxy.url + "/api/whoami", headers=forged) as response:
                    assert response.status == 200, await response.text()
        finally:
            await asyncio.to_thread(proxy.stop)
    finally:
        await runner.cleanup()
    ((version, headers),) = seen
    # nginx appends the address it saw; the nodes read the list from the right (server/proxies.py).
    assert headers["X-Forwarded-For"] == f"203.0.113.9, {CLIENT_A}"
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["Host"] == HOST
    # HTTP/1.0 has no Upgrade: nginx's WebSocket proxying needs 1.1 (aiohttp nodes happen to accept 1.0).
    assert version == aiohttp.HttpVersion11


async def test_body_over_one_megabyte_is_refused_by_the_proxy(deployment: Deployment) -> None:
    async with client(deployment) as session:
        async with session.post(deployment.url + "/api/applications", data=io.BytesIO(b"x" * (MAX_BODY + 1)),
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 413
            # nginx's own page: every error a node answers is JSON.
            assert response.content_type == "text/html", await response.text()
            assert response.headers.get("Strict-Transport-Security") == HSTS


async def test_stopped_node_is_skipped_and_requests_still_succeed(deployment: Deployment) -> None:
    stopped = deployment.nodes[0]
    log_before = len(deployment.proxy.log_path.read_bytes())
    await asyncio.to_thread(stopped.stop)  # SIGTERM: a clean stop, its port now refuses connections
    try:
        with deployment.diagnosed():
            async with client(deployment) as session:
                http = Http(session, deployment.url)
                # Round robin sends one of the first two to the stopped node. Its connection was refused,
                # so the request was never sent: nginx passes on even a POST.
                for _ in range(4):
                    await http.call("POST", "/api/auth/login", json_body={"username": ADMIN, "password": "wrong"},
                                    expect=401)
                for _ in range(4):
                    await http.call("GET", "/readyz")
                await assert_refused_by_a_node(deployment, session)
            logged = deployment.proxy.log_path.read_bytes()[log_before:].decode(errors="replace").splitlines()
            assert any("connect() failed (111: Connection refused) while connecting to upstream" in line
                       and f"upstream: \"{stopped.base}/api/auth/login\"" in line for line in logged), logged
    finally:
        await asyncio.to_thread(stopped.restart)
