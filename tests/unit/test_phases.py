"""The phase table: the procedure's numbers, the max_account_risk rule, and validation of phases.yml."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from catalyst.phases import (
    Limits,
    PhaseError,
    PhaseTableError,
    UnknownPhaseError,
    load_phase_table,
)

# The procedure's table (PRIMARY-004 2.1/2.2, DESIGN.md "Phases"), restated here on purpose.
PROCEDURE = {
    "conservative": (1, 3, Limits(3, 0.005, 0.03, 0.015)),
    "moderate": (4, 7, Limits(4, 0.0075, 0.04, 0.03)),
    "normal": (8, 14, Limits(5, 0.01, 0.05, 0.05)),
}

PACKAGED = Path(__file__).resolve().parents[2] / "agent" / "catalyst" / "phases.yml"


def _raw() -> dict[str, object]:
    data = yaml.safe_load(PACKAGED.read_text())
    assert isinstance(data, dict)
    return data


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "phases.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_packaged_table_matches_the_procedure() -> None:
    table = load_phase_table()
    assert table.names == ("conservative", "moderate", "normal")
    for name, (first, last, limits) in PROCEDURE.items():
        phase = table.get(name)
        assert (phase.first_day, phase.last_day) == (first, last)
        assert phase.limits == limits


def test_packaged_default_equals_the_file() -> None:
    assert load_phase_table() == load_phase_table(PACKAGED)


@pytest.mark.parametrize("name", list(PROCEDURE))
def test_max_account_risk_is_positions_times_risk_per_trade(name: str) -> None:
    limits = load_phase_table().get(name).limits
    assert math.isclose(limits.max_account_risk, limits.max_positions * limits.risk_per_trade, abs_tol=1e-12)


def test_global_rules() -> None:
    table = load_phase_table()
    assert table.paper_phase == "normal"
    assert table.paper.limits == PROCEDURE["normal"][2]
    assert table.single_position_loss_limit == 0.02
    assert table.major_loss_drawdown == 0.10
    assert table.investigate_win_rate == 0.40
    assert table.investigate_min_trades == 3
    assert table.execution_failure_limit == 3


def test_min_days_and_promotion_order() -> None:
    table = load_phase_table()
    assert table.get("conservative").min_days == 3
    assert table.get("moderate").min_days == 4
    assert table.next_after("conservative") == table.get("moderate")
    assert table.next_after("moderate") == table.get("normal")
    assert table.next_after("normal") is None
    assert table.previous_before("normal") == table.get("moderate")
    assert table.previous_before("moderate") == table.get("conservative")
    assert table.previous_before("conservative") is None
    assert table.first.name == "conservative"


def test_phase_for_day_follows_the_schedule() -> None:
    table = load_phase_table()
    expected = ["conservative"] * 3 + ["moderate"] * 4 + ["normal"] * 7
    assert [table.phase_for_day(day).name for day in range(1, 15)] == expected
    assert table.evaluation_from_day == 15
    assert table.phase_for_day(15).name == "normal"
    assert table.phase_for_day(400).name == "normal"
    with pytest.raises(PhaseError):
        table.phase_for_day(0)


def test_unknown_phase_names_it_and_lists_valid_ones() -> None:
    table = load_phase_table()
    with pytest.raises(UnknownPhaseError) as err:
        table.get("agressive")
    assert str(err.value) == "unknown phase 'agressive'; valid phases: conservative, moderate, normal"
    assert isinstance(err.value, KeyError)
    with pytest.raises(KeyError):
        table.next_after("nope")
    with pytest.raises(PhaseError):
        table.previous_before("nope")


def test_days_text() -> None:
    assert load_phase_table().get("moderate").days == "4-7"


# ------------------------------------------------------------------------------------ validation


def _mutated(tmp_path: Path, mutate: object) -> Path:
    data = _raw()
    assert callable(mutate)
    mutate(data)
    return _write(tmp_path, data)


def _row(data: dict[str, object], index: int) -> dict[str, object]:
    rows = data["phases"]
    assert isinstance(rows, list)
    row = rows[index]
    assert isinstance(row, dict)
    return row


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: _row(d, 0).update(risk_per_trade="abc"), "phases[0] (conservative).risk_per_trade"),
        (lambda d: _row(d, 0).update(risk_per_trade=1.5), "expected a fraction 0 < x < 1"),
        (lambda d: _row(d, 1).update(max_positions=2.5), "phases[1] (moderate).max_positions"),
        (lambda d: _row(d, 1).update(max_positions=True), "not a whole number"),
        (lambda d: _row(d, 2).update(max_positions=0), "expected an integer >= 1"),
        (lambda d: _row(d, 2).update(max_account_risk=0.06), "rule max_account_risk = max_positions x"),
        (lambda d: _row(d, 1).update(first_day=3), "phases[1] (moderate).first_day"),
        (lambda d: _row(d, 0).update(last_day=None), "only the last phase may be open-ended"),
        (lambda d: _row(d, 0).update(min_days=4), "phases[0] (conservative).min_days"),
        (lambda d: _row(d, 0).update(max_postions=3), "phases[0].max_postions in"),
        (lambda d: _row(d, 0).pop("max_daily_loss"), "missing required key 'max_daily_loss'"),
        (lambda d: _row(d, 1).update(name="conservative"), "duplicate phase name 'conservative'"),
        (lambda d: d.update(paper_phase="turbo"), "paper_phase"),
        (lambda d: d.update(promotion_order=["moderate", "conservative", "normal"]), "promotion_order"),
        (lambda d: d.update(single_position_loss_limit=0), "single_position_loss_limit"),
        (lambda d: d.update(major_loss_drawdown=".1"), "major_loss_drawdown"),
        (lambda d: d.update(investigate_win_rate=float("nan")), "investigate_win_rate"),
        (lambda d: d.update(investigate_min_trades=0), "investigate_min_trades"),
        (lambda d: d.update(execution_failure_limit="3"), "execution_failure_limit"),
        (lambda d: d.pop("execution_failure_limit"), "missing required key 'execution_failure_limit'"),
        (lambda d: d.update(max_positions=3), "max_positions in"),
        (lambda d: d.update(phases=[]), "phases in"),
    ],
)
def test_invalid_tables_are_refused_naming_the_field(tmp_path: Path, mutate: object, fragment: str) -> None:
    path = _mutated(tmp_path, mutate)
    with pytest.raises(PhaseTableError) as err:
        load_phase_table(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_open_ended_last_phase_is_allowed(tmp_path: Path) -> None:
    path = _mutated(tmp_path, lambda d: _row(d, 2).update(last_day=None))
    table = load_phase_table(path)
    assert table.get("normal").last_day is None
    assert table.evaluation_from_day is None
    assert table.get("normal").days == "8+"


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    text = PACKAGED.read_text().replace("paper_phase: normal", "paper_phase: normal\npaper_phase: moderate")
    path = tmp_path / "phases.yml"
    path.write_text(text)
    with pytest.raises(PhaseTableError, match="duplicate key 'paper_phase'"):
        load_phase_table(path)


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = _mutated(tmp_path, lambda d: _row(d, 0).update(max_postions=3))
    with pytest.raises(PhaseTableError) as err:
        load_phase_table(path)
    assert str(err.value).startswith(f"phases[0].max_postions in {path}: unknown key; expected one of name,")
    path = _mutated(tmp_path, lambda d: d.update(risk_per_trade=0.01))
    with pytest.raises(PhaseTableError, match=r"^risk_per_trade in .*: unknown key"):
        load_phase_table(path)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(PhaseTableError, match="cannot read phase table"):
        load_phase_table(tmp_path / "absent.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("phases: [\n")
    with pytest.raises(PhaseTableError, match="not valid YAML"):
        load_phase_table(bad)
    scalar = tmp_path / "scalar.yml"
    scalar.write_text("42\n")
    with pytest.raises(PhaseTableError, match="expected a mapping"):
        load_phase_table(scalar)
