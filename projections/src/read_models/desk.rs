//! `desk_hourly` and `desk_first_reply`: what people did at the desk, per hour — take-overs,
//! replies and resolutions per operator, and the time each wait took until its first human
//! reply. The fold computes the deltas; [`report`] sums a range for `GET /api/analytics`.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a batch adds to one operator's hour.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OperatorDelta {
    pub name: String,
    pub assignments: i32,
    pub replies: i32,
    pub resolutions: i32,
}

/// What a batch adds to the desk's tables.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delta {
    /// By hour and operator.
    pub operators: BTreeMap<(OffsetDateTime, Uuid), OperatorDelta>,
    /// First replies by hour and wait (whole seconds).
    pub first_replies: BTreeMap<(OffsetDateTime, i64), i32>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.operators.is_empty() && self.first_replies.is_empty()
    }

    /// The delta that takes this one back (an erased conversation's counts).
    pub fn negated(&self) -> Delta {
        Delta {
            operators: self
                .operators
                .iter()
                .map(|(key, d)| {
                    let negated = OperatorDelta {
                        name: d.name.clone(),
                        assignments: -d.assignments,
                        replies: -d.replies,
                        resolutions: -d.resolutions,
                    };
                    (*key, negated)
                })
                .collect(),
            first_replies: self
                .first_replies
                .iter()
                .map(|(key, n)| (*key, -n))
                .collect(),
        }
    }
}

/// Applies a batch's delta (two statements, only when it has desk events).
pub async fn apply(tx: &mut Transaction<'_, Postgres>, delta: &Delta) -> sqlx::Result<()> {
    if !delta.operators.is_empty() {
        let (keys, values): (Vec<&(OffsetDateTime, Uuid)>, Vec<&OperatorDelta>) =
            delta.operators.iter().unzip();
        sqlx::query(
            "insert into desk_hourly as d (hour, operator_id, operator_name, assignments, replies,
                                           resolutions)
             select * from unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::int[], $5::int[],
                                  $6::int[])
             on conflict (hour, operator_id) do update set
                 operator_name = excluded.operator_name,
                 assignments = d.assignments + excluded.assignments,
                 replies = d.replies + excluded.replies,
                 resolutions = d.resolutions + excluded.resolutions",
        )
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.name.as_str()).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.assignments).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.replies).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.resolutions).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !delta.first_replies.is_empty() {
        let (keys, counts): (Vec<&(OffsetDateTime, i64)>, Vec<&i32>) =
            delta.first_replies.iter().unzip();
        sqlx::query(
            "insert into desk_first_reply as f (hour, wait_s, replies)
             select * from unnest($1::timestamptz[], $2::bigint[], $3::int[])
             on conflict (hour, wait_s) do update set replies = f.replies + excluded.replies",
        )
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .bind(counts.into_iter().copied().collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// One operator's line of a range.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OperatorSummary {
    /// The nil id for the static API token.
    pub id: Uuid,
    pub name: String,
    /// Conversations taken over.
    pub taken: i64,
    pub replies: i64,
    pub resolved: i64,
}

/// The desk over a range.
#[derive(Debug, Clone, PartialEq, Default, Serialize, utoipa::ToSchema)]
pub struct DeskSummary {
    /// Take-overs by an operator.
    pub handoffs: i64,
    /// Waits that got their first human reply in the range.
    pub first_replies: i64,
    /// Time to the first human reply, 50th and 95th percentile, in seconds (null without one).
    pub first_reply_p50_s: Option<i64>,
    pub first_reply_p95_s: Option<i64>,
    /// Per operator, by name.
    pub operators: Vec<OperatorSummary>,
}

/// The nearest-rank percentile `p` of counted values (ascending).
fn percentile(counted: &[(i64, i64)], total: i64, p: f64) -> Option<i64> {
    if total == 0 {
        return None;
    }
    let rank = ((p * total as f64).ceil() as i64).max(1);
    let mut seen = 0;
    counted.iter().find_map(|(value, count)| {
        seen += count;
        (seen >= rank).then_some(*value)
    })
}

/// Sums `[from, to)`.
pub async fn report(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> sqlx::Result<DeskSummary> {
    let operators: Vec<(Uuid, String, i64, i64, i64)> = sqlx::query_as(
        "select operator_id,
                (array_agg(operator_name order by hour desc))[1],
                sum(assignments)::bigint, sum(replies)::bigint, sum(resolutions)::bigint
         from desk_hourly where hour >= $1 and hour < $2
         group by operator_id order by 2, 1",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let waits: Vec<(i64, i64)> = sqlx::query_as(
        "select wait_s, sum(replies)::bigint from desk_first_reply
         where hour >= $1 and hour < $2 group by wait_s order by wait_s",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let first_replies = waits.iter().map(|(_, n)| n).sum();
    Ok(DeskSummary {
        handoffs: operators.iter().map(|o| o.2).sum(),
        first_replies,
        first_reply_p50_s: percentile(&waits, first_replies, 0.5),
        first_reply_p95_s: percentile(&waits, first_replies, 0.95),
        operators: operators
            .into_iter()
            .map(|(id, name, taken, replies, resolved)| OperatorSummary {
                id,
                name,
                taken,
                replies,
                resolved,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_nearest_rank_of_the_counted_waits() {
        // 10 waits: 1 s ×5, 30 s ×4, 600 s ×1.
        let waits = [(1, 5), (30, 4), (600, 1)];
        assert_eq!(percentile(&waits, 10, 0.5), Some(1));
        assert_eq!(percentile(&waits, 10, 0.6), Some(30));
        assert_eq!(percentile(&waits, 10, 0.95), Some(600));
        assert_eq!(percentile(&[], 0, 0.5), None);
    }
}
