//! A snapshot of every read-model table, to compare two copies of the projection (the
//! live tables and a rebuild's; before and after a crash) row by row.

use std::collections::BTreeMap;

use sqlx::PgPool;

/// Every table of the projection with the order that makes its rows comparable. The
/// checkpoint (`projection_checkpoint`) is left out: two copies are compared once both
/// have applied the same events.
pub const TABLES: [(&str, &str); 10] = [
    ("conversation", "thread_id"),
    ("turn", "turn_id"),
    ("tool_call", "turn_id, call_id"),
    ("replay_step", "seq"),
    ("analytics_hourly", "hour, agent"),
    ("analytics_latency", "hour, agent, latency_ms"),
    ("handoff", "thread_id"),
    ("desk_hourly", "hour, operator_id"),
    ("desk_first_reply", "hour, wait_s"),
    ("erasure", "thread_id"),
];

/// Rows of each table as JSON text, in key order.
pub type Snapshot = BTreeMap<&'static str, Vec<String>>;

/// Reads every table through `pool` (whose `search_path` picks the schema).
pub async fn take(pool: &PgPool) -> sqlx::Result<Snapshot> {
    let mut snapshot = Snapshot::new();
    for (table, order) in TABLES {
        // Table and column names are constants above, never input.
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select to_jsonb(t)::text from {table} t order by {order}"
        )))
        .fetch_all(pool)
        .await?;
        snapshot.insert(table, rows);
    }
    Ok(snapshot)
}

/// The differences between two snapshots, one line each (at most `limit` per table);
/// empty when they are equal.
pub fn diff(left: &Snapshot, right: &Snapshot, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (table, left_rows) in left {
        let empty = Vec::new();
        let right_rows = right.get(table).unwrap_or(&empty);
        if left_rows == right_rows {
            continue;
        }
        out.push(format!(
            "{table}: {} rows vs {} rows",
            left_rows.len(),
            right_rows.len()
        ));
        let only_left = left_rows.iter().filter(|r| !right_rows.contains(r));
        let only_right = right_rows.iter().filter(|r| !left_rows.contains(r));
        out.extend(only_left.take(limit).map(|r| format!("  - {r}")));
        out.extend(only_right.take(limit).map(|r| format!("  + {r}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_snapshots_have_no_difference_and_unequal_ones_show_the_rows() {
        let a: Snapshot = [("turn", vec!["{\"a\":1}".to_owned(), "{\"b\":2}".to_owned()])].into();
        assert!(diff(&a, &a, 5).is_empty());
        let b: Snapshot = [("turn", vec!["{\"a\":1}".to_owned(), "{\"b\":3}".to_owned()])].into();
        assert_eq!(
            diff(&a, &b, 5),
            ["turn: 2 rows vs 2 rows", "  - {\"b\":2}", "  + {\"b\":3}"]
        );
    }
}
