-- Erased conversations (issue 21 item 3, docs/operations.md#erasing-a-conversation).
--
-- An erasure deletes a conversation's events from the stream and stores a tombstone
-- (`conversation.erased`, no content) on `chat.<thread_id>.erased`. The projector folds the
-- tombstone: every row of the thread leaves the other tables, and this row records the
-- erasure (who, when), so the audit record is the tombstone itself, as a rebuild folds it
-- again. It holds no content. Events of the thread stored after its tombstone (a turn that
-- was in flight) are not projected.
create table read_model.erasure (
    thread_id text primary key,
    -- the tombstone's `occurred_at`: when the conversation was erased
    erased_at timestamptz not null,
    -- operator (REST), cli (`smart-support erase`) or retention (`CONVERSATION_RETENTION`)
    erased_by text not null,
    -- the operator who erased it, through the REST API (the nil id: the static API token)
    operator_id uuid,
    operator_name text,
    -- stream sequence of the latest tombstone of the thread
    seq bigint not null
);
