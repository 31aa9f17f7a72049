//! A chat stream recorded by version 1 of the events still projects into the read models
//! version 1 built from it. `fixtures/v1/` was recorded once, with commit 51a233a, by the
//! real services (`cli/tests/e2e/record_v1_fixture.rs` says how): `chat-stream.jsonl` is every
//! message of the `CHAT` stream as stored (subject, headers, payload), `read-models.json`
//! every read-model table the projector of that commit built from it. It is the v1 contract:
//! a new schema version (issue 19) must read these events into the same rows. It is never
//! recorded again; `cli/tests/e2e/mixed_versions.rs` loads it (`testkit::v1_fixture::load`) and adds
//! version-2 turns on top.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use common::shutdown::CancellationToken;
use projections::projector::{self, CONVERSATIONS, rebuild};
use projections::read_models::{checkpoint, snapshot};
use serde_json::Value;

/// The read models the projector of the recording commit built from `chat-stream.jsonl`: table →
/// rows (`snapshot::take`, each row a JSON object, timestamps in UTC).
const READ_MODELS: &str = include_str!("../../../fixtures/v1/read-models.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_recorded_by_version_1_replays_into_the_same_read_models() {
    // The servers are bound: they stop when dropped.
    let super::Infra {
        nats: _nats,
        postgres: _postgres,
        database,
        pool,
        js,
        stream,
    } = super::infra().await;
    let last = testkit::v1_fixture::load(&js).await;
    let recorded = recorded_read_models();

    // The live projector, as the `projections` service runs it.
    let shutdown = CancellationToken::new();
    tokio::spawn(projector::run(
        pool.clone(),
        stream.clone(),
        100,
        Duration::from_millis(200),
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while checkpoint::load(&pool, CONVERSATIONS).await.unwrap() < last {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projector never reached {last}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_same(&recorded, &database, "the live projector").await;

    // A rebuild: the whole stream replayed into fresh tables, swapped in.
    let options = rebuild::Options {
        batch: 50,
        ..Default::default()
    };
    let rebuilt = rebuild::rebuild(&pool, &database, &stream, &options)
        .await
        .unwrap();
    assert_eq!(rebuilt.replayed.events, last);
    assert_same(&recorded, &database, "a rebuild").await;
    shutdown.cancel();
}

/// `fixtures/v1/read-models.json` as a snapshot, each row in one text form.
fn recorded_read_models() -> snapshot::Snapshot {
    let tables: BTreeMap<String, Vec<Value>> =
        serde_json::from_str(READ_MODELS).expect("read-models.json is table → rows");
    tables
        .into_iter()
        .map(|(table, rows)| {
            let (name, _) = snapshot::TABLES
                .iter()
                .find(|(name, _)| *name == table)
                .unwrap_or_else(|| panic!("the recorded table {table} is gone"));
            (*name, rows.iter().map(Value::to_string).collect())
        })
        .collect()
}

/// Fails, with the rows that differ, unless the read models of `database` hold what
/// `recorded` does in each recorded table (tables added after the recording are not part
/// of it).
async fn assert_same(
    recorded: &snapshot::Snapshot,
    database: &common::config::DatabaseArgs,
    who: &str,
) {
    let pool = utc_pool(database).await;
    let now: snapshot::Snapshot = snapshot::take(&pool)
        .await
        .unwrap()
        .into_iter()
        .filter(|(table, _)| recorded.contains_key(table))
        .map(|(table, rows)| {
            let rows = rows
                .iter()
                .map(|row| serde_json::from_str::<Value>(row).unwrap().to_string())
                .collect();
            (table, rows)
        })
        .collect();
    pool.close().await;
    let differences = snapshot::diff(recorded, &now, 10);
    assert!(
        differences.is_empty(),
        "the read models {who} built differ from fixtures/v1/read-models.json \
         (- recorded, + now):\n{}",
        differences.join("\n")
    );
}

/// A pool on the read models whose sessions show timestamps in UTC, as the recording did,
/// whatever the server's time zone.
async fn utc_pool(database: &common::config::DatabaseArgs) -> sqlx::PgPool {
    let options = sqlx::postgres::PgConnectOptions::from_str(&database.database_url)
        .unwrap()
        .options([
            (
                "search_path",
                format!("{},public", projections::READ_MODEL_SCHEMA),
            ),
            ("TimeZone", "UTC".to_owned()),
        ]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}
