-- Reply latencies under one second, to the millisecond: the histogram of
-- `analytics_hourly.latency_buckets` put p50 and p95 on bucket bounds (both read 25 ms for
-- a fast demo). One row per hour, agent and latency that occurred; a report sums them.
-- Latencies of a second or more are counted in `latency_buckets` only.
create table read_model.analytics_latency (
    hour timestamptz not null,
    agent text not null,
    -- 0 to 999: the turn's `turn.completed` latency_ms
    latency_ms smallint not null,
    -- turns that completed with this latency in this hour, for this agent
    turns integer not null,
    primary key (hour, agent, latency_ms)
);
