-- The read models move into a schema of their own, `read_model`. A rebuild fills a fresh
-- copy of it (`create table … (like read_model.… including all)`) while these tables keep
-- serving, then swaps the two by renaming schemas in one transaction
-- (docs/adr/004-rebuild-into-a-fresh-schema.md). The services reach the tables through
-- `search_path`, so the same SQL writes the live tables and a rebuild's.
create schema read_model;
alter table public.projection_checkpoint set schema read_model;
alter table public.conversation set schema read_model;
alter table public.replay_step set schema read_model;

-- Lifecycle times of a conversation.
alter table read_model.conversation
    add column resolved_at timestamptz,
    add column escalated_at timestamptz,
    add column tool_call_count integer not null default 0;

-- One row per agent turn (a user message answered, or failed).
create table read_model.turn (
    turn_id uuid primary key,
    thread_id text not null,
    -- stream sequence of the message the turn answers
    message_seq bigint not null,
    -- the agent it was routed to (null until routed; a message that did not parse has none)
    agent text,
    -- running | replied | awaiting_confirmation | escalated | failed
    outcome text not null default 'running',
    started_at timestamptz not null,
    completed_at timestamptz,
    -- from the user message being stored to the reply
    latency_ms bigint,
    tool_calls integer not null default 0,
    tool_errors integer not null default 0
);

create index turn_thread_idx on read_model.turn (thread_id, message_seq);

-- One row per tool call of a turn.
create table read_model.tool_call (
    turn_id uuid not null,
    -- the call's step within the turn: tool-1, tool-2, …
    call_id text not null,
    thread_id text not null,
    -- the operation id
    tool text not null,
    params jsonb not null,
    -- read | write | destructive
    permission text,
    -- called | succeeded | failed
    status text not null,
    -- the HTTP status, when the operation answered
    http_status integer,
    result jsonb,
    error text,
    -- retryable | not_retryable | fatal, for a failed call
    category text,
    latency_ms bigint,
    attempts integer,
    called_at timestamptz not null,
    finished_at timestamptz,
    primary key (turn_id, call_id)
);

create index tool_call_thread_idx on read_model.tool_call (thread_id);

-- Analytics roll-up: one row per hour and agent ('' where no agent is known yet: a new
-- conversation, a user message). Counters only grow, so a range is a sum of rows.
create table read_model.analytics_hourly (
    hour timestamptz not null,
    agent text not null,
    conversations integer not null default 0,
    messages integer not null default 0,
    turns integer not null default 0,
    replies integer not null default 0,
    resolutions integer not null default 0,
    escalations integer not null default 0,
    failures integer not null default 0,
    tool_calls integer not null default 0,
    tool_errors integer not null default 0,
    -- reply latency (turn.completed latency_ms) of the turns that ended in this hour:
    -- count per bucket, the bucket bounds being `analytics::LATENCY_BUCKETS_MS` (the last
    -- bucket is everything above the last bound)
    latency_buckets integer[] not null,
    latency_count integer not null default 0,
    latency_sum_ms bigint not null default 0,
    primary key (hour, agent)
);
