//! One module per table the projection owns. Each write takes the open transaction of
//! the batch; each read takes the pool.

pub mod checkpoint;
pub mod conversation;
pub mod replay_step;
