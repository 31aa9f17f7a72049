-- The operators' desk (docs/operators.md).
--
-- Operators and their sessions are configuration, not facts of a conversation: they live
-- in `public`, outside the read models, so a rebuild never touches them.
create table public.operator (
    operator_id uuid primary key,
    -- lower-cased; the sign-in name
    email text not null unique,
    -- shown to customers with an operator's replies
    name text not null,
    -- agent | admin
    role text not null check (role in ('agent', 'admin')),
    -- argon2id, PHC string format
    password_hash text not null,
    created_at timestamptz not null default now(),
    -- set when disabled: the operator can no longer sign in and every session ends
    disabled_at timestamptz
);

create table public.operator_session (
    -- SHA-256 of the opaque token handed out at sign-in (the token itself is never stored)
    token_hash bytea primary key,
    operator_id uuid not null references public.operator (operator_id),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    -- set at sign-out
    revoked_at timestamptz
);

create index operator_session_operator_idx on public.operator_session (operator_id);

-- Who has each conversation that was handed to a person, folded from the stream
-- (conversation.escalated / .assigned / .released / .resolved, operator.replied).
create table read_model.handoff (
    thread_id text primary key,
    -- escalated (waiting for a person) | assigned | released | resolved; null until one of
    -- those events (an operator reply alone sets none)
    state text,
    -- why the agents escalated, when they did
    escalation_reason text,
    -- since when the conversation waits for (or has) a person: the escalation, or the
    -- take-over when no escalation came first
    waiting_since timestamptz,
    -- stream sequence of the event that began the current wait
    wait_seq bigint,
    assignee_id uuid,
    assignee_name text,
    assigned_at timestamptz,
    -- the first operator reply since `waiting_since`
    first_human_reply_at timestamptz,
    -- how many times an operator took the conversation
    assignments integer not null default 0,
    last_seq bigint not null
);

create index handoff_waiting_idx on read_model.handoff (state, waiting_since);
