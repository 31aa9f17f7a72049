//! The projections service, in the order an event flows through it: [`projector`] pulls
//! chat events in batches and applies each batch in one Postgres transaction together
//! with its checkpoint (so a crash neither loses nor double-counts an event), using the
//! table modules in [`read_models`] (served over REST by the `api` crate).
//! [`config`] and [`startup`] build and run the projector, [`metrics`] counts what the projector
//! does; [`MIGRATOR`] holds the schema.

pub mod config;
pub mod metrics;
pub mod projector;
pub mod read_models;
pub mod startup;

pub use config::ProjectionArgs;

/// The migrations in `migrations/` at the repository root, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The schema the live read models are in (migration 0002). A rebuild fills another and
/// swaps the names.
pub const READ_MODEL_SCHEMA: &str = "read_model";

/// Connects a pool to `DATABASE_URL` whose connections find the read models in `schema`
/// (`search_path`), so the same SQL serves the live tables and a rebuild's.
pub async fn connect_to_schema(
    args: &common::config::DatabaseArgs,
    schema: &str,
) -> anyhow::Result<sqlx::PgPool> {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(&args.database_url)
        .map_err(|err| anyhow::anyhow!("DATABASE_URL is not a PostgreSQL URL: {err}"))?
        .options([("search_path", format!("{schema},public"))]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(args.database_max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|err| anyhow::anyhow!("cannot connect to PostgreSQL: {err}"))
}

/// Connects a pool to the live read models.
pub async fn connect(args: &common::config::DatabaseArgs) -> anyhow::Result<sqlx::PgPool> {
    connect_to_schema(args, READ_MODEL_SCHEMA).await
}

/// Runs the migrations with `search_path` = `public`. The bookkeeping table
/// `_sqlx_migrations` is named without a schema, so it lands in the first schema of the
/// path that exists: `public` on a fresh database (`read_model` does not exist yet), but
/// `read_model` on every later start through the read models' path, where an empty one
/// would be created and migration 1 run again (and fail). Found by restarting the binary
/// in the crash tests.
pub async fn migrate(database: &common::config::DatabaseArgs) -> anyhow::Result<()> {
    let pool = connect_to_schema(database, "public").await?;
    MIGRATOR.run(&pool).await?;
    pool.close().await;
    Ok(())
}
