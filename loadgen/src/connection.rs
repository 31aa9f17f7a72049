//! One WebSocket connection, one task: open it and read the session frame, then either send
//! messages on its schedule and match what comes back ([`load`]), or just hold it ([`idle`]).
//!
//! The task owns its socket and both reads and writes it from one `select!` loop, so no lock
//! sits between the two halves; writes cannot deadlock against a server that is busy writing
//! to us because at most `--in-flight` messages are ever unanswered.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::frame::{self, Composer, ServerFrame};
use crate::progress::Live;
use crate::stats::{Recorder, Summary};
use crate::tracker::{Seen, Tracker};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one handshake, session frame included, may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Idle connections send a ping this often, well inside the server's idle timeout (5 min).
const IDLE_PING_EVERY: Duration = Duration::from_secs(60);
/// Small buffers: frames here are a few hundred bytes, and 10,000 connections with the
/// 128 KiB defaults would hold over a gigabyte.
const BUFFER_BYTES: usize = 8 * 1024;
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// EMFILE / ENFILE: this process (or the system) is out of file descriptors.
    TooManyOpenFiles,
    Refused,
    /// EADDRNOTAVAIL: no local port left for another connection to that address.
    NoLocalPort,
    TimedOut,
    /// The handshake worked but the first frame was not a `session` frame.
    NoSession(String),
    Other(String),
}

impl ConnectError {
    /// A short label, the key the report counts failures by.
    pub fn label(&self) -> String {
        match self {
            ConnectError::TooManyOpenFiles => "too many open files (EMFILE)".to_owned(),
            ConnectError::Refused => "connection refused".to_owned(),
            ConnectError::NoLocalPort => "no free local port (EADDRNOTAVAIL)".to_owned(),
            ConnectError::TimedOut => format!("no session within {}s", CONNECT_TIMEOUT.as_secs()),
            ConnectError::NoSession(what) => format!("no session frame: {what}"),
            ConnectError::Other(what) => what.clone(),
        }
    }

    fn from_ws(error: tungstenite::Error) -> ConnectError {
        match error {
            tungstenite::Error::Io(io) => match io.raw_os_error() {
                Some(EMFILE | ENFILE) => ConnectError::TooManyOpenFiles,
                _ if io.kind() == std::io::ErrorKind::ConnectionRefused => ConnectError::Refused,
                _ if io.kind() == std::io::ErrorKind::AddrNotAvailable => ConnectError::NoLocalPort,
                _ => ConnectError::Other(io.to_string()),
            },
            tungstenite::Error::Http(response) => {
                ConnectError::Other(format!("HTTP {} instead of a WebSocket", response.status()))
            }
            other => ConnectError::Other(other.to_string()),
        }
    }
}

/// Opens a connection and waits for its `session` frame.
pub async fn open(url: &str) -> Result<Socket, ConnectError> {
    let config = WebSocketConfig::default()
        .read_buffer_size(BUFFER_BYTES)
        .write_buffer_size(BUFFER_BYTES);
    let handshake = async {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .map_err(ConnectError::from_ws)?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return match frame::parse(&text) {
                        Some(ServerFrame::Session) => Ok(socket),
                        _ => Err(ConnectError::NoSession(excerpt(&text))),
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => return Err(ConnectError::NoSession(format!("{other:?}"))),
                Some(Err(error)) => return Err(ConnectError::from_ws(error)),
                None => {
                    return Err(ConnectError::NoSession(
                        "the server closed the connection".to_owned(),
                    ));
                }
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .unwrap_or(Err(ConnectError::TimedOut))
}

fn excerpt(text: &str) -> String {
    text.chars().take(120).collect()
}

/// What every load connection shares.
#[derive(Debug)]
pub struct LoadRun {
    pub composer: Composer,
    pub live: Arc<Live>,
    pub summary: Arc<Mutex<Summary>>,
    pub connections: usize,
    pub in_flight: usize,
    /// Time between two messages of one connection; `None`: as fast as acks allow.
    pub period: Option<Duration>,
    pub start: Instant,
    /// Messages sent from here on count.
    pub measure_from: Instant,
    /// Sending stops here (a `--duration` run).
    pub send_until: Option<Instant>,
    /// Messages still to send (a `--messages` run).
    pub budget: Option<AtomicU64>,
    pub drain: Duration,
    /// `true` once sending should stop everywhere: Ctrl-C, or the budget is spent.
    pub stop: Arc<watch::Sender<bool>>,
}

impl LoadRun {
    /// Takes one message from the budget; `false` when none is left.
    fn take_one(&self) -> bool {
        match &self.budget {
            None => true,
            Some(budget) => budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok(),
        }
    }
}

/// How a connection ended, when the server (or the network) ended it first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub closed_early: Option<String>,
}

enum Pacer {
    /// Send whenever fewer than `--in-flight` messages are unacked.
    Unpaced,
    Paced(tokio::time::Interval),
}

impl Pacer {
    async fn ready(&mut self) {
        if let Pacer::Paced(interval) = self {
            interval.tick().await;
        }
    }
}

/// Sends this connection's share of the load and matches acks and replies, then drains.
pub async fn load(mut socket: Socket, index: usize, run: Arc<LoadRun>) -> Outcome {
    let mut stop = run.stop.subscribe();
    let mut tracker = Tracker::new(run.composer.id_prefix(index));
    let mut recorder = Recorder::new(run.summary.clone());
    let mut pacer = match run.period {
        None => Pacer::Unpaced,
        Some(period) => {
            // Staggered, so the connections do not all send in the same instant.
            let offset = period.mul_f64(index as f64 / run.connections as f64);
            let mut interval = tokio::time::interval_at(run.start + offset, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            Pacer::Paced(interval)
        }
    };
    let far = run.start + Duration::from_secs(10 * 365 * 24 * 3600);
    let deadline = tokio::time::sleep_until(run.send_until.unwrap_or(far));
    tokio::pin!(deadline);
    let mut sending = true;
    let mut closed_early = None;

    loop {
        let can_send = sending && tracker.unacked() < run.in_flight;
        tokio::select! {
            biased;
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(frame) = frame::parse(&text) {
                        let seen = tracker.receive(frame, Instant::now().into_std(), &mut recorder.batch);
                        match seen {
                            Seen::Ack => Live::bump(&run.live.acked),
                            Seen::Reply => Live::bump(&run.live.replied),
                            Seen::Error => Live::bump(&run.live.errors),
                            Seen::Nothing => {}
                        }
                        recorder.maybe_flush();
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    closed_early = Some(close_reason(close));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    closed_early = Some(error.to_string());
                    break;
                }
                None => {
                    closed_early = Some("closed without a close frame".to_owned());
                    break;
                }
            },
            changed = stop.changed(), if sending => {
                // An error (the run dropped the sender) means the run is over too.
                if changed.is_err() || *stop.borrow_and_update() {
                    sending = false;
                    deadline.as_mut().reset(Instant::now() + run.drain);
                }
            }
            () = &mut deadline => {
                if !sending {
                    break;
                }
                sending = false;
                deadline.as_mut().reset(Instant::now() + run.drain);
            }
            () = pacer.ready(), if can_send => {
                let count = match pacer {
                    Pacer::Unpaced => run.in_flight - tracker.unacked(),
                    Pacer::Paced(_) => 1,
                };
                let mut failed = None;
                for _ in 0..count {
                    let now = Instant::now();
                    let measured = now >= run.measure_from;
                    if measured && !run.take_one() {
                        run.stop.send_replace(true);
                        sending = false;
                        deadline.as_mut().reset(now + run.drain);
                        break;
                    }
                    let n = tracker.send(now.into_std(), measured, &mut recorder.batch);
                    let text = run.composer.message(tracker.prefix(), index, n);
                    if let Err(error) = socket.feed(Message::Text(text.into())).await {
                        failed = Some(error);
                        break;
                    }
                    Live::bump(&run.live.sent);
                }
                if let Some(error) = failed.or(socket.flush().await.err()) {
                    closed_early = Some(error.to_string());
                    break;
                }
            }
        }
        if !sending && tracker.is_settled() {
            break;
        }
    }

    tracker.finish(&mut recorder.batch);
    recorder.flush();
    run.live.open.fetch_sub(1, Ordering::Relaxed);
    if closed_early.is_none() {
        let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
    }
    Outcome { closed_early }
}

/// Holds the connection until `until` (or Ctrl-C), pinging now and then.
pub async fn idle(
    mut socket: Socket,
    until: Instant,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut ping = tokio::time::interval_at(Instant::now() + IDLE_PING_EVERY, IDLE_PING_EVERY);
    let deadline = tokio::time::sleep_until(until);
    tokio::pin!(deadline);
    let closed_early = loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Close(close))) => break Some(close_reason(close)),
                Some(Ok(_)) => {}
                Some(Err(error)) => break Some(error.to_string()),
                None => break Some("closed without a close frame".to_owned()),
            },
            _ = ping.tick() => {
                if let Err(error) = socket.send(Message::Text(r#"{"type":"ping"}"#.into())).await {
                    break Some(error.to_string());
                }
            }
            () = &mut deadline => break None,
            () = stopped(&mut stop) => break None,
        }
    };
    if closed_early.is_some() {
        live.open.fetch_sub(1, Ordering::Relaxed);
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.close(None)).await;
    }
    Outcome { closed_early }
}

/// Resolves once `stop` says stop (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn close_reason(close: Option<tungstenite::protocol::CloseFrame>) -> String {
    match close {
        Some(frame) if !frame.reason.is_empty() => {
            format!(
                "closed by the server ({}: {})",
                u16::from(frame.code),
                frame.reason
            )
        }
        Some(frame) => format!("closed by the server ({})", u16::from(frame.code)),
        None => "closed by the server".to_owned(),
    }
}
