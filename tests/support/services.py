"""Real PostgreSQL, Redis, nginx and coturn servers for tests.

These are plain helpers, not fixtures: each server runs on a free TCP port on
127.0.0.1 out of a fresh temporary directory, and ``stop()`` shuts it down and
removes that directory. Usage::

    with PostgresServer() as pg:
        engine = create_async_engine(pg.dsn)
        ...
        pg.restart()          # fast shutdown + start on the same port/data dir

    redis = RedisServer().start()
    try:
        client = redis.asyncio.from_url(redis.url)
        ...
    finally:
        redis.stop()

A missing server binary raises ``RuntimeError`` naming the Debian package to
install (``scripts/setup.sh`` installs them); tests never skip for that.

PostgreSQL refuses to run as root, so when the tests run as root the server
processes run as the ``postgres`` system user (created by the Debian
``postgresql`` package) out of a directory owned by that user.

Only the standard library is used (and ``cryptography`` for the TURN server's
certificate); the API is synchronous.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

__all__ = ["NginxServer", "PostgresServer", "RedisServer", "TurnServer", "free_port"]

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

# Where Debian installs the PostgreSQL server binaries (one dir per version).
PG_BINDIR_GLOB = "/usr/lib/postgresql/*/bin"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _clean_env(**extra: str) -> dict[str, str]:
    """The current environment without libpq's PG* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


def _traversable_by_all(path: Path) -> bool:
    """True when every directory from / down to ``path`` is o+x."""
    path = path.resolve()
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _services_base_dir() -> Path:
    """A world-traversable (0755) directory to hold the servers' temp dirs.

    A server that runs as another user (postgres, when we are root) must be
    able to reach its directory, so every parent has to be traversable.
    """
    candidates = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]
    for parent in candidates:
        if not parent.is_dir() or not _traversable_by_all(parent):
            continue
        base = parent / f"mediation-test-services-{os.geteuid()}"
        try:
            base.mkdir(mode=0o755, exist_ok=True)
            if base.stat().st_uid == os.geteuid():
                base.chmod(0o755)
        except OSError:
            continue
        if _traversable_by_all(base) and os.access(base, os.W_OK):
            return base
    raise RuntimeError(
        "no world-traversable temporary directory found for test servers "
        f"(tried {', '.join(map(str, candidates))})"
    )


_live: "weakref.WeakSet[_Service]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # Safety net for servers a test forgot to stop.
    for service in list(_live):
        try:
            service.stop()
        except Exception:  # pragma: no cover - best effort at exit
            pass


class _Service:
    """Common process handling: temp dir, log file, start/stop/restart."""

    name = "service"
    #: signal for a clean (fast) shutdown
    stop_signal = signal.SIGTERM

    def __init__(self) -> None:
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._initialized = False

    # -- to be provided by subclasses ---------------------------------------

    def _check_binaries(self) -> None:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Create the on-disk state in ``self.tmpdir`` (first start only)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict:
        return {}

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _after_first_start(self) -> None:
        """Runs once, after the server first accepts connections."""

    # -- public API ----------------------------------------------------------

    @property
    def log_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self):
        """Start the server (no-op if running); returns ``self``."""
        if self.running:
            return self
        self._check_binaries()
        if self.tmpdir is None:
            self.tmpdir = Path(
                tempfile.mkdtemp(prefix=f"{self.name}-", dir=_services_base_dir())
            )
            self.port = free_port()
            self._initialized = False
            _live.add(self)
        try:
            if not self._initialized:
                self._prepare()
            self._launch()
            if not self._initialized:
                self._after_first_start()
                self._initialized = True
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Shut the server down and remove its directory. Idempotent."""
        self._terminate()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        self._initialized = False
        _live.discard(self)

    def restart(self):
        """Clean shutdown, then start again on the same port and directory."""
        self.shutdown()
        return self.start()

    def shutdown(self) -> None:
        """Clean shutdown keeping port and directory: an outage that ``start()`` ends."""
        if self.tmpdir is None:
            raise RuntimeError(f"{self.name} server was never started")
        self._terminate()

    def kill(self) -> None:
        """Crash the server (SIGKILL), keeping its data; ``start()`` recovers.

    PostgreSQL runs with ``synchronous_commit=off``: transactions committed
    in the last few hundred milliseconds before a kill may be lost, unless
    they ran with ``SET synchronous_commit = on``.
    """
        proc = self._proc
        if proc is None:
            return
        self._killpg(signal.SIGKILL)
        proc.wait()
        self._proc = None

    def log_tail(self, max_bytes: int = 4000) -> str:
        if self.tmpdir is None:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - max_bytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} port={self.port} {state}>"

    # -- internals -----------------------------------------------------------

    def _launch(self) -> None:
        assert self.tmpdir is not None
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmpdir,
                # Own process group: a Ctrl-C aimed at pytest does not reach
                # the server, and stop() can clean up every child.
                start_new_session=True,
                **self._popen_kwargs(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(
                    f"{self.name} server exited with code {code} while starting "
                    f"on port {self.port}; log tail:\n{self.log_tail()}"
                )
            if self._is_ready():
                return
            if time.monotonic() > deadline:
                self._terminate()
                raise RuntimeError(
                    f"{self.name} server did not accept connections on port "
                    f"{self.port} within {START_TIMEOUT:.0f} s; log tail:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def _killpg(self, sig: int) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(self.stop_signal)
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._killpg(signal.SIGKILL)
                    proc.wait()
        finally:
            self._proc = None


class PostgresServer(_Service):
    """A throwaway PostgreSQL cluster with database ``mediation``.

    Role ``mediation`` (login, createdb) owns database ``mediation``; the
    cluster's superuser is ``postgres``. Authentication is ``trust``.
    Durability is traded for speed (fsync, synchronous_commit and
    full_page_writes off); ``settings`` adds or overrides ``-c name=value``
    server options, e.g. ``{"max_connections": "20"}``.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown

    host = HOST
    user = "mediation"
    database = "mediation"
    superuser = "postgres"
    os_user = "postgres"  # system account used when running as root

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        super().__init__()
        self.bindir: Path | None = None
        self.settings = {
            "listen_addresses": HOST,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **(settings or {}),
        }

    @property
    def dsn(self) -> str:
        """SQLAlchemy URL (asyncpg driver) for the ``mediation`` database."""
        return (
            f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{self.database}"
        )

    @property
    def superuser_dsn(self) -> str:
        return f"postgresql+asyncpg://{self.superuser}@{self.host}:{self.port}/postgres"

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    @property
    def socketdir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "sock"

    # -- binaries ------------------------------------------------------------

    @staticmethod
    def find_bindir() -> Path:
        """Directory holding ``initdb`` and ``postgres``."""

        def ok(d: str | Path | None) -> bool:
            return bool(d) and all(
                os.access(os.path.join(d, exe), os.X_OK) for exe in ("initdb", "postgres")
            )

        pg_config = shutil.which("pg_config")
        if pg_config:
            try:
                out = subprocess.run(
                    [pg_config, "--bindir"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                out = ""
            if ok(out):
                return Path(out)

        def version_key(d: str) -> tuple[int, ...]:
            ver = Path(d).parent.name
            return tuple(int(x) for x in re.findall(r"\d+", ver)) or (0,)

        for d in sorted(glob.glob(PG_BINDIR_GLOB), key=version_key, reverse=True):
            if ok(d):
                return Path(d)

        postgres = shutil.which("postgres")
        if postgres and ok(os.path.dirname(postgres)):
            return Path(os.path.dirname(postgres))

        raise RuntimeError(
            "PostgreSQL server binaries (initdb, postgres) not found via pg_config, "
            f"{PG_BINDIR_GLOB} or PATH; install the Debian package 'postgresql' "
            "(apt-get install postgresql), e.g. by running scripts/setup.sh"
        )

    def _check_binaries(self) -> None:
        if self.bindir is None:
            self.bindir = self.find_bindir()
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(self.os_user)
            except KeyError:
                raise RuntimeError(
                    "PostgreSQL refuses to run as root and the 'postgres' system "
                    "user does not exist; install the Debian package 'postgresql' "
                    "(it creates that user)"
                ) from None

    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        path = self.bindir / name
        if not os.access(path, os.X_OK):
            found = shutil.which(name)
            if found is None:
                raise RuntimeError(
                    f"PostgreSQL program {name!r} not found in {self.bindir} or PATH; "
                    "install the Debian package 'postgresql-client'"
                )
            return found
        return str(path)

    def _as_server_user(self) -> dict:
        """subprocess kwargs that drop root privileges to the postgres user."""
        if os.geteuid() != 0:
            return {}
        pw = pwd.getpwnam(self.os_user)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _popen_kwargs(self) -> dict:
        assert self.tmpdir is not None
        return {
            **self._as_server_user(),
            "env": _clean_env(LC_ALL="C", HOME=str(self.tmpdir)),
        }

    # -- lifecycle -----------------------------------------------------------

    def _prepare(self) -> None:
        assert self.tmpdir is not None
        self.socketdir.mkdir()
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.os_user)
            for p in (self.tmpdir, self.socketdir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        result = subprocess.run(
            [
                self._bin("initdb"),
                "-D", str(self.datadir),
                "-U", self.superuser,
                "-A", "trust",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.tmpdir,
            timeout=120,
            check=False,
            **self._popen_kwargs(),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed with code {result.returncode}:\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def _command(self) -> list[str]:
        cmd = [
            self._bin("postgres"),
            "-D", str(self.datadir),
            "-p", str(self.port),
            "-k", str(self.socketdir),
        ]
        for name, value in self.settings.items():
            cmd += ["-c", f"{name}={value}"]
        return cmd

    def _is_ready(self) -> bool:
        # pg_isready exits 0 only once the server accepts connections (not
        # while it is still starting up or recovering).
        try:
            result = subprocess.run(
                [
                    self._bin("pg_isready"),
                    "-q",
                    "-h", HOST,
                    "-p", str(self.port),
                    "-U", self.superuser,
                    "-d", "postgres",
                    "-t", "2",
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=_clean_env(),
                timeout=10,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    def psql(self, sql: str, *, user: str | None = None, database: str = "postgres") -> str:
        """Run SQL with psql over TCP; returns its stdout (unaligned, tuples only)."""
        if not self.running:
            raise RuntimeError("postgres server is not running")
        result = subprocess.run(
            [
                self._bin("psql"),
                "-X", "-q", "-A", "-t",
                "-v", "ON_ERROR_STOP=1",
                "-h", HOST,
                "-p", str(self.port),
                "-U", user or self.superuser,
                "-d", database,
                "-c", sql,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"psql failed with code {result.returncode} running {sql!r}:\n"
                f"{result.stderr[-2000:]}"
            )
        return result.stdout

    def _after_first_start(self) -> None:
        self.psql(f'CREATE ROLE "{self.user}" LOGIN CREATEDB')
        self.psql(f'CREATE DATABASE "{self.database}" OWNER "{self.user}"')


class RedisServer(_Service):
    """A throwaway Redis server; without persistence unless ``appendonly``.

    With ``appendonly=True`` every write goes to an append-only file (fsync each
    second, and at a clean shutdown), so ``restart()`` keeps the data, as a
    deployment's Redis must (docs/deploy.md).
    """

    name = "redis"
    stop_signal = signal.SIGTERM

    host = HOST

    def __init__(self, *, appendonly: bool = False) -> None:
        super().__init__()
        self.binary: str | None = None
        self.appendonly = appendonly

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _check_binaries(self) -> None:
        if self.binary is None:
            self.binary = shutil.which("redis-server")
            if self.binary is None:
                raise RuntimeError(
                    "redis-server not found on PATH; install the Debian package "
                    "'redis-server' (apt-get install redis-server), e.g. by running "
                    "scripts/setup.sh"
                )

    def _command(self) -> list[str]:
        assert self.binary is not None and self.tmpdir is not None
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--dir", str(self.tmpdir),
            "--daemonize", "no",
            "--logfile", "",
        ]

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class NginxServer(_Service):
    """nginx in front of server nodes on 127.0.0.1, as docs/deploy.md runs it.

    Plain HTTP on a free port; WebSocket upgrade headers passed through;
    ``X-Forwarded-For`` set; a request whose node refuses the connection goes
    to the next node, which stays out of rotation for ``fail_timeout``.
    Socket.io clients use the websocket transport only, so no sticky sessions.
    """

    name = "nginx"
    stop_signal = signal.SIGTERM  # fast shutdown: open WebSockets are cut

    host = HOST

    def __init__(self, upstreams: list[int], *, fail_timeout: float = 2.0) -> None:
        super().__init__()
        if not upstreams:
            raise ValueError("nginx needs at least one upstream port")
        self.binary: str | None = None
        self.upstreams = list(upstreams)
        self.fail_timeout = fail_timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def conf_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "nginx.conf"

    def _check_binaries(self) -> None:
        if self.binary is None:
            self.binary = shutil.which("nginx") or next(
                (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
            if self.binary is None:
                raise RuntimeError(
                    "nginx not found on PATH or in /usr/sbin; install the Debian package "
                    "'nginx' (apt-get install nginx), e.g. by running scripts/setup.sh"
                )

    def config(self) -> str:
        assert self.tmpdir is not None
        tmp = self.tmpdir
        servers = "\n".join(
            f"        server {HOST}:{port} max_fails=1 fail_timeout={self.fail_timeout:g}s;"
            for port in self.upstreams
        )
        # Workers run as nobody when the master is root: temp dirs live in the
        # world-traversable tmpdir, and nginx chowns them to the worker user.
        return f"""daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/{self.name}.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 1m;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream mediation {{
{servers}
    }}
    server {{
        listen {HOST}:{self.port};
        location / {{
            proxy_pass http://mediation;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""

    def _prepare(self) -> None:
        assert self.tmpdir is not None
        self.tmpdir.chmod(0o755)
        self.conf_path.write_text(self.config())

    def _command(self) -> list[str]:
        assert self.binary is not None and self.tmpdir is not None
        return [self.binary, "-p", f"{self.tmpdir}/", "-c", str(self.conf_path), "-e", str(self.log_path)]

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                return True
        except OSError:
            return False


class TurnServer(_Service):
    """coturn running the production ``deploy/turnserver.conf``, moved onto 127.0.0.1.

    The file is used unmodified, plus a ``static-auth-secret`` line with a random
    shared secret ``secret``, in a private copy, as compose.yaml writes it (never
    on the command line); command-line options, which coturn applies after
    the file, adapt it to a test: listeners and relays on 127.0.0.1, free ports
    (``port`` for UDP/TCP, ``tls_port`` for TLS/DTLS, relays in
    ``min_port``..``max_port``), a self-signed certificate for 127.0.0.1
    (``cert_path``, also what a TLS client must trust), and coturn's database and
    pid file in the temporary directory. Relaying to peers in the ranges the file
    denies stays refused, except to ``allowed_peer_ips`` (127.0.0.1, where a
    test's peers live).

    coturn reads its log options from the file after the command line, so the
    file's ``log-file=stdout`` holds: the log is the process's stdout, which goes
    to ``log_path``.
    """

    name = "turnserver"
    stop_signal = signal.SIGTERM

    host = HOST
    config_path = Path(__file__).resolve().parents[2] / "deploy" / "turnserver.conf"
    relay_port_count = 16

    def __init__(self, *, allowed_peer_ips: tuple[str, ...] = (HOST,), secret: str | None = None) -> None:
        super().__init__()
        self.binary: str | None = None
        self.allowed_peer_ips = tuple(allowed_peer_ips)
        self.secret = secret if secret is not None else secrets.token_hex(32)
        self.tls_port: int | None = None
        self.min_port: int | None = None
        self.max_port: int | None = None

    @property
    def cert_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "cert.pem"

    @property
    def key_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "privkey.pem"

    def _check_binaries(self) -> None:
        if not self.config_path.is_file():
            raise RuntimeError(f"coturn config {self.config_path} is missing")
        if self.binary is None:
            self.binary = shutil.which("turnserver") or next(
                (p for p in ("/usr/bin/turnserver",) if os.access(p, os.X_OK)), None)
            if self.binary is None:
                raise RuntimeError(
                    "turnserver not found on PATH or in /usr/bin; install the Debian package "
                    "'coturn' (apt-get install coturn), e.g. by running scripts/setup.sh"
                )

    # -- ports ---------------------------------------------------------------

    @staticmethod
    def _port_free(port: int) -> bool:
        """True when ``port`` on 127.0.0.1 is free for both UDP and TCP right now."""
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                try:
                    sock.bind((HOST, port))
                except OSError:
                    return False
        return True

    def _free_listening_port(self) -> int:
        # TURN listens on UDP and TCP alike: a TCP-free port is not enough.
        for _ in range(100):
            port = free_port()
            if self._port_free(port):
                return port
        raise RuntimeError("no port on 127.0.0.1 is free for both UDP and TCP")

    def _free_relay_range(self) -> tuple[int, int]:
        # Outside the kernel's ephemeral range, so that no socket bound to port
        # 0 (another test server, a client) can take a relay port meanwhile.
        try:
            with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                low, high = (int(x) for x in f.read().split())
        except (OSError, ValueError):
            low, high = 32768, 60999
        count = self.relay_port_count
        starts = [s for s in range(10000, 65536 - count) if s + count <= low or s > high]
        for _ in range(100):
            start = random.choice(starts)
            if all(self._port_free(p) for p in range(start, start + count)):
                return start, start + count - 1
        raise RuntimeError(f"no {count} consecutive free UDP/TCP ports found for TURN relays")

    # -- lifecycle -----------------------------------------------------------

    def _write_certificate(self) -> None:
        import datetime as dt
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "turn test server")])
        now = dt.datetime.now(dt.timezone.utc)
        # Self-signed and its own trust anchor: a client verifies it by trusting this file.
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ))

    def _prepare(self) -> None:
        self.port = self._free_listening_port()
        self.tls_port = self._free_listening_port()
        while self.tls_port == self.port:
            self.tls_port = self._free_listening_port()
        self.min_port, self.max_port = self._free_relay_range()
        self._write_certificate()
        fd = os.open(self.run_config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.config_path.read_text() + f"\nstatic-auth-secret={self.secret}\n")

    @property
    def run_config_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "turnserver.conf"

    def _command(self) -> list[str]:
        assert self.binary is not None and self.tmpdir is not None
        return [
            self.binary,
            "-c", str(self.run_config_path),
            f"--listening-ip={HOST}",
            f"--relay-ip={HOST}",
            f"--listening-port={self.port}",
            f"--tls-listening-port={self.tls_port}",
            f"--min-port={self.min_port}",
            f"--max-port={self.max_port}",
            f"--cert={self.cert_path}",
            f"--pkey={self.key_path}",
            # coturn refuses loopback peers by itself, before it looks at
            # allowed-peer-ip; past that, the file's denied ranges still apply
            # to every loopback address but the allowed ones.
            "--allow-loopback-peers",
            *(f"--allowed-peer-ip={ip}" for ip in self.allowed_peer_ips),
            f"--db={self.tmpdir / 'turndb'}",
            f"--pidfile={self.tmpdir / 'turnserver.pid'}",
            # Sessions and refused requests in the log, for a failing test to show.
            "--verbose",
        ]

    def _is_ready(self) -> bool:
        # A STUN Binding request (RFC 8489: method 1, no attributes, magic
        # cookie) over UDP must be answered, and both TCP listeners accept.
        transaction_id = secrets.token_bytes(12)
        request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction_id
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(0.5)
                sock.sendto(request, (HOST, self.port))
                response = sock.recv(2048)
            if response[:2] != b"\x01\x01" or response[8:20] != transaction_id:
                return False
            for port in (self.port, self.tls_port):
                with socket.create_connection((HOST, port), timeout=1):
                    pass
        except OSError:
            return False
        return True
