-- Read models of the conversation projection. Postgres holds read models only: every row
-- here can be rebuilt from the CHAT stream.

-- How far each projection has applied the stream; written in the same transaction as
-- the effects of the events up to it.
create table projection_checkpoint (
    projection text primary key,
    -- stream sequence of the last event applied
    last_seq bigint not null,
    updated_at timestamptz not null default now()
);

-- One row per conversation (keyed by the thread id the stream uses).
create table conversation (
    thread_id text primary key,
    -- open | resolved | escalated | failed | waiting_confirmation
    status text not null default 'open',
    started_at timestamptz not null,
    last_activity_at timestamptz not null,
    message_count integer not null default 0,
    turn_count integer not null default 0,
    -- agent of the latest reply
    agent text,
    -- latest message or reply text, cut to 200 characters
    preview text not null default '',
    -- stream sequences of the first and latest event of the thread
    first_seq bigint not null,
    last_seq bigint not null
);

-- Newest first, paged by (started_at, thread_id).
create index conversation_started_at_idx on conversation (started_at desc, thread_id desc);
create index conversation_status_idx on conversation (status, started_at desc, thread_id desc);

-- Every event of every thread, for replay: one row per stream message.
create table replay_step (
    -- stream sequence of the event
    seq bigint primary key,
    event_id uuid not null unique,
    thread_id text not null,
    turn_id uuid not null,
    kind text not null,
    occurred_at timestamptz not null,
    -- the kind's own fields (the event without its envelope)
    fields jsonb not null
);

create index replay_step_thread_idx on replay_step (thread_id, seq);
