//! Read your writes: a client that wrote (a chat message acknowledged with `seq`, a
//! resolve answered with `seq`) passes `min_seq=<seq>` to a read, and the read waits until
//! the projection's checkpoint has reached it, so the answer includes the write.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::{ApiState, error::ApiError};
use projections::projector::CONVERSATIONS;
use projections::read_models::checkpoint;

/// How often the checkpoint is read while waiting: a batch usually commits within a few
/// milliseconds of the event, and one small query per tick is cheap.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The `min_seq` query parameter, as the OpenAPI document shows it.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MinSeq {
    /// Read your writes: wait until the projection has applied this stream sequence (the
    /// `seq` of a WebSocket `ack` or of a resolve) before reading; at most `PROJECTION_WAIT`
    /// (default 2 s), then 503 `projection_behind`. Past the stream's last event: 400
    /// `invalid_min_seq`.
    #[param(minimum = 0, example = 42)]
    pub min_seq: Option<u64>,
}

/// The `min_seq` query parameter: absent, or a whole number (`400 invalid_min_seq`).
pub fn parse_min_seq(query: &HashMap<String, String>) -> Result<Option<u64>, ApiError> {
    query
        .get("min_seq")
        .map(|raw| {
            raw.parse::<u64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_min_seq",
                    "min_seq must be a whole number: a stream sequence this API or the WebSocket returned",
                )
            })
        })
        .transpose()
}

/// Waits until the projection has applied `min_seq` (at once when absent), for at most
/// the state's `projection_wait`; then `503 projection_behind` with the checkpoint. A
/// `min_seq` past the last event of the stream is `400 invalid_min_seq` at once: no `seq`
/// this API or the WebSocket returned can be past it, and waiting for it would only end in
/// a 503 that no retry fixes.
pub async fn wait_for(state: &ApiState, min_seq: Option<u64>) -> Result<(), ApiError> {
    let Some(min_seq) = min_seq else {
        return Ok(());
    };
    let deadline = Instant::now() + state.projection_wait;
    let mut stream_checked = false;
    loop {
        let applied = checkpoint::load(&state.pool, CONVERSATIONS).await?;
        if applied >= min_seq {
            return Ok(());
        }
        if !stream_checked {
            stream_checked = true;
            // Unknown (NATS unreachable): wait as usual.
            if let Some(last) = stream_last_seq(state).await
                && min_seq > last
            {
                return Err(ApiError::bad_request(
                    "invalid_min_seq",
                    format!(
                        "min_seq {min_seq} is past the last event stored (stream sequence {last}): \
                         pass a seq this API or the WebSocket returned"
                    ),
                ));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ApiError::ProjectionBehind {
                min_seq,
                checkpoint: applied,
            });
        }
        tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
    }
}

/// The stream's last sequence, asked of its leader; `None` when NATS does not answer
/// within 2 s.
pub async fn stream_last_seq(state: &ApiState) -> Option<u64> {
    let mut stream = state.stream.clone();
    tokio::time::timeout(Duration::from_secs(2), stream.info())
        .await
        .ok()?
        .ok()
        .map(|info| info.state.last_sequence)
}

/// Parses `min_seq` from the query and waits for it.
pub async fn read_after(state: &ApiState, query: &HashMap<String, String>) -> Result<(), ApiError> {
    wait_for(state, parse_min_seq(query)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::testing::*;

    #[test]
    fn min_seq_is_optional() {
        assert_eq!(parse_min_seq(&query(&[])).unwrap(), None);
        assert_eq!(
            parse_min_seq(&query(&[("min_seq", "42")])).unwrap(),
            Some(42)
        );
    }

    #[test]
    fn a_min_seq_that_is_not_a_whole_number_is_rejected() {
        for bad in ["-1", "x", "", "1.5", "99999999999999999999"] {
            match parse_min_seq(&query(&[("min_seq", bad)])) {
                Err(ApiError::BadRequest { code, .. }) => assert_eq!(code, "invalid_min_seq"),
                other => panic!("{bad:?}: expected a bad request, got {other:?}"),
            }
        }
    }
}
