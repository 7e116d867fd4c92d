"""Fault injection: what the broker does wrong, on request, for the next N matching calls.

Faults are armed through the admin API (``POST /_sim/faults``) and consumed by Alpaca-path requests
only, never by the admin API itself. Each has a ``count`` (how many requests it hits; ``null`` means
until cleared) and an optional ``match`` such as ``"POST /v2/orders"`` (method and path prefix,
either part optional).

Kinds:
- ``latency``: ``ms`` added before the answer;
- ``error``: answer ``status`` (500, 503 or 504) with Alpaca's error body, doing nothing;
- ``rate_limit``: 429 with ``Retry-After`` and the X-Ratelimit headers, doing nothing;
- ``timeout_after_accept``: do the request (the order IS accepted), then hold the response for
  ``seconds`` and reset the connection, so the client never learns the result;
- ``reset``: reset the connection before doing anything;
- ``reject``: the next order's ``target`` (entry, stop_loss or take_profit) is rejected;
- ``partial_fill``: the next fill takes only ``ratio`` of the order's remaining quantity.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("latency", "error", "rate_limit", "timeout_after_accept", "reset", "reject", "partial_fill")
ENGINE_KINDS = ("reject", "partial_fill")  # handed to the account's matching engine at arm time
ERROR_STATUSES = (500, 502, 503, 504)
REJECT_TARGETS = ("entry", "stop_loss", "take_profit")


class FaultSpecError(ValueError):
    pass


@dataclass(slots=True)
class Fault:
    kind: str
    count: int | None = 1
    match: str | None = None
    ms: int = 0
    status: int = 500
    retry_after: int = 1
    seconds: float = 2.0
    target: str = "entry"
    message: str = "order rejected by the simulator"
    ratio: float = 0.5
    account: str | None = None  # engine faults: "paper" or "live"; HTTP faults: only this account's keys
    fired: int = 0

    def matches(self, method: str, path: str, account: str | None) -> bool:
        if self.account is not None and account is not None and self.account != account:
            return False
        if not self.match:
            return True
        parts = self.match.split(None, 1)
        if len(parts) == 2:
            want_method, want_path = parts
        elif parts[0].startswith("/"):
            want_method, want_path = "", parts[0]
        else:
            want_method, want_path = parts[0], ""
        if want_method and want_method.upper() != method.upper():
            return False
        return path.startswith(want_path)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_fault(spec: dict[str, Any]) -> Fault:
    """Build a fault from the admin API's JSON, refusing anything unclear with a message that says why."""
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault is a JSON object such as {\"kind\": \"error\", \"status\": 503, \"count\": 2}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise FaultSpecError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    known = {"kind", "count", "match", "ms", "status", "retry_after", "seconds", "target", "message", "ratio",
             "account"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise FaultSpecError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        fault = Fault(
            kind=kind,
            count=None if spec.get("count", 1) is None else int(spec.get("count", 1)),
            match=spec.get("match"),
            ms=int(spec.get("ms", 0)),
            status=int(spec.get("status", 500)),
            retry_after=int(spec.get("retry_after", 1)),
            seconds=float(spec.get("seconds", 2.0)),
            target=str(spec.get("target", "entry")),
            message=str(spec.get("message", "order rejected by the simulator")),
            ratio=float(spec.get("ratio", 0.5)),
            account=spec.get("account"),
        )
    except (TypeError, ValueError) as exc:
        raise FaultSpecError(f"bad value in fault {spec}: {exc}") from None
    if fault.count is not None and fault.count < 1:
        raise FaultSpecError("count must be >= 1, or null for 'until cleared'")
    if kind == "error" and fault.status not in ERROR_STATUSES:
        raise FaultSpecError(f"status must be one of {ERROR_STATUSES} for kind error")
    if kind == "reject" and fault.target not in REJECT_TARGETS:
        raise FaultSpecError(f"target must be one of {', '.join(REJECT_TARGETS)}")
    if kind == "partial_fill" and not 0 < fault.ratio < 1:
        raise FaultSpecError("ratio must be between 0 and 1 (exclusive)")
    if fault.account not in (None, "paper", "live"):
        raise FaultSpecError("account must be paper, live or absent")
    if kind in ENGINE_KINDS and fault.count is None:
        raise FaultSpecError(f"{kind} needs a finite count")
    return fault


class FaultBoard:
    """The armed HTTP-level faults; thread-safe, consumed in arming order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.history: list[dict[str, Any]] = []

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> int:
        with self._lock:
            n = len(self._faults)
            self._faults.clear()
            return n

    def armed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_json() for f in self._faults]

    def take(self, method: str, path: str, account: str | None) -> list[Fault]:
        """The faults that fire on this request: every matching latency, plus the first other one."""
        fired: list[Fault] = []
        with self._lock:
            other_taken = False
            for f in list(self._faults):
                if not f.matches(method, path, account):
                    continue
                if f.kind != "latency":
                    if other_taken:
                        continue
                    other_taken = True
                f.fired += 1
                fired.append(f)
                if f.count is not None:
                    f.count -= 1
                    if f.count <= 0:
                        self._faults.remove(f)
                self.history.append({"kind": f.kind, "method": method, "path": path})
        return fired
