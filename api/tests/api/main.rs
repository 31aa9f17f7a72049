//! The REST API against a real PostgreSQL and a real NATS, one file per feature (`server`
//! starts the API over a stream the test applies through the projector's `apply_batch`).

mod analytics;
mod auth;
mod dead_letters;
mod desk;
mod imports;
mod openapi;
mod read_your_writes;
mod regress;
mod resolve;
mod search;
mod server;

/// A real PostgreSQL with a database migrated as the services migrate it.
async fn database() -> (
    testkit::Postgres,
    common::config::DatabaseArgs,
    sqlx::PgPool,
) {
    let postgres = testkit::Postgres::start();
    let args = common::config::DatabaseArgs {
        database_url: postgres.create_database(),
        database_max_connections: 5,
    };
    projections::migrate(&args).await.unwrap();
    let pool = projections::connect(&args).await.unwrap();
    (postgres, args, pool)
}

/// What the API tests run against: [`database`], and a real NATS with the
/// chat stream.
struct Infra {
    nats: testkit::NatsServer,
    postgres: testkit::Postgres,
    pool: sqlx::PgPool,
    nats_args: common::config::NatsArgs,
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    stream: async_nats::jetstream::stream::Stream,
}

async fn infra() -> Infra {
    let nats = testkit::NatsServer::start();
    let (postgres, _database, pool) = database().await;
    let nats_args = common::config::NatsArgs {
        nats_url: nats.url(),
        stream_replicas: 1,
        duplicate_window: std::time::Duration::from_secs(600),
        client_name: "test".into(),
        nats_user: Some("admin".into()),
        nats_password: Some(testkit::nats_password("admin")),
        nats_tls_ca: None,
    };
    let (_admin, js) = common::jetstream::connect(&nats_args).await.unwrap();
    common::jetstream::setup(&js, &nats_args).await.unwrap();
    // The API under test connects as its own NATS user; the test acts as the admin (`js`).
    let api = nats_args.as_user("api", &testkit::nats_password("api"));
    let (client, api_js) = common::jetstream::connect(&api).await.unwrap();
    let stream = common::jetstream::chat_stream(&api_js).await.unwrap();
    Infra {
        nats,
        postgres,
        pool,
        nats_args,
        client,
        js,
        stream,
    }
}
