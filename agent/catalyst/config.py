"""Catalyst's configuration: read from files under the config directory, secrets never printed.

The config directory is ``/etc/catalyst`` unless the ``CATALYST_CONFIG_DIR`` environment variable (or the
``config_dir`` argument) names another one. It holds two ``KEY=VALUE`` files:

* ``catalyst.env``: non-secret settings (mode, base URL, limit overrides, paths, ...);
* ``secrets.env``: API keys, ``DATABASE_URL``, healthchecks ping URLs; mode 0400 or 0600 only.

Each variable lives in exactly one of them: a secret in ``catalyst.env`` and a setting in ``secrets.env``
are refused, as is any unknown key (a typo must not silently drop a limit). Process environment variables
may override non-secret settings only (tests, demo); secrets come from ``secrets.env`` and nowhere else.
Nothing is ever read from command-line arguments. Every error is a ``ConfigError`` naming the variable,
where it came from and what is expected; error messages never contain a secret's value.

Limit overrides (``MAX_POSITIONS``, ``RISK_PER_TRADE``, ``MAX_DAILY_LOSS``, ``MAX_ACCOUNT_RISK``) may only
tighten the current phase: see :func:`effective_limits`.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from catalyst.phases import Limits, Phase

__all__ = [
    "CATALYST_ENV",
    "DEFAULT_CONFIG_DIR",
    "HC_CHECKS",
    "LIMIT_VARIABLES",
    "SECRETS_ENV",
    "SECRET_VARIABLES",
    "SETTING_VARIABLES",
    "Config",
    "ConfigError",
    "LimitsError",
    "Mode",
    "Secret",
    "effective_limits",
    "load_config",
    "parse_env_file",
    "url_mode",
]

Mode = Literal["paper", "live"]

DEFAULT_CONFIG_DIR = Path("/etc/catalyst")
CATALYST_ENV = "catalyst.env"
SECRETS_ENV = "secrets.env"
CONFIG_DIR_VARIABLE = "CATALYST_CONFIG_DIR"

# Environment variable name -> Limits field.
LIMIT_VARIABLES: Mapping[str, str] = MappingProxyType(
    {
        "MAX_POSITIONS": "max_positions",
        "RISK_PER_TRADE": "risk_per_trade",
        "MAX_DAILY_LOSS": "max_daily_loss",
        "MAX_ACCOUNT_RISK": "max_account_risk",
    }
)

# healthchecks.io check name -> the secret variable holding its ping URL.
HC_CHECKS: Mapping[str, str] = MappingProxyType(
    {
        "cycle": "HC_PING_CYCLE",
        "risk": "HC_PING_RISK",
        "backup": "HC_PING_BACKUP",
        "report": "HC_PING_REPORT",
    }
)

SECRET_VARIABLES: frozenset[str] = frozenset(
    {"ALPACA_API_KEY", "ALPACA_SECRET_KEY", "ALPACA_PAPER_API_KEY", "ALPACA_LIVE_API_KEY", "ALPACA_LIVE_SECRET_KEY",
     "DATABASE_URL", "HC_API_KEY", *HC_CHECKS.values()}
)
SETTING_VARIABLES: frozenset[str] = frozenset(
    {
        "ALPACA_BASE_URL",
        "ALPACA_MODE",
        *LIMIT_VARIABLES,
        "LIVE_ACCOUNT_SIZE",
        "CATALYST_LOG_FILE",
        "CATALYST_STATE_DIR",
        "CATALYST_REPORT_DIR",
        "CATALYST_STRATEGY",
        "CATALYST_UNIVERSE",
        "CATALYST_HEARTBEAT_TIMEOUT",
        "ALPACA_DATA_URL",
        "ALPACA_LIVE_BASE_URL",
        "CATALYST_CLOCK_SKEW_MAX",
        "CATALYST_CYCLE_MINUTES",
        "CATALYST_BACKUP_DIR",
        "CATALYST_BACKUP_OFFSITE",
        "HC_API_URL",
    }
)
REQUIRED_VARIABLES = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "ALPACA_BASE_URL", "ALPACA_MODE", "DATABASE_URL")

DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "LIVE_ACCOUNT_SIZE": "10000",
        "CATALYST_LOG_FILE": "/var/log/catalyst/trading.log",
        "CATALYST_STATE_DIR": "/var/lib/catalyst",
        "CATALYST_REPORT_DIR": "/var/lib/catalyst/reports",
        "CATALYST_STRATEGY": "orb",
        "CATALYST_HEARTBEAT_TIMEOUT": "5",
        "CATALYST_CLOCK_SKEW_MAX": "60",
        "ALPACA_LIVE_BASE_URL": "https://api.alpaca.markets",
        "CATALYST_CYCLE_MINUTES": "1",
        "CATALYST_BACKUP_DIR": "/var/backups/catalyst",
        "HC_API_URL": "https://healthchecks.io",
    }
)

_ALLOWED_SECRET_MODES = (0o400, 0o600)
_KEY_RE = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
_SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9.]{0,9}\Z")
_STRATEGY_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_MAX_HEARTBEAT_TIMEOUT = 60.0


class ConfigError(Exception):
    """Bad or missing configuration; the message names the variable, its source and what is expected."""


class LimitsError(ConfigError):
    """A limit override that would loosen the current phase (or is not a valid limit)."""


class Secret:
    """A secret string that never prints: ``repr``/``str``/``format`` give ``***``; use ``reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """The secret value. Pass it straight to the client that needs it; never log it."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Config:
    """The agent's validated configuration. Every secret field is a :class:`Secret`."""

    config_dir: Path
    mode: Mode
    base_url: str
    api_key: Secret
    secret_key: Secret
    database_url: Secret
    live_account_size: float
    # Limit overrides actually given, keyed by variable name (MAX_POSITIONS, RISK_PER_TRADE,
    # MAX_DAILY_LOSS, MAX_ACCOUNT_RISK); variables not set are absent. Feed to effective_limits().
    env_limits: dict[str, float | int]
    log_file: Path
    state_dir: Path
    report_dir: Path
    strategy: str
    universe: tuple[str, ...] | None
    # healthchecks check name (cycle, risk, backup, report) -> ping URL, None when not configured.
    hc_ping_urls: dict[str, Secret | None]
    paper_api_key: Secret | None
    heartbeat_timeout: float
    # Market data base URL (ALPACA_DATA_URL); None means Alpaca's own data host. The simulator serves
    # data on the same URL as trading, so its configs set both to the same value.
    data_url: str | None = None
    # Seconds the broker's clock may differ from ours before `catalyst health` fails; 0 turns the
    # check off (a simulator's virtual clock is days away from the wall clock by design).
    clock_skew_max: float = 60.0
    # The live account, for the go-live gate while still in paper mode: its keys (secrets) and URL.
    live_api_key: Secret | None = None
    live_secret_key: Secret | None = None
    live_base_url: str = "https://api.alpaca.markets"
    # Minutes between cycles (CATALYST_CYCLE_MINUTES): the schedule's cron cadence, and what uptime
    # expects (one cycle per this many market minutes). 1 in production; larger for accelerated runs.
    cycle_minutes: int = 1
    # Where `catalyst backup` writes dumps (CATALYST_BACKUP_DIR), and the optional off-site copy target
    # (CATALYST_BACKUP_OFFSITE: [user@]host:path over SSH, or an absolute local path); None = no copy.
    backup_dir: Path = Path("/var/backups/catalyst")
    backup_offsite: str | None = None
    # healthchecks.io Management API (catalyst monitoring sync): its key (secret) and base URL.
    hc_api_key: Secret | None = None
    hc_api_url: str = "https://healthchecks.io"
    # Variable name -> where its value came from: a file path, "environment" or "default".
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def url_mode(self) -> Mode:
        """What the base URL points at (paper or live), for the live guard to compare with ``mode``."""
        return url_mode(self.base_url)


# ------------------------------------------------------------------------------------------ parsing


def url_mode(base_url: str) -> Mode:
    """``"paper"`` if the URL is a paper endpoint, ``"live"`` otherwise.

    Paper: the host starts with ``paper-api.`` (Alpaca's paper API) or the first path segment is
    ``paper`` (the simulator serves the paper account under ``http://HOST:PORT/paper``). Anything else,
    including anything unparsable, is treated as live: the live guard then demands a passed gate.
    """
    try:
        parts = urlsplit(base_url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return "live"
    if host.startswith("paper-api."):
        return "paper"
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[0].lower() == "paper":
        return "paper"
    return "live"


def _unquote(raw: str, where: str) -> str:
    """Value of a KEY=VALUE line: optional matching quotes; unquoted values drop a ` # comment`."""
    if re.match(r"\s+#", raw):  # KEY=   # comment  -> empty value
        return ""
    value = raw.strip()
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        if end == -1:
            raise ConfigError(f"{where}: unterminated {quote} quote")
        rest = value[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError(f"{where}: unexpected text after the closing quote")
        return value[1:end]
    comment = re.search(r"\s#", value)
    if comment:
        value = value[: comment.start()]
    return value.strip()


def parse_env_file(path: Path, *, secret: bool = False) -> dict[str, tuple[str, int]]:
    """Parse a ``KEY=VALUE`` file into ``{KEY: (value, line_number)}``.

    Blank lines and ``#`` comments are skipped; ``export KEY=VALUE`` is accepted; values may be quoted
    with ``'`` or ``"``; unquoted values may end with `` # comment``. Malformed lines and duplicate keys
    raise ``ConfigError`` naming the file and line (never echoing the line of a ``secret`` file).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} not found") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    result: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path} line {number}"
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        key, sep, raw = stripped.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.match(key):
            shown = "" if secret else f": {line.strip()!r}"
            raise ConfigError(f"{where}: expected KEY=VALUE with an upper-case KEY{shown}")
        if key in result:
            raise ConfigError(f"{key} in {path}: set twice (lines {result[key][1]} and {number})")
        result[key] = (_unquote(raw, f"{key} in {where}"), number)
    return result


def _check_secret_file_mode(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path} not found; it must hold ALPACA_API_KEY, ALPACA_SECRET_KEY and DATABASE_URL"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode not in _ALLOWED_SECRET_MODES:
        raise ConfigError(
            f"{path} has mode {mode:04o}; a secrets file must be readable by its owner only "
            f"(0400 or 0600): run chmod 600 {path}"
        )


class _Values:
    """Merged raw values with their sources, plus typed readers that raise named errors."""

    def __init__(self) -> None:
        self.raw: dict[str, str] = {}
        self.sources: dict[str, str] = {}

    def set(self, key: str, value: str, source: str) -> None:
        self.raw[key] = value
        self.sources[key] = source

    def where(self, key: str) -> str:
        source = self.sources.get(key, "default")
        if source == "environment":
            return f"{key} in the process environment"
        if source == "default":
            return f"{key} (default)"
        return f"{key} in {source}"

    def get(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or value == "":
            default = DEFAULTS.get(key)
            if default is not None:
                self.sources[key] = "default"
            return default
        return value

    def required(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            home = SECRETS_ENV if key in SECRET_VARIABLES else CATALYST_ENV
            if key in self.raw:
                raise ConfigError(f"{self.where(key)} is empty; it is required")
            raise ConfigError(f"{key} is not set; it is required (put it in {home})")
        return value

    def bad(self, key: str, value: str | None, expected: str) -> ConfigError:
        shown = "the value" if value is None or key in SECRET_VARIABLES else repr(value)
        return ConfigError(f"{self.where(key)}: {shown} {expected}")


def _number(values: _Values, key: str, text: str, example: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise values.bad(key, text, f"is not a number; expected {example}") from None
    if not math.isfinite(number):
        raise values.bad(key, text, f"is not a finite number; expected {example}")
    return number


def _fraction(values: _Values, key: str, text: str) -> float:
    number = _number(values, key, text, "a fraction such as 0.005")
    if not 0.0 < number < 1.0:
        raise values.bad(key, text, "is out of range; expected a fraction 0 < x < 1 such as 0.005 (0.5%)")
    return number


def _positions(values: _Values, key: str, text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise values.bad(key, text, "is not a whole number; expected an integer >= 1 such as 3") from None
    if number < 1:
        raise values.bad(key, text, "is out of range; expected an integer >= 1 such as 3")
    return number


def _url(values: _Values, key: str, text: str, what: str) -> str:
    secret = key in SECRET_VARIABLES
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise values.bad(key, text, f"is not a valid URL; expected {what}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise values.bad(key, text, f"is not an http(s) URL with a host; expected {what}")
    if not secret and (parts.username is not None or parts.password is not None):
        raise values.bad(
            key, None, f"contains credentials (user:password@); expected {what} (keys go in secrets.env)"
        )
    if not secret and (parts.query or parts.fragment):
        raise values.bad(key, text, f"has a query or fragment; expected {what}")
    return text


def _database_url(values: _Values, text: str) -> str:
    key = "DATABASE_URL"
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("postgresql", "postgres"):
            raise values.bad(
                key,
                None,
                "has an unsupported scheme; expected postgresql://USER:PASSWORD@HOST/catalyst_trading",
            )
    elif "=" not in text:
        raise values.bad(key, None, "is neither a postgresql:// URL nor a 'key=value' connection string")
    return text


def _abs_path(values: _Values, key: str, text: str) -> Path:
    path = Path(text)
    if not path.is_absolute():
        raise values.bad(key, text, "is not an absolute path")
    return path


_OFFSITE_RE = re.compile(r"(?:[A-Za-z0-9._-]+@)?(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):[^\s]*\Z")
_OFFSITE_PASSWORD_RE = re.compile(r"[^@/]*:[^@/]*@")  # user:password@host


def _offsite(values: _Values, text: str | None) -> str | None:
    """``[user@]host:path`` (rsync/scp over SSH, key-based) or an absolute local path; no credentials."""
    if text is None:
        return None
    if (text.startswith("/") and not any(c.isspace() for c in text)) or (
        not text.startswith("-") and "://" not in text and not _OFFSITE_PASSWORD_RE.match(text)
        and _OFFSITE_RE.match(text)
    ):
        return text
    # The value is not echoed: a malformed target might carry a password.
    raise values.bad("CATALYST_BACKUP_OFFSITE", None,
                     "is not a copy target; expected [user@]host:/path (SSH with the service user's key, "
                     "no password) or an absolute local path")


def _universe(values: _Values, text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    key = "CATALYST_UNIVERSE"
    symbols: list[str] = []
    for item in text.split(","):
        symbol = item.strip().upper()
        if not symbol:
            continue
        if not _SYMBOL_RE.match(symbol):
            raise values.bad(key, text, f"contains {item.strip()!r}, which is not a ticker symbol")
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        return None
    return tuple(symbols)


def load_config(config_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``catalyst.env`` and ``secrets.env`` from the config directory.

    ``config_dir`` defaults to ``$CATALYST_CONFIG_DIR`` (looked up in ``environ``) or ``/etc/catalyst``;
    ``environ`` defaults to ``os.environ`` and may override non-secret settings only. Raises
    ``ConfigError`` naming the variable (and file) and what is expected.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    if config_dir is None:
        configured = env.get(CONFIG_DIR_VARIABLE, "").strip()
        config_dir = Path(configured) if configured else DEFAULT_CONFIG_DIR
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise ConfigError(
            f"config directory {config_dir} not found (set {CONFIG_DIR_VARIABLE} or create it with "
            f"{CATALYST_ENV} and {SECRETS_ENV})"
        )

    settings_path = config_dir / CATALYST_ENV
    secrets_path = config_dir / SECRETS_ENV
    settings = parse_env_file(settings_path)
    _check_secret_file_mode(secrets_path)
    secrets = parse_env_file(secrets_path, secret=True)

    values = _Values()
    for key, (value, line) in settings.items():
        if key in SECRET_VARIABLES:
            raise ConfigError(
                f"{key} in {settings_path} line {line}: {key} is a secret; move it to {secrets_path} "
                "(mode 0600) and remove it from this file"
            )
        if key not in SETTING_VARIABLES:
            raise ConfigError(
                f"{key} in {settings_path} line {line}: unknown setting; known settings: "
                f"{', '.join(sorted(SETTING_VARIABLES))}"
            )
        values.set(key, value, str(settings_path))
    for key, (value, line) in secrets.items():
        if key in SETTING_VARIABLES:
            raise ConfigError(
                f"{key} in {secrets_path} line {line}: not a secret; move it to {settings_path}"
            )
        if key not in SECRET_VARIABLES:
            raise ConfigError(
                f"{key} in {secrets_path} line {line}: unknown secret; known secrets: "
                f"{', '.join(sorted(SECRET_VARIABLES))}"
            )
        values.set(key, value, str(secrets_path))
    # The process environment may override settings (tests, demo), never secrets.
    # An empty environment variable does not override (it must not silently drop a file's limit).
    for key in SETTING_VARIABLES:
        override = env.get(key, "").strip()
        if override:
            values.set(key, override, "environment")

    # Required variables first, so a missing one names itself before anything else is checked.
    for key in REQUIRED_VARIABLES:
        if key in SECRET_VARIABLES and values.get(key) is None and env.get(key):
            raise ConfigError(
                f"{key} is not set in {secrets_path}; it is set in the process environment, but secrets "
                f"are read only from {secrets_path}: put it there"
            )
        values.required(key)

    mode_text = values.required("ALPACA_MODE")
    mode: Mode
    if mode_text == "paper":
        mode = "paper"
    elif mode_text == "live":
        mode = "live"
    else:
        raise values.bad("ALPACA_MODE", mode_text, "is not a mode; expected paper or live")

    base_url = _url(
        values, "ALPACA_BASE_URL", values.required("ALPACA_BASE_URL"), "e.g. https://api.alpaca.markets"
    ).rstrip("/")

    env_limits: dict[str, float | int] = {}
    for key in LIMIT_VARIABLES:
        text = values.get(key)
        if text is None:
            continue
        env_limits[key] = (
            _positions(values, key, text) if key == "MAX_POSITIONS" else _fraction(values, key, text)
        )

    size_text = values.required("LIVE_ACCOUNT_SIZE")
    live_account_size = _number(values, "LIVE_ACCOUNT_SIZE", size_text, "a dollar amount such as 10000")
    if live_account_size <= 0:
        raise values.bad("LIVE_ACCOUNT_SIZE", size_text, "is out of range; expected a dollar amount > 0")

    timeout_text = values.required("CATALYST_HEARTBEAT_TIMEOUT")
    heartbeat_timeout = _number(values, "CATALYST_HEARTBEAT_TIMEOUT", timeout_text, "seconds such as 5")
    if not 0 < heartbeat_timeout <= _MAX_HEARTBEAT_TIMEOUT:
        raise values.bad(
            "CATALYST_HEARTBEAT_TIMEOUT",
            timeout_text,
            f"is out of range; expected seconds 0 < x <= {_MAX_HEARTBEAT_TIMEOUT:g}",
        )

    strategy = values.required("CATALYST_STRATEGY")
    if not _STRATEGY_RE.match(strategy):
        raise values.bad("CATALYST_STRATEGY", strategy, "is not a strategy name; expected e.g. orb")

    hc_ping_urls: dict[str, Secret | None] = {}
    for check, key in HC_CHECKS.items():
        text = values.get(key)
        hc_ping_urls[check] = (
            None if text is None else Secret(_url(values, key, text, "a healthchecks ping URL"))
        )
    paper_key = values.get("ALPACA_PAPER_API_KEY")
    data_text = values.get("ALPACA_DATA_URL")
    data_url = None if data_text is None else _url(values, "ALPACA_DATA_URL", data_text, "a market data URL")
    skew_text = values.required("CATALYST_CLOCK_SKEW_MAX")
    clock_skew_max = _number(values, "CATALYST_CLOCK_SKEW_MAX", skew_text, "seconds such as 60, or 0 for off")
    if clock_skew_max < 0:
        raise values.bad("CATALYST_CLOCK_SKEW_MAX", skew_text, "must be >= 0 (0 turns the check off)")

    live_key = values.get("ALPACA_LIVE_API_KEY")
    live_secret = values.get("ALPACA_LIVE_SECRET_KEY")
    live_base_url = _url(values, "ALPACA_LIVE_BASE_URL", values.required("ALPACA_LIVE_BASE_URL"),
                         "the live trading URL such as https://api.alpaca.markets").rstrip("/")

    cadence_text = values.required("CATALYST_CYCLE_MINUTES")
    if not cadence_text.isdigit() or not 1 <= int(cadence_text) <= 30:
        raise values.bad("CATALYST_CYCLE_MINUTES", cadence_text, "is not a whole number of minutes from 1 to 30")

    hc_api_key = values.get("HC_API_KEY")
    hc_api_url = _url(values, "HC_API_URL", values.required("HC_API_URL"), "the healthchecks base URL").rstrip("/")

    return Config(
        config_dir=config_dir,
        mode=mode,
        base_url=base_url,
        api_key=Secret(values.required("ALPACA_API_KEY")),
        secret_key=Secret(values.required("ALPACA_SECRET_KEY")),
        database_url=Secret(_database_url(values, values.required("DATABASE_URL"))),
        live_account_size=live_account_size,
        env_limits=env_limits,
        log_file=_abs_path(values, "CATALYST_LOG_FILE", values.required("CATALYST_LOG_FILE")),
        state_dir=_abs_path(values, "CATALYST_STATE_DIR", values.required("CATALYST_STATE_DIR")),
        report_dir=_abs_path(values, "CATALYST_REPORT_DIR", values.required("CATALYST_REPORT_DIR")),
        strategy=strategy,
        universe=_universe(values, values.get("CATALYST_UNIVERSE")),
        hc_ping_urls=hc_ping_urls,
        paper_api_key=None if paper_key is None else Secret(paper_key),
        heartbeat_timeout=heartbeat_timeout,
        data_url=data_url.rstrip("/") if data_url else None,
        clock_skew_max=clock_skew_max,
        live_api_key=None if live_key is None else Secret(live_key),
        live_secret_key=None if live_secret is None else Secret(live_secret),
        live_base_url=live_base_url,
        cycle_minutes=int(cadence_text),
        hc_api_key=None if hc_api_key is None else Secret(hc_api_key),
        hc_api_url=hc_api_url,
        backup_dir=_abs_path(values, "CATALYST_BACKUP_DIR", values.required("CATALYST_BACKUP_DIR")),
        backup_offsite=_offsite(values, values.get("CATALYST_BACKUP_OFFSITE")),
        sources=dict(values.sources),
    )


# ------------------------------------------------------------------------------------------- limits


def effective_limits(
    phase: Limits | Phase, env: Mapping[str, float | int], phase_name: str | None = None
) -> Limits:
    """The phase's limits, tightened by the environment overrides in ``env`` (keyed by variable name).

    ``phase`` is a :class:`Limits` or a :class:`Phase` (whose name then appears in errors; or pass
    ``phase_name``). Overrides may only tighten (lower or equal); a looser, non-positive, non-finite or
    unknown one raises ``LimitsError`` naming the variable, its value, the phase's value and the phase.
    """
    if isinstance(phase, Phase):
        phase_name = phase_name or phase.name
        phase = phase.limits
    label = f"the {phase_name} phase" if phase_name else "the phase"
    fields: dict[str, float | int] = phase.as_dict()
    for key, value in env.items():
        name = LIMIT_VARIABLES.get(key)
        if name is None:
            raise LimitsError(f"{key}: not a limit variable; expected one of {', '.join(LIMIT_VARIABLES)}")
        current = fields[name]
        if name == "max_positions":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LimitsError(f"{key}={value!r} is not a whole number >= 1")
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 < value < 1
        ):
            raise LimitsError(f"{key}={value!r} is not a fraction 0 < x < 1")
        if value > current:
            raise LimitsError(
                f"{key}={value:g} would loosen {label} ({current:g}); "
                "environment limits may only tighten a phase"
            )
        fields[name] = value
    return Limits(
        max_positions=int(fields["max_positions"]),
        risk_per_trade=float(fields["risk_per_trade"]),
        max_daily_loss=float(fields["max_daily_loss"]),
        max_account_risk=float(fields["max_account_risk"]),
    )
