//! One module per table the projection owns. Each write takes the open transaction of
//! the batch; each read takes the pool. What a batch changes in each table is computed by
//! `projector::fold`.

pub mod analytics;
pub mod checkpoint;
pub mod conversation;
pub mod desk;
pub mod erasure;
pub mod handoff;
pub mod replay_step;
pub mod search;
pub mod snapshot;
pub mod tool_call;
pub mod turn;
