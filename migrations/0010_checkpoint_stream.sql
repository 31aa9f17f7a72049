-- Which stream a checkpoint counts in (issue 21 item 6). A stream sequence means something
-- only in the stream that gave it: after the NATS store is deleted and the stream created
-- again, sequence 1747 of the new stream is not event 1747 of the old one, and a checkpoint
-- of the old stream (1949) would make the projector skip every new event. The projector
-- records the creation time of the stream it projects (`created` of the stream's info,
-- which a stream keeps for its life, across restarts and on every replica); on a different
-- one, or a checkpoint beyond the stream's last sequence, it stops applying and
-- `/api/health` answers 503 `stream_replaced` until `smart-support rebuild` replays the new
-- stream and records it (docs/operations.md#a-replaced-stream).
alter table read_model.projection_checkpoint
    -- the `created` time of the stream `last_seq` counts in; null for a checkpoint written
    -- before this migration, until the projector finds it fits the stream and records it
    add column stream_created_at timestamptz;
