"""A small, local, healthchecks.io-compatible server for tests and the demo.

healthchecks.io itself cannot be reached from the test machines, so this module speaks the two public
APIs the project uses, following the public documentation (https://healthchecks.io/docs/http_api/ and
https://healthchecks.io/docs/api/):

* **Pinging API** — ``HEAD|GET|POST`` on ``/<uuid>``, ``/<uuid>/start``, ``/<uuid>/fail``,
  ``/<uuid>/log``, ``/<uuid>/<exit-status>`` and the slug forms ``/<ping-key>/<slug>[/...]``, with the
  ``rid=<uuid>`` query parameter (run id) and ``create=1`` (auto-provisioning, slug URLs only).
  Responses: ``200 OK``; ``201 Created`` when a slug check was auto-provisioned; ``404 not found``;
  ``409 ambiguous slug``; ``400 invalid url format`` (exit status > 255) and ``400 invalid uuid format``
  (a ``rid`` that is not a UUID). Bodies of the texts are those of the reference server.
* **Management API** (v3; v1 and v2 paths are accepted too, with their "slug follows the name" rule):
  ``GET|POST /api/v3/checks/`` (``unique`` upsert: 200 when an existing check matched, 201 when
  created), ``GET|POST|DELETE /api/v3/checks/<uuid>``, ``POST .../pause``, ``POST .../resume``,
  ``GET .../pings/`` (each success or failure carries the ``duration`` since its run's ``/start``, paired
  by ``rid``), ``GET /api/v3/channels/``, ``GET /api/v3/status/``. Authentication by the
  ``X-Api-Key`` header or an ``api_key`` field in the JSON body (401 otherwise). Request fields follow
  the real API's types: ``tags`` is a space-separated string, ``channels`` a string (``"*"``, ``""`` or a
  comma-separated list of channel ids or names), ``timeout``/``grace`` integers in seconds (60..31536000).

Status logic mirrors the reference server's ``Check.get_status``:

* ``paused`` while paused; ``new`` until the first success/fail ping;
* after ``/start``: ``started`` until ``start + grace``, then ``down`` (a run that never finishes);
* a ``/fail`` ping (or non-zero exit status) makes the check ``down`` at once;
* otherwise the ping is expected at ``last_ping + timeout`` (simple checks) or at the first cron
  fire time after ``last_ping`` in ``tz`` (cron checks, computed with ``croniter``): the check is ``up``
  before that, ``grace`` during the grace period, ``down`` from ``expected + grace`` on.

Approximations, documented: OnCalendar schedules are not supported (400); if ``croniter`` cannot be
imported, cron checks never become ``down`` through lateness alone (only through ``/fail`` or an
overrunning ``/start``); the ``methods`` and ``manual_resume`` fields are stored and echoed but not
enforced; pings never send notifications (tests read ``status_of``).

Time comes from ``clock`` (a callable returning epoch seconds, default ``time.time``) so tests can
advance it, e.g. with :class:`ManualClock`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import re
import threading
import time
import unicodedata
import uuid as uuid_mod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal, cast
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_PING_BODY_LIMIT",
    "HealthchecksServer",
    "ManualClock",
    "Ping",
    "PingKind",
    "serve",
]

PingKind = Literal["success", "start", "fail", "log", "exit-code"]

#: How many bytes of each ping body are stored (healthchecks.io keeps the first 100 KB).
DEFAULT_PING_BODY_LIMIT: Final = 100_000
#: Channels (integrations) configured by default: name -> kind.
DEFAULT_CHANNELS: Final[Mapping[str, str]] = {"phone-pushover": "po", "phone-ntfy": "ntfy"}

_DEFAULT_TIMEOUT: Final = 86_400
_DEFAULT_GRACE: Final = 3_600
_MIN_PERIOD: Final = 60
_MAX_PERIOD: Final = 31_536_000
#: A /start more than 72 hours before its success or failure is unrelated to it (no duration).
_MAX_RUN_SECONDS: Final = 72 * 3600
_UNIQUE_FIELDS: Final = ("name", "slug", "tags", "timeout", "grace")
# Django's <uuid:...> path converter: canonical, lower-case.
_UUID_RE: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SLUG_RE: Final = re.compile(r"^[a-z0-9_-]*$")
_API_RE: Final = re.compile(r"^/api/v(?P<v>[123])(?P<rest>/.*)$")
_UUID_NS: Final = uuid_mod.UUID("6f1b7e0c-3b58-4a8e-9a55-0c5b7d0f7a11")


class ManualClock:
    """A clock for tests: ``clock()`` returns the current fake time; ``advance()`` moves it forward."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new time."""
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = float(now)


@dataclass(frozen=True)
class Ping:
    """One received ping, as recorded by the server."""

    check_uuid: str
    slug: str
    kind: PingKind
    rid: str | None
    body: str
    method: str
    received_at: float
    n: int
    exit_status: int | None = None
    remote_addr: str = ""
    user_agent: str = ""

    @property
    def is_failure(self) -> bool:
        """True for ``/fail`` pings and non-zero exit statuses."""
        return self.kind == "fail" or (self.kind == "exit-code" and self.exit_status != 0)


@dataclass
class _Check:
    uuid: str
    created_at: float
    name: str = ""
    slug: str = ""
    tags: str = ""
    desc: str = ""
    kind: Literal["simple", "cron"] = "simple"
    timeout: int = _DEFAULT_TIMEOUT
    grace: int = _DEFAULT_GRACE
    schedule: str = "* * * * *"
    tz: str = "UTC"
    manual_resume: bool = False
    methods: str = ""
    channels: list[str] = field(default_factory=list)
    status: Literal["new", "up", "down", "paused"] = "new"
    last_ping: float | None = None
    last_start: float | None = None
    last_start_rid: str | None = None
    n_pings: int = 0


@dataclass(frozen=True)
class _Channel:
    id: str
    name: str
    kind: str


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, text: str, headers: dict[str, str] | None = None) -> _Response:
        return cls(status, text.encode(), headers=headers or {})

    @classmethod
    def json(cls, status: int, doc: object) -> _Response:
        return cls(status, json.dumps(doc).encode(), content_type="application/json")


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).replace(microsecond=0).isoformat()


def _slugify(value: str) -> str:
    """Django's ``slugify`` (used by API v1/v2 to derive a slug from the name)."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


@functools.cache
def _croniter() -> Any | None:
    """The ``croniter`` class, imported on first use; None when it is not installed."""
    try:
        return importlib.import_module("croniter").croniter
    except ImportError:
        return None


def _valid_cron(expr: str) -> bool:
    if "\n" in expr.strip() or len(expr.split()) != 5:
        return False
    cron = _croniter()
    return True if cron is None else bool(cron.is_valid(expr))


def _cron_next(expr: str, tz: str, after: float) -> float | None:
    cron = _croniter()
    if cron is None:
        return None
    # Iterate on naive local wall-clock time and localise each result: croniter 3.0 gets zoneinfo
    # datetimes wrong across DST changes (it returns 15:30 EDT for "30 16 * * *" after the switch).
    zone = ZoneInfo(tz)
    it = cron(expr, datetime.fromtimestamp(after, zone).replace(tzinfo=None))
    for _ in range(4):  # a result at or before ``after`` can only come from a repeated (fall-back) hour
        due = float(it.get_next(datetime).replace(tzinfo=zone).timestamp())
        if due > after:
            return due
    return None


def _is_uuid(value: str) -> bool:
    try:
        uuid_mod.UUID(value)
    except ValueError:
        return False
    return True


class _Spec:
    """A validated create/update request (the reference server validates strictly, by type)."""

    STR_FIELDS: Final = ("name", "slug", "tags", "desc", "schedule", "tz", "channels", "methods")

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.fields: dict[str, Any] = {}
        for key, value in doc.items():
            if key == "api_key":
                continue
            if value is None:
                raise _ApiError(400, f"json validation error: {key} has unexpected value")
            if key in self.STR_FIELDS:
                if not isinstance(value, str):
                    raise _ApiError(400, f"json validation error: {key} is not a string")
                self.fields[key] = value
            elif key in ("timeout", "grace"):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise _ApiError(400, f"json validation error: {key} is not a number")
                if value < _MIN_PERIOD:
                    raise _ApiError(400, f"json validation error: {key} is too small")
                if value > _MAX_PERIOD:
                    raise _ApiError(400, f"json validation error: {key} is too large")
                self.fields[key] = value
            elif key in ("manual_resume", "filter_subject", "filter_body"):
                if not isinstance(value, bool):
                    raise _ApiError(400, f"json validation error: {key} is not a boolean")
                self.fields[key] = value
            elif key == "unique":
                if not isinstance(value, list):
                    raise _ApiError(400, "json validation error: unique is not an array")
                for item in value:
                    if item not in _UNIQUE_FIELDS:
                        raise _ApiError(400, "json validation error: an item in 'unique' is invalid")
                self.fields[key] = list(value)
            # Other fields (keywords, subject, ...) are accepted and ignored.
        name = self.fields.get("name")
        if name is not None and len(name) > 100:
            raise _ApiError(400, "json validation error: name is too long")
        slug = self.fields.get("slug")
        if slug is not None and (len(slug) > 100 or not _SLUG_RE.match(slug)):
            raise _ApiError(400, "json validation error: slug does not match pattern")
        methods = self.fields.get("methods")
        if methods is not None and methods not in ("", "POST"):
            raise _ApiError(400, "json validation error: methods has unexpected value")
        tz = self.fields.get("tz")
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise _ApiError(400, "json validation error: tz is not a valid timezone") from exc
        schedule = self.fields.get("schedule")
        if schedule is not None and not _valid_cron(schedule):
            raise _ApiError(400, "json validation error: schedule is not a valid cron expression")

    def get(self, key: str) -> Any:
        return self.fields.get(key)


class HealthchecksServer:
    """An in-memory healthchecks-compatible server on a background thread.

    ``base_url`` is the ping endpoint root (a check's ping URL is ``f"{base_url}/{uuid}"``);
    ``api_url`` is the Management API v3 root (``f"{base_url}/api/v3"``). To point the
    ``healthchecks_io`` client at it: ``Client(api_key=..., api_url=f"{server.base_url}/api/",
    ping_url=f"{server.base_url}/", api_version=3)``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = "test-api-key",
        ping_key: str = "test-ping-key-000000001",
        channels: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        ping_body_limit: int = DEFAULT_PING_BODY_LIMIT,
    ) -> None:
        self.host = host
        self.api_key = api_key
        self.ping_key = ping_key
        self.clock: Callable[[], float] = clock
        self.ping_body_limit = ping_body_limit
        self.pings: list[Ping] = []
        self._checks: dict[str, _Check] = {}
        self._channels = [
            _Channel(str(uuid_mod.uuid5(_UUID_NS, name)), name, kind)
            for name, kind in (DEFAULT_CHANNELS if channels is None else channels).items()
        ]
        self._lock = threading.RLock()
        self._faults: list[int] = []
        self.delay_seconds = 0.0
        self._httpd = _HTTPServer((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v3"

    def start(self) -> HealthchecksServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve_loop, name=f"healthchecks-server-{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def _serve_loop(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        """Stop serving and close the listening socket (connections are refused afterwards)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def __enter__(self) -> HealthchecksServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test helpers ------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` ping requests with ``status`` (nothing is recorded for them)."""
        with self._lock:
            self._faults.extend([status] * count)

    def add_check(self, **fields: Any) -> dict[str, Any]:
        """Create a check as ``POST /api/v3/checks/`` would (``unique`` honoured); returns its JSON."""
        with self._lock:
            check, _created = self._upsert(_Spec(fields), version=3)
            return self._check_json(check, version=3)

    def ping_url(self, check_uuid: str) -> str:
        return f"{self.base_url}/{check_uuid}"

    def slug_ping_url(self, slug: str) -> str:
        return f"{self.base_url}/{self.ping_key}/{slug}"

    def check(self, check_uuid: str) -> dict[str, Any]:
        """The check's Management API JSON (KeyError if unknown)."""
        with self._lock:
            return self._check_json(self._checks[check_uuid], version=3)

    def checks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._check_json(c, version=3) for c in self._checks.values()]

    def uuid_of(self, name: str) -> str:
        """The uuid of the (first) check with this name, or slug (KeyError if none)."""
        with self._lock:
            for c in self._checks.values():
                if c.name == name or c.slug == name:
                    return c.uuid
        raise KeyError(name)

    def status_of(self, check_uuid: str) -> str:
        """The check's status now (per ``clock``): new, up, grace, down, started or paused."""
        with self._lock:
            return self._status(self._checks[check_uuid], self.clock())

    def pings_for(self, check_uuid: str) -> list[Ping]:
        with self._lock:
            return [p for p in self.pings if p.check_uuid == check_uuid]

    # -- status logic ------------------------------------------------------------------------

    def _grace_start(self, check: _Check) -> float | None:
        """When the next success ping is due (None when unknown)."""
        if check.last_ping is None:
            return None
        if check.kind == "cron":
            return _cron_next(check.schedule, check.tz, check.last_ping)
        return check.last_ping + check.timeout

    def _status(self, check: _Check, now: float) -> str:
        if check.status == "paused":
            return "paused"
        if check.last_start is not None:
            return "down" if now >= check.last_start + check.grace else "started"
        if check.status in ("new", "down"):
            return check.status
        grace_start = self._grace_start(check)
        if grace_start is None:
            return "up"
        if now >= grace_start + check.grace:
            return "down"
        if now >= grace_start:
            return "grace"
        return "up"

    # -- pinging API -------------------------------------------------------------------------

    def _handle_ping(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, remote: str, ua: str
    ) -> _Response:
        parts = path.strip("/").split("/")
        if _UUID_RE.match(parts[0]):
            ident: tuple[str, str] = ("uuid", parts[0])
            ping_key = ""
            rest = parts[1:]
        elif len(parts) >= 2 and parts[0] and parts[1]:
            ident = ("slug", parts[1])
            rest = parts[2:]
            ping_key = parts[0]
        else:
            return _Response.text(404, "not found")
        if len(rest) > 1:
            return _Response.text(404, "not found")
        action = rest[0] if rest else ""
        exit_status: int | None = None
        if action.isdigit() and action.isascii():
            exit_status = int(action)
            if exit_status > 255:
                return _Response.text(400, "invalid url format")
            kind: PingKind = "exit-code"
        elif action in ("", "start", "fail", "log"):
            kind = cast(PingKind, action or "success")
        else:
            return _Response.text(404, "not found")

        if self.delay_seconds > 0:
            time.sleep(self.delay_seconds)
        with self._lock:
            if self._faults:
                return _Response.text(self._faults.pop(0), "injected error")
            created = False
            if ident[0] == "uuid":
                check = self._checks.get(ident[1])
                if check is None:
                    return _Response.text(404, "not found")
            else:
                if ping_key != self.ping_key:
                    return _Response.text(404, "not found")
                matches = [c for c in self._checks.values() if c.slug == ident[1]]
                if len(matches) > 1:
                    return _Response.text(409, "ambiguous slug")
                if matches:
                    check = matches[0]
                elif query.get("create", [""])[-1] == "1" and _SLUG_RE.match(ident[1]):
                    check = self._new_check()
                    check.name = check.slug = ident[1]
                    check.channels = [ch.id for ch in self._channels]
                    created = True
                else:
                    return _Response.text(404, "not found")

            rid: str | None = None
            if "rid" in query:
                rid = query["rid"][-1]
                if not _is_uuid(rid):
                    return _Response.text(400, "invalid uuid format")

            now = self.clock()
            check.n_pings += 1
            ping = Ping(
                check_uuid=check.uuid,
                slug=check.slug,
                kind=kind,
                rid=rid,
                body=body[: self.ping_body_limit].decode("utf-8", errors="replace"),
                method=method,
                received_at=now,
                n=check.n_pings,
                exit_status=exit_status,
                remote_addr=remote,
                user_agent=ua,
            )
            self.pings.append(ping)
            if kind == "start":
                check.last_start, check.last_start_rid = now, rid
            elif kind != "log":
                check.last_ping = now
                if check.last_start is not None and check.last_start_rid == rid:
                    check.last_start, check.last_start_rid = None, None
                check.status = "down" if ping.is_failure else "up"

        headers = {"Ping-Body-Limit": str(self.ping_body_limit), "Access-Control-Allow-Origin": "*"}
        if created:
            return _Response.text(201, "Created", headers)
        return _Response.text(200, "OK", headers)

    # -- management API ----------------------------------------------------------------------

    def _new_check(self) -> _Check:
        check = _Check(uuid=str(uuid_mod.uuid4()), created_at=self.clock())
        self._checks[check.uuid] = check
        return check

    def _resolve_channels(self, spec: str) -> list[str]:
        if spec == "*":
            return [ch.id for ch in self._channels]
        if spec == "":
            return []
        result: list[str] = []
        for ident in spec.split(","):
            if ident == "":
                raise _ApiError(400, "empty channel identifier")
            matches = [ch for ch in self._channels if ident in (ch.id, ch.name)]
            if not matches:
                raise _ApiError(400, f"invalid channel identifier: {ident}")
            if len(matches) > 1:
                raise _ApiError(400, f"non-unique channel identifier: {ident}")
            if matches[0].id not in result:
                result.append(matches[0].id)
        return result

    def _lookup(self, spec: _Spec) -> _Check | None:
        unique = spec.get("unique") or []
        if not unique or any(spec.get(f) is None for f in unique):
            return None
        for check in self._checks.values():
            if all(getattr(check, f) == spec.get(f) for f in unique):
                return check
        return None

    def _update(self, check: _Check, spec: _Spec, version: int) -> None:
        channels = self._resolve_channels(spec.get("channels")) if spec.get("channels") is not None else None
        name = spec.get("name")
        if name is not None and name != check.name:
            check.name = name
            if version < 3:
                check.slug = _slugify(name)
        if spec.get("schedule") is not None:
            check.kind, check.schedule = "cron", spec.get("schedule")
        elif spec.get("timeout") is not None:
            check.kind, check.timeout = "simple", spec.get("timeout")
        for key in ("slug", "tags", "desc", "tz", "grace", "manual_resume", "methods"):
            value = spec.get(key)
            if value is not None:
                setattr(check, key, value)
        if channels is not None:
            check.channels = channels

    def _upsert(self, spec: _Spec, version: int) -> tuple[_Check, bool]:
        if spec.get("channels") is not None:
            self._resolve_channels(spec.get("channels"))  # validate before creating anything
        check = self._lookup(spec)
        created = check is None
        if check is None:
            check = self._new_check()
        self._update(check, spec, version)
        return check, created

    def _check_json(self, check: _Check, version: int) -> dict[str, Any]:
        api = f"{self.base_url}/api/v{version}/checks/{check.uuid}"
        grace_start = self._grace_start(check) if check.status != "paused" else None
        doc: dict[str, Any] = {
            "name": check.name,
            "slug": check.slug,
            "tags": check.tags,
            "desc": check.desc,
            "grace": check.grace,
            "n_pings": check.n_pings,
            "status": self._status(check, self.clock()),
            "started": check.last_start is not None,
            "last_ping": _iso(check.last_ping),
            "next_ping": _iso(grace_start),
            "manual_resume": check.manual_resume,
            "methods": check.methods,
            "subject": "",
            "subject_fail": "",
            "start_kw": "",
            "success_kw": "",
            "failure_kw": "",
            "filter_subject": False,
            "filter_body": False,
            "uuid": check.uuid,
            "ping_url": self.ping_url(check.uuid),
            "update_url": api,
            "pause_url": f"{api}/pause",
            "resume_url": f"{api}/resume",
            "channels": ",".join(check.channels),
        }
        if check.kind == "cron":
            doc["schedule"], doc["tz"] = check.schedule, check.tz
        else:
            doc["timeout"] = check.timeout
        return doc

    def _duration(self, ping: Ping, earlier: list[Ping]) -> float | None:
        """Seconds from the run's ``/start`` to this success or failure: the latest earlier start of the check
        with the same ``rid`` (both without one also match), unless a success or failure of that rid came in
        between, and at most 72 hours back (the documented "Measuring script run time" pairing)."""
        if ping.kind in ("start", "log"):
            return None
        for prev in reversed(earlier):
            if prev.rid != ping.rid or prev.kind == "log":
                continue
            if prev.kind == "start":
                elapsed = ping.received_at - prev.received_at
                return round(elapsed, 3) if elapsed < _MAX_RUN_SECONDS else None
            return None  # that run already ended: this ping has no start of its own
        return None

    def _ping_json(self, ping: Ping, earlier: list[Ping] | None = None) -> dict[str, Any]:
        kind = {"exit-code": "fail" if ping.is_failure else "success"}.get(ping.kind, ping.kind)
        return {
            "type": kind,
            "date": _iso(ping.received_at),
            "n": ping.n,
            "scheme": "http",
            "remote_addr": ping.remote_addr,
            "method": ping.method,
            "ua": ping.user_agent,
            "rid": ping.rid,
            "exitstatus": ping.exit_status,
            "duration": self._duration(ping, earlier or []),
        }

    def _handle_api(
        self,
        method: str,
        version: int,
        rest: str,
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Response:
        doc: dict[str, Any] = {}
        if method == "POST" and body.strip():
            try:
                parsed = json.loads(body)
            except ValueError:
                return _Response.json(400, {"error": "could not parse request body"})
            if not isinstance(parsed, dict):
                return _Response.json(400, {"error": "json validation error: body is not an object"})
            doc = parsed
        if rest == "/status/" and method == "GET":
            return _Response.text(200, "OK")
        key = headers.get("x-api-key") or doc.get("api_key")
        if not key:
            return _Response.json(401, {"error": "missing api key"})
        if key != self.api_key:
            return _Response.json(401, {"error": "wrong api key"})

        try:
            with self._lock:
                return self._route_api(method, version, rest, query, doc)
        except _ApiError as exc:
            return _Response.json(exc.status, {"error": exc.message})

    def _route_api(
        self, method: str, version: int, rest: str, query: dict[str, list[str]], doc: dict[str, Any]
    ) -> _Response:
        if rest == "/checks/":
            if method == "GET":
                tags = set(query.get("tag", []))
                slug = query.get("slug", [None])[-1]
                found = [
                    self._check_json(c, version)
                    for c in self._checks.values()
                    if tags <= set(c.tags.split()) and (slug is None or c.slug == slug)
                ]
                return _Response.json(200, {"checks": found})
            if method == "POST":
                upserted, created = self._upsert(_Spec(doc), version)
                return _Response.json(201 if created else 200, self._check_json(upserted, version))
            return _Response.json(405, {"error": "method not allowed"})
        if rest == "/channels/":
            if method != "GET":
                return _Response.json(405, {"error": "method not allowed"})
            return _Response.json(
                200, {"channels": [{"id": c.id, "name": c.name, "kind": c.kind} for c in self._channels]}
            )
        m = re.match(r"^/checks/(?P<uuid>[^/]+)(?P<sub>/pause|/resume|/pings/)?$", rest)
        if m is None:
            return _Response.json(404, {"error": "not found"})
        check = self._checks.get(m["uuid"])
        if check is None:
            return _Response.json(404, {"error": "not found"})
        sub = m["sub"]
        if sub is None:
            if method == "GET":
                return _Response.json(200, self._check_json(check, version))
            if method == "POST":
                self._update(check, _Spec(doc), version)
                return _Response.json(200, self._check_json(check, version))
            if method == "DELETE":
                del self._checks[check.uuid]
                return _Response.json(200, self._check_json(check, version))
        elif sub == "/pause" and method == "POST":
            check.status, check.last_start, check.last_start_rid = "paused", None, None
            return _Response.json(200, self._check_json(check, version))
        elif sub == "/resume" and method == "POST":
            if check.status != "paused":
                return _Response.text(409, "check is not paused")
            check.status, check.last_ping, check.last_start = "new", None, None
            return _Response.json(200, self._check_json(check, version))
        elif sub == "/pings/" and method == "GET":
            mine = [p for p in self.pings if p.check_uuid == check.uuid]
            listed = [self._ping_json(p, mine[:i]) for i, p in enumerate(mine)]
            return _Response.json(200, {"pings": listed[::-1]})
        return _Response.json(405, {"error": "method not allowed"})

    def _dispatch(self, handler: _Handler, method: str) -> _Response:
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        api = _API_RE.match(split.path)
        if api is not None:
            headers = {k.lower(): v for k, v in handler.headers.items()}
            return self._handle_api(method, int(api["v"]), api["rest"], query, headers, body)
        if method not in ("GET", "POST", "HEAD"):
            return _Response.text(405, "method not allowed")
        return self._handle_ping(
            method, split.path, query, body, handler.client_address[0], handler.headers.get("User-Agent", "")
        )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: HealthchecksServer
    ) -> None:
        self.app = app
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped server really is unreachable.
    protocol_version = "HTTP/1.0"
    server_version = "catalyst-healthchecks-sim/1"

    def _serve(self, method: str) -> None:
        app = cast(_HTTPServer, self.server).app
        try:
            response = app._dispatch(self, method)
        except Exception as exc:  # a bug here must still answer, as a 500
            response = _Response.text(500, f"internal error: {type(exc).__name__}")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines carry ping URLs, which are secrets on a real deployment."""


def serve(
    host: str,
    port: int,
    api_key: str,
    *,
    ping_key: str = "test-ping-key-000000001",
    channels: Mapping[str, str] | None = None,
    on_ready: Callable[[HealthchecksServer], None] | None = None,
) -> None:
    """Run a server in the foreground until interrupted (for ``catalyst-sim healthchecks``).

    Prints one line with the ping and API base URLs once listening (useful with ``port=0``), unless
    ``on_ready`` is given, which is called instead.
    """
    server = HealthchecksServer(host, port, api_key=api_key, ping_key=ping_key, channels=channels)
    if on_ready is not None:
        on_ready(server)
    else:
        print(f"healthchecks-compatible server: ping {server.base_url}/ api {server.api_url}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
