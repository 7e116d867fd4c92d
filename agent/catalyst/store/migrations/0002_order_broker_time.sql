-- Orders keep the broker's time of their intent as well as the database's. Lifecycle windows (a phase's
-- days, the paper period) are measured on the broker's clock, which in the simulator runs far from ours.
ALTER TABLE orders ADD COLUMN broker_time timestamptz;
CREATE INDEX orders_mode_broker_time_idx ON orders (mode, broker_time);
