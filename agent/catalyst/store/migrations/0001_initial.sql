-- Catalyst schema, version 1.
-- Money, prices and quantities are NUMERIC (exact, unconstrained scale so broker values are kept as sent);
-- every time is timestamptz. The trader's own queries (procedure PRIMARY-004 section 5.2) read
-- positions and securities directly, so those table and column names are part of the contract.

CREATE TABLE securities (
    security_id serial PRIMARY KEY,
    symbol      text NOT NULL UNIQUE CHECK (symbol <> '' AND symbol = upper(symbol)),
    name        text,
    exchange    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE positions (
    position_id           bigserial PRIMARY KEY,
    security_id           integer NOT NULL REFERENCES securities (security_id),
    direction             text NOT NULL CHECK (direction IN ('long', 'short')),
    qty                   numeric NOT NULL CHECK (qty > 0),
    entry_price           numeric CHECK (entry_price > 0),
    exit_price            numeric CHECK (exit_price > 0),
    stop_price            numeric CHECK (stop_price > 0),
    target_price          numeric CHECK (target_price > 0),
    -- money at risk when the position was opened: qty * |entry_price - stop_price|
    initial_risk          numeric CHECK (initial_risk >= 0),
    realized_pnl          numeric,
    status                text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'open', 'closed')),
    opened_at             timestamptz,
    closed_at             timestamptz,
    exit_reason           text CHECK (exit_reason IN ('target', 'stop', 'manual', 'emergency', 'eod', 'broker')),
    mode                  text NOT NULL CHECK (mode IN ('paper', 'live')),
    phase                 text,
    entry_client_order_id text UNIQUE,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT positions_open_has_entry
        CHECK (status = 'pending' OR (opened_at IS NOT NULL AND entry_price IS NOT NULL)),
    CONSTRAINT positions_closed_is_complete
        CHECK (status <> 'closed'
               OR (closed_at IS NOT NULL AND exit_price IS NOT NULL AND realized_pnl IS NOT NULL)),
    CONSTRAINT positions_not_closed_has_no_exit
        CHECK (status = 'closed' OR (closed_at IS NULL AND exit_reason IS NULL))
);
CREATE INDEX positions_status_opened_at_idx ON positions (status, opened_at);
CREATE INDEX positions_security_id_idx ON positions (security_id);
CREATE INDEX positions_closed_at_idx ON positions (closed_at);

CREATE TABLE orders (
    order_id               bigserial PRIMARY KEY,
    client_order_id        text NOT NULL UNIQUE CHECK (length(client_order_id) BETWEEN 1 AND 128),
    broker_order_id        text UNIQUE,
    position_id            bigint REFERENCES positions (position_id),
    parent_client_order_id text,
    security_id            integer NOT NULL REFERENCES securities (security_id),
    side                   text NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type             text NOT NULL
        CHECK (order_type IN ('market', 'limit', 'stop', 'stop_limit', 'trailing_stop')),
    order_class            text NOT NULL DEFAULT 'simple'
        CHECK (order_class IN ('simple', 'bracket', 'oco', 'oto', 'mleg')),
    qty                    numeric NOT NULL CHECK (qty > 0),
    limit_price            numeric CHECK (limit_price > 0),
    stop_price             numeric CHECK (stop_price > 0),
    take_profit            numeric CHECK (take_profit > 0),
    time_in_force          text NOT NULL DEFAULT 'day'
        CHECK (time_in_force IN ('day', 'gtc', 'opg', 'cls', 'ioc', 'fok')),
    intent                 text NOT NULL
        CHECK (intent IN ('entry', 'stop', 'target', 'exit', 'protective_stop', 'emergency')),
    -- 'intent': written before submit; 'submitted': sent, no answer yet; 'unknown': outcome unclear
    -- (look it up by client_order_id, never re-submit); 'failed': definitely never reached the broker.
    -- The rest are Alpaca's order statuses.
    status                 text NOT NULL DEFAULT 'intent' CHECK (status IN (
        'intent', 'submitted', 'unknown', 'failed',
        'new', 'partially_filled', 'filled', 'done_for_day', 'canceled', 'expired', 'replaced',
        'pending_cancel', 'pending_replace', 'pending_review', 'accepted', 'pending_new',
        'accepted_for_bidding', 'stopped', 'rejected', 'suspended', 'calculated', 'held')),
    filled_qty             numeric NOT NULL DEFAULT 0 CHECK (filled_qty >= 0),
    filled_avg_price       numeric CHECK (filled_avg_price > 0),
    submit_attempts        integer NOT NULL DEFAULT 0 CHECK (submit_attempts >= 0),
    last_error             text,
    mode                   text NOT NULL CHECK (mode IN ('paper', 'live')),
    created_at             timestamptz NOT NULL DEFAULT now(),
    submitted_at           timestamptz,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_position_id_idx ON orders (position_id);
CREATE INDEX orders_parent_client_order_id_idx ON orders (parent_client_order_id);
CREATE INDEX orders_created_at_idx ON orders (created_at);

CREATE TABLE fills (
    fill_id            bigserial PRIMARY KEY,
    broker_activity_id text NOT NULL UNIQUE,
    client_order_id    text,
    broker_order_id    text,
    symbol             text NOT NULL,
    side               text NOT NULL CHECK (side IN ('buy', 'sell', 'sell_short')),
    qty                numeric NOT NULL CHECK (qty > 0),
    price              numeric NOT NULL CHECK (price > 0),
    filled_at          timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fills_broker_order_id_idx ON fills (broker_order_id);
CREATE INDEX fills_client_order_id_idx ON fills (client_order_id);
CREATE INDEX fills_filled_at_idx ON fills (filled_at);

CREATE TABLE account_snapshots (
    snapshot_id       bigserial PRIMARY KEY,
    taken_at          timestamptz NOT NULL,
    mode              text NOT NULL CHECK (mode IN ('paper', 'live')),
    equity            numeric NOT NULL,
    last_equity       numeric,
    cash              numeric,
    buying_power      numeric,
    long_market_value numeric,
    status            text
);
CREATE INDEX account_snapshots_mode_taken_at_idx ON account_snapshots (mode, taken_at);

CREATE TABLE cycle_runs (
    cycle_id    bigserial PRIMARY KEY,
    run_id      uuid NOT NULL UNIQUE,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text CHECK (outcome IN ('ok', 'closed', 'halted', 'refused', 'error', 'skipped')),
    mode        text CHECK (mode IN ('paper', 'live')),
    phase       text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    error       text,
    broker_time timestamptz,
    CONSTRAINT cycle_runs_finished_has_outcome CHECK (finished_at IS NULL OR outcome IS NOT NULL)
);
CREATE INDEX cycle_runs_started_at_idx ON cycle_runs (started_at);

CREATE TABLE risk_events (
    event_id     bigserial PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    rule         text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('stop', 'investigate', 'info', 'breach')),
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    symbol       text,
    mode         text CHECK (mode IN ('paper', 'live')),
    phase        text,
    cycle_run_id bigint REFERENCES cycle_runs (cycle_id)
);
CREATE INDEX risk_events_occurred_at_idx ON risk_events (occurred_at);
CREATE INDEX risk_events_severity_occurred_at_idx ON risk_events (severity, occurred_at);

CREATE TABLE halts (
    halt_id       bigserial PRIMARY KEY,
    halted_at     timestamptz NOT NULL DEFAULT now(),
    reason        text NOT NULL,
    source        text NOT NULL CHECK (source IN ('manual', 'automatic')),
    resumed_at    timestamptz,
    resumed_by    text,
    resume_reason text,
    CONSTRAINT halts_resume_is_complete CHECK (resumed_at IS NULL OR resumed_by IS NOT NULL)
);
-- At most one active (not resumed) halt.
CREATE UNIQUE INDEX halts_one_active_idx ON halts ((true)) WHERE resumed_at IS NULL;

CREATE TABLE emergency_events (
    event_id         bigserial PRIMARY KEY,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    reason           text NOT NULL,
    outcome          text NOT NULL,
    positions_before integer CHECK (positions_before >= 0),
    orders_canceled  integer CHECK (orders_canceled >= 0),
    flat_verified    boolean NOT NULL DEFAULT false,
    detail           jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX emergency_events_occurred_at_idx ON emergency_events (occurred_at);

CREATE TABLE phase_history (
    id         bigserial PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now(),
    from_phase text,
    to_phase   text NOT NULL CHECK (to_phase <> ''),
    action     text NOT NULL CHECK (action IN ('go_live', 'promote', 'demote', 'evaluate')),
    reason     text,
    actor      text,
    criteria   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX phase_history_changed_at_idx ON phase_history (changed_at);

CREATE TABLE go_live_records (
    id                  bigserial PRIMARY KEY,
    created_at          timestamptz NOT NULL DEFAULT now(),
    passed              boolean NOT NULL,
    report              jsonb NOT NULL,
    acknowledged_by     text,
    acknowledgments     jsonb NOT NULL DEFAULT '{}'::jsonb,
    live_account_equity numeric
);
CREATE INDEX go_live_records_created_at_idx ON go_live_records (created_at);

CREATE TABLE daily_equity (
    date        date NOT NULL,
    mode        text NOT NULL CHECK (mode IN ('paper', 'live')),
    equity      numeric NOT NULL,
    last_equity numeric,
    pnl         numeric,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (date, mode)
);
