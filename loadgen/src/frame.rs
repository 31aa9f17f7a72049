//! The wire: message frames written without a serializer, and the few fields of server
//! frames that matter here read without copying.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::config::Content;

const ORDER_QUESTIONS: [(&str, &str); 4] = [
    ("Where is my order ORD-", "?"),
    ("Can I get a refund for order ORD-", "?"),
    ("My package for ORD-", " arrived damaged, what now?"),
    ("How do I change the delivery address of ORD-", "?"),
];

/// Writes the message frames of one run: the content is JSON-escaped once, and each
/// connection's `client_msg_id`s are `lg-<run>-<connection>-<n>`.
#[derive(Debug)]
pub struct Composer {
    /// The content as a JSON string literal, quotes included; `None` for varied content.
    fixed: Option<String>,
    run: String,
}

impl Composer {
    pub fn new(content: &Content, run: &str) -> Composer {
        let fixed = match content {
            Content::Varied => None,
            Content::Fixed(text) => Some(json_string(text)),
            Content::Size(size) => Some(json_string(&filler(*size))),
        };
        Composer {
            fixed,
            run: run.to_owned(),
        }
    }

    /// The `client_msg_id` prefix of one connection; the message number follows it.
    pub fn id_prefix(&self, connection: usize) -> String {
        format!("lg-{}-{connection}-", self.run)
    }

    /// `{"type":"message","content":…,"client_msg_id":"<prefix><n>"}`
    pub fn message(&self, prefix: &str, connection: usize, n: u64) -> String {
        let content_len = self.fixed.as_ref().map_or(64, String::len);
        let mut frame = String::with_capacity(content_len + prefix.len() + 64);
        frame.push_str(r#"{"type":"message","content":"#);
        match &self.fixed {
            Some(literal) => frame.push_str(literal),
            None => {
                let (before, after) = ORDER_QUESTIONS[(n % ORDER_QUESTIONS.len() as u64) as usize];
                let order = (connection as u64).wrapping_mul(7919).wrapping_add(n) % 1_000_000;
                let _ = write!(frame, "\"{before}{order:06}{after}\"");
            }
        }
        frame.push_str(r#","client_msg_id":""#);
        frame.push_str(prefix);
        let _ = write!(frame, "{n}\"}}");
        frame
    }
}

/// The message number in a `client_msg_id` of this connection, or `None` for someone else's.
pub fn message_number(client_msg_id: &str, prefix: &str) -> Option<u64> {
    client_msg_id.strip_prefix(prefix)?.parse().ok()
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

fn filler(size: usize) -> String {
    "Hello, I have a question about my order and the delivery. "
        .chars()
        .cycle()
        .take(size)
        .collect()
}

/// What a server frame says, as far as the load generator cares.
#[derive(Debug, PartialEq)]
pub enum ServerFrame<'a> {
    Session,
    Ack {
        client_msg_id: Cow<'a, str>,
    },
    Error {
        code: Cow<'a, str>,
    },
    /// `message.received`: the user message with this id starts the turn with this id.
    MessageReceived {
        client_msg_id: Option<Cow<'a, str>>,
        turn_id: Option<u128>,
    },
    /// `agent.replied` in this turn.
    AgentReplied {
        turn_id: Option<u128>,
    },
    /// Any other stored event.
    OtherEvent,
    /// A piece of a streamed reply; `sent_micros`: the Unix time in microseconds the model
    /// wrote into it (`[t=<micros>]`, as the load run's fake model server does), if any.
    Delta {
        sent_micros: Option<u64>,
    },
    /// A pong, or a frame of a type this code does not know.
    Other,
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    event: Option<RawEvent<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    turn_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    client_msg_id: Option<Cow<'a, str>>,
}

/// Reads a text frame from the server; `None` when it is not a JSON object with a `type`.
pub fn parse(text: &str) -> Option<ServerFrame<'_>> {
    let raw: RawFrame<'_> = serde_json::from_str(text).ok()?;
    let frame = match raw.kind.as_ref() {
        "session" => ServerFrame::Session,
        "ack" => ServerFrame::Ack {
            client_msg_id: raw.client_msg_id.unwrap_or_default(),
        },
        "error" => ServerFrame::Error {
            code: raw.code.unwrap_or(Cow::Borrowed("unknown")),
        },
        "event" => match raw.event {
            Some(event) => {
                let turn_id = event.turn_id.as_deref().and_then(turn_key);
                match event.kind.as_ref() {
                    "message.received" => ServerFrame::MessageReceived {
                        client_msg_id: event.client_msg_id,
                        turn_id,
                    },
                    "agent.replied" => ServerFrame::AgentReplied { turn_id },
                    _ => ServerFrame::OtherEvent,
                }
            }
            None => ServerFrame::Other,
        },
        "delta" => ServerFrame::Delta {
            sent_micros: raw.text.as_deref().and_then(sent_micros),
        },
        _ => ServerFrame::Other,
    };
    Some(frame)
}

/// The first `[t=<digits>]` in a delta's text.
fn sent_micros(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once("[t=")?;
    let (digits, _) = rest.split_once(']')?;
    digits.parse().ok()
}

fn turn_key(turn_id: &str) -> Option<u128> {
    uuid::Uuid::try_parse(turn_id).ok().map(|id| id.as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TURN: &str = "6f1f6c1e-7f59-4c43-9c55-0b6f7d4c2a10";

    #[test]
    fn varied_messages_are_valid_json_with_the_id_of_their_connection() {
        let composer = Composer::new(&Content::Varied, "ab12");
        let prefix = composer.id_prefix(7);
        let frame: serde_json::Value =
            serde_json::from_str(&composer.message(&prefix, 7, 42)).unwrap();
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["client_msg_id"], "lg-ab12-7-42");
        assert!(frame["content"].as_str().unwrap().contains("ORD-"));
        let next = composer.message(&prefix, 7, 43);
        assert_ne!(
            serde_json::from_str::<serde_json::Value>(&next).unwrap()["content"],
            frame["content"]
        );
    }

    #[test]
    fn fixed_content_is_escaped_once_and_sent_verbatim() {
        let text = "say \"hi\"\n\\ é";
        let composer = Composer::new(&Content::Fixed(text.to_owned()), "r");
        let frame: serde_json::Value =
            serde_json::from_str(&composer.message("lg-r-0-", 0, 1)).unwrap();
        assert_eq!(frame["content"], text);
    }

    #[test]
    fn sized_content_has_exactly_that_many_characters() {
        let composer = Composer::new(&Content::Size(10_001), "r");
        let frame: serde_json::Value =
            serde_json::from_str(&composer.message("lg-r-0-", 0, 1)).unwrap();
        assert_eq!(frame["content"].as_str().unwrap().chars().count(), 10_001);
    }

    #[test]
    fn the_message_number_is_read_back_only_from_this_connections_ids() {
        assert_eq!(message_number("lg-ab-3-17", "lg-ab-3-"), Some(17));
        assert_eq!(message_number("lg-ab-31-17", "lg-ab-3-"), None);
        assert_eq!(message_number("someone-else", "lg-ab-3-"), None);
    }

    #[test]
    fn acks_errors_and_the_two_tracked_events_are_recognised() {
        assert_eq!(
            parse(r#"{"type":"session","thread_id":"t","token":"x"}"#),
            Some(ServerFrame::Session)
        );
        assert_eq!(
            parse(r#"{"type":"ack","client_msg_id":"lg-a-0-1","seq":5}"#),
            Some(ServerFrame::Ack {
                client_msg_id: "lg-a-0-1".into()
            })
        );
        assert_eq!(
            parse(r#"{"type":"error","code":"rate_limited","message":"slow down"}"#),
            Some(ServerFrame::Error {
                code: "rate_limited".into()
            })
        );
        let received = format!(
            r#"{{"type":"event","seq":6,"event":{{"event_id":"e","kind":"message.received","thread_id":"t","turn_id":"{TURN}","content":"hi \"there\"","client_msg_id":"lg-a-0-1"}}}}"#
        );
        let turn = uuid::Uuid::parse_str(TURN).unwrap().as_u128();
        assert_eq!(
            parse(&received),
            Some(ServerFrame::MessageReceived {
                client_msg_id: Some("lg-a-0-1".into()),
                turn_id: Some(turn)
            })
        );
        let replied = format!(
            r#"{{"type":"event","seq":8,"event":{{"kind":"agent.replied","turn_id":"{TURN}","text":"Hello","agent":"orders"}}}}"#
        );
        assert_eq!(
            parse(&replied),
            Some(ServerFrame::AgentReplied {
                turn_id: Some(turn)
            })
        );
    }

    #[test]
    fn a_delta_carries_the_send_time_written_into_its_text() {
        assert_eq!(
            parse(r#"{"type":"delta","turn_id":"t","text":"[t=1765093028123456] "}"#),
            Some(ServerFrame::Delta {
                sent_micros: Some(1_765_093_028_123_456)
            })
        );
        assert_eq!(
            parse(r#"{"type":"delta","turn_id":"t","text":"Hello [t=12"}"#),
            Some(ServerFrame::Delta { sent_micros: None })
        );
        assert_eq!(
            parse(r#"{"type":"delta","turn_id":"t"}"#),
            Some(ServerFrame::Delta { sent_micros: None })
        );
    }

    #[test]
    fn other_events_and_frames_are_other_and_garbage_is_none() {
        assert_eq!(
            parse(r#"{"type":"event","seq":7,"event":{"kind":"turn.started","turn_id":"x"}}"#),
            Some(ServerFrame::OtherEvent)
        );
        assert_eq!(parse(r#"{"type":"pong"}"#), Some(ServerFrame::Other));
        assert_eq!(parse("not json"), None);
        assert_eq!(parse("[1,2]"), None);
    }
}
