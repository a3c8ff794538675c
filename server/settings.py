"""Settings read once from ``MEDIATION_*`` environment variables, each with an embedded default."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recording.records.checkpoint import SIGNATURE_COSIGNATURE_V1, NoteError, parse_vkey

PREFIX = "MEDIATION_"


class SettingsError(ValueError):
    """A variable holds a value we cannot use; the message names both."""


class Secret:
    """A string that never prints its value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of true/false/1/0/yes/no/on/off")


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("expected a port between 0 and 65535")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not 0 < value < float("inf"):
        raise ValueError("expected a positive number of seconds")
    return value


def _host(raw: str) -> str:
    raw = raw.strip()
    if not raw or any(ch.isspace() or ch in "/:@" for ch in raw.strip("[]")) and not _is_ip(raw):
        raise ValueError("expected an IP address or host name")
    return raw


def _ip_address(raw: str) -> str:
    if not _is_ip(raw.strip()):
        raise ValueError("expected an IP address")
    return str(ipaddress.ip_address(raw.strip().strip("[]")))


def _font_file(raw: str) -> str:
    """A font file, or a face of a collection as ``path#index``; empty: ask fontconfig."""
    path, _, index = raw.partition("#")
    if not raw:
        return raw
    if Path(path).suffix.lower() not in (".ttf", ".otf", ".ttc"):
        raise ValueError("expected a .ttf, .otf or .ttc file, optionally with #<face index>")
    if not Path(path).is_file():
        raise ValueError("no such font file")
    if index and not index.isdigit():
        raise ValueError("the face index after # must be a number")
    return raw


def _is_ip(raw: str) -> bool:
    try:
        ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        return False
    return True


def _url_list(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if not item.split(":", 1)[0] in {"stun", "turn", "turns"}:
            raise ValueError(f"{item!r} is not a stun:, turn: or turns: URL")
    return items


def _http_url_list(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())
    for item in items:
        if not item.startswith(("http://", "https://")):
            raise ValueError(f"{item!r} is not an http:// or https:// URL")
    return items


def _witness_keys(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        try:
            witness = parse_vkey(item)
        except NoteError as exc:
            raise ValueError(str(exc)) from None
        if witness.signature_type != SIGNATURE_COSIGNATURE_V1:
            raise ValueError(f"{witness.name!r} is not a cosignature/v1 (witness) key")
    return items


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("expected 0 or more")
    return value


def _origin_list(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())
    for item in items:
        if item != "*" and not (item.startswith("http://") or item.startswith("https://")):
            raise ValueError(f"{item!r} is not an http(s) origin")
    return items


def _network_list(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        ipaddress.ip_network(item, strict=False)  # raises ValueError naming the bad item
    return items


def _age_recipient(raw: str) -> str:
    raw = raw.strip()
    if raw and not (raw.startswith("age1") and raw.isalnum() and raw == raw.lower()):
        raise ValueError("expected an age X25519 recipient (age1…), never a secret key")
    return raw


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def _database_url(raw: str) -> str:
    raw = raw.strip()
    if not (raw.startswith("sqlite+aiosqlite://") or raw.startswith("postgresql+asyncpg://")):
        raise ValueError("expected a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
    return raw


def _redis_url(raw: str) -> str:
    raw = raw.strip()
    if raw and not (raw.startswith("redis://") or raw.startswith("rediss://") or raw.startswith("unix://")):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return raw


def _room_state_key(raw: str) -> Secret:
    """64 hex digits: the nodes' shared room-state secret."""
    value = raw.strip()
    if len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ValueError("expected 64 hex digits (32 random bytes)")
    return Secret(value.lower())


def _optional_host(raw: str) -> str:
    return _host(raw) if raw.strip() else ""


def _mail_address(raw: str) -> str:
    raw = raw.strip()
    local, at, domain = raw.rpartition("@")
    if not at or not local or not domain or any(ch.isspace() or ch in "<>," for ch in raw):
        raise ValueError("expected one plain e-mail address (name@domain)")
    return raw


def _http_url(raw: str) -> str:
    raw = raw.strip()
    if raw and not (raw.startswith("https://") or raw.startswith("http://")):
        raise ValueError("expected an http:// or https:// URL")
    return raw


# Any setting may instead be read from a file: MEDIATION_TURN_SECRET_FILE=/run/secrets/turn-secret. Secrets
# come that way in deployments (docs/deploy.md), never on a command line or in a compose file. A setting
# that has its own *_FILE setting (ROOM_STATE_KEY, SMTP_PASSWORD) keeps it: that one names the file.
FILE_SUFFIX = "_FILE"


def _read_value_file(name: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{name}={path!r} is invalid: cannot read the file ({type(exc).__name__})") from None


def _field(env: str, cast: Callable[[str], Any], default: Any, *, secret: bool = False) -> Any:
    return dataclasses.field(default=default, metadata={"env": env, "cast": cast, "secret": secret})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every knob of the server; defaults run embedded on one machine with no other service."""

    host: str = _field("HOST", _host, "127.0.0.1")
    port: int = _field("PORT", _port, 8080)
    data_dir: Path = _field("DATA_DIR", Path, Path("data"))
    # Empty means SQLite in data_dir.
    database_url: str = _field("DATABASE_URL", _database_url, "")
    redis_url: str = _field("REDIS_URL", _redis_url, "")
    log_level: str = _field("LOG_LEVEL", _log_level, "INFO")
    public_url: str = _field("PUBLIC_URL", str, "")
    # The browser client's files; empty means the web_client/ folder beside the server package.
    web_client_dir: str = _field("WEB_CLIENT_DIR", str, "")
    # The CJK font embedded in agreement PDFs (.ttf, .otf or .ttc; "path#index" for a face of a collection);
    # empty: fontconfig's Simplified Chinese face (Debian's fonts-noto-cjk).
    agreement_font: str = _field("AGREEMENT_FONT", _font_file, "")
    # How this node's own recorder workers reach it; empty means http://HOST:PORT.
    internal_url: str = _field("INTERNAL_URL", str, "")
    allowed_origins: tuple[str, ...] = _field("ALLOWED_ORIGINS", _origin_list, ())
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client; empty trusts none.
    trusted_proxies: tuple[str, ...] = _field("TRUSTED_PROXIES", _network_list, ())
    cookie_secure: bool = _field("COOKIE_SECURE", _bool, False)
    session_ttl_seconds: int = _field("SESSION_TTL_SECONDS", _positive_int, 8 * 3600)
    join_link_ttl_seconds: int = _field("JOIN_LINK_TTL_SECONDS", _positive_int, 7 * 24 * 3600)
    receipt_ttl_seconds: int = _field("RECEIPT_TTL_SECONDS", _positive_int, 180 * 24 * 3600)
    max_body_bytes: int = _field("MAX_BODY_BYTES", _positive_int, 64 * 1024)
    # One-time codes to a party's verified contact (server/possession.py): lifetime, and how many may be
    # requested per party, and per client address, in a quarter of an hour.
    possession_code_ttl_seconds: int = _field("POSSESSION_CODE_TTL_SECONDS", _positive_int, 300)
    possession_codes_per_party: int = _field("POSSESSION_CODES_PER_PARTY", _positive_int, 5)
    possession_codes_per_address: int = _field("POSSESSION_CODES_PER_ADDRESS", _positive_int, 20)
    login_attempts_per_minute: int = _field("LOGIN_ATTEMPTS_PER_MINUTE", _positive_int, 10)
    applications_per_minute: int = _field("APPLICATIONS_PER_MINUTE", _positive_int, 30)
    audit_checkpoint_seconds: int = _field("AUDIT_CHECKPOINT_SECONDS", _positive_int, 10)
    # How often each node numbers pending audit entries into the tree; an entry is unprotected until then.
    audit_sequence_seconds: float = _field("AUDIT_SEQUENCE_SECONDS", _positive_float, 0.2)
    audit_key_file: str = _field("AUDIT_KEY_FILE", str, "")
    stun_urls: tuple[str, ...] = _field("STUN_URLS", _url_list, ())
    turn_urls: tuple[str, ...] = _field("TURN_URLS", _url_list, ())
    turn_secret: Secret = _field("TURN_SECRET", Secret, Secret(""), secret=True)
    turn_ttl_seconds: int = _field("TURN_TTL_SECONDS", _positive_int, 3600)
    # The rooms' selective forwarding unit: Janus instances (HTTP API URLs, comma-separated), each room pinned
    # to one of them. Empty: the browsers form a full mesh (the embedded default). docs/deploy.md, "Janus".
    janus_urls: tuple[str, ...] = _field("JANUS_URLS", _http_url_list, ())
    janus_api_secret: Secret = _field("JANUS_API_SECRET", Secret, Secret(""), secret=True)
    janus_admin_key: Secret = _field("JANUS_ADMIN_KEY", Secret, Secret(""), secret=True)
    janus_video_bitrate: int = _field("JANUS_VIDEO_BITRATE", _positive_int, 600_000)
    # Where Janus forwards recorded publishers' RTP: the address each recorder worker binds its two UDP ports on,
    # reachable from Janus only (docs/deploy.md, "The recorder's forwarded media").
    recorder_rtp_host: str = _field("RECORDER_RTP_HOST", _ip_address, "127.0.0.1")
    reconnect_grace_seconds: int = _field("RECONNECT_GRACE_SECONDS", _positive_int, 60)
    # Room connections per client address per minute, on each node (behind a trusted proxy, the client's).
    room_connects_per_minute: int = _field("ROOM_CONNECTS_PER_MINUTE", _positive_int, 120)
    # Length of each sealed recording segment: about what a killed recorder loses (target <= 1 s, docs/records.md
    # "Recording gaps"), against one upload and one audit entry per participant per segment.
    recording_segment_seconds: float = _field("RECORDING_SEGMENT_SECONDS", _positive_float, 0.6)
    # How long a stopped recorder may take to file its last segment before it is killed.
    recording_stop_grace_seconds: float = _field("RECORDING_STOP_GRACE_SECONDS", _positive_float, 30.0)
    # Per socket, requests per second and burst: the chat budget (send_chat, typing, give_consent, withdraw_consent) and the signal
    # budget (every other request); past flood_burst refusals (refilling at flood_rate) it is disconnected.
    room_chat_rate: float = _field("ROOM_CHAT_RATE", _positive_float, 5.0)
    room_chat_burst: int = _field("ROOM_CHAT_BURST", _positive_int, 10)
    room_signal_rate: float = _field("ROOM_SIGNAL_RATE", _positive_float, 100.0)
    room_signal_burst: int = _field("ROOM_SIGNAL_BURST", _positive_int, 300)
    room_flood_rate: float = _field("ROOM_FLOOD_RATE", _positive_float, 10.0)
    room_flood_burst: int = _field("ROOM_FLOOD_BURST", _positive_int, 300)
    # Several nodes: each says it runs every beat; one silent past the timeout counts as gone and its
    # participants are marked disconnected (their reconnect grace starts then).
    node_beat_seconds: float = _field("NODE_BEAT_SECONDS", _positive_float, 2.0)
    node_timeout_seconds: float = _field("NODE_TIMEOUT_SECONDS", _positive_float, 10.0)
    # Redis room store: a turn's lock lives this long unless extended (a dead node holds a room at most
    # that long); a turn waits this long for a room's lock, or a free connection, before "unavailable".
    room_lock_ttl_seconds: float = _field("ROOM_LOCK_TTL_SECONDS", _positive_float, 5.0)
    room_lock_wait_seconds: float = _field("ROOM_LOCK_WAIT_SECONDS", _positive_float, 20.0)
    # An operator's escrow key: every record is also sealed to it. Empty means none.
    escrow_recipient: str = _field("ESCROW_RECIPIENT", _age_recipient, "")
    # Argon2id cost; tests lower it, production keeps the default.
    password_memory_kib: int = _field("PASSWORD_MEMORY_KIB", _positive_int, 64 * 1024)
    password_time_cost: int = _field("PASSWORD_TIME_COST", _positive_int, 3)
    # Room state at rest: the secret every node shares to seal room values (Redis) and the chat journal
    # under per-session keys (64 hex digits), given itself or as a file holding it. Neither set: derived
    # from the audit signing key, which every node holds already. After a session's key is shredded, ask
    # Redis to rewrite its append-only file so the deleted salt leaves it too.
    room_state_key: Secret = _field("ROOM_STATE_KEY", _room_state_key, Secret(""), secret=True)
    room_state_key_file: str = _field("ROOM_STATE_KEY_FILE", str, "")
    redis_rewrite_aof_on_shred: bool = _field("REDIS_REWRITE_AOF_ON_SHRED", _bool, True)
    # Redis requires a password in a deployment (docs/deploy.md): the file holding it, added to REDIS_URL.
    redis_password_file: str = _field("REDIS_PASSWORD_FILE", str, "")
    # Evidence budgets: per participant across its sockets and nodes, requests that file records or audit
    # entries (docs/protocol.md): a burst, then one every so many seconds. Consent: give and withdraw;
    # presence: join_room and leave_room.
    room_consent_burst: int = _field("ROOM_CONSENT_BURST", _positive_int, 6)
    room_consent_seconds: float = _field("ROOM_CONSENT_SECONDS", _positive_float, 10.0)
    room_presence_burst: int = _field("ROOM_PRESENCE_BURST", _positive_int, 30)
    room_presence_seconds: float = _field("ROOM_PRESENCE_SECONDS", _positive_float, 2.0)
    # --- witnessed audit log (issue 11): the origin line of this log's checkpoints (empty: derived from
    # the audit key), the witnesses asked to cosign each checkpoint (URL i goes with verifier key i) and
    # how many cosignatures a checkpoint needs before the node logs it as witnessed.
    audit_origin: str = _field("AUDIT_ORIGIN", str, "")
    witness_urls: tuple[str, ...] = _field("WITNESS_URLS", _http_url_list, ())
    witness_keys: tuple[str, ...] = _field("WITNESS_KEYS", _witness_keys, ())
    witness_quorum: int = _field("WITNESS_QUORUM", _non_negative_int, 0)
    witness_timeout_seconds: float = _field("WITNESS_TIMEOUT_SECONDS", _positive_float, 5.0)
    # Where the latest signed checkpoint note is kept beside the key (empty: the key file's name with
    # ".checkpoint"); set it when the key sits on a read-only mount.
    audit_checkpoint_file: str = _field("AUDIT_CHECKPOINT_FILE", str, "")
    # --- party delivery: join links by e-mail (SMTP) and SMS (an HTTP gateway); empty host or URL is off ---
    smtp_host: str = _field("SMTP_HOST", _optional_host, "")
    smtp_port: int = _field("SMTP_PORT", _port, 587)
    smtp_user: str = _field("SMTP_USER", str, "")
    smtp_password: Secret = _field("SMTP_PASSWORD", Secret, Secret(""), secret=True)
    # A file holding the SMTP password (a mounted secret); read at start, used instead of SMTP_PASSWORD.
    smtp_password_file: str = _field("SMTP_PASSWORD_FILE", str, "")
    smtp_from: str = _field("SMTP_FROM", _mail_address, "mediation@localhost")
    # STARTTLS before signing in; only a relay on the same host may go without.
    smtp_starttls: bool = _field("SMTP_STARTTLS", _bool, True)
    sms_url: str = _field("SMS_URL", _http_url, "")
    sms_token: Secret = _field("SMS_TOKEN", Secret, Secret(""), secret=True)
    # One delivery attempt (SMTP conversation or gateway request) gives up after this long.
    delivery_timeout_seconds: float = _field("DELIVERY_TIMEOUT_SECONDS", _positive_float, 10.0)
    # Revocation reaching open sockets: a revocation is announced to every node at once, an expiry ends
    # its socket at that moment; besides, each node asks about all its sockets' authority together at
    # least this often (a lost notice, a database edited by hand).
    credential_recheck_seconds: float = _field("CREDENTIAL_RECHECK_SECONDS", _positive_float, 30.0)
    # Staff accounts: sign-in back-off (server/signinthrottle.py). Failures allowed before each scope
    # backs off, the first delay (doubling per further failure) and its caps, and when failures are forgotten.
    login_pair_free_failures: int = _field("LOGIN_PAIR_FREE_FAILURES", _positive_int, 3)
    login_address_free_failures: int = _field("LOGIN_ADDRESS_FREE_FAILURES", _positive_int, 20)
    login_username_free_failures: int = _field("LOGIN_USERNAME_FREE_FAILURES", _positive_int, 10)
    login_backoff_base_seconds: float = _field("LOGIN_BACKOFF_BASE_SECONDS", _positive_float, 1.0)
    login_backoff_max_seconds: float = _field("LOGIN_BACKOFF_MAX_SECONDS", _positive_float, 900.0)
    login_username_backoff_max_seconds: float = _field("LOGIN_USERNAME_BACKOFF_MAX_SECONDS", _positive_float, 60.0)
    login_forget_after_seconds: float = _field("LOGIN_FORGET_AFTER_SECONDS", _positive_float, 900.0)

    # --- Abuse resistance (docs/threat-model.md, "Abuse without an account"): admission, per-address budgets ---
    # Password hashes run in their own pool: this many at once, this many more waiting; past both, 429.
    password_hash_workers: int = _field("PASSWORD_HASH_WORKERS", _positive_int, 1)
    password_hash_queue: int = _field("PASSWORD_HASH_QUEUE", _positive_int, 8)
    # Per client address on each node (behind a trusted proxy, the client's): engine.io sessions open at
    # once, new sessions (handshakes) per minute, and polling requests per minute.
    socket_sessions_per_address: int = _field("SOCKET_SESSIONS_PER_ADDRESS", _positive_int, 30)
    socket_handshakes_per_minute: int = _field("SOCKET_HANDSHAKES_PER_MINUTE", _positive_int, 120)
    socket_polls_per_minute: int = _field("SOCKET_POLLS_PER_MINUTE", _positive_int, 600)
    # What one process may write to its log per minute (a token bucket of this many bytes); records past
    # it are dropped and counted, and the count is logged once the budget refills.
    log_bytes_per_minute: int = _field("LOG_BYTES_PER_MINUTE", _positive_int, 256 * 1024)

    def __post_init__(self) -> None:
        if self.room_state_key and self.room_state_key_file:
            raise SettingsError(f"{PREFIX}ROOM_STATE_KEY and {PREFIX}ROOM_STATE_KEY_FILE are both set: give one")
        if self.node_timeout_seconds <= self.node_beat_seconds:
            raise SettingsError(f"{PREFIX}NODE_TIMEOUT_SECONDS={self.node_timeout_seconds!r} is invalid: expected "
                                f"more than MEDIATION_NODE_BEAT_SECONDS={self.node_beat_seconds!r}")
        if len(self.witness_urls) != len(self.witness_keys):
            raise SettingsError(f"{PREFIX}WITNESS_URLS names {len(self.witness_urls)} witness(es) but "
                                f"{PREFIX}WITNESS_KEYS {len(self.witness_keys)}: give one key per URL, in order")
        if self.witness_quorum > len(self.witness_keys):
            raise SettingsError(f"{PREFIX}WITNESS_QUORUM={self.witness_quorum!r} is invalid: only "
                                f"{len(self.witness_keys)} witness(es) configured")
        if self.smtp_password and self.smtp_password_file:
            raise SettingsError(f"{PREFIX}SMTP_PASSWORD_FILE={self.smtp_password_file!r} is invalid: "
                                f"{PREFIX}SMTP_PASSWORD is set too; give one of them")
        if self.smtp_password_file and not Path(self.smtp_password_file).is_file():
            raise SettingsError(f"{PREFIX}SMTP_PASSWORD_FILE={self.smtp_password_file!r} is invalid: no such file")
        if self.janus_urls and not (self.janus_api_secret and self.janus_admin_key):
            raise SettingsError(f"{PREFIX}JANUS_URLS={','.join(self.janus_urls)!r} is invalid: Janus needs "
                                f"{PREFIX}JANUS_API_SECRET and {PREFIX}JANUS_ADMIN_KEY (or their _FILE settings)")
        if self.sms_url and not self.sms_token:
            raise SettingsError(f"{PREFIX}SMS_URL={self.sms_url!r} is invalid: {PREFIX}SMS_TOKEN is empty; the "
                                f"gateway needs its bearer secret")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings; an unknown ``MEDIATION_*`` variable or a bad value raises SettingsError."""
        environ = os.environ if environ is None else environ
        known = {PREFIX + f.metadata["env"] for f in dataclasses.fields(cls)}
        files = {name + FILE_SUFFIX for name in known}
        unknown = sorted(k for k in environ if k.startswith(PREFIX) and k not in known and k not in files)
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]} (known: {', '.join(sorted(known))}, each also "
                                f"as {PREFIX}<NAME>{FILE_SUFFIX} naming a file that holds the value)")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = PREFIX + f.metadata["env"]
            if name + FILE_SUFFIX in environ and name + FILE_SUFFIX not in known:
                if name in environ:
                    raise SettingsError(f"{name} and {name}{FILE_SUFFIX} are both set; set one")
                raw = _read_value_file(name + FILE_SUFFIX, environ[name + FILE_SUFFIX])
            elif name in environ:
                raw = environ[name]
            else:
                continue
            try:
                values[f.name] = f.metadata["cast"](raw)
            except ValueError as exc:
                shown = "**********" if f.metadata["secret"] or "SECRET-KEY" in raw.upper() else repr(raw)
                raise SettingsError(f"{name}={shown} is invalid: {exc}") from None
        return cls(**values)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mediation.db').resolve()}"

    @property
    def audit_key_path(self) -> Path:
        return Path(self.audit_key_file) if self.audit_key_file else self.data_dir / "audit-signing.key"

    def redis_connection_url(self) -> str:
        """``redis_url`` with the password read from ``redis_password_file``, if one is named."""
        if not self.redis_password_file:
            return self.redis_url
        try:
            password = Path(self.redis_password_file).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{PREFIX}REDIS_PASSWORD_FILE={self.redis_password_file!r} is invalid: {exc}") from None
        if not password:
            raise SettingsError(f"{PREFIX}REDIS_PASSWORD_FILE={self.redis_password_file!r} is invalid: it is empty")
        quoted = urllib.parse.quote(password, safe="")
        parts = urllib.parse.urlsplit(self.redis_url)
        if parts.scheme == "unix":
            return f"{self.redis_url}{'&' if parts.query else '?'}password={quoted}"
        host = parts.netloc.rpartition("@")[2]
        user = urllib.parse.quote(parts.username or "", safe="")
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{quoted}@{host}"))

    def room_state_secret(self) -> bytes | None:
        """The nodes' room-state secret: the setting, else the file it names; None if neither is set."""
        if self.room_state_key:
            return bytes.fromhex(self.room_state_key.reveal())
        if self.room_state_key_file:
            path = Path(self.room_state_key_file)
            try:
                return bytes.fromhex(_room_state_key(path.read_text()).reveal())
            except (OSError, ValueError) as exc:
                raise SettingsError(f"{PREFIX}ROOM_STATE_KEY_FILE={str(path)!r} is invalid: {exc}") from None
        return None

    @property
    def records_dir(self) -> Path:
        return self.data_dir / "records"

    @property
    def smtp_secret(self) -> Secret:
        """The SMTP password, from SMTP_PASSWORD_FILE when given (trailing newline dropped)."""
        if self.smtp_password_file:
            return Secret(Path(self.smtp_password_file).read_text().rstrip("\r\n"))
        return self.smtp_password
