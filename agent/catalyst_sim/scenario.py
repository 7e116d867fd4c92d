"""Scripted market scenarios: plain YAML data that bends the simulated price paths.

A scenario is a name, a description and a list of events. Each event targets one symbol on one
session date:

``gap``    the day opens ``pct`` percent away from the previous close;
``trend``  ``pct`` percent is added (in log space, linearly) between ``from`` and ``to`` ET;
``halt``   no bars are published and the symbol is halted from ``from`` to ``to`` ET;
``flat``   the whole day's intraday volatility drops to 5% of normal.

Files are read with ``yaml.safe_load`` and validated strictly: a mistake in a test scenario
should fail loudly, naming the file, the event and the field, not quietly do nothing.
"""

from __future__ import annotations

import datetime
import importlib.resources
import importlib.resources.abc
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, cast

import yaml

EventKind = Literal["gap", "trend", "halt", "flat"]
EVENT_KINDS: Final[tuple[str, ...]] = ("gap", "trend", "halt", "flat")

# Which optional fields each kind requires; any other field is an error.
_REQUIRED: Final[dict[str, frozenset[str]]] = {
    "gap": frozenset({"pct"}),
    "trend": frozenset({"pct", "from", "to"}),
    "halt": frozenset({"from", "to"}),
    "flat": frozenset(),
}
_COMMON: Final[frozenset[str]] = frozenset({"kind", "symbol", "date"})
_TOP_LEVEL: Final[frozenset[str]] = frozenset({"name", "description", "events"})
_SYMBOL_RE: Final = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
_HHMM_RE: Final = re.compile(r"^(\d{1,2}):(\d{2})$")
_REGULAR_OPEN: Final = datetime.time(9, 30)
_REGULAR_CLOSE: Final = datetime.time(16, 0)


def _resolvers_without_timestamps() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """SafeLoader's implicit resolvers minus the one that turns YYYY-MM-DD into a date."""
    return {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that leaves timestamps as strings.

    Plain safe_load turns ``2026-13-40`` into a bare ``ValueError`` from ``datetime.date`` with no
    hint of where it came from; keeping dates as text lets ``_parse_date`` report the event and
    field like every other mistake.
    """

    yaml_implicit_resolvers = _resolvers_without_timestamps()


class ScenarioError(ValueError):
    """A scenario file or dict is malformed; the message says where and what was expected."""


@dataclass(frozen=True, slots=True)
class Event:
    """One scripted event. ``start``/``end`` are the YAML ``from``/``to`` (ET wall-clock times)."""

    kind: EventKind
    symbol: str
    date: datetime.date
    pct: float | None = None
    start: datetime.time | None = None
    end: datetime.time | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named, described, ordered collection of events."""

    name: str
    description: str = ""
    events: tuple[Event, ...] = field(default_factory=tuple)

    @classmethod
    def empty(cls) -> Scenario:
        """The scenario with no events: the market's plain random paths."""
        return cls(name="empty", description="No scripted events.", events=())

    @classmethod
    def from_dict(cls, data: object, source: str = "<dict>") -> Scenario:
        """Validate parsed YAML (or an equivalent dict) into a Scenario.

        ``source`` names the origin (usually the file path) in error messages.
        """
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{source}: expected a mapping with 'name' and 'events' at the top level")
        unknown = sorted(str(k) for k in data if k not in _TOP_LEVEL)
        if unknown:
            raise ScenarioError(
                f"{source}: unknown top-level field(s) {unknown}; expected only {sorted(_TOP_LEVEL)}"
            )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ScenarioError(f"{source}: field 'name' must be a non-empty string")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise ScenarioError(f"{source}: field 'description' must be a string")
        raw_events = data.get("events", [])
        if raw_events is None:
            raw_events = []
        if not isinstance(raw_events, list):
            raise ScenarioError(f"{source}: field 'events' must be a list of event mappings")
        events = tuple(_parse_event(raw, source, i) for i, raw in enumerate(raw_events))
        return cls(name=name, description=description, events=events)

    @property
    def symbols(self) -> frozenset[str]:
        """Every symbol some event targets."""
        return frozenset(e.symbol for e in self.events)


def _fail(source: str, index: int, fieldname: str, expected: str, got: object) -> ScenarioError:
    """Build the uniform error: file, event index, field, expectation, offending value."""
    return ScenarioError(f"{source}: event #{index} field '{fieldname}': expected {expected}, got {got!r}")


def _parse_event(raw: object, source: str, index: int) -> Event:
    """Validate one event mapping; see the module docstring for the kinds and their fields."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(
            f"{source}: event #{index}: expected a mapping like "
            f"{{kind: gap, symbol: ACME, date: 2026-11-24, pct: -8.0}}, got {raw!r}"
        )
    kind = raw.get("kind")
    if kind not in EVENT_KINDS:
        raise _fail(source, index, "kind", f"one of {list(EVENT_KINDS)}", kind)
    required = _REQUIRED[kind]
    allowed = _COMMON | required
    for key in raw:
        if key not in allowed:
            expected = f"no such field for kind '{kind}' (allowed: {sorted(allowed)})"
            raise _fail(source, index, str(key), expected, raw[key])
    for key in sorted(_COMMON | required):
        if key not in raw:
            raise _fail(source, index, key, f"a value (required for kind '{kind}')", None)
    symbol = _parse_symbol(raw["symbol"], source, index)
    date = _parse_date(raw["date"], source, index)
    pct = _parse_pct(raw["pct"], kind, source, index) if "pct" in required else None
    start = end = None
    if "from" in required:
        start = _parse_time(raw["from"], source, index, "from")
        end = _parse_time(raw["to"], source, index, "to")
        if start >= end:
            raise _fail(source, index, "to", f"a time after 'from' ({start:%H:%M})", raw["to"])
    return Event(kind=cast(EventKind, kind), symbol=symbol, date=date, pct=pct, start=start, end=end)


def _parse_symbol(value: Any, source: str, index: int) -> str:
    """An upper-case ticker."""
    if not isinstance(value, str) or not _SYMBOL_RE.match(value):
        raise _fail(source, index, "symbol", "an upper-case ticker such as ACME", value)
    return value


def _parse_date(value: Any, source: str, index: int) -> datetime.date:
    """A date: YAML's unquoted 2026-11-24 (already a date) or the string '2026-11-24'."""
    if isinstance(value, datetime.datetime):
        raise _fail(source, index, "date", "a date YYYY-MM-DD without a time", value)
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(source, index, "date", "a date YYYY-MM-DD", value)


def _parse_pct(value: Any, kind: str, source: str, index: int) -> float:
    """A percentage as a number; a gap cannot take the price to zero or below."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(source, index, "pct", "a number (percent, e.g. -8.0)", value)
    pct = float(value)
    if pct <= -100.0 or pct != pct or pct in (float("inf"), float("-inf")):
        raise _fail(source, index, "pct", f"a finite percent above -100 for kind '{kind}'", value)
    return pct


def _parse_time(value: Any, source: str, index: int, fieldname: str) -> datetime.time:
    """A quoted 'HH:MM' ET wall-clock time within the regular session 09:30-16:00."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise _fail(
            source,
            index,
            fieldname,
            "a quoted 'HH:MM' string (YAML reads unquoted 10:00 as the number 600)",
            value,
        )
    m = _HHMM_RE.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise _fail(source, index, fieldname, "a quoted 'HH:MM' time such as '10:00'", value)
    t = datetime.time(int(m.group(1)), int(m.group(2)))
    if not _REGULAR_OPEN <= t <= _REGULAR_CLOSE:
        raise _fail(source, index, fieldname, "a time within the regular session 09:30-16:00 ET", value)
    return t


def _packaged_dir() -> importlib.resources.abc.Traversable:
    """The directory holding the packaged scenario files."""
    return importlib.resources.files("catalyst_sim").joinpath("scenarios")


def available_scenarios() -> list[str]:
    """Names of the packaged scenarios, sorted."""
    return sorted(p.name[: -len(".yml")] for p in _packaged_dir().iterdir() if p.name.endswith(".yml"))


def _looks_like_path(path_or_name: str) -> bool:
    """A path has a separator or a YAML suffix; anything else is a packaged scenario name."""
    return "/" in path_or_name or "\\" in path_or_name or path_or_name.endswith((".yml", ".yaml"))


def load_scenario(path_or_name: str) -> Scenario:
    """Load a scenario from a YAML file path, or by bare name from the packaged scenarios."""
    if _looks_like_path(path_or_name):
        path = Path(path_or_name)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{source}: cannot read scenario file: {exc.strerror or exc}") from exc
    else:
        resource = _packaged_dir().joinpath(f"{path_or_name}.yml")
        source = f"scenarios/{path_or_name}.yml"
        if not resource.is_file():
            raise ScenarioError(
                f"no packaged scenario named {path_or_name!r}; available: {available_scenarios()}"
            )
        text = resource.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: as safe as safe_load
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from exc
    return Scenario.from_dict(data, source=source)
