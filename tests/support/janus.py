"""A real Janus (Debian's ``janus`` package) with the VideoRoom plugin, for tests.

Like the launchers in ``services.py``: a fresh temporary directory, free ports on 127.0.0.1, ``stop()``
removes everything. The configuration written there is the minimum the rooms need, nothing from /etc:

- ``janus.jcfg``: an API secret and an admin secret (random, never on the command line), plugins
  limited to the VideoRoom, transports limited to HTTP, a private RTP port range, no event handlers
  or loggers, a short session timeout (a dead signaling node's handles go within seconds).
- ``janus.plugin.videoroom.jcfg``: no static rooms; an ``admin_key`` required to create rooms and to
  add RTP forwarders (``lock_rtp_forward``).
- ``janus.transport.http.jcfg``: the Janus API and the admin API on 127.0.0.1 only.

Janus never gathers ICE candidates on a loopback interface (its ``ice.c`` skips them): media between
browsers and Janus goes over this host's own non-loopback address, which never leaves the machine.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.services import HOST, TurnServer, _Service, free_port

__all__ = ["JanusServer"]

LIB_DIR_CANDIDATES = ("/usr/lib/x86_64-linux-gnu/janus", "/usr/lib/aarch64-linux-gnu/janus", "/usr/lib/janus")
RTP_PORT_COUNT = 200


class JanusServer(_Service):
    """``janus -C <dir>/janus.jcfg -F <dir>``; ``url`` is the Janus API, ``admin_url`` the admin API."""

    name = "janus"
    stop_signal = signal.SIGTERM

    def __init__(self) -> None:
        super().__init__()
        self.binary: str | None = None
        self.lib_dir: Path | None = None
        self.api_secret = secrets.token_hex(16)
        self.admin_secret = secrets.token_hex(16)
        self.admin_key = secrets.token_hex(16)
        self.admin_port: int | None = None
        self.rtp_range: tuple[int, int] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/janus"

    @property
    def admin_url(self) -> str:
        return f"http://{HOST}:{self.admin_port}/admin"

    def _check_binaries(self) -> None:
        if self.binary is None:
            self.binary = shutil.which("janus") or next(
                (p for p in ("/usr/bin/janus",) if os.access(p, os.X_OK)), None)
            if self.binary is None:
                raise RuntimeError("janus not found on PATH or in /usr/bin; install the Debian package 'janus' "
                                   "(apt-get install janus), e.g. by running scripts/setup.sh")
        if self.lib_dir is None:
            found = next((Path(d) for d in LIB_DIR_CANDIDATES
                          if (Path(d) / "plugins" / "libjanus_videoroom.so").exists()), None)
            if found is None:
                raise RuntimeError("the Janus VideoRoom plugin (libjanus_videoroom.so) was not found in "
                                   f"{', '.join(LIB_DIR_CANDIDATES)}; reinstall the Debian package 'janus'")
            self.lib_dir = found

    def _disabled(self, kind: str, keep: str) -> str:
        assert self.lib_dir is not None
        names = sorted(p.name for p in (self.lib_dir / kind).glob("libjanus_*.so"))
        return ",".join(n for n in names if n != keep)

    def _prepare(self) -> None:
        assert self.tmpdir is not None and self.lib_dir is not None
        self.admin_port = free_port()
        while self.admin_port == self.port:
            self.admin_port = free_port()
        # Outside the kernel's ephemeral range, as coturn's relays are (services.TurnServer).
        start, end = _free_udp_range(RTP_PORT_COUNT)
        self.rtp_range = (start, end)
        lib = self.lib_dir
        files = {
            "janus.jcfg": f"""general: {{
	configs_folder = "{self.tmpdir}"
	plugins_folder = "{lib / 'plugins'}"
	transports_folder = "{lib / 'transports'}"
	events_folder = "{lib / 'events'}"
	loggers_folder = "{lib / 'loggers'}"
	debug_level = 4
	debug_timestamps = true
	debug_colors = false
	api_secret = "{self.api_secret}"
	admin_secret = "{self.admin_secret}"
	session_timeout = 20
	server_name = "mediation-test"
	protected_folders = ["/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr", "/var"]
}}
media: {{
	rtp_port_range = "{start}-{end}"
	no_media_timer = 1
}}
nat: {{
	nice_debug = false
	ignore_mdns = false
}}
plugins: {{
	disable = "{self._disabled('plugins', 'libjanus_videoroom.so')}"
}}
transports: {{
	disable = "{self._disabled('transports', 'libjanus_http.so')}"
}}
loggers: {{
	disable = "{self._disabled('loggers', '')}"
}}
events: {{
	broadcast = false
	disable = "{self._disabled('events', '')}"
}}
""",
            "janus.plugin.videoroom.jcfg": f"""general: {{
	admin_key = "{self.admin_key}"
	lock_rtp_forward = true
	events = false
}}
""",
            "janus.transport.http.jcfg": f"""general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {self.port}
	ip = "{HOST}"
	https = false
}}
admin: {{
	admin_base_path = "/admin"
	admin_http = true
	admin_port = {self.admin_port}
	admin_ip = "{HOST}"
	admin_https = false
}}
""",
        }
        for name, text in files.items():
            fd = os.open(self.tmpdir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)

    def _command(self) -> list[str]:
        assert self.binary is not None and self.tmpdir is not None
        return [self.binary, "-C", str(self.tmpdir / "janus.jcfg"), "-F", str(self.tmpdir), "-o"]

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                pass
            body = json.dumps({"janus": "info", "transaction": "ready", "apisecret": self.api_secret}).encode()
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as response:
                info = json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return info.get("janus") == "server_info" and "janus.plugin.videoroom" in info.get("plugins", {})


def _free_udp_range(count: int) -> tuple[int, int]:
    """``count`` consecutive ports free now, outside the kernel's ephemeral range (as coturn's relays are)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    starts = [s for s in range(10000, 65536 - count) if s + count <= low or s > high]
    for _ in range(100):
        start = random.choice(starts)
        if all(TurnServer._port_free(p) for p in range(start, start + count)):
            return start, start + count - 1
    raise RuntimeError(f"no {count} consecutive free UDP/TCP ports found for Janus's RTP range")
