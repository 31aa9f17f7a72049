//! Connects to NATS as a user (nats/users.conf), creates the streams and the KV bucket
//! ([`setup`], the admin user's job: `smart-support nats-setup`, `smart-support up`), which the
//! services only look up ([`chat_stream`]), and the services' own consumers: the workers
//! consumer's settings are brought up to date at every worker start, the projector's consumer
//! is recreated at its checkpoint.

use std::time::Duration;

use async_nats::jetstream::{
    self, Context,
    consumer::{self, AckPolicy, DeliverPolicy, PullConsumer},
    stream::{self, Stream},
};

use crate::config::NatsArgs;
use crate::subjects;

/// Connects to NATS and returns the client and its JetStream context: as `NATS_USER` when it
/// is set (with the inbox `_INBOX_<user>` that nats/users.conf lets that user alone read), over
/// TLS trusting `NATS_TLS_CA` when that is set. What the server refuses (a wrong password, a
/// subject this user may not use) is logged as an error.
pub async fn connect(args: &NatsArgs) -> anyhow::Result<(async_nats::Client, Context)> {
    let client = options(args)
        .retry_on_initial_connect()
        .connect(server_addrs(&args.nats_url)?)
        .await
        .map_err(|err| anyhow::anyhow!("cannot connect to NATS at {}: {err}", args.nats_url))?;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(Duration::from_secs(5));
    Ok((client, js))
}

/// Connects once, without the services' retry-until-up, for an operator's command that should
/// fail fast and say why (a wrong password, no server).
pub async fn connect_once(args: &NatsArgs) -> anyhow::Result<Context> {
    let client = options(args)
        .connect(server_addrs(&args.nats_url)?)
        .await
        .map_err(|err| anyhow::anyhow!("cannot connect to NATS at {}: {err}", args.nats_url))?;
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(5));
    Ok(js)
}

/// The connection options of `args`: name, time-outs, user and password, inbox, TLS, and a
/// log line for what the server refuses (a request it refuses is otherwise only a time-out).
pub fn options(args: &NatsArgs) -> async_nats::ConnectOptions {
    let mut options = async_nats::ConnectOptions::new()
        .event_callback(|event| async move {
            match event {
                async_nats::Event::ServerError(err) => {
                    tracing::error!(error = %err, "the NATS server refused a request")
                }
                async_nats::Event::ClientError(err) => {
                    tracing::warn!(error = %err, "NATS client error")
                }
                _ => {}
            }
        })
        .name(args.client_name.clone())
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)));
    if let Some(user) = &args.nats_user {
        options =
            options.user_and_password(user.clone(), args.nats_password.clone().unwrap_or_default());
        if let Some(prefix) = inbox_prefix(user) {
            options = options.custom_inbox_prefix(prefix);
        }
    }
    if let Some(ca) = &args.nats_tls_ca {
        options = options.require_tls(true).add_root_certificates(ca.clone());
    }
    options
}

/// The inbox of `user` (`_INBOX_<user>`), the one nats/users.conf lets it subscribe to; `None`
/// for a name that cannot be one subject token (such a user keeps the default `_INBOX`).
pub fn inbox_prefix(user: &str) -> Option<String> {
    let fits = !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    fits.then(|| format!("_INBOX_{user}"))
}

/// The servers of a `NATS_URL`: one URL, or a comma-separated list for a cluster. The client
/// takes a single string as one URL (a list in it is an "invalid port number"), so the list is
/// split here; the client connects to any of them and fails over to the others.
pub fn server_addrs(urls: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    let addrs = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse()
                .map_err(|err| anyhow::anyhow!("NATS URL `{url}` is invalid: {err}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!addrs.is_empty(), "NATS URL is empty");
    Ok(addrs)
}

/// Creates or updates everything the services find on NATS: the chat stream, the dead-letter
/// stream and the KV bucket of the published tools. Only the admin user may (nats/users.conf):
/// `smart-support nats-setup`, and `smart-support up` before it starts the services.
pub async fn setup(js: &Context, args: &NatsArgs) -> anyhow::Result<Stream> {
    let chat = ensure_chat_stream(js, args).await?;
    crate::dead_letters::ensure_stream(js, args).await?;
    if js.get_key_value(subjects::TOOLS_BUCKET).await.is_err() {
        js.create_key_value(async_nats::jetstream::kv::Config {
            bucket: subjects::TOOLS_BUCKET.into(),
            description: "the published OpenAPI tools (key `published`)".into(),
            history: 10,
            num_replicas: args.stream_replicas,
            ..Default::default()
        })
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot create the KV bucket {}: {err}",
                subjects::TOOLS_BUCKET
            )
        })?;
    }
    Ok(chat)
}

/// The chat stream, as a service finds it: it looks the stream up and changes nothing (a
/// service's NATS user may not create or change streams; `setup` does).
pub async fn chat_stream(js: &Context) -> anyhow::Result<Stream> {
    js.get_stream(subjects::CHAT_STREAM).await.map_err(|err| {
        anyhow::anyhow!(
            "cannot find stream {} ({err}); it is created by `smart-support nats-setup` \
             (or `smart-support up`) as the NATS admin user",
            subjects::CHAT_STREAM
        )
    })
}

/// Creates or updates the chat stream: file storage, replicas and duplicate window from
/// the arguments, direct get on (the ingress reads a thread's history with it).
pub async fn ensure_chat_stream(js: &Context, args: &NatsArgs) -> anyhow::Result<Stream> {
    let config = stream::Config {
        name: subjects::CHAT_STREAM.into(),
        description: Some("Every chat event: user messages and agent turns".into()),
        subjects: vec![subjects::CHAT_SUBJECTS.into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: args.stream_replicas,
        duplicate_window: args.duplicate_window,
        // A user message is at most 10000 characters (40 KB of UTF-8); 256 KiB leaves
        // room for the envelope and for tool results in turn events.
        max_message_size: 256 * 1024,
        allow_direct: true,
        ..Default::default()
    };
    js.create_or_update_stream(config).await.map_err(|err| {
        anyhow::anyhow!(
            "cannot create or update stream {}: {err}",
            subjects::CHAT_STREAM
        )
    })?;
    Ok(js.get_stream(subjects::CHAT_STREAM).await?)
}

/// The durable pull consumer the workers share, created or brought up to date: explicit
/// acks, redelivery after `ack_wait` when a worker goes quiet. There is no server-side
/// delivery limit: the worker dead-letters a message after its own limit, and a limit
/// here would silently drop a message whose dead-lettering was interrupted.
pub async fn ensure_workers_consumer(
    stream: &Stream,
    ack_wait: Duration,
) -> anyhow::Result<PullConsumer> {
    let config = consumer::pull::Config {
        durable_name: Some(subjects::WORKERS_CONSUMER.into()),
        description: Some("Agent workers: one turn per user message".into()),
        filter_subject: subjects::USER_MESSAGES.into(),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait,
        max_deliver: -1,
        max_ack_pending: 1024,
        ..Default::default()
    };
    stream.create_consumer(config).await.map_err(|err| {
        anyhow::anyhow!(
            "cannot create or update consumer {}: {err}",
            subjects::WORKERS_CONSUMER
        )
    })
}

/// The workers' backlog: user messages stored and not yet delivered to any worker (the
/// `workers` consumer's pending count). The worker's `worker_backlog_messages` gauge and the
/// ingress's `--max-backlog` both read it here.
pub async fn workers_backlog(stream: &Stream) -> anyhow::Result<u64> {
    let info = stream
        .consumer_info(subjects::WORKERS_CONSUMER)
        .await
        .map_err(|err| anyhow::anyhow!("cannot read the workers' backlog: {err}"))?;
    Ok(info.num_pending)
}

/// A projector's durable consumer, positioned just after the projector's checkpoint.
///
/// The checkpoint in Postgres is the truth (it commits with the effects); the consumer is
/// only how events reach the projector. It is recreated at `checkpoint + 1` every time a
/// projector starts: deliveries a crashed projector fetched but never committed would
/// otherwise come back only after `ack_wait`, behind newer events, and be skipped as
/// already applied. Only the active projector of a projection may call this.
pub async fn ensure_projector_consumer(
    stream: &Stream,
    name: &str,
    checkpoint: u64,
) -> anyhow::Result<PullConsumer> {
    let config = consumer::pull::Config {
        durable_name: Some(name.into()),
        description: Some("Projector: folds chat events into Postgres".into()),
        filter_subject: subjects::CHAT_SUBJECTS.into(),
        ack_policy: AckPolicy::All,
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: checkpoint + 1,
        },
        ack_wait: Duration::from_secs(60),
        max_ack_pending: 20_000,
        ..Default::default()
    };
    if stream
        .get_consumer::<consumer::pull::Config>(name)
        .await
        .is_ok()
    {
        stream.delete_consumer(name).await?;
    }
    stream
        .create_consumer(config)
        .await
        .map_err(|err| anyhow::anyhow!("cannot create consumer {name}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_nats_url_is_one_server_per_node() {
        let addrs = server_addrs("nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222")
            .unwrap();
        let hosts: Vec<String> = addrs
            .iter()
            .map(|a| format!("{}:{}", a.host(), a.port()))
            .collect();
        assert_eq!(hosts, ["10.0.0.1:4222", "10.0.0.2:4222", "10.0.0.3:4222"]);
    }

    #[test]
    fn a_single_nats_url_is_one_server() {
        assert_eq!(server_addrs("nats://127.0.0.1:4222").unwrap().len(), 1);
    }

    #[test]
    fn an_empty_or_invalid_nats_url_is_refused() {
        assert!(server_addrs(" , ").is_err());
        let err = server_addrs("nats://a:1,nats://b:notaport")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nats://b:notaport"), "{err}");
    }
}
