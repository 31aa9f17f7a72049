-- `replay_step.event_id` loses its unique index. It was a second guard against one event
-- stored twice under two stream sequences, which JetStream already prevents (every event is
-- published with its id as `Nats-Msg-Id`, within `NATS_DUPLICATE_WINDOW`; a worker redoing a
-- turn reads the turn's stored events first and skips them). The stream sequence stays the
-- key, which is what makes a redelivered or replayed event change nothing twice. The index
-- cost the live projector a fifth of its PostgreSQL time (a random-order b-tree insert per
-- event; docs/benchmarks.md), and nothing reads by event id.
alter table read_model.replay_step drop constraint replay_step_event_id_key;
