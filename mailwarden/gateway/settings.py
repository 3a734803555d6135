"""Gateway settings: flags win over the environment, which wins over ``[gateway]`` in org.toml.

    MAILWARDEN_SMTP_LISTEN   host:port of the SMTP listener   (default 127.0.0.1:2525)
    MAILWARDEN_HTTP_LISTEN   host:port of the HTTP API        (default 127.0.0.1:8025)
    MAILWARDEN_RELAY         host:port of the next hop (the organisation's own mail server)
    MAILWARDEN_TLS_CERT / MAILWARDEN_TLS_KEY   PEM files; STARTTLS is offered when both are set

``[gateway]`` in org.toml may also set the limits and retry policy (the field names below), the archive's
retention (``archive_days``) and how the learned profiles are saved (``learn_batch``, ``learn_interval``).
``greet_pause = 0`` turns the early-talker check off; every other number must be positive.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mailwarden.errors import ConfigError

DEFAULT_SMTP_LISTEN = "127.0.0.1:2525"
DEFAULT_HTTP_LISTEN = "127.0.0.1:8025"
ENV = {"smtp_listen": "MAILWARDEN_SMTP_LISTEN", "http_listen": "MAILWARDEN_HTTP_LISTEN",
       "relay": "MAILWARDEN_RELAY", "tls_cert": "MAILWARDEN_TLS_CERT", "tls_key": "MAILWARDEN_TLS_KEY",
       "node_id": "MAILWARDEN_NODE_ID"}


def parse_hostport(text: str, what: str, *, listen: bool = False) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` to (host, port); a ConfigError naming the setting otherwise.

    A listen address may use port 0 (any free port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not (0 if listen else 1) <= int(port) < 65536:
        raise ConfigError(f"{what}: expected HOST:PORT with a port from 1 to 65535, got {text!r}")
    return host, int(port)


@dataclass(frozen=True)
class GatewaySettings:
    smtp_listen: str = DEFAULT_SMTP_LISTEN
    http_listen: str = DEFAULT_HTTP_LISTEN
    relay: str = ""
    hostname: str = ""  # the name in our greeting, Received and DSNs; default: this machine's FQDN
    node_id: str = ""  # who claims queue entries; default: hostname and SMTP port
    tls_cert: str = ""
    tls_key: str = ""
    max_message_size: int = 25 * 1024 * 1024  # announced with SIZE
    max_line_length: int = 25 * 1024 * 1024  # Postfix accepts any line length; so do we, up to the size
    max_recipients: int = 100
    max_connections: int = 500
    max_connections_per_client: int = 20
    greet_pause: float = 0.5  # seconds between the first and last greeting line; a client talking in it is refused
    max_commands: int = 10_000  # per session
    max_junk_commands: int = 100  # NOOP, RSET, VRFY, EXPN, HELP, HELO/EHLO between two accepted messages
    max_unknown_commands: int = 5  # per session
    smtp_timeout: float = 300.0
    scan_workers: int = 4
    io_workers: int = 16  # spool and archive writes, database transactions of the SMTP side
    archive_days: float = 90.0  # accepted messages are kept this long, then pruned
    archive_prune_interval: float = 3600.0
    learn_batch: int = 100  # delivered messages folded into the profiles before they are saved ...
    learn_interval: float = 30.0  # ... or after this many seconds, whichever comes first
    delivery_concurrency: int = 20
    delivery_timeout: float = 60.0
    retry_base: float = 60.0  # seconds before the first retry; doubles per attempt
    retry_max: float = 3600.0
    expire_after: float = 5 * 86400.0  # then the sender gets a DSN
    lease: float = 300.0  # a claimed entry whose worker died is claimed again after this
    poll_interval: float = 1.0
    shutdown_grace: float = 30.0

    @property
    def smtp_address(self) -> tuple[str, int]:
        return parse_hostport(self.smtp_listen, "--smtp-listen", listen=True)

    @property
    def http_address(self) -> tuple[str, int]:
        return parse_hostport(self.http_listen, "--http-listen", listen=True)

    @property
    def relay_address(self) -> tuple[str, int]:
        if not self.relay:
            raise ConfigError("no relay: give --relay HOST:PORT or MAILWARDEN_RELAY (the next hop)")
        return parse_hostport(self.relay, "--relay")

    @property
    def server_name(self) -> str:
        return self.hostname or socket.getfqdn()

    @property
    def worker_id(self) -> str:
        return self.node_id or f"{socket.gethostname()}:{self.smtp_address[1]}"

    def validate(self) -> GatewaySettings:
        """Check every address and limit; raises ConfigError naming the first bad one."""
        self.smtp_address, self.http_address, self.relay_address  # noqa: B018 - parsed for their errors
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("STARTTLS needs both a certificate and its key (--tls-cert and --tls-key)")
        for path in (self.tls_cert, self.tls_key):
            if path and not Path(path).is_file():
                raise ConfigError(f"TLS file not found: {path}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _MAY_BE_ZERO and value == 0:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise ConfigError(f"[gateway] {f.name} must be positive")
        return self


_MAY_BE_ZERO = ("greet_pause",)


def _from_table(table: object, source: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [gateway] must be a table")
    known = {f.name: f for f in fields(GatewaySettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{source}: [gateway] has no setting {key!r}")
        default = getattr(GatewaySettings, key)
        if isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{source}: [gateway] {key} must be a string")
        if isinstance(default, int | float) and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"{source}: [gateway] {key} must be a number")
        values[key] = type(default)(value)
    return values


def load_gateway_settings(config: Path | None = None, environ: dict[str, str] | None = None,
                          **flags: str | None) -> GatewaySettings:
    """``[gateway]`` of the config file, then the environment, then the flags given (None = not given)."""
    settings = GatewaySettings()
    if config is not None:
        try:
            document = tomllib.loads(Path(config).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {config}: {exc}") from exc
        settings = replace(settings, **_from_table(document.get("gateway", {}), str(config)))
    env = os.environ if environ is None else environ
    given: dict[str, Any] = {name: env[var] for name, var in ENV.items() if env.get(var)}
    given.update({name: value for name, value in flags.items() if value})
    return replace(settings, **given)
