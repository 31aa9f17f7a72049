-- What people did at the desk, per hour (docs/read-models.md): folded from the stream like
-- `analytics_hourly`, rebuilt with it.

-- Per hour and operator: take-overs, replies, resolutions.
create table read_model.desk_hourly (
    hour timestamptz not null,
    operator_id uuid not null,
    -- the operator's display name in the hour's latest event
    operator_name text not null,
    assignments integer not null default 0,
    replies integer not null default 0,
    resolutions integer not null default 0,
    primary key (hour, operator_id)
);

-- The time to the first human reply of each wait (from the escalation, or the take-over
-- when none came first, to the first `operator.replied`), counted per whole second in the
-- hour of the reply.
create table read_model.desk_first_reply (
    hour timestamptz not null,
    wait_s bigint not null,
    replies integer not null default 0,
    primary key (hour, wait_s)
);
