//! `projection_checkpoint`: the last stream sequence a projection applied.

use sqlx::{PgPool, Postgres, Transaction};

/// The last applied sequence of `projection` (0 before the first batch).
pub async fn load(pool: &PgPool, projection: &str) -> sqlx::Result<u64> {
    let seq: Option<i64> =
        sqlx::query_scalar("select last_seq from projection_checkpoint where projection = $1")
            .bind(projection)
            .fetch_optional(pool)
            .await?;
    Ok(seq.unwrap_or(0) as u64)
}

/// Moves the checkpoint, inside the batch's transaction.
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
