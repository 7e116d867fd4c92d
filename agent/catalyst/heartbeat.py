"""Heartbeats to healthchecks.io: the trader's phone hears when a cycle, a backup or a report goes quiet.

One check per concern (``cycle``, ``risk``, ``backup``, ``report``); each is configured with its full
ping URL (``https://hc-ping.com/<uuid>`` or ``https://hc-ping.com/<ping-key>/<slug>``), which is a
secret: it is never logged, only the check's name is. A run signals ``/start`` with a run id, then
success or ``/fail`` with the same run id and a short one-line body (see :func:`summary_body`).

A heartbeat must never break trading: every public method returns ``True`` when healthchecks
acknowledged the ping and ``False`` otherwise (no URL configured, connection refused, timeout, DNS
error, 4xx/5xx, malformed URL...), logging a warning that names the check — never raising.

Pings go through the ``healthchecks_io`` client package where it fits (success/fail/start without a run
id, by UUID or slug URL); it has no run id (``rid``) nor ``/log``, so those are sent on the very same
httpx client the package's client wraps (one HTTP stack). Both are imported lazily: this module costs
only the standard library at import time.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

__all__ = ["KNOWN_CHECKS", "MAX_BODY_BYTES", "Heartbeat", "new_rid", "summary_body"]

#: The checks the agent reports to (keys of ``ping_urls``).
KNOWN_CHECKS: Final = ("cycle", "risk", "backup", "report")
#: Ping bodies are cut to this many bytes (UTF-8) before sending.
MAX_BODY_BYTES: Final = 10_000
_REDACTED: Final = "<redacted-ping-url>"
_OK_STATUSES: Final = (200, 201)  # 201: a slug check was auto-provisioned (?create=1)


def new_rid() -> str:
    """A fresh run id (healthchecks requires a UUID in canonical form)."""
    return str(uuid.uuid4())


def _fmt_money(value: float | None, *, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def summary_body(
    mode: str,
    phase: str,
    equity: float | None,
    positions: int | None,
    day_pnl: float | None,
    note: str = "",
) -> str:
    """A short one-line ping body, e.g.
    ``mode=live phase=conservative equity=10012.50 positions=2 day_pnl=+12.50``.

    Unknown values read ``n/a``; ``note`` (if any) comes last as ``note=...``, flattened to one line and
    cut to 200 characters.
    """
    parts = [
        f"mode={mode}",
        f"phase={phase}",
        f"equity={_fmt_money(equity)}",
        f"positions={'n/a' if positions is None else positions}",
        f"day_pnl={_fmt_money(day_pnl, signed=True)}",
    ]
    flat = " ".join(note.split())
    if flat:
        parts.append(f"note={flat[:200]}")
    return " ".join(parts)


def _truncate(body: str) -> bytes:
    """UTF-8 bytes of ``body``, cut to :data:`MAX_BODY_BYTES` on a character boundary."""
    raw = body.encode("utf-8", errors="replace")
    if len(raw) <= MAX_BODY_BYTES:
        return raw
    return raw[:MAX_BODY_BYTES].decode("utf-8", errors="ignore").encode("utf-8")


class _RedactPingUrls(logging.Filter):
    """Scrubs configured ping URLs from the records of the ``httpx`` logger.

    httpx logs every request line (``HTTP Request: POST <url> ...``) at INFO; for us the URL is a
    secret. Installed once on that logger; each :class:`Heartbeat` registers its URLs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, url: str) -> None:
        tokens = {url}
        try:
            path = urlsplit(url).path
        except ValueError:  # malformed: the whole string is the secret
            path = ""
        # The uuid / ping key (and any long path segment) identify the check on their own.
        tokens.update(seg for seg in path.split("/") if len(seg) >= 16)
        if path.strip("/"):
            tokens.add(path)
        with self._lock:
            self._secrets |= tokens

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        if not secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        if any(s in message for s in secrets):
            for secret in secrets:
                message = message.replace(secret, _REDACTED)
            record.msg, record.args = message, None
        return True


_REDACTOR: Final = _RedactPingUrls()


def _install_redactor() -> None:
    httpx_logger = logging.getLogger("httpx")
    if _REDACTOR not in httpx_logger.filters:
        httpx_logger.addFilter(_REDACTOR)


class Heartbeat:
    """Pings healthchecks for the agent's checks; never raises, never logs a ping URL.

    ``ping_urls`` maps check names (``cycle``, ``risk``, ``backup``, ``report``) to full ping URLs;
    ``None`` or an empty string disables that check. ``timeout`` bounds each phase of a request
    (connect, send, read), in seconds. Use as a context manager or call :meth:`close` to release
    the HTTP connection pool (it is opened on the first ping).
    """

    def __init__(
        self,
        ping_urls: Mapping[str, str | None],
        timeout: float = 5.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self._names = frozenset(ping_urls) | frozenset(KNOWN_CHECKS)
        self._urls: dict[str, str] = {
            name: url.strip() for name, url in ping_urls.items() if url is not None and url.strip()
        }
        self._timeout = timeout
        self._log = logger if logger is not None else logging.getLogger(__name__)
        self._http: httpx.Client | None = None
        self._hc: dict[str, Any] = {}  # ping base URL -> healthchecks_io.Client sharing self._http
        self._lock = threading.Lock()
        if self._urls:
            _install_redactor()
            for url in self._urls.values():
                _REDACTOR.add(url)

    # -- public API --------------------------------------------------------------------------

    def configured(self, check: str) -> bool:
        """True when ``check`` has a ping URL."""
        return check in self._urls

    def start(self, check: str, rid: str) -> bool:
        """Signal that a run of ``check`` started; ``rid`` (see :func:`new_rid`) ties it to its end."""
        return self._ping(check, "start", rid, "")

    def success(self, check: str, rid: str | None = None, body: str = "") -> bool:
        """Signal that the run succeeded (or that a periodic job is alive)."""
        return self._ping(check, "success", rid, body)

    def fail(self, check: str, rid: str | None = None, body: str = "") -> bool:
        """Signal a failure: healthchecks marks the check down and alerts at once."""
        return self._ping(check, "fail", rid, body)

    def log(self, check: str, rid: str | None = None, body: str = "") -> bool:
        """Attach a log line to the check's events without changing its status."""
        return self._ping(check, "log", rid, body)

    def close(self) -> None:
        with self._lock:
            http, self._http, self._hc = self._http, None, {}
        if http is not None:
            try:
                http.close()
            except Exception:  # closing must not raise either
                self._log.debug("heartbeat: error closing the HTTP client", exc_info=False)

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _clients(self, base: str) -> tuple[httpx.Client, Any]:
        """The shared httpx client, and the package's client for ping URLs under ``base``."""
        import healthchecks_io
        import httpx

        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=httpx.Timeout(self._timeout), follow_redirects=False)
                self._hc = {}
            hc = self._hc.get(base)
            if hc is None:
                # The package's client wraps (and configures) our httpx client: one HTTP stack.
                hc = self._hc[base] = healthchecks_io.Client(ping_url=base, client=self._http)
            return self._http, hc

    def _ping(self, check: str, kind: str, rid: str | None, body: str) -> bool:
        url = self._urls.get(check)
        if url is None:
            if check in self._names:
                self._log.debug("heartbeat %s %s skipped: no ping URL configured", check, kind)
            else:
                self._log.warning("heartbeat %s %s skipped: unknown check name", check, kind)
            return False
        try:
            return self._send(check, kind, url, rid or None, _truncate(body))
        except Exception as exc:
            # Never str(exc): httpx and healthchecks_io put the request URL in their messages.
            self._log.warning("heartbeat %s %s failed: %s", check, kind, _describe(exc))
            return False

    def _send(self, check: str, kind: str, url: str, rid: str | None, body: bytes) -> bool:
        try:
            split = urlsplit(url)
            _port = split.port  # raises ValueError when out of range
            valid = split.scheme in ("http", "https") and bool(split.hostname) and bool(split.path.strip("/"))
        except ValueError:
            valid = False
        if not valid:
            self._log.warning("heartbeat %s %s failed: malformed ping URL", check, kind)
            return False
        base, _, ident = url.rpartition("/")
        http, hc = self._clients(f"{base}/")
        if rid is None and kind != "log" and ident and not split.query and not split.fragment:
            # The package pings "<its ping_url><uuid-or-slug>[/start|/fail]": here, our URL exactly.
            method = {"success": hc.success_ping, "start": hc.start_ping, "fail": hc.fail_ping}[kind]
            ok, _text = method(uuid=ident, data=body.decode("utf-8"))
            if not ok:
                self._log.warning("heartbeat %s %s not acknowledged", check, kind)
            return bool(ok)
        # Run ids and /log are not in the package: same httpx client, same response checks.
        suffix = "" if kind == "success" else f"/{kind}"
        target = split._replace(path=split.path.rstrip("/") + suffix).geturl()
        response = http.post(
            target,
            params={"rid": rid} if rid else None,
            content=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        hc.check_ping_response(response)  # raises the package's errors for 4xx/5xx, 404, 409, 429
        if response.status_code not in _OK_STATUSES:
            self._log.warning("heartbeat %s %s not acknowledged (HTTP %d)", check, kind, response.status_code)
            return False
        return True


def _describe(exc: BaseException) -> str:
    """A URL-free description of a ping failure."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    name = type(exc).__name__
    kinds = {
        "HCAPIError": "server error",
        "HCAPIAuthError": "rejected (auth)",
        "CheckNotFoundError": "check not found",
        "BadAPIRequestError": "bad request",
        "HCAPIRateLimitError": "rate limited",
        "NonUniqueSlugError": "ambiguous slug",
        "ConnectError": "connection failed",
        "ConnectTimeout": "connect timed out",
        "ReadTimeout": "read timed out",
        "WriteTimeout": "write timed out",
        "PoolTimeout": "pool timed out",
        "RemoteProtocolError": "protocol error",
        "UnsupportedProtocol": "malformed ping URL",
        "InvalidURL": "malformed ping URL",
    }
    text = f"{kinds[name]} ({name})" if name in kinds else name
    return f"{text}, HTTP {status}" if status else text
