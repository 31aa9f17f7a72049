//! `projection_checkpoint`: the last stream sequence a projection applied, and which stream
//! that sequence counts in (its `created` time: [`crate::projector::replaced`]).

use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use time::OffsetDateTime;

/// The last applied sequence of `projection` (0 before the first batch).
pub async fn load(pool: &PgPool, projection: &str) -> sqlx::Result<u64> {
    Ok(position(pool, projection).await?.last_seq)
}

/// A projection's checkpoint and the stream it counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// The last applied sequence (0 before the first batch).
    pub last_seq: u64,
    /// The `created` time of the stream `last_seq` counts in; `None` until recorded (a
    /// fresh database, or a checkpoint written before migration 0010).
    pub stream_created: Option<OffsetDateTime>,
}

/// The checkpoint of `projection` and its stream, read through `db` (a pool, a connection
/// or a transaction).
pub async fn position<'e>(db: impl PgExecutor<'e>, projection: &str) -> sqlx::Result<Position> {
    let row: Option<(i64, Option<OffsetDateTime>)> = sqlx::query_as(
        "select last_seq, stream_created_at from projection_checkpoint where projection = $1",
    )
    .bind(projection)
    .fetch_optional(db)
    .await?;
    Ok(
        row.map_or_else(Position::default, |(seq, created)| Position {
            last_seq: seq as u64,
            stream_created: created,
        }),
    )
}

/// Records that the checkpoint of `projection` counts in the stream created at `created`
/// (a row at sequence 0 when there is none yet). The projector calls it when a checkpoint
/// without a stream fits the stream; a rebuild, for the stream it replayed.
pub async fn record_stream<'e>(
    db: impl PgExecutor<'e>,
    projection: &str,
    created: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into projection_checkpoint (projection, last_seq, updated_at, stream_created_at)
         values ($1, 0, now(), $2)
         on conflict (projection) do update set stream_created_at = excluded.stream_created_at",
    )
    .bind(projection)
    .bind(created)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves the checkpoint, inside the batch's transaction. The stream it counts in is left
/// as recorded: a projector applies only after it has checked that the stream is the one
/// recorded ([`crate::projector::replaced`]).
pub async fn save(
    tx: &mut Transaction<'_, Postgres>,
    projection: &str,
    seq: u64,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into projection_checkpoint (projection, last_seq, updated_at) values ($1, $2, now())
         on conflict (projection) do update set last_seq = excluded.last_seq, updated_at = now()",
    )
    .bind(projection)
    .bind(seq as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
