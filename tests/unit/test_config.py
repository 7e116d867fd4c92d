"""Configuration: files in the config directory, named errors, secrets never printed, limits only tighten."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalyst.config import (
    Config,
    ConfigError,
    LimitsError,
    Secret,
    effective_limits,
    load_config,
    url_mode,
)
from catalyst.phases import Limits, load_phase_table

SETTINGS = """\
# Catalyst settings (non-secret)
ALPACA_BASE_URL=https://paper-api.alpaca.markets
ALPACA_MODE=paper  # paper until the go-live gate passes
"""

SECRETS = """\
ALPACA_API_KEY=PKTESTKEY123
ALPACA_SECRET_KEY="s3cr3t-value-xyz"
DATABASE_URL='postgresql://catalyst_user:pw#1@localhost/catalyst_trading'
"""

SECRET_VALUES = ("PKTESTKEY123", "s3cr3t-value-xyz", "pw#1")


def make_dir(tmp_path: Path, settings: str = SETTINGS, secrets: str = SECRETS, mode: int = 0o600) -> Path:
    directory = tmp_path / "etc-catalyst"
    directory.mkdir(exist_ok=True)
    (directory / "catalyst.env").write_text(settings)
    secrets_path = directory / "secrets.env"
    if secrets_path.exists():
        secrets_path.chmod(0o600)
    secrets_path.write_text(secrets)
    secrets_path.chmod(mode)
    return directory


def load(directory: Path, **environ: str) -> Config:
    return load_config(directory, environ=environ)


def error(directory: Path, **environ: str) -> str:
    with pytest.raises(ConfigError) as err:
        load(directory, **environ)
    message = str(err.value)
    for value in SECRET_VALUES:
        assert value not in message
    return message


# ------------------------------------------------------------------------------------------ loading


def test_minimal_config_with_defaults(tmp_path: Path) -> None:
    directory = make_dir(tmp_path)
    config = load(directory)
    assert config.mode == "paper"
    assert config.base_url == "https://paper-api.alpaca.markets"
    assert config.url_mode == "paper"
    assert config.api_key.reveal() == "PKTESTKEY123"
    assert config.secret_key.reveal() == "s3cr3t-value-xyz"
    assert config.database_url.reveal() == "postgresql://catalyst_user:pw#1@localhost/catalyst_trading"
    assert config.live_account_size == 10000.0
    assert dict(config.env_limits) == {}
    assert config.log_file == Path("/var/log/catalyst/trading.log")
    assert config.state_dir == Path("/var/lib/catalyst")
    assert config.report_dir == Path("/var/lib/catalyst/reports")
    assert config.strategy == "orb"
    assert config.universe is None
    assert dict(config.hc_ping_urls) == {"cycle": None, "risk": None, "backup": None, "report": None}
    assert config.paper_api_key is None
    assert config.heartbeat_timeout == 5.0
    assert config.config_dir == directory
    assert config.sources["ALPACA_MODE"] == str(directory / "catalyst.env")
    assert config.sources["ALPACA_API_KEY"] == str(directory / "secrets.env")
    assert config.sources["LIVE_ACCOUNT_SIZE"] == "default"


def test_full_config(tmp_path: Path) -> None:
    settings = """\
ALPACA_BASE_URL=https://api.alpaca.markets/   # LIVE
ALPACA_MODE=live
export MAX_POSITIONS=3              # Reduced from 5
RISK_PER_TRADE=0.005
MAX_DAILY_LOSS="0.03"
MAX_ACCOUNT_RISK=0.015
LIVE_ACCOUNT_SIZE=25000
CATALYST_LOG_FILE=/tmp/cat/trading.log
CATALYST_STATE_DIR=/tmp/cat/state
CATALYST_REPORT_DIR=/tmp/cat/reports
CATALYST_STRATEGY=orb
CATALYST_UNIVERSE=aapl, MSFT ,BRK.B,aapl
CATALYST_HEARTBEAT_TIMEOUT=2.5
"""
    secrets = SECRETS + (
        "HC_PING_CYCLE=https://hc-ping.com/uuid-cycle\nHC_PING_RISK=https://hc-ping.com/uuid-risk\n"
        "ALPACA_PAPER_API_KEY=PKPAPER\n"
    )
    config = load(make_dir(tmp_path, settings, secrets, mode=0o400))
    assert config.mode == "live"
    assert config.base_url == "https://api.alpaca.markets"
    assert config.url_mode == "live"
    assert dict(config.env_limits) == {
        "MAX_POSITIONS": 3,
        "RISK_PER_TRADE": 0.005,
        "MAX_DAILY_LOSS": 0.03,
        "MAX_ACCOUNT_RISK": 0.015,
    }
    assert isinstance(config.env_limits["MAX_POSITIONS"], int)
    assert config.live_account_size == 25000.0
    assert config.log_file == Path("/tmp/cat/trading.log")
    assert config.universe == ("AAPL", "MSFT", "BRK.B")
    assert config.heartbeat_timeout == 2.5
    cycle = config.hc_ping_urls["cycle"]
    assert cycle is not None and cycle.reveal() == "https://hc-ping.com/uuid-cycle"
    assert config.hc_ping_urls["backup"] is None
    assert config.paper_api_key is not None and config.paper_api_key.reveal() == "PKPAPER"
    # The procedure's own conservative values are exactly the conservative phase.
    conservative = load_phase_table().get("conservative")
    assert effective_limits(conservative, config.env_limits) == conservative.limits


def test_config_dir_from_environment_variable(tmp_path: Path) -> None:
    directory = make_dir(tmp_path)
    config = load_config(environ={"CATALYST_CONFIG_DIR": str(directory)})
    assert config.config_dir == directory


def test_missing_config_dir_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config directory .* not found .*CATALYST_CONFIG_DIR"):
        load_config(tmp_path / "nope", environ={})


def test_environment_overrides_settings_but_never_secrets(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, SETTINGS + "MAX_POSITIONS=3\n")
    config = load(
        directory,
        MAX_POSITIONS="2",
        CATALYST_STATE_DIR="/tmp/state",
        ALPACA_API_KEY="FROM-ENVIRONMENT",
        DATABASE_URL="postgresql://evil@elsewhere/db",
        MAX_DAILY_LOSS="",  # empty: no override
    )
    assert config.env_limits["MAX_POSITIONS"] == 2
    assert "MAX_DAILY_LOSS" not in config.env_limits
    assert config.state_dir == Path("/tmp/state")
    assert config.sources["MAX_POSITIONS"] == "environment"
    assert config.api_key.reveal() == "PKTESTKEY123"
    assert config.database_url.reveal().endswith("@localhost/catalyst_trading")


def test_secret_only_in_environment_is_refused_with_a_hint(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, secrets="ALPACA_SECRET_KEY=x\nDATABASE_URL=postgresql://h/db\n")
    message = error(directory, ALPACA_API_KEY="PKTESTKEY123")
    assert "ALPACA_API_KEY is not set in" in message
    assert "secrets are read only from" in message


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "missing", ["ALPACA_API_KEY", "ALPACA_SECRET_KEY", "DATABASE_URL", "ALPACA_BASE_URL", "ALPACA_MODE"]
)
def test_missing_required_variable_names_itself(tmp_path: Path, missing: str) -> None:
    settings = "".join(line + "\n" for line in SETTINGS.splitlines() if not line.startswith(missing + "="))
    secrets = "".join(line + "\n" for line in SECRETS.splitlines() if not line.startswith(missing + "="))
    message = error(make_dir(tmp_path, settings, secrets))
    assert message.startswith(f"{missing} is not set; it is required")


def test_empty_required_variable(tmp_path: Path) -> None:
    message = error(make_dir(tmp_path, SETTINGS.replace("ALPACA_MODE=paper", "ALPACA_MODE=")))
    assert message == f"ALPACA_MODE in {tmp_path / 'etc-catalyst' / 'catalyst.env'} is empty; it is required"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "RISK_PER_TRADE=abc",
            "RISK_PER_TRADE in {f}: 'abc' is not a number; expected a fraction such as 0.005",
        ),
        ("RISK_PER_TRADE=0.5%", "RISK_PER_TRADE in {f}: '0.5%' is not a number"),
        ("MAX_DAILY_LOSS=1.5", "MAX_DAILY_LOSS in {f}: '1.5' is out of range; expected a fraction 0 < x < 1"),
        ("MAX_ACCOUNT_RISK=0", "MAX_ACCOUNT_RISK in {f}: '0' is out of range"),
        ("MAX_ACCOUNT_RISK=nan", "MAX_ACCOUNT_RISK in {f}: 'nan' is not a finite number"),
        ("MAX_POSITIONS=3.5", "MAX_POSITIONS in {f}: '3.5' is not a whole number; expected an integer >= 1"),
        ("MAX_POSITIONS=0", "MAX_POSITIONS in {f}: '0' is out of range; expected an integer >= 1"),
        ("LIVE_ACCOUNT_SIZE=10,000", "LIVE_ACCOUNT_SIZE in {f}: '10,000' is not a number"),
        ("LIVE_ACCOUNT_SIZE=-5", "LIVE_ACCOUNT_SIZE in {f}: '-5' is out of range"),
        ("CATALYST_HEARTBEAT_TIMEOUT=0", "CATALYST_HEARTBEAT_TIMEOUT in {f}: '0' is out of range"),
        ("CATALYST_STATE_DIR=rel/dir", "CATALYST_STATE_DIR in {f}: 'rel/dir' is not an absolute path"),
        ("CATALYST_STRATEGY=Bad Name", "CATALYST_STRATEGY in {f}: 'Bad Name' is not a strategy name"),
        ("CATALYST_UNIVERSE=AAPL,$$$", "CATALYST_UNIVERSE in {f}: 'AAPL,$$$' contains '$$$'"),
        ("MAX_POSITON=3", "MAX_POSITON in {f} line 4: unknown setting"),
        ("max_positions=3", "{f} line 4: expected KEY=VALUE"),
        ("MAX_POSITIONS", "{f} line 4: expected KEY=VALUE"),
        ("ALPACA_SECRET_KEY=abc", "ALPACA_SECRET_KEY in {f} line 4: ALPACA_SECRET_KEY is a secret; move"),
        ("HC_PING_CYCLE=https://hc-ping.com/x", "HC_PING_CYCLE in {f} line 4: HC_PING_CYCLE is a secret"),
        ("ALPACA_MODE=live", "ALPACA_MODE in {f}: set twice (lines 3 and 4)"),
        ('RISK_PER_TRADE="0.005', 'RISK_PER_TRADE in {f} line 4: unterminated " quote'),
    ],
)
def test_bad_settings_name_the_variable_and_file(tmp_path: Path, line: str, expected: str) -> None:
    directory = make_dir(tmp_path, SETTINGS + line + "\n")
    message = error(directory)
    assert expected.format(f=directory / "catalyst.env") in message


@pytest.mark.parametrize(
    ("mode_line", "url", "expected"),
    [
        ("ALPACA_MODE=LIVE", None, "ALPACA_MODE in {f}: 'LIVE' is not a mode; expected paper or live"),
        ("ALPACA_MODE=real", None, "'real' is not a mode; expected paper or live"),
        (None, "ftp://api.alpaca.markets", "ALPACA_BASE_URL in {f}: 'ftp://api.alpaca.markets' is not"),
        (None, "api.alpaca.markets", "is not an http(s) URL with a host"),
        (None, "https://", "is not an http(s) URL with a host"),
        (None, "https://key:secret@api.alpaca.markets", "contains credentials"),
        (None, "https://api.alpaca.markets:99999", "is not a valid URL"),
    ],
)
def test_bad_mode_and_url(tmp_path: Path, mode_line: str | None, url: str | None, expected: str) -> None:
    settings = SETTINGS
    if mode_line:
        settings = settings.replace("ALPACA_MODE=paper", mode_line)
    if url:
        settings = settings.replace("https://paper-api.alpaca.markets", url)
    directory = make_dir(tmp_path, settings)
    message = error(directory)
    assert expected.format(f=directory / "catalyst.env") in message
    assert "key:secret" not in message


def test_bad_environment_override_names_the_environment(tmp_path: Path) -> None:
    message = error(make_dir(tmp_path), RISK_PER_TRADE="abc")
    assert message == (
        "RISK_PER_TRADE in the process environment: 'abc' is not a number; expected a fraction such as 0.005"
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700, 0o666])
def test_loose_secrets_file_is_refused(tmp_path: Path, mode: int) -> None:
    directory = make_dir(tmp_path, mode=mode)
    path = directory / "secrets.env"
    message = error(directory)
    assert message == (
        f"{path} has mode {mode:04o}; a secrets file must be readable by its owner only "
        f"(0400 or 0600): run chmod 600 {path}"
    )


def test_missing_files(tmp_path: Path) -> None:
    directory = make_dir(tmp_path)
    (directory / "secrets.env").unlink()
    assert "secrets.env not found" in error(directory)
    (directory / "catalyst.env").unlink()
    assert "catalyst.env not found" in error(directory)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("MAX_POSITIONS=3", "MAX_POSITIONS in {f} line 4: not a secret; move it to"),
        ("ALPACA_API_TOKEN=abc", "ALPACA_API_TOKEN in {f} line 4: unknown secret"),
        ("DATABASE_URL=mysql://u:pw#1@h/db", "DATABASE_URL in {f}: the value has an unsupported scheme"),
        ("HC_PING_RISK=not-a-url-pw#1", "HC_PING_RISK in {f}: the value is not an http(s) URL"),
        ("this line is pw#1 garbage", "{f} line 4: expected KEY=VALUE with an upper-case KEY"),
    ],
)
def test_bad_secrets_never_echo_values(tmp_path: Path, line: str, expected: str) -> None:
    secrets = SECRETS
    if line.startswith("DATABASE_URL="):
        secrets = "".join(x + "\n" for x in SECRETS.splitlines() if not x.startswith("DATABASE_URL="))
    directory = make_dir(tmp_path, secrets=secrets + line + "\n")
    message = error(directory)
    assert expected.format(f=directory / "secrets.env") in message
    assert "pw#1" not in message


def test_database_conninfo_string_is_accepted(tmp_path: Path) -> None:
    secrets = SECRETS.replace(
        "DATABASE_URL='postgresql://catalyst_user:pw#1@localhost/catalyst_trading'",
        "DATABASE_URL='dbname=catalyst_trading user=catalyst_user'",
    )
    config = load(make_dir(tmp_path, secrets=secrets))
    assert config.database_url.reveal() == "dbname=catalyst_trading user=catalyst_user"


# ------------------------------------------------------------------------------------------- secrets


def test_secrets_never_print(tmp_path: Path) -> None:
    config = load(make_dir(tmp_path, secrets=SECRETS + "HC_PING_CYCLE=https://hc-ping.com/pw#1-uuid\n"))
    texts = [repr(config), str(config), f"{config}", f"{config.api_key}", f"{config.api_key!r:>10}"]
    texts.append(repr(dataclasses.asdict(config)))
    texts.append(str(copy.deepcopy(config)))
    for text in texts:
        for value in (*SECRET_VALUES, "hc-ping.com"):
            assert value not in text
    assert "***" in repr(config)


def test_secret_wrapper() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2")
    assert secret != Secret("hunter3")
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError):
        pickle.dumps(secret)


# -------------------------------------------------------------------------------------------- url_mode


@pytest.mark.parametrize(
    ("url", "mode"),
    [
        ("https://paper-api.alpaca.markets", "paper"),
        ("https://PAPER-API.alpaca.markets/v2", "paper"),
        ("http://10.0.0.1:8765/paper", "paper"),
        ("http://10.0.0.1:8765/paper/", "paper"),
        ("http://10.0.0.1:8765/live", "live"),
        ("https://api.alpaca.markets", "live"),
        ("http://10.0.0.1:8765/papers", "live"),
        ("http://10.0.0.1:8765/live/paper", "live"),
        ("https://api.alpaca.markets/?x=paper-api.", "live"),
        ("not a url", "live"),
        ("http://[bad", "live"),
    ],
)
def test_url_mode(url: str, mode: str) -> None:
    assert url_mode(url) == mode


# ------------------------------------------------------------------------------------ effective_limits

CONSERVATIVE = Limits(3, 0.005, 0.03, 0.015)


def test_effective_limits_without_overrides_is_the_phase() -> None:
    assert effective_limits(CONSERVATIVE, {}) == CONSERVATIVE


def test_effective_limits_tightens() -> None:
    result = effective_limits(CONSERVATIVE, {"MAX_POSITIONS": 2, "RISK_PER_TRADE": 0.0025})
    assert result == Limits(2, 0.0025, 0.03, 0.015)


def test_loosening_is_refused_naming_variable_value_phase() -> None:
    phase = load_phase_table().get("conservative")
    with pytest.raises(LimitsError) as err:
        effective_limits(phase, {"MAX_POSITIONS": 5})
    assert str(err.value) == (
        "MAX_POSITIONS=5 would loosen the conservative phase (3); environment limits may only tighten a phase"
    )
    moderate = Limits(4, 0.0075, 0.04, 0.03)
    pattern = r"RISK_PER_TRADE=0\.01 would loosen the moderate phase \(0\.0075\);"
    with pytest.raises(LimitsError, match=pattern):
        effective_limits(moderate, {"RISK_PER_TRADE": 0.01}, "moderate")
    with pytest.raises(LimitsError, match=r"MAX_DAILY_LOSS=0\.031 would loosen the phase \(0\.03\)"):
        effective_limits(CONSERVATIVE, {"MAX_DAILY_LOSS": 0.031})


@pytest.mark.parametrize(
    "env",
    [
        {"MAX_POSITIONS": 0},
        {"MAX_POSITIONS": 2.0},
        {"MAX_POSITIONS": True},
        {"RISK_PER_TRADE": 0.0},
        {"RISK_PER_TRADE": -0.01},
        {"RISK_PER_TRADE": float("nan")},
        {"MAX_ACCOUNT_RISK": float("-inf")},
        {"MAX_LEVERAGE": 0.1},
    ],
)
def test_invalid_overrides_are_refused(env: dict[str, float]) -> None:
    with pytest.raises(LimitsError):
        effective_limits(CONSERVATIVE, env)


phases = st.sampled_from(load_phase_table().phases)
overrides = st.fixed_dictionaries(
    {},
    optional={
        "MAX_POSITIONS": st.integers(min_value=1, max_value=10),
        "RISK_PER_TRADE": st.floats(min_value=1e-6, max_value=0.999, allow_nan=False),
        "MAX_DAILY_LOSS": st.floats(min_value=1e-6, max_value=0.999, allow_nan=False),
        "MAX_ACCOUNT_RISK": st.floats(min_value=1e-6, max_value=0.999, allow_nan=False),
    },
)
FIELDS = {
    "MAX_POSITIONS": "max_positions",
    "RISK_PER_TRADE": "risk_per_trade",
    "MAX_DAILY_LOSS": "max_daily_loss",
    "MAX_ACCOUNT_RISK": "max_account_risk",
}


@given(phase=phases, env=overrides)
def test_effective_limits_only_ever_tighten(phase: object, env: dict[str, float]) -> None:
    from catalyst.phases import Phase

    assert isinstance(phase, Phase)
    base = phase.limits
    loosens = any(value > getattr(base, FIELDS[key]) for key, value in env.items())
    try:
        result = effective_limits(phase, env)
    except LimitsError as err:
        assert loosens
        assert phase.name in str(err)
        return
    assert not loosens
    for key, name in FIELDS.items():
        assert getattr(result, name) <= getattr(base, name)
        assert getattr(result, name) == env.get(key, getattr(base, name))


def test_os_environ_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = make_dir(tmp_path)
    monkeypatch.setenv("CATALYST_CONFIG_DIR", str(directory))
    monkeypatch.setenv("CATALYST_STRATEGY", "orb_v2")
    assert os.environ["CATALYST_CONFIG_DIR"] == str(directory)
    assert load_config().strategy == "orb_v2"
