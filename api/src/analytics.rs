//! `GET /api/analytics?range=24h|7d|30d` or `?from=…&to=…`: the analytics report of a
//! time window (totals, rates, latency percentiles, per agent, a series of hours or days).

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
};
use time::{Duration, OffsetDateTime, Time, format_description::well_known::Rfc3339};

use crate::consistency::{self, MinSeq};
use crate::error::ErrorBody;
use crate::{ApiState, Routes, error::ApiError};
use projections::read_models::analytics::{self, Report};
use projections::read_models::desk;

/// The longest window `from`/`to` may span.
const MAX_SPAN: Duration = Duration::days(90);
/// Windows up to this long are reported per hour; longer ones per day.
const HOURLY_UP_TO: Duration = Duration::hours(48);

pub fn routes() -> Routes {
    Routes::new().get("/analytics", report)
}

/// The values of `range`, for the document.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used
enum RangeParam {
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

/// The window a request asks for: `[from, to)` in buckets of an hour or a day, `from`
/// aligned to its bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub day_buckets: bool,
}

/// Parses `range` or `from`/`to` (default: `range=24h`). `now` is a parameter so the
/// rules are tested without a clock.
pub fn parse_window(
    query: &HashMap<String, String>,
    now: OffsetDateTime,
) -> Result<Window, ApiError> {
    let range = query.get("range");
    let from = query.get("from");
    let to = query.get("to");
    if range.is_some() && (from.is_some() || to.is_some()) {
        return Err(ApiError::bad_request(
            "range_and_dates",
            "give either range or from and to, not both",
        ));
    }
    match (from, to) {
        (None, None) => range_window(range.map_or("24h", String::as_str), now),
        (Some(_), None) => Err(ApiError::bad_request(
            "missing_to",
            "from needs to beside it",
        )),
        (None, Some(_)) => Err(ApiError::bad_request(
            "missing_from",
            "to needs from beside it",
        )),
        (Some(from), Some(to)) => dates_window(from, to),
    }
}

/// `24h` (hourly), `7d` or `30d` (daily), ending at the start of the next hour.
fn range_window(range: &str, now: OffsetDateTime) -> Result<Window, ApiError> {
    let to = analytics::hour_of(now) + Duration::HOUR;
    let window = match range {
        "24h" => Window {
            from: to - Duration::DAY,
            to,
            day_buckets: false,
        },
        "7d" | "30d" => {
            let days = if range == "7d" { 7 } else { 30 };
            Window {
                from: day_of(to - Duration::days(days)),
                to,
                day_buckets: true,
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_range",
                "range must be one of 24h, 7d, 30d",
            ));
        }
    };
    Ok(window)
}

/// Explicit RFC 3339 bounds: `from < to`, at most 90 days apart; hourly buckets up to
/// 48 h, daily beyond. `from` is aligned down to its bucket and `to` up to the hour, since
/// the counters are kept per hour.
fn dates_window(from: &str, to: &str) -> Result<Window, ApiError> {
    let time = |raw: &str, code: &'static str, name: &str| {
        OffsetDateTime::parse(raw, &Rfc3339)
            .map(|at| at.to_offset(time::UtcOffset::UTC))
            .map_err(|_| {
                ApiError::bad_request(
                    code,
                    format!("{name} must be an RFC 3339 time like 2026-01-31T12:00:00Z"),
                )
            })
    };
    let from = time(from, "invalid_from", "from")?;
    let to = time(to, "invalid_to", "to")?;
    if from >= to {
        return Err(ApiError::bad_request(
            "from_not_before_to",
            "from must be before to",
        ));
    }
    if to - from > MAX_SPAN {
        return Err(ApiError::bad_request(
            "range_too_long",
            "from and to may be at most 90 days apart",
        ));
    }
    let day_buckets = to - from > HOURLY_UP_TO;
    let to = match analytics::hour_of(to) {
        hour if hour == to => to,
        hour => hour
            .checked_add(Duration::HOUR)
            .ok_or_else(|| ApiError::bad_request("invalid_to", "to is too far in the future"))?,
    };
    let from = if day_buckets {
        day_of(from)
    } else {
        analytics::hour_of(from)
    };
    Ok(Window {
        from,
        to,
        day_buckets,
    })
}

/// The start of the UTC day `at` falls in.
fn day_of(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(time::UtcOffset::UTC)
        .replace_time(Time::MIDNIGHT)
}

/// The analytics report of a window.
#[utoipa::path(
    get,
    path = "/api/analytics",
    tag = "analytics",
    params(
        ("range" = inline(Option<RangeParam>), Query,
         description = "`24h` (hourly buckets), `7d` or `30d` (daily buckets, `from` at a UTC midnight), \
                        ending at the start of the next hour. The default when neither `range` nor `from`/`to` is given: `24h`.",
         example = "24h"),
        ("from" = Option<String>, Query, format = DateTime,
         description = "Start (RFC 3339), with `to`; aligned down to its bucket", example = "2026-11-25T00:00:00Z"),
        ("to" = Option<String>, Query, format = DateTime,
         description = "End, exclusive (RFC 3339), with `from`; at most 90 days after it; aligned up to the hour. \
                        Up to 48 h: hourly buckets, else daily.", example = "2026-11-26T00:00:00Z"),
        MinSeq,
    ),
    responses(
        (status = 200, description = "Totals, rates, latency percentiles, per-agent lines and a series with every bucket", body = Report),
        (status = 400, description = "`range_and_dates`, `invalid_range`, `invalid_from`, `invalid_to`, `missing_from`, \
                                      `missing_to`, `from_not_before_to`, `range_too_long`, `invalid_min_seq`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`projection_behind`: `min_seq` not reached within `PROJECTION_WAIT`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn report(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Report>, ApiError> {
    let window = parse_window(&query, OffsetDateTime::now_utc())?;
    consistency::read_after(&state, &query).await?;
    let rows = analytics::rows(&state.pool, window.from, window.to).await?;
    let mut report = analytics::report(&rows, window.from, window.to, window.day_buckets);
    report.desk = desk::report(&state.pool, window.from, window.to).await?;
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 14:37:12 UTC);

    fn window(pairs: &[(&str, &str)]) -> Result<Window, ApiError> {
        let query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_window(&query, NOW)
    }

    fn code(result: Result<Window, ApiError>) -> &'static str {
        match result {
            Err(ApiError::BadRequest { code, .. }) => code,
            other => panic!("expected a bad request, got {other:?}"),
        }
    }

    #[test]
    fn range_24h_ends_at_the_start_of_the_next_hour_in_hourly_buckets() {
        let expected = Window {
            from: datetime!(2026-11-24 15:00 UTC),
            to: datetime!(2026-11-25 15:00 UTC),
            day_buckets: false,
        };
        assert_eq!(window(&[("range", "24h")]).unwrap(), expected);
        assert_eq!(window(&[]).unwrap(), expected, "24h is the default");
    }

    #[test]
    fn ranges_in_days_start_at_a_utc_midnight_in_daily_buckets() {
        assert_eq!(
            window(&[("range", "7d")]).unwrap(),
            Window {
                from: datetime!(2026-11-18 00:00 UTC),
                to: datetime!(2026-11-25 15:00 UTC),
                day_buckets: true,
            }
        );
        assert_eq!(
            window(&[("range", "30d")]).unwrap().from,
            datetime!(2026-10-26 00:00 UTC)
        );
    }

    #[test]
    fn dates_up_to_48_hours_apart_give_hourly_buckets_from_the_hour() {
        assert_eq!(
            window(&[
                ("from", "2026-11-25T10:20:00+02:00"),
                ("to", "2026-11-27T08:20:00Z")
            ])
            .unwrap(),
            Window {
                from: datetime!(2026-11-25 08:00 UTC),
                to: datetime!(2026-11-27 09:00 UTC),
                day_buckets: false,
            }
        );
    }

    #[test]
    fn dates_more_than_48_hours_apart_give_daily_buckets_from_midnight() {
        assert_eq!(
            window(&[
                ("from", "2026-11-20T10:20:00Z"),
                ("to", "2026-11-25T00:00:00Z")
            ])
            .unwrap(),
            Window {
                from: datetime!(2026-11-20 00:00 UTC),
                to: datetime!(2026-11-25 00:00 UTC),
                day_buckets: true,
            }
        );
    }

    #[test]
    fn exactly_90_days_is_allowed() {
        assert!(
            window(&[
                ("from", "2026-01-01T00:00:00Z"),
                ("to", "2026-04-01T00:00:00Z")
            ])
            .is_ok()
        );
    }

    #[test]
    fn each_bad_parameter_has_its_own_code() {
        for (pairs, expected) in [
            (&[("range", "1y")][..], "invalid_range"),
            (&[("range", "")][..], "invalid_range"),
            (
                &[("range", "24h"), ("from", "2026-11-25T00:00:00Z")][..],
                "range_and_dates",
            ),
            (
                &[("range", "7d"), ("to", "2026-11-25T00:00:00Z")][..],
                "range_and_dates",
            ),
            (&[("from", "2026-11-25T00:00:00Z")][..], "missing_to"),
            (&[("to", "2026-11-25T00:00:00Z")][..], "missing_from"),
            (
                &[("from", "yesterday"), ("to", "2026-11-25T00:00:00Z")][..],
                "invalid_from",
            ),
            (
                &[("from", "2026-11-25T00:00:00Z"), ("to", "2026-11-26")][..],
                "invalid_to",
            ),
            (
                &[
                    ("from", "2026-11-25T00:00:00Z"),
                    ("to", "2026-11-25T00:00:00Z"),
                ][..],
                "from_not_before_to",
            ),
            (
                &[
                    ("from", "2026-11-26T00:00:00Z"),
                    ("to", "2026-11-25T00:00:00Z"),
                ][..],
                "from_not_before_to",
            ),
            (
                &[
                    ("from", "2026-01-01T00:00:00Z"),
                    ("to", "2026-04-01T00:00:01Z"),
                ][..],
                "range_too_long",
            ),
        ] {
            assert_eq!(code(window(pairs)), expected, "{pairs:?}");
        }
    }
}
