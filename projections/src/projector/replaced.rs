//! A replaced stream is noticed, never silently skipped (issue 21 item 6).
//!
//! A checkpoint is a stream sequence, and a sequence means something only in the stream that
//! gave it. When the NATS store is deleted and the `CHAT` stream created again, its
//! sequences start over: a checkpoint of the old stream (say 1949) is ahead of the new one
//! (1747), and a projector that went on from it would skip every new event while
//! `/api/health` said `ok`. So the checkpoint records which stream it counts in (the
//! stream's `created` time, which a stream keeps for its whole life, across server restarts
//! and on every replica) and [`judge`] compares it with the stream: another stream, or a
//! checkpoint beyond the stream's last sequence, is [`Verdict::Replaced`]. The projector
//! then stops applying, `/api/health` answers 503 with [`REASON`] and [`REMEDY`], and
//! `smart-support rebuild` replays the new stream and records it.

use async_nats::jetstream::stream::Stream;
use time::OffsetDateTime;

use crate::read_models::checkpoint::Position;

/// The reason `/api/health` names while the read models belong to another stream.
pub const REASON: &str = "stream_replaced";

/// What to do about it.
pub const REMEDY: &str = "run `smart-support rebuild`: it replays the new stream into fresh read models, \
     swaps them in and records the new stream; the projector then goes on by itself";

/// Which stream this is, and how far it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamIdentity {
    /// The stream's `created` time, to the microsecond (what PostgreSQL keeps).
    pub created: OffsetDateTime,
    /// Its last sequence (0 when empty).
    pub last_seq: u64,
}

impl StreamIdentity {
    /// Reads the stream's info (asked of its leader).
    pub async fn of(stream: &Stream) -> anyhow::Result<StreamIdentity> {
        let mut stream = stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|err| anyhow::anyhow!("cannot read the stream's info: {err}"))?;
        Ok(StreamIdentity {
            created: to_micros(info.created),
            last_seq: info.state.last_sequence,
        })
    }
}

/// `at` without its nanoseconds below the microsecond: PostgreSQL's `timestamptz` keeps
/// microseconds, and a time read back must equal the stream's.
pub fn to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = at.nanosecond();
    at.replace_nanosecond(nanos - nanos % 1_000)
        .expect("a nanosecond rounded down stays in range")
}

/// What a checkpoint is, measured against the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The checkpoint counts in this stream: go on.
    Same,
    /// The checkpoint records no stream yet (a fresh database, or a checkpoint from before
    /// migration 0010) and fits this one: record it, then go on.
    Unrecorded,
    /// The read models were projected from another stream: stop applying.
    Replaced(Replaced),
}

/// A checkpoint that does not belong to the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub checkpoint: u64,
    /// The stream the checkpoint counts in, when recorded.
    pub recorded: Option<OffsetDateTime>,
    pub stream: StreamIdentity,
}

impl Replaced {
    /// What happened, for a log line, `/api/health` and the commands.
    pub fn describe(&self) -> String {
        let what = match self.recorded {
            Some(recorded) if recorded != self.stream.created => format!(
                "the read models were projected from another CHAT stream (created {recorded}; \
                 this one was created {})",
                self.stream.created
            ),
            _ => "the read models were projected from another CHAT stream".to_owned(),
        };
        let seq = if self.checkpoint > self.stream.last_seq {
            format!(
                ": their checkpoint {} is beyond this stream's last sequence {}",
                self.checkpoint, self.stream.last_seq
            )
        } else {
            format!(
                ": their checkpoint {} does not count in this stream (last sequence {})",
                self.checkpoint, self.stream.last_seq
            )
        };
        format!("{what}{seq}; new events are not applied")
    }
}

/// Judges `position` against `stream`.
pub fn judge(position: &Position, stream: &StreamIdentity) -> Verdict {
    let other_stream = position
        .stream_created
        .is_some_and(|recorded| to_micros(recorded) != stream.created);
    if other_stream || position.last_seq > stream.last_seq {
        return Verdict::Replaced(Replaced {
            checkpoint: position.last_seq,
            recorded: position.stream_created,
            stream: *stream,
        });
    }
    if position.stream_created.is_none() {
        Verdict::Unrecorded
    } else {
        Verdict::Same
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn stream(last_seq: u64) -> StreamIdentity {
        StreamIdentity {
            created: datetime!(2026-12-06 10:00:00.123456 UTC),
            last_seq,
        }
    }

    fn at(last_seq: u64, created: Option<OffsetDateTime>) -> Position {
        Position {
            last_seq,
            stream_created: created,
        }
    }

    #[test]
    fn a_checkpoint_of_this_stream_goes_on() {
        let s = stream(1747);
        assert_eq!(judge(&at(1700, Some(s.created)), &s), Verdict::Same);
        assert_eq!(judge(&at(1747, Some(s.created)), &s), Verdict::Same);
    }

    #[test]
    fn a_checkpoint_of_another_stream_is_replaced_even_when_the_new_stream_is_longer() {
        let s = stream(5000);
        let old = datetime!(2026-12-01 09:00:00 UTC);
        assert!(matches!(
            judge(&at(1949, Some(old)), &s),
            Verdict::Replaced(Replaced { checkpoint: 1949, recorded: Some(r), .. }) if r == old
        ));
    }

    #[test]
    fn a_checkpoint_beyond_the_streams_last_sequence_is_replaced() {
        let s = stream(1747);
        let Verdict::Replaced(replaced) = judge(&at(1949, None), &s) else {
            panic!("expected replaced");
        };
        assert!(
            replaced
                .describe()
                .contains("beyond this stream's last sequence 1747"),
            "{}",
            replaced.describe()
        );
        assert!(matches!(
            judge(&at(1949, Some(s.created)), &s),
            Verdict::Replaced(_)
        ));
    }

    #[test]
    fn an_unrecorded_checkpoint_that_fits_is_recorded() {
        assert_eq!(judge(&at(0, None), &stream(0)), Verdict::Unrecorded);
        assert_eq!(judge(&at(12, None), &stream(40)), Verdict::Unrecorded);
    }

    #[test]
    fn the_streams_time_is_compared_to_the_microsecond() {
        let created = datetime!(2026-12-06 10:00:00.123456789 UTC);
        let s = StreamIdentity {
            created: to_micros(created),
            last_seq: 3,
        };
        assert_eq!(s.created, datetime!(2026-12-06 10:00:00.123456 UTC));
        assert_eq!(
            judge(&at(3, Some(datetime!(2026-12-06 10:00:00.123456 UTC))), &s),
            Verdict::Same
        );
    }
}
