//! Reads an event of an older schema version as one of this version: the only place that
//! knows what changed between versions ([`Envelope::from_json`] calls it on every event).
//!
//! Version 2 writes fewer events per turn; every version-1 kind is still a kind of version
//! 2, so a version-1 event keeps its kind and fields, and readers handle both forms
//! through [`Payload::completion`], [`Payload::routing`] and [`Payload::escalation`]:
//!
//! | version 1 | version 2 |
//! | --- | --- |
//! | `agent.routed` | `agent`, `reason` on `turn.started` |
//! | `tool.called` before every call | before a `write` call only; the result carries `params`, `permission` |
//! | `confirmation.requested` | `pending` on `agent.replied` (its `text` is the question) |
//! | `conversation.escalated` | `escalation` on `agent.replied` (its `agent` escalated) |
//! | `agent.replied`, then `turn.completed` | `agent.replied` with `outcome`, `latency_ms`, `message_seq`, `pending` |
//!
//! What the upcaster does to a version-1 event: it reads it with version-1 meanings, so
//! the fields version 2 gave a meaning to count only on a version-2 event. A version-1
//! `agent.replied` never ends a turn (its `turn.completed` does), whatever fields a hand
//! or a tool put on it.

use super::{DecodeError, Envelope, Payload, SCHEMA_VERSION};

/// Brings `envelope` to this version's meaning; refuses a newer version than this code's.
pub fn upcast(mut envelope: Envelope) -> Result<Envelope, DecodeError> {
    match envelope.schema_version {
        version if version > SCHEMA_VERSION => {
            Err(DecodeError::UnsupportedVersion { found: version })
        }
        SCHEMA_VERSION => Ok(envelope),
        _ => {
            from_v1(&mut envelope.payload);
            Ok(envelope)
        }
    }
}

/// Version 1 had none of version 2's fields on these kinds.
fn from_v1(payload: &mut Payload) {
    match payload {
        Payload::TurnStarted(started) => started.routed = None,
        Payload::ToolSucceeded(done) => done.call = None,
        Payload::ToolFailed(failed) => failed.call = None,
        Payload::AgentReplied(reply) => {
            reply.end = None;
            reply.escalation = None;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Envelope {
        Envelope::from_json(json.as_bytes()).unwrap()
    }

    const ENVELOPE: &str = r#""event_id":"f505a8c8-ba4d-538a-8b52-76a21a01fcb0","thread_id":"t-1","turn_id":"b554e123-7c04-50cb-99cd-7184216766bd","occurred_at":"2026-11-25T15:22:20.317861330Z""#;

    fn reply(version: u16) -> String {
        format!(
            r#"{{{ENVELOPE},"schema_version":{version},"kind":"agent.replied","text":"Done.","agent":"orders","engine":"rules","outcome":"escalated","latency_ms":15,"message_seq":1,"escalation":{{"reason":"keyword","detail":"keyword \"lawyer\""}}}}"#
        )
    }

    #[test]
    fn a_version_2_reply_ends_its_turn_and_carries_the_escalation() {
        let event = decode(&reply(2));
        assert!(event.payload.is_terminal());
        let done = event.payload.completion().expect("the reply ends the turn");
        assert_eq!(done.message_seq, 1);
        assert_eq!(done.latency_ms, 15);
        let (reason, detail, agent) = event.payload.escalation().unwrap();
        assert_eq!(serde_json::to_value(reason).unwrap(), "keyword");
        assert_eq!((detail, agent), ("keyword \"lawyer\"", "orders"));
    }

    #[test]
    fn a_version_1_reply_never_ends_its_turn_whatever_fields_it_holds() {
        let event = decode(&reply(1));
        assert_eq!(event.schema_version, 1);
        assert!(!event.payload.is_terminal());
        assert!(event.payload.completion().is_none());
        assert!(event.payload.escalation().is_none());
        let Payload::AgentReplied(reply) = &event.payload else {
            panic!("{event:?}")
        };
        assert_eq!(reply.text, "Done.");
    }

    #[test]
    fn routing_is_read_from_either_version() {
        let started = decode(&format!(
            r#"{{{ENVELOPE},"schema_version":2,"kind":"turn.started","message_seq":1,"agent":"orders","reason":"keyword \"order\""}}"#
        ));
        assert_eq!(started.payload.routing().unwrap().agent, "orders");
        let routed = decode(&format!(
            r#"{{{ENVELOPE},"schema_version":1,"kind":"agent.routed","agent":"orders","reason":"default agent"}}"#
        ));
        assert_eq!(routed.payload.routing().unwrap().agent, "orders");
        let old_start = decode(&format!(
            r#"{{{ENVELOPE},"schema_version":1,"kind":"turn.started","message_seq":1,"agent":"orders","reason":"x"}}"#
        ));
        assert!(old_start.payload.routing().is_none());
    }

    #[test]
    fn a_version_1_completion_still_ends_its_turn() {
        let done = decode(&format!(
            r#"{{{ENVELOPE},"schema_version":1,"kind":"turn.completed","outcome":"replied","latency_ms":3,"message_seq":4}}"#
        ));
        assert!(done.payload.is_terminal());
        assert_eq!(done.payload.completion().unwrap().message_seq, 4);
    }
}
