"""The ramp-up phase table (procedure PRIMARY-004, section 2.2), loaded from ``phases.yml``.

``phases.yml`` beside this module is the single source of truth for every phase limit and for the global
risk rules (single-position loss limit, major-loss drawdown, investigate thresholds, execution-failure
limit). This module only loads and validates it: pure, stdlib + PyYAML, no I/O beyond reading the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "PHASE_FIELDS",
    "Limits",
    "Phase",
    "PhaseError",
    "PhaseTable",
    "PhaseTableError",
    "UnknownPhaseError",
    "load_phase_table",
]

# Tolerance for the rule max_account_risk == max_positions * risk_per_trade (0.0075 * 4 is 0.03 only
# up to float rounding).
_RULE_TOLERANCE = 1e-9

PHASE_FIELDS = ("max_positions", "risk_per_trade", "max_daily_loss", "max_account_risk")
"""The four limit fields of a phase, in the procedure's order."""


class PhaseError(Exception):
    """Base class of every phase-table error."""


class UnknownPhaseError(PhaseError, KeyError):
    """A phase name that is not in the table (also a ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else "unknown phase"


class PhaseTableError(PhaseError, ValueError):
    """``phases.yml`` is missing, malformed or breaks a rule; the message names the field."""


@dataclass(frozen=True, slots=True)
class Limits:
    """One phase's risk limits. Fractions are of account equity (0.005 = 0.5%)."""

    max_positions: int
    risk_per_trade: float
    max_daily_loss: float
    max_account_risk: float

    def as_dict(self) -> dict[str, int | float]:
        return {
            "max_positions": self.max_positions,
            "risk_per_trade": self.risk_per_trade,
            "max_daily_loss": self.max_daily_loss,
            "max_account_risk": self.max_account_risk,
        }


@dataclass(frozen=True, slots=True)
class Phase:
    """A ramp-up phase: live trading days ``first_day``..``last_day`` (``None``: open-ended)."""

    name: str
    first_day: int
    last_day: int | None
    min_days: int
    limits: Limits

    @property
    def days(self) -> str:
        """The day range as the procedure writes it, e.g. ``"1-3"`` (or ``"8+"`` when open-ended)."""
        return f"{self.first_day}+" if self.last_day is None else f"{self.first_day}-{self.last_day}"


@dataclass(frozen=True, slots=True)
class PhaseTable:
    """The whole table: phases in promotion order plus the global rules."""

    phases: tuple[Phase, ...]
    paper_phase: str
    single_position_loss_limit: float
    major_loss_drawdown: float
    investigate_win_rate: float
    investigate_min_trades: int
    execution_failure_limit: int

    @property
    def names(self) -> tuple[str, ...]:
        """Phase names in promotion order."""
        return tuple(p.name for p in self.phases)

    def get(self, name: str) -> Phase:
        """The phase called ``name``; ``UnknownPhaseError`` (a ``KeyError``) names it and lists valid ones."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise UnknownPhaseError(f"unknown phase {name!r}; valid phases: {', '.join(self.names)}")

    def next_after(self, name: str) -> Phase | None:
        """The phase a promotion from ``name`` leads to; ``None`` for the last phase."""
        index = self._index(name)
        return self.phases[index + 1] if index + 1 < len(self.phases) else None

    def previous_before(self, name: str) -> Phase | None:
        """The phase one step before ``name``; ``None`` for the first phase."""
        index = self._index(name)
        return self.phases[index - 1] if index > 0 else None

    @property
    def first(self) -> Phase:
        """The first phase (go-live starts here; a losing day 15+ returns here)."""
        return self.phases[0]

    @property
    def paper(self) -> Phase:
        """The phase whose limits apply to paper trading."""
        return self.get(self.paper_phase)

    @property
    def evaluation_from_day(self) -> int | None:
        """First live day of the daily day-15+ evaluation (the last phase's last_day + 1), if bounded."""
        last = self.phases[-1].last_day
        return None if last is None else last + 1

    def phase_for_day(self, day: int) -> Phase:
        """The phase the ramp-up schedule gives live trading day ``day`` (1-based).

        Days after the last phase's ``last_day`` stay in the last phase (day 15+ evaluation decides
        whether to stay there); the evaluation, not this schedule, may send the account back.
        """
        if isinstance(day, bool) or not isinstance(day, int) or day < 1:
            raise PhaseError(f"live trading day must be a whole number >= 1, got {day!r}")
        for phase in self.phases:
            if phase.first_day <= day and (phase.last_day is None or day <= phase.last_day):
                return phase
        return self.phases[-1]

    def _index(self, name: str) -> int:
        return self.phases.index(self.get(name))


# --------------------------------------------------------------------------------------------- loading

_PHASE_KEYS = ("name", "first_day", "last_day", "min_days", *PHASE_FIELDS)
_TOP_KEYS = (
    "phases",
    "promotion_order",
    "paper_phase",
    "single_position_loss_limit",
    "major_loss_drawdown",
    "investigate_win_rate",
    "investigate_min_trades",
    "execution_failure_limit",
)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, message: str) -> PhaseTableError:
        return PhaseTableError(f"{field} in {self.source}: {message}")

    def mapping(self, value: object, field: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(field, f"expected a mapping with keys {', '.join(keys)}, got {_kind(value)}")
        for key in value:
            if key not in keys:
                raise self.fail(
                    f"{field}.{key}" if field != "(top level)" else str(key),
                    f"unknown key; expected one of {', '.join(keys)}",
                )
        for key in keys:
            if key not in value:
                raise self.fail(field if field != "(top level)" else key, f"missing required key {key!r}")
        return value

    def integer(self, value: object, field: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"{value!r} is not a whole number; expected an integer >= {minimum}")
        if value < minimum:
            raise self.fail(field, f"{value} is out of range; expected an integer >= {minimum}")
        return value

    def fraction(self, value: object, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, f"{value!r} is not a number; expected a fraction such as 0.005")
        number = float(value)
        if not math.isfinite(number) or not 0.0 < number < 1.0:
            raise self.fail(field, f"{value!r} is out of range; expected a fraction 0 < x < 1")
        return number

    def name(self, value: object, field: str) -> str:
        if not isinstance(value, str) or not value or not value.isidentifier() or value != value.lower():
            raise self.fail(field, f"{value!r} is not a phase name; expected a lower-case word")
        return value


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _parse_phase(v: _Validator, raw: object, index: int) -> Phase:
    where = f"phases[{index}]"
    row = v.mapping(raw, where, _PHASE_KEYS)
    name = v.name(row["name"], f"{where}.name")
    where = f"phases[{index}] ({name})"
    first_day = v.integer(row["first_day"], f"{where}.first_day", 1)
    last_raw = row["last_day"]
    last_day = None if last_raw is None else v.integer(last_raw, f"{where}.last_day", first_day)
    min_days = v.integer(row["min_days"], f"{where}.min_days", 1)
    if last_day is not None and min_days > last_day - first_day + 1:
        raise v.fail(
            f"{where}.min_days",
            f"{min_days} is longer than the phase's days {first_day}-{last_day}",
        )
    limits = Limits(
        max_positions=v.integer(row["max_positions"], f"{where}.max_positions", 1),
        risk_per_trade=v.fraction(row["risk_per_trade"], f"{where}.risk_per_trade"),
        max_daily_loss=v.fraction(row["max_daily_loss"], f"{where}.max_daily_loss"),
        max_account_risk=v.fraction(row["max_account_risk"], f"{where}.max_account_risk"),
    )
    expected = limits.max_positions * limits.risk_per_trade
    if abs(limits.max_account_risk - expected) > _RULE_TOLERANCE:
        raise v.fail(
            f"{where}.max_account_risk",
            f"{limits.max_account_risk} breaks the rule max_account_risk = max_positions x risk_per_trade "
            f"({limits.max_positions} x {limits.risk_per_trade} = {expected:.6g})",
        )
    return Phase(name=name, first_day=first_day, last_day=last_day, min_days=min_days, limits=limits)


def _parse_table(raw: object, source: str) -> PhaseTable:
    v = _Validator(source)
    top = v.mapping(raw, "(top level)", _TOP_KEYS)

    rows = top["phases"]
    if not isinstance(rows, list) or not rows:
        raise v.fail("phases", f"expected a non-empty list of phases, got {_kind(rows)}")
    phases = tuple(_parse_phase(v, row, i) for i, row in enumerate(rows))

    names = [p.name for p in phases]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise v.fail(f"phases[{i}].name", f"duplicate phase name {name!r}")
    # Contiguous days starting at day 1, only the last phase may be open-ended.
    expected_first = 1
    for i, phase in enumerate(phases):
        where = f"phases[{i}] ({phase.name})"
        if phase.first_day != expected_first:
            raise v.fail(
                f"{where}.first_day",
                f"{phase.first_day} leaves a gap or overlap; expected {expected_first} "
                "(phases must cover consecutive days from day 1)",
            )
        if phase.last_day is None:
            if i != len(phases) - 1:
                raise v.fail(f"{where}.last_day", "only the last phase may be open-ended (null)")
        else:
            expected_first = phase.last_day + 1

    order = top["promotion_order"]
    if not isinstance(order, list) or order != names:
        raise v.fail(
            "promotion_order",
            f"{order!r} must list every phase in the order of the phases list: {names!r}",
        )

    paper_phase = top["paper_phase"]
    if not isinstance(paper_phase, str) or paper_phase not in names:
        raise v.fail("paper_phase", f"{paper_phase!r} is not a phase; valid phases: {', '.join(names)}")

    return PhaseTable(
        phases=phases,
        paper_phase=paper_phase,
        single_position_loss_limit=v.fraction(
            top["single_position_loss_limit"], "single_position_loss_limit"
        ),
        major_loss_drawdown=v.fraction(top["major_loss_drawdown"], "major_loss_drawdown"),
        investigate_win_rate=v.fraction(top["investigate_win_rate"], "investigate_win_rate"),
        investigate_min_trades=v.integer(top["investigate_min_trades"], "investigate_min_trades", 1),
        execution_failure_limit=v.integer(top["execution_failure_limit"], "execution_failure_limit", 1),
    )


def load_phase_table(path: Path | None = None) -> PhaseTable:
    """Load and validate the phase table; default: the ``phases.yml`` packaged with catalyst.

    Raises ``PhaseTableError`` naming the file and the field for anything missing, unknown or invalid.
    """
    if path is None:
        resource = resources.files("catalyst").joinpath("phases.yml")
        source = "packaged phases.yml"
        try:
            text = resource.read_text(encoding="utf-8")
        except OSError as exc:
            raise PhaseTableError(f"cannot read the {source}: {exc}") from exc
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PhaseTableError(f"cannot read phase table {source}: {exc.strerror or exc}") from exc
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise PhaseTableError(f"{source} is not valid YAML: {exc}") from exc
    return _parse_table(raw, source)
