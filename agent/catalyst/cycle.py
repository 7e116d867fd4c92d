"""One cycle: reconcile → enforce risk → strategy → size → submit → persist → heartbeat.

Run by cron every minute while the market is open (``catalyst cycle``), under the cycle lock.
Time comes from the broker's clock. A closed market exits fast and still pings. The halt flag is
read at the start and again before every order. Any surprise while positions are open is a critical
error, and a critical error with positions open stops trading (procedure 4.2).
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .broker.models import (
    AccountInfo,
    BrokerError,
    ClockInfo,
    OrderInfo,
    OrderRejected,
    PositionInfo,
    stop_prices,
)
from .config import Config, LimitsError, effective_limits
from .guard import check_live_guard, config_problems
from .halt import read_halt
from .heartbeat import summary_body
from .killswitch import PENDING_NAME, FlattenBroker, emergency_stop, sync_pending
from .lock import LockBusy, cycle_lock
from .log import fields
from .market_data import MarketData, UniverseError
from .phases import Limits, PhaseTable
from .reconcile import reconcile, record_entry
from .risk import (
    AccountState,
    PendingEntry,
    PositionState,
    Trigger,
    check_entry,
    evaluate_triggers,
    investigate_warnings,
    position_size,
)
from .strategy.base import Strategy

log = logging.getLogger("catalyst.cycle")

EXIT_CODES = {"ok": 0, "closed": 0, "skipped": 0, "halted": 3, "refused": 3, "stopped": 5, "error": 4}
FLAT_BEFORE_CLOSE = timedelta(minutes=10)
ENTRY_TIMEOUT = timedelta(minutes=15)
COST_PER_SHARE = 0.02  # commission + slippage allowance in sizing (procedure 7.1)
MIN_POSITION_VALUE = 1_000.0  # an entry cut below this by buying power is not worth its costs


class Pinger(Protocol):
    def start(self, check: str, rid: str) -> bool: ...
    def success(self, check: str, rid: str | None = None, body: str = "") -> bool: ...
    def fail(self, check: str, rid: str | None = None, body: str = "") -> bool: ...
    def log(self, check: str, rid: str | None = None, body: str = "") -> bool: ...


class TradingBroker(Protocol):
    def clock(self) -> ClockInfo: ...
    def account(self) -> AccountInfo: ...
    def positions(self) -> list[PositionInfo]: ...
    def orders(self, status: str = "all", after: datetime | None = None, limit: int = 500) -> list[OrderInfo]: ...
    def order_by_client_id(self, client_order_id: str) -> OrderInfo | None: ...
    def fills(self, after: datetime | None = None) -> list[dict[str, Any]]: ...
    def session(self, day: Any) -> tuple[datetime, datetime] | None: ...
    def submit_bracket(self, client_order_id: str, symbol: str, qty: int, limit_price: float,
                       take_profit: float, stop_loss: float, time_in_force: str = "day") -> OrderInfo: ...
    def submit_stop(self, client_order_id: str, symbol: str, qty: int, stop_price: float) -> OrderInfo: ...
    def submit_market_sell(self, client_order_id: str, symbol: str, qty: int) -> OrderInfo: ...
    def cancel(self, order_id: str) -> None: ...


@dataclass
class CycleOutcome:
    run_id: str
    outcome: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


@dataclass
class CycleDeps:
    config: Config
    broker: TradingBroker
    pinger: Pinger
    table: PhaseTable
    strategy: Strategy
    market: MarketData
    open_store: Callable[[], Any]
    flatten_broker: Callable[[], FlattenBroker]


def record_submitted(store: Any, coid: str, bo: OrderInfo) -> None:
    """The broker has the order: keep its id, status and any fill it already made."""
    store.mark_order_submitted(coid, bo.id, "submitted")
    store.update_order_from_broker(coid, bo.status, bo.filled_qty, bo.filled_avg_price, bo.id)


def client_order_id(kind: str, mode: str, symbol: str, at: datetime, run_id: str) -> str:
    """Ours, unique and readable: ``cat-<mode>-<kind>-<symbol>-<yyyymmddHHMM>-<run>``."""
    return f"cat-{mode}-{kind}-{symbol}-{at.strftime('%Y%m%d%H%M')}-{run_id[:8]}"


def working(orders: Sequence[OrderInfo]) -> Iterator[OrderInfo]:
    """The open orders and legs the broker is working: a leg held behind an open (not completely filled) parent
    is not working yet."""
    for o in orders:
        for x in o.walk():
            if x.is_open and (x is o or not o.is_open):
                yield x


def active_stops(orders: Sequence[OrderInfo]) -> dict[str, int]:
    """Shares protected by a working stop, per symbol. A leg held behind an unfilled parent protects nothing."""
    covered: dict[str, int] = {}
    for x in working(orders):
        if x.side == "sell" and x.is_stop:
            covered[x.symbol] = covered.get(x.symbol, 0) + x.qty - x.filled_qty
    return covered


class Cycle:
    def __init__(self, deps: CycleDeps) -> None:
        self.d = deps
        self.cfg = deps.config
        self.mode = deps.config.mode
        self.now: datetime | None = None  # the broker's time at the start of this cycle
        self._t0 = 0.0

    def _broker_time(self) -> datetime | None:
        """Broker time now: the cycle's broker clock reading plus the time spent since."""
        return None if self.now is None else self.now + timedelta(seconds=time.monotonic() - self._t0)

    def _risk(self, store: Any, run_id: uuid.UUID, phase: str | None, rule: str, severity: str,
              symbol: str | None = None, **detail: Any) -> None:
        store.record_risk_event(rule=rule, severity=severity, symbol=symbol, mode=self.mode, phase=phase,
                                run_id=run_id, detail=detail, occurred_at=self._broker_time())

    def _finish(self, store: Any, run_id: uuid.UUID, outcome: str, detail: dict[str, Any],
                error: str | None = None) -> None:
        store.finish_cycle(run_id, outcome, detail, error, finished_at=self._broker_time())

    # ---------------------------------------------------------------- entry point
    def run(self) -> CycleOutcome:
        run_id = uuid.uuid4()
        rid = str(run_id)
        try:
            with cycle_lock(self.cfg.state_dir):
                self.d.pinger.start("cycle", rid)  # a run opens only when it can finish: never for a skip
                out = self._locked(run_id)
        except LockBusy as exc:
            self.d.pinger.log("cycle", rid, f"skipped: {exc}")
            out = CycleOutcome(rid, "skipped", str(exc))
        log.info("cycle %s: %s", out.outcome, out.message, extra=fields(run_id=rid[:8], mode=self.mode))
        return out

    def _early(self, rid: str, outcome: str, message: str, ok: bool = False) -> CycleOutcome:
        body = f"mode={self.mode} {outcome}: {message}"
        if ok:
            self.d.pinger.success("cycle", rid, body)
        else:
            self.d.pinger.fail("cycle", rid, body)
        return CycleOutcome(rid, outcome, message)

    def _locked(self, run_id: uuid.UUID) -> CycleOutcome:
        rid = str(run_id)
        halt = read_halt(self.cfg.state_dir)
        if halt is not None:
            self._sync_pending_while_halted()
            return self._early(rid, "halted", halt.describe() + "; `catalyst emergency-resume` lifts it")
        problems = config_problems(self.cfg)
        if problems:
            return self._refuse_early(run_id, "live guard refused: " + "; ".join(problems))
        try:
            clock = self.d.broker.clock()
        except BrokerError as exc:
            return self._early(rid, "error", f"broker clock unavailable: {exc}")
        self.now, self._t0 = clock.timestamp, time.monotonic()
        if not clock.is_open:
            return self._early(rid, "closed", f"market closed; next open {clock.next_open.isoformat()}", ok=True)
        try:
            store = self.d.open_store()
        except Exception as exc:
            return self._early(rid, "error", f"database unavailable ({exc}); no orders this cycle; "
                                             "stops already at the broker keep protecting open positions")
        with store:
            return self._with_store(store, run_id, clock)

    def _fills_after(self, store: Any, session_open: datetime) -> datetime:
        """Fetch fills from just before the newest one recorded (inserts are idempotent), at most a day back."""
        last = store.last_fill_time(mode=self.mode)
        floor = session_open - timedelta(days=1)
        return max(floor, last - timedelta(seconds=1)) if last is not None else floor

    def _refuse_early(self, run_id: uuid.UUID, refusal: str) -> CycleOutcome:
        """Refuse before any broker call; record it when the database answers."""
        try:
            with self.d.open_store() as store:
                phase = store.current_phase() if self.mode == "live" else "paper"
                store.start_cycle(run_id, datetime.now(UTC), self.mode, phase)
                self._record_refusal(store, run_id, phase, refusal)
        except Exception as exc:
            log.warning("refusal not recorded: database unavailable (%s)", type(exc).__name__)
        return self._early(str(run_id), "refused", refusal)

    def _record_refusal(self, store: Any, run_id: uuid.UUID, phase: str | None, refusal: str) -> None:
        self._risk(store, run_id, phase, "live_guard", "breach", refusal=refusal)
        self._finish(store, run_id, "refused", {"refusal": refusal}, refusal)

    def _sync_pending_while_halted(self) -> None:
        """An emergency stop that found the database down left its record in the pending file; the halt
        flag it also wrote stops every later cycle before ``_with_store``, so write the record here."""
        if not (self.cfg.state_dir / PENDING_NAME).exists():
            return
        try:
            with self.d.open_store() as store:
                synced = sync_pending(store, self.cfg.state_dir)
            log.warning("wrote %d emergency record(s) kept while the database was down", synced)
        except Exception as exc:
            log.warning("emergency record(s) still pending: database unavailable (%s)", type(exc).__name__)

    def _with_store(self, store: Any, run_id: uuid.UUID, clock: ClockInfo) -> CycleOutcome:
        rid = str(run_id)
        synced = sync_pending(store, self.cfg.state_dir)
        if synced:
            log.warning("wrote %d emergency record(s) kept while the database was down", synced)
        db_halt = store.active_halt()
        if db_halt is not None:
            return self._early(rid, "halted", f"halted in the database since {db_halt['halted_at']}: "
                                              f"{db_halt['reason']}; `catalyst emergency-resume` lifts it")
        phase_name = store.current_phase() if self.mode == "live" else "paper"
        store.start_cycle(run_id, clock.timestamp, self.mode, phase_name, broker_time=clock.timestamp)
        verdict = check_live_guard(self.cfg, store.latest_go_live(passed_only=True))
        refusal = None if verdict.allowed else verdict.describe()
        limits: Limits | None = None
        if refusal is None:
            try:
                phase = self.d.table.get(phase_name) if phase_name != "paper" else self.d.table.paper
                limits = effective_limits(phase, self.cfg.env_limits)
            except (LimitsError, KeyError) as exc:
                refusal = f"limits refused: {exc}"
        if refusal is not None or limits is None or phase_name is None:
            refusal = refusal or "no phase recorded for live mode; run `catalyst go-live`"
            self._record_refusal(store, run_id, phase_name, refusal)
            return self._early(rid, "refused", refusal)
        try:
            return self._trade(store, run_id, clock, phase_name, limits)
        except Exception as exc:
            return self._critical(store, run_id, phase_name, exc)

    # ---------------------------------------------------------------- the pass
    def _trade(self, store: Any, run_id: uuid.UUID, clock: ClockInfo, phase: str, limits: Limits) -> CycleOutcome:
        rid = str(run_id)
        broker = self.d.broker
        now = clock.timestamp
        session = broker.session(now.astimezone(clock.next_close.tzinfo).date())
        if session is None:
            raise RuntimeError("the broker says the market is open but lists no session today")
        session_open, session_close = session
        account = broker.account()
        store.record_account_snapshot(mode=self.mode, equity=account.equity, last_equity=account.last_equity,
                                      cash=account.cash, buying_power=account.buying_power,
                                      long_market_value=account.long_market_value, status=account.status,
                                      taken_at=now)
        store.upsert_daily_equity(date=session_open.date(), mode=self.mode, equity=account.equity,
                                  last_equity=account.last_equity, pnl=account.day_pnl)
        orders = broker.orders(status="all", after=session_open - timedelta(days=5))
        positions = broker.positions()
        halts = store.halt_windows()
        rec = reconcile(store, broker, orders, positions, mode=self.mode, phase=phase, now=now,
                        fills_after=self._fills_after(store, session_open), halts=halts)
        detail: dict[str, Any] = {"reconcile": rec.as_dict(), "phase": phase, "limits": limits.as_dict()}
        for symbol in rec.adopted:  # recorded by reconcile; the phone hears it too (procedure 4.2: investigate)
            self.d.pinger.log("risk", None, f"INVESTIGATE unknown_position: {symbol} is held at the broker but "
                                            "Catalyst did not open it; adopted and protected with a stop")

        breaches, protected = self._protect(store, run_id, phase, now, positions, orders)
        if protected:
            orders = broker.orders(status="all", after=session_open - timedelta(days=5))
            positions = broker.positions()
        detail["protected"] = protected
        stops = stop_prices(orders)
        pstates = [PositionState(p.symbol, p.qty, p.avg_entry_price, p.current_price, stops.get(p.symbol))
                   for p in positions]
        acct_state = AccountState(account.equity, account.last_equity, account.buying_power)
        history = store.closed_positions(mode=self.mode) if rec.closed else []  # oldest close first
        closed_now, since = {sym for sym, _ in rec.closed}, session_open - timedelta(days=1)
        # the position each symbol closed this cycle (the latest close wins)
        last_close = {r["symbol"]: float(r["realized_pnl"] or 0) for r in history
                      if r["symbol"] in closed_now and r["closed_at"] >= since}
        triggers = evaluate_triggers(acct_state, pstates, limits, self.d.table,
                                     store.consecutive_execution_failures(mode=self.mode), False, breaches,
                                     sorted(last_close.items()))
        if rec.closed:  # the win rate changes only when a trade closes: warn then, not every minute
            triggers += investigate_warnings([float(r["realized_pnl"] or 0) for r in history[-10:]], self.d.table)
        self._record_triggers(store, run_id, phase, triggers)
        stop_now = [t for t in triggers if t.severity == "stop"]
        if stop_now:
            reason = "; ".join(f"{t.rule}: {t.detail}" for t in stop_now)
            result = self._auto_stop(reason, rid)
            detail["emergency"] = result
            self._finish(store, run_id, "stopped", detail, reason)
            return CycleOutcome(rid, "stopped", f"automatic emergency stop: {reason}", detail)

        if now >= session_close - FLAT_BEFORE_CLOSE:
            detail["eod"] = changed = self._flatten_eod(store, run_id, phase, now, positions, orders)
        else:
            detail["stale_entries_canceled"] = self._cancel_stale_entries(store, now, orders)
            detail["entries"] = self._enter(store, run_id, phase, limits, account, pstates, orders, now,
                                            session_open, session_close)
            changed = detail["entries"] or detail["stale_entries_canceled"]
        if changed or protected:  # orders may have filled or been canceled: end with the database matching the broker
            reconcile(store, broker, broker.orders(status="all", after=session_open - timedelta(days=5)),
                      broker.positions(), mode=self.mode, phase=phase, now=now, halts=halts,
                      fills_after=self._fills_after(store, session_open))
        self._finish(store, run_id, "ok", detail)
        body = summary_body(self.mode, phase, account.equity, len(positions), account.day_pnl)
        self.d.pinger.success("cycle", rid, body)
        return CycleOutcome(rid, "ok", body, detail)

    # ---------------------------------------------------------------- risk
    def _protect(self, store: Any, run_id: uuid.UUID, phase: str, now: datetime,
                 positions: Sequence[PositionInfo], orders: Sequence[OrderInfo]) -> tuple[list[str], list[str]]:
        """Every position gets a working stop now, or is closed. Returns (breaches, actions)."""
        covered = active_stops(orders)
        # An entry filled only in part holds its bracket legs back until the rest fills; a stop placed beside
        # them would protect those shares twice (and sell them twice) once it does. Cancel the rest of such an
        # entry (its held legs go with it), then protect what was bought with one stop.
        partial = [o for o in orders if o.side == "buy" and o.legs and o.status == "partially_filled"
                   and any(p.symbol == o.symbol and p.qty > covered.get(p.symbol, 0) for p in positions)]
        if partial:
            for o in partial:
                self.d.broker.cancel(o.id)
            now_known = {o.client_order_id: self.d.broker.order_by_client_id(o.client_order_id) for o in partial}
            orders = [now_known.get(o.client_order_id) or o for o in orders]
            covered = active_stops(orders)
        planned = {r["symbol"]: r for r in store.open_positions(mode=self.mode)}
        breaches: list[str] = []
        actions: list[str] = []
        for p in positions:
            missing = p.qty - covered.get(p.symbol, 0)
            if missing <= 0:
                continue
            row = planned.get(p.symbol)
            stop = float(row["stop_price"]) if row is not None and row["stop_price"] is not None else \
                round(p.avg_entry_price * (1 - self.d.table.single_position_loss_limit), 2)
            if read_halt(self.cfg.state_dir) is not None:
                breaches.append(f"{p.symbol}: no stop, and a halt arrived before one could be placed")
                continue
            # Shares held by other sell orders (a lone take-profit leg) must be freed for the stop.
            for x in working(orders):
                if x.symbol == p.symbol and x.side == "sell" and not x.is_stop:
                    self.d.broker.cancel(x.id)
            close_instead = p.current_price <= stop
            kind, intent = ("close", "exit") if close_instead else ("stop", "protective_stop")
            coid = client_order_id(kind, self.mode, p.symbol, now, str(run_id))
            store.record_order_intent(client_order_id=coid, broker_time=now, symbol=p.symbol, side="sell", qty=missing,
                                      order_type="market" if close_instead else "stop", intent=intent,
                                      mode=self.mode, time_in_force="day" if close_instead else "gtc",
                                      stop_price=None if close_instead else stop,
                                      position_id=row["position_id"] if row is not None else None)
            try:
                bo = (self.d.broker.submit_market_sell(coid, p.symbol, missing) if close_instead
                      else self.d.broker.submit_stop(coid, p.symbol, missing, stop))
                record_submitted(store, coid, bo)
                if bo.status == "rejected":  # accepted over HTTP, then refused: the position is still naked
                    raise OrderRejected(f"submit {coid}: the broker rejected the order")
                if row is not None and not close_instead and row["stop_price"] is None:
                    store.update_position_stop(row["position_id"], stop)
                what = (f"{p.symbol}: no working stop; price {p.current_price:.2f} at or under the stop "
                        f"{stop:.2f}, closed at market" if close_instead
                        else f"{p.symbol}: no working stop for {missing} share(s); placed a stop at {stop:.2f}")
                actions.append(what)
                self._risk(store, run_id, phase, "missing_stop", "info", p.symbol, action=what)
                log.warning(what)
            except BrokerError as exc:
                store.mark_order_failed(coid, str(exc), status="rejected" if isinstance(exc, OrderRejected)
                                        else "unknown")
                breaches.append(f"{p.symbol}: position without a stop, and placing one failed: {exc}")
        return breaches, actions

    def _record_triggers(self, store: Any, run_id: uuid.UUID, phase: str, triggers: Sequence[Trigger]) -> None:
        for t in triggers:
            self._risk(store, run_id, phase, t.rule, t.severity, detail=t.detail)
            level = logging.CRITICAL if t.severity == "stop" else logging.WARNING
            log.log(level, "%s trigger %s: %s", t.severity, t.rule, t.detail)
            if t.severity == "investigate":
                self.d.pinger.log("risk", None, f"INVESTIGATE {t.rule}: {t.detail}")

    def _auto_stop(self, reason: str, rid: str) -> dict[str, Any]:
        result = emergency_stop(
            state_dir=self.cfg.state_dir, reason=reason, broker=self.d.flatten_broker(), source="automatic",
            database_url=self.cfg.database_url.reveal(), pinger=self.d.pinger,
            log_file=self.cfg.log_file, report_dir=self.cfg.report_dir, deadline=30.0, mode=self.mode,
            cycle_rid=rid,
        )
        return result.as_dict()

    def _critical(self, store: Any, run_id: uuid.UUID, phase: str, exc: Exception) -> CycleOutcome:
        rid = str(run_id)
        message = f"critical error: {type(exc).__name__}: {exc}"
        log.critical("%s\n%s", message, traceback.format_exc())
        exposed: bool | None
        try:
            exposed = bool(self.d.broker.positions())
        except Exception:
            exposed = None
        detail: dict[str, Any] = {"error": message, "positions_open": exposed}
        try:
            self._risk(store, run_id, phase, "critical_error", "stop" if exposed is not False else "investigate",
                       error=message)
        except Exception:
            log.exception("could not record the critical error")
        outcome = "error"
        if exposed is not False:
            detail["emergency"] = self._auto_stop(f"critical error while positions are open: {message}", rid)
            outcome = "stopped"
        else:
            self.d.pinger.fail("cycle", rid, f"mode={self.mode} {message}")
        try:
            self._finish(store, run_id, outcome, detail, message)
        except Exception:
            log.exception("could not record the cycle's end")
        return CycleOutcome(rid, outcome, message, detail)

    # ---------------------------------------------------------------- orders
    def _cancel_stale_entries(self, store: Any, now: datetime, orders: Sequence[OrderInfo]) -> list[str]:
        stale = [o for o in orders if o.side == "buy" and o.is_open
                 and o.submitted_at is not None and now - o.submitted_at >= ENTRY_TIMEOUT]
        rows = store.orders_by_client_ids(o.client_order_id for o in stale)
        canceled = []
        for o in stale:
            row = rows.get(o.client_order_id)
            if row is not None and row["intent"] == "entry":
                self.d.broker.cancel(o.id)
                canceled.append(o.symbol)
        return canceled

    def _flatten_eod(self, store: Any, run_id: uuid.UUID, phase: str, now: datetime,
                     positions: Sequence[PositionInfo], orders: Sequence[OrderInfo]) -> list[str]:
        done = []
        # A position whose exit earlier in this window found no fill cannot be sold (its symbol is halted into the
        # close): another market sell would only take away the stop the protect step has put back. It stays under
        # that stop (GTC) until it trades again, and the phone hears it once.
        held_now = {p.symbol for p in positions}
        stuck = {o.symbol for o in orders if o.symbol in held_now and o.side == "sell" and o.filled_qty == 0
                 and o.client_order_id.startswith(f"cat-{self.mode}-eod-") and o.submitted_at is not None
                 and now - FLAT_BEFORE_CLOSE <= o.submitted_at < now}
        for x in working(orders):
            if x.symbol not in stuck:
                self.d.broker.cancel(x.id)
        told = {e["symbol"] for e in store.risk_events_since(now - FLAT_BEFORE_CLOSE)
                if e["rule"] == "eod_unfilled"} if stuck else set()
        for symbol in sorted(stuck - told):
            what = f"{symbol}: the exit before the close found no fill (not trading); kept under its stop"
            self._risk(store, run_id, phase, "eod_unfilled", "investigate", symbol, action=what)
            self.d.pinger.log("risk", None, f"INVESTIGATE eod_unfilled: {what}")
            log.warning(what)
        rows = {r["symbol"]: r for r in store.open_positions(mode=self.mode)}
        for p in positions:
            if p.symbol in stuck:
                continue
            coid = client_order_id("eod", self.mode, p.symbol, now, str(run_id))
            row = rows.get(p.symbol)
            store.record_order_intent(client_order_id=coid, broker_time=now, symbol=p.symbol, side="sell", qty=p.qty,
                                      order_type="market", intent="exit", mode=self.mode,
                                      position_id=row["position_id"] if row is not None else None)
            try:
                bo = self.d.broker.submit_market_sell(coid, p.symbol, p.qty)
                record_submitted(store, coid, bo)
                done.append(p.symbol)
            except BrokerError as exc:
                store.mark_order_failed(coid, str(exc), status="rejected" if isinstance(exc, OrderRejected)
                                        else "unknown")
                log.error("end-of-day exit failed for %s: %s", p.symbol, exc)
        return done

    def _enter(self, store: Any, run_id: uuid.UUID, phase: str, limits: Limits, account: AccountInfo,
               positions: Sequence[PositionState], orders: Sequence[OrderInfo], now: datetime,
               session_open: datetime, session_close: datetime) -> list[str]:
        pending = [PendingEntry(o.symbol, o.qty - o.filled_qty, o.limit_price or 0.0,
                                next((leg.stop_price for leg in o.legs if leg.is_stop), None))
                   for o in orders if o.side == "buy" and o.is_open and o.filled_qty == 0]
        entered_today = [o.symbol for o in orders if o.side == "buy" and o.submitted_at is not None
                         and o.submitted_at >= session_open]
        unsettled = [r["symbol"] for r in store.orders_in_states(("intent", "unknown", "submitted"), mode=self.mode)]
        held = frozenset([p.symbol for p in positions] + [p.symbol for p in pending] + entered_today + unsettled)
        try:
            view = self.d.market.view(now, session_open, session_close, held)
        except UniverseError as exc:
            raise RuntimeError(str(exc)) from None
        ideas, skips = self.d.strategy.signals(view)
        for s in skips:
            log.debug("skip %s: %s", s.symbol, s.reason)
        buying_power = account.buying_power
        results: list[str] = []
        for idea in ideas:
            acct = AccountState(account.equity, account.last_equity, buying_power)
            # one position may use at most its share of the account (equity / max_positions), so a tight stop
            # cannot put the whole account into one name and max_positions keeps its meaning
            budget = min(buying_power, account.equity / limits.max_positions)
            qty = position_size(account.equity, limits.risk_per_trade, idea.entry_price, idea.stop_price,
                                budget, COST_PER_SHARE)
            if qty < 1:
                results.append(f"{idea.symbol}: skipped (size 0: buying power ${buying_power:,.2f} or the risk "
                               f"budget cannot fund one share at {idea.entry_price:.2f} with the stop at "
                               f"{idea.stop_price:.2f})")
                log.debug("entry skipped for %s: size 0", idea.symbol)
                continue
            decision = check_entry(qty, idea, acct, positions, pending, limits)
            if decision.allowed and decision.qty * idea.entry_price < MIN_POSITION_VALUE:
                results.append(f"{idea.symbol}: skipped ({decision.qty} share(s) = "
                               f"${decision.qty * idea.entry_price:,.2f} < ${MIN_POSITION_VALUE:,.0f} minimum)")
                continue
            if not decision.allowed:
                results.append(f"{idea.symbol}: refused ({'; '.join(decision.reasons)})")
                log.info("entry refused for %s: %s", idea.symbol, "; ".join(decision.reasons))
                continue
            if read_halt(self.cfg.state_dir) is not None:
                results.append("halt arrived: no more entries")
                break
            coid = client_order_id("entry", self.mode, idea.symbol, now, str(run_id))
            store.record_order_intent(client_order_id=coid, broker_time=now, symbol=idea.symbol, side="buy",
                                      qty=decision.qty, order_type="limit", order_class="bracket", intent="entry",
                                      mode=self.mode, limit_price=idea.entry_price, stop_price=idea.stop_price,
                                      take_profit=idea.target_price, time_in_force="day")
            try:
                bo = self.d.broker.submit_bracket(coid, idea.symbol, decision.qty, idea.entry_price,
                                                  idea.target_price, idea.stop_price)
            except OrderRejected as exc:
                store.mark_order_failed(coid, str(exc), status="rejected")
                self._risk(store, run_id, phase, "order_rejected", "info", idea.symbol, error=str(exc))
                results.append(f"{idea.symbol}: rejected by the broker ({exc})")
                continue
            except BrokerError as exc:
                store.mark_order_failed(coid, str(exc), status="unknown")
                self._risk(store, run_id, phase, "execution_failure", "info", idea.symbol, error=str(exc))
                results.append(f"{idea.symbol}: outcome unknown ({exc}); reconciled next cycle")
                # the broker may hold it: count it against positions, risk and buying power like a live entry
                pending.append(PendingEntry(idea.symbol, decision.qty, idea.entry_price, idea.stop_price))
                buying_power -= decision.qty * idea.entry_price
                continue
            record_submitted(store, coid, bo)
            if bo.filled_qty > 0:  # a marketable limit fills on arrival: the position exists already
                row = store.get_order(coid)
                record_entry(store, bo, row, mode=self.mode, phase=phase, now=now)
            pending.append(PendingEntry(idea.symbol, decision.qty, idea.entry_price, idea.stop_price))
            buying_power -= decision.qty * idea.entry_price
            results.append(f"{idea.symbol}: buy {decision.qty} @ {idea.entry_price:.2f} stop "
                           f"{idea.stop_price:.2f} target {idea.target_price:.2f}")
            log.info("entry submitted", extra=fields(symbol=idea.symbol, qty=decision.qty, limit=idea.entry_price,
                                                     stop=idea.stop_price, target=idea.target_price, coid=coid))
        return results
