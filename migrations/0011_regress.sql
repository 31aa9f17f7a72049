-- Runs of `regress` started over REST (docs/regress.md#over-rest-and-in-the-web-ui). They are
-- not read models: no event rebuilds them, so they live in `public`, outside the `read_model`
-- schema that a rebuild replaces. Any API instance answers for any run.

-- One run.
create table public.regress_run (
    regress_run_id uuid primary key,
    -- running | done | failed
    status text not null default 'running' check (status in ('running', 'done', 'failed')),
    -- the name the config was sent under (it names the config in errors and the report)
    config_name text not null,
    -- the selection asked for: {"since","thread_ids","limit"}
    selection jsonb not null,
    -- a done run's engine, summary and unreplayable turns (api::regress::Stored) as JSON
    -- text: jsonb refuses the escape \u0000, which a quoted text may hold
    report text,
    -- how far it is, written with each heartbeat
    events_total bigint not null default 0,
    events_read bigint not null default 0,
    turns_replayed bigint not null default 0,
    -- why a failed run failed: invalid_config (the message is `name:line: reason`) or run_failed
    error_code text,
    error_message text,
    created_at timestamptz not null default now(),
    -- the running instance writes it every 5 s; a running run silent for 30 s was interrupted
    heartbeat_at timestamptz not null default now(),
    finished_at timestamptz
);

-- One changed turn of a done run: the recorded and the replayed decision. A row per turn,
-- with its conversation, so erasing a conversation can delete its turns here too (they quote
-- the customer's message and the replies).
create table public.regress_turn (
    regress_run_id uuid not null references public.regress_run on delete cascade,
    -- order in the report (stream order)
    position integer not null,
    thread_id text not null,
    -- the turn (api::regress::ChangedTurn) as JSON text, for the same reason as `report`
    detail text not null,
    primary key (regress_run_id, position)
);

create index regress_turn_thread_idx on public.regress_turn (thread_id);
