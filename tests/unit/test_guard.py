"""The live guard, pure: ALPACA_MODE, the base URL, the keys and the go-live record must all agree.

Configs are real ones, read by ``load_config`` from files in a temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalyst.config import Config, load_config
from catalyst.guard import check_live_guard

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
SIM_PAPER_URL = "http://127.0.0.1:8765/paper"
SIM_LIVE_URL = "http://127.0.0.1:8765/live"
API_KEY = "AKLIVEKEY0000000001"
PAPER_KEY = "PKPAPERKEY000000001"
GO_LIVE: dict[str, Any] = {"passed": True, "acknowledged_by": "operator", "acknowledgments": {"all": True}}


def config(tmp_path: Path, mode: str, url: str, *, api_key: str = API_KEY, paper_key: str | None = PAPER_KEY) -> Config:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "catalyst.env").write_text(
        f"ALPACA_MODE={mode}\nALPACA_BASE_URL={url}\nCATALYST_LOG_FILE={tmp_path}/log/trading.log\n"
        f"CATALYST_STATE_DIR={tmp_path}/state\nCATALYST_REPORT_DIR={tmp_path}/reports\n"
    )
    secrets = tmp_path / "secrets.env"
    secrets.write_text(
        f"ALPACA_API_KEY={api_key}\nALPACA_SECRET_KEY=s3cret-value\n"
        "DATABASE_URL=postgresql://catalyst_user:pw@127.0.0.1/catalyst_trading\n"
        + (f"ALPACA_PAPER_API_KEY={paper_key}\n" if paper_key is not None else "")
    )
    secrets.chmod(0o600)
    return load_config(tmp_path, environ={})


@pytest.mark.parametrize("url", [PAPER_URL, SIM_PAPER_URL])
def test_paper_on_a_paper_url_needs_no_go_live_record(tmp_path: Path, url: str) -> None:
    verdict = check_live_guard(config(tmp_path, "paper", url), None)
    assert verdict.allowed and verdict.problems == ()
    assert verdict.describe() == "live guard: OK"


@pytest.mark.parametrize("url", [LIVE_URL, SIM_LIVE_URL])
def test_live_on_a_live_url_with_an_acknowledged_go_live_record_is_allowed(tmp_path: Path, url: str) -> None:
    assert check_live_guard(config(tmp_path, "live", url), GO_LIVE).allowed


@pytest.mark.parametrize("url", [LIVE_URL, SIM_LIVE_URL])
def test_live_without_a_go_live_record_refuses(tmp_path: Path, url: str) -> None:
    verdict = check_live_guard(config(tmp_path, "live", url), None)
    assert not verdict.allowed
    assert verdict.problems == ("live mode without a passed go-live gate in the database; run `catalyst go-live`",)
    assert verdict.describe().startswith("live guard refused: live mode without a passed go-live gate")


@pytest.mark.parametrize("who", [None, ""])
def test_a_go_live_record_without_an_acknowledgment_refuses(tmp_path: Path, who: str | None) -> None:
    verdict = check_live_guard(config(tmp_path, "live", LIVE_URL), {**GO_LIVE, "acknowledged_by": who})
    assert not verdict.allowed
    assert len(verdict.problems) == 1 and "no operator acknowledgment" in verdict.problems[0]


@pytest.mark.parametrize("url", [PAPER_URL, SIM_PAPER_URL])
@pytest.mark.parametrize("go_live", [None, GO_LIVE], ids=["no-record", "record"])
def test_live_mode_on_a_paper_url_refuses_even_with_a_record(tmp_path: Path, url: str,
                                                               go_live: dict[str, Any] | None) -> None:
    verdict = check_live_guard(config(tmp_path, "live", url), go_live)
    assert not verdict.allowed
    assert any(p.startswith("ALPACA_MODE=live but ALPACA_BASE_URL points at the paper endpoint")
               for p in verdict.problems)


@pytest.mark.parametrize("url", [LIVE_URL, SIM_LIVE_URL])
@pytest.mark.parametrize("go_live", [None, GO_LIVE], ids=["no-record", "record"])
def test_paper_mode_on_a_live_url_refuses_even_with_a_record(tmp_path: Path, url: str,
                                                               go_live: dict[str, Any] | None) -> None:
    verdict = check_live_guard(config(tmp_path, "paper", url), go_live)
    assert not verdict.allowed
    assert any(p.startswith("ALPACA_MODE=paper but ALPACA_BASE_URL points at the live endpoint")
               for p in verdict.problems)
    # the live URL asks for the gate as well, whatever the mode says
    assert any("go-live gate" in p for p in verdict.problems) == (go_live is None)


@pytest.mark.parametrize("go_live", [None, GO_LIVE], ids=["no-record", "record"])
def test_the_paper_key_on_the_live_url_refuses(tmp_path: Path, go_live: dict[str, Any] | None) -> None:
    verdict = check_live_guard(config(tmp_path, "live", LIVE_URL, api_key=PAPER_KEY), go_live)
    assert not verdict.allowed
    assert "the paper API key is configured for the live endpoint; install the live keys" in verdict.problems
    assert PAPER_KEY not in verdict.describe(), "the refusal names the cause, never the key"


def test_the_paper_key_on_the_paper_url_is_fine(tmp_path: Path) -> None:
    assert check_live_guard(config(tmp_path, "paper", PAPER_URL, api_key=PAPER_KEY), None).allowed


def test_a_live_key_that_differs_from_the_paper_key_is_fine(tmp_path: Path) -> None:
    assert check_live_guard(config(tmp_path, "live", LIVE_URL, paper_key=PAPER_KEY), GO_LIVE).allowed
    assert check_live_guard(config(tmp_path / "nokey", "live", LIVE_URL, paper_key=None), GO_LIVE).allowed


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    verdict = check_live_guard(config(tmp_path, "paper", LIVE_URL, api_key=PAPER_KEY), None)
    assert len(verdict.problems) == 3
    text = verdict.describe()
    assert "ALPACA_MODE=paper" in text and "paper API key" in text and "go-live gate" in text
    assert text.count("; ") >= 2


@pytest.mark.parametrize("url", ["https://broker.example.com", "https://api.alpaca.markets/paper-ish",
                                 "http://127.0.0.1:8765/livepaper"])
def test_anything_not_clearly_paper_counts_as_live(tmp_path: Path, url: str) -> None:
    cfg = config(tmp_path, "paper", url)
    assert cfg.url_mode == "live"
    assert not check_live_guard(cfg, None).allowed
