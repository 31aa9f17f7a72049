//! The projections service, in the order an event flows through it: [`projector`] pulls
//! chat events in batches and applies each batch in one Postgres transaction together
//! with its checkpoint (so a crash neither loses nor double-counts an event), using the
//! table modules in [`read_models`]; [`http`] serves those tables over REST under `/api`.
//! [`config`] and [`startup`] build and run the service, [`metrics`] counts what the projector
//! does; [`MIGRATOR`] holds the schema.

pub mod config;
pub mod http;
pub mod metrics;
pub mod projector;
pub mod read_models;
pub mod startup;

pub use config::ProjectionArgs;

/// The migrations in `migrations/` at the repository root, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects a pool to `DATABASE_URL`.
pub async fn connect(args: &common::config::DatabaseArgs) -> anyhow::Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(args.database_max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(&args.database_url)
        .await
        .map_err(|err| anyhow::anyhow!("cannot connect to PostgreSQL: {err}"))
}
