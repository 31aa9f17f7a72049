-- Search of conversations (`GET /api/conversations?q=`, docs/rest.md; docs/read-models.md#search).

-- A conversation is titled by the customer's first message: its `message.received` content,
-- cut to 200 characters like the preview; null until the thread has one. The projector sets
-- it once (`coalesce(conversation.title, …)`); rows projected before this migration get it
-- from their stored steps, the same value a rebuild folds.
alter table read_model.conversation add column title text;

update read_model.conversation c
set title = left(first_message.content, 200)
from (select distinct on (thread_id) thread_id, fields ->> 'content' as content
      from read_model.replay_step
      where kind = 'message.received'
      order by thread_id, seq) first_message
where first_message.thread_id = c.thread_id;

-- The searchable text is what the customer wrote (`message.received`: `content`) and the
-- replies (`agent.replied`, `operator.replied`: `text`), one document per step, indexed where
-- it is already stored: no new table for the projector to write, nothing for a rebuild to
-- fold differently (a rebuild recreates this index from its definition). English: "refunds"
-- finds "refund", and words like "the" are not indexed (docs/adr/006-search-over-the-stored-steps.md).
-- A query must repeat this expression and predicate exactly for PostgreSQL to use the index
-- (`projections::read_models::search`).
create index replay_step_search_idx on read_model.replay_step
    using gin (to_tsvector('english', coalesce(fields ->> 'content', fields ->> 'text', '')))
    where kind in ('message.received', 'agent.replied', 'operator.replied');

-- The list filtered by agent (of the latest reply), newest first.
create index conversation_agent_idx on read_model.conversation (agent, started_at desc, thread_id desc);
