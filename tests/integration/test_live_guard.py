"""The live guard through the real stack: every mismatch between ALPACA_MODE, the base URL, the keys and the
database's go-live record refuses to trade, names the cause, records a risk event, and writes nothing to the
broker (no order, and no POST/DELETE/PATCH reached the simulator at all)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.integration.conftest import watch_requests

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def writes(agent: Any) -> list[dict[str, Any]]:
    return [h for h in agent.world.faults.history if h["method"] != "GET"]


def all_orders(agent: Any) -> dict[str, list[str]]:
    with agent.world.lock:
        return {name: [o.id for o in acct.orders] for name, acct in agent.world.accounts.items()}


def risk_events(agent: Any) -> list[dict[str, Any]]:
    with agent.store() as store:
        return [dict(r) for r in store.risk_events_since(EPOCH)]


MISMATCHES = {
    # id: (ALPACA_MODE, account the URL points at, extra secrets, words the refusal must contain)
    "live-mode-on-the-paper-url": ("live", "paper", {}, "ALPACA_MODE=live but ALPACA_BASE_URL points at the paper"),
    "paper-mode-on-the-live-url": ("paper", "live", {}, "ALPACA_MODE=paper but ALPACA_BASE_URL points at the live"),
    "live-without-a-go-live-record": ("live", "live", {}, "live mode without a passed go-live gate"),
    "the-paper-key-on-the-live-url": ("live", "live", {"ALPACA_PAPER_API_KEY": "sim-live-key"},
                                      "the paper API key is configured for the live endpoint"),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_a_mismatch_refuses_names_the_cause_and_writes_nothing(agent: Any, case: str) -> None:
    mode, account, secrets, cause = MISMATCHES[case]
    agent.write_config(mode=mode, account=account, secrets=secrets)
    if case == "the-paper-key-on-the-live-url":
        agent.go_live_record()  # the gate passed: the key alone must refuse
    agent.to_open(20)  # the market is open: a cycle would trade if it were let through
    before = all_orders(agent)
    watch_requests(agent)

    out = agent.cycle()
    assert out.outcome == "refused", out.message
    assert out.exit_code == 3
    assert cause in out.message

    r = agent.cli("cycle", "--json")
    assert r.returncode == 3, (r.stdout, r.stderr)
    printed = json.loads(r.stdout)
    assert printed["outcome"] == "refused" and cause in printed["message"]

    assert all_orders(agent) == before, "the refusal left every order list unchanged"
    # config-only mismatches are refused before any broker call; the others after reads only
    assert writes(agent) == [], "nothing but reads reached the broker"

    events = [e for e in risk_events(agent) if e["rule"] == "live_guard"]
    assert len(events) == 2 and all(e["severity"] == "breach" and e["mode"] == mode for e in events)
    assert all(cause in e["detail"]["refusal"] for e in events)
    with agent.store() as store:
        last = store.last_cycle(mode=mode)
    assert last is not None and last["outcome"] == "refused"
    fails = [p for p in agent.hc.pings_for(agent.hc.uuid_of("cycle")) if p.kind == "fail"]
    assert len(fails) == 2 and all(cause in p.body for p in fails), "the phone hears why"


def test_paper_keys_on_the_live_url_trade_nothing(agent: Any) -> None:
    """Paper keys on the live URL are refused by name before any broker call (which would only say 401)."""
    agent.write_config(mode="live", account="live", keys="paper")
    agent.go_live_record()
    agent.to_open(20)
    before = all_orders(agent)
    out = agent.cycle()
    assert out.outcome == "refused", out.message
    assert "the paper API key is configured for the live endpoint" in out.message
    r = agent.cli("cycle", "--json")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["outcome"] == "refused"
    assert all_orders(agent) == before
    # without ALPACA_PAPER_API_KEY the guard cannot tell, and the live endpoint's own 401 stops the cycle
    agent.write_config(mode="live", account="live", keys="paper", secrets={"ALPACA_PAPER_API_KEY": "other-key"})
    out = agent.cycle()
    assert out.outcome == "error", out.message
    assert "401" in out.message or "not authorized" in out.message
    assert all_orders(agent) == before


def test_live_with_a_go_live_record_runs(agent: Any) -> None:
    agent.write_config(mode="live", account="live")
    agent.go_live_record()
    agent.to_open(20)
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    assert out.detail["phase"] == "conservative"
    assert out.detail["limits"]["max_positions"] == 3
    agent.advance(1)
    r = agent.cli("cycle", "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["outcome"] == "ok"
    assert not [e for e in risk_events(agent) if e["rule"] == "live_guard"]
    # the market closed: the live cycle still runs (fast) and exits 0
    with agent.world.lock:
        agent.world.advance_to(agent.world.next_close())
        agent.world.advance(5)
    assert agent.cycle().outcome == "closed"


def test_paper_with_no_go_live_record_runs(agent: Any) -> None:
    agent.to_open(20)
    out = agent.cycle()
    assert out.outcome == "ok", out.message
    assert not [e for e in risk_events(agent) if e["rule"] == "live_guard"]
