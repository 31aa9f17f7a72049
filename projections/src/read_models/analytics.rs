//! `analytics_hourly`: counters per hour and agent (tokens of the model included), `analytics_latency`: reply latencies
//! under a second to the millisecond; and the report the analytics endpoint makes of them
//! (totals, rates, reply-latency percentiles, per agent, a time series with empty buckets
//! filled).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sqlx::{PgPool, Postgres, Transaction};
use time::{Duration, OffsetDateTime};

/// Upper bounds (ms) of the reply-latency histogram's buckets; a last bucket holds
/// everything above the last bound. A percentile of a second or more is reported as the
/// upper bound of the bucket it falls in; below a second, latencies are also counted to
/// the millisecond ([`EXACT_BELOW_MS`]) and a percentile there is exact.
pub const LATENCY_BUCKETS_MS: [i64; 12] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];
const BUCKETS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// Latencies under this many ms are kept to the millisecond (`analytics_latency`).
pub const EXACT_BELOW_MS: i64 = 1_000;

/// Which row a count goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub hour: OffsetDateTime,
    /// '' when no agent is known (a new conversation, a user message).
    pub agent: String,
}

/// The start of the hour `at` falls in.
pub fn hour_of(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .expect("0 is a valid minute, second and nanosecond")
}

/// Counters of one hour and agent: what a batch adds, or what the table holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
#[schema(as = AnalyticsCounts)]
pub struct Counts {
    pub conversations: i64,
    pub messages: i64,
    pub turns: i64,
    pub replies: i64,
    pub resolutions: i64,
    pub escalations: i64,
    pub failures: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    /// Tokens of the model's requests (`agent.replied` `usage.prompt_tokens`, summed).
    pub prompt_tokens: i64,
    /// Tokens the model wrote (`usage.completion_tokens`, summed).
    pub completion_tokens: i64,
    #[serde(skip)]
    pub latency_buckets: Vec<i64>,
    #[serde(skip)]
    pub latency_count: i64,
    #[serde(skip)]
    pub latency_sum_ms: i64,
    /// Turns per latency (ms) under [`EXACT_BELOW_MS`].
    #[serde(skip)]
    pub latency_exact: BTreeMap<i64, i64>,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.conversations += other.conversations;
        self.messages += other.messages;
        self.turns += other.turns;
        self.replies += other.replies;
        self.resolutions += other.resolutions;
        self.escalations += other.escalations;
        self.failures += other.failures;
        self.tool_calls += other.tool_calls;
        self.tool_errors += other.tool_errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        if self.latency_buckets.len() < BUCKETS {
            self.latency_buckets.resize(BUCKETS, 0);
        }
        for (mine, theirs) in self.latency_buckets.iter_mut().zip(&other.latency_buckets) {
            *mine += theirs;
        }
        self.latency_count += other.latency_count;
        self.latency_sum_ms += other.latency_sum_ms;
        for (&ms, &turns) in &other.latency_exact {
            *self.latency_exact.entry(ms).or_default() += turns;
        }
    }
}

/// What a batch adds to one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub key: Key,
    pub conversations: i32,
    pub messages: i32,
    pub turns: i32,
    pub replies: i32,
    pub resolutions: i32,
    pub escalations: i32,
    pub failures: i32,
    pub tool_calls: i32,
    pub tool_errors: i32,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_buckets: [i32; BUCKETS],
    pub latency_count: i32,
    pub latency_sum_ms: i64,
    /// Turns per latency (ms) under [`EXACT_BELOW_MS`], for `analytics_latency`.
    pub latency_exact: BTreeMap<i16, i32>,
}

impl Delta {
    pub fn new(key: Key) -> Delta {
        Delta {
            key,
            conversations: 0,
            messages: 0,
            turns: 0,
            replies: 0,
            resolutions: 0,
            escalations: 0,
            failures: 0,
            tool_calls: 0,
            tool_errors: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            latency_buckets: [0; BUCKETS],
            latency_count: 0,
            latency_sum_ms: 0,
            latency_exact: BTreeMap::new(),
        }
    }

    /// The delta that takes this one back (an erased conversation's counts).
    pub fn negated(&self) -> Delta {
        Delta {
            key: self.key.clone(),
            conversations: -self.conversations,
            messages: -self.messages,
            turns: -self.turns,
            replies: -self.replies,
            resolutions: -self.resolutions,
            escalations: -self.escalations,
            failures: -self.failures,
            tool_calls: -self.tool_calls,
            tool_errors: -self.tool_errors,
            prompt_tokens: -self.prompt_tokens,
            completion_tokens: -self.completion_tokens,
            latency_buckets: self.latency_buckets.map(|n| -n),
            latency_count: -self.latency_count,
            latency_sum_ms: -self.latency_sum_ms,
            latency_exact: self
                .latency_exact
                .iter()
                .map(|(&ms, &n)| (ms, -n))
                .collect(),
        }
    }

    /// Counts one reply latency.
    pub fn observe_latency(&mut self, latency_ms: u64) {
        let latency = i64::try_from(latency_ms).unwrap_or(i64::MAX);
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&bound| latency <= bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency_buckets[bucket] += 1;
        self.latency_count += 1;
        self.latency_sum_ms = self.latency_sum_ms.saturating_add(latency);
        if let Ok(ms) = i16::try_from(latency)
            && i64::from(ms) < EXACT_BELOW_MS
        {
            *self.latency_exact.entry(ms).or_default() += 1;
        }
    }
}

/// Adds the deltas of a batch in one statement.
pub async fn apply(tx: &mut Transaction<'_, Postgres>, deltas: &[Delta]) -> sqlx::Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Delta) -> i32| deltas.iter().map(f).collect::<Vec<i32>>();
    // Postgres has no array of arrays of different rows in UNNEST: the histograms travel
    // flattened and are cut back into rows by position.
    let flat: Vec<i32> = deltas
        .iter()
        .flat_map(|d| d.latency_buckets.iter().copied())
        .collect();
    sqlx::query(
        "insert into analytics_hourly (hour, agent, conversations, messages, turns, replies,
                                       resolutions, escalations, failures, tool_calls,
                                       tool_errors, latency_buckets, latency_count, latency_sum_ms,
                                       prompt_tokens, completion_tokens)
         select d.hour, d.agent, d.conversations, d.messages, d.turns, d.replies, d.resolutions,
                d.escalations, d.failures, d.tool_calls, d.tool_errors,
                ($14::int[])[(d.n - 1) * $15 + 1 : d.n * $15], d.latency_count, d.latency_sum_ms,
                d.prompt_tokens, d.completion_tokens
         from unnest($1::timestamptz[], $2::text[], $3::int[], $4::int[], $5::int[], $6::int[],
                     $7::int[], $8::int[], $9::int[], $10::int[], $11::int[], $12::int[],
                     $13::bigint[], $16::bigint[], $17::bigint[]) with ordinality
              as d(hour, agent, conversations, messages, turns, replies, resolutions,
                   escalations, failures, tool_calls, tool_errors, latency_count,
                   latency_sum_ms, prompt_tokens, completion_tokens, n)
         on conflict (hour, agent) do update set
             conversations = analytics_hourly.conversations + excluded.conversations,
             messages = analytics_hourly.messages + excluded.messages,
             turns = analytics_hourly.turns + excluded.turns,
             replies = analytics_hourly.replies + excluded.replies,
             resolutions = analytics_hourly.resolutions + excluded.resolutions,
             escalations = analytics_hourly.escalations + excluded.escalations,
             failures = analytics_hourly.failures + excluded.failures,
             tool_calls = analytics_hourly.tool_calls + excluded.tool_calls,
             tool_errors = analytics_hourly.tool_errors + excluded.tool_errors,
             latency_buckets = (select array_agg(a + b order by i)
                                from unnest(analytics_hourly.latency_buckets,
                                            excluded.latency_buckets)
                                     with ordinality as x(a, b, i)),
             latency_count = analytics_hourly.latency_count + excluded.latency_count,
             latency_sum_ms = analytics_hourly.latency_sum_ms + excluded.latency_sum_ms,
             prompt_tokens = analytics_hourly.prompt_tokens + excluded.prompt_tokens,
             completion_tokens = analytics_hourly.completion_tokens + excluded.completion_tokens",
    )
    .bind(deltas.iter().map(|d| d.key.hour).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.key.agent.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(col(|d| d.conversations))
    .bind(col(|d| d.messages))
    .bind(col(|d| d.turns))
    .bind(col(|d| d.replies))
    .bind(col(|d| d.resolutions))
    .bind(col(|d| d.escalations))
    .bind(col(|d| d.failures))
    .bind(col(|d| d.tool_calls))
    .bind(col(|d| d.tool_errors))
    .bind(col(|d| d.latency_count))
    .bind(deltas.iter().map(|d| d.latency_sum_ms).collect::<Vec<_>>())
    .bind(flat)
    .bind(BUCKETS as i32)
    .bind(deltas.iter().map(|d| d.prompt_tokens).collect::<Vec<_>>())
    .bind(
        deltas
            .iter()
            .map(|d| d.completion_tokens)
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;
    apply_latencies(tx, deltas).await
}

/// Adds the batch's sub-second latencies to `analytics_latency` in one statement.
async fn apply_latencies(tx: &mut Transaction<'_, Postgres>, deltas: &[Delta]) -> sqlx::Result<()> {
    let rows: Vec<(&Key, i16, i32)> = deltas
        .iter()
        .flat_map(|d| d.latency_exact.iter().map(|(&ms, &n)| (&d.key, ms, n)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into analytics_latency (hour, agent, latency_ms, turns)
         select * from unnest($1::timestamptz[], $2::text[], $3::smallint[], $4::int[])
         on conflict (hour, agent, latency_ms) do update
             set turns = analytics_latency.turns + excluded.turns",
    )
    .bind(rows.iter().map(|r| r.0.hour).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.0.agent.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One stored row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub hour: OffsetDateTime,
    pub agent: String,
    pub conversations: i32,
    pub messages: i32,
    pub turns: i32,
    pub replies: i32,
    pub resolutions: i32,
    pub escalations: i32,
    pub failures: i32,
    pub tool_calls: i32,
    pub tool_errors: i32,
    pub latency_buckets: Vec<i32>,
    pub latency_count: i32,
    pub latency_sum_ms: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Turns per latency (ms) under a second, from `analytics_latency`.
    #[sqlx(skip)]
    pub latency_exact: Vec<(i16, i32)>,
}

impl Row {
    fn counts(&self) -> Counts {
        Counts {
            conversations: self.conversations.into(),
            messages: self.messages.into(),
            turns: self.turns.into(),
            replies: self.replies.into(),
            resolutions: self.resolutions.into(),
            escalations: self.escalations.into(),
            failures: self.failures.into(),
            tool_calls: self.tool_calls.into(),
            tool_errors: self.tool_errors.into(),
            latency_buckets: self.latency_buckets.iter().map(|&n| n.into()).collect(),
            latency_count: self.latency_count.into(),
            latency_sum_ms: self.latency_sum_ms,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            latency_exact: self
                .latency_exact
                .iter()
                .map(|&(ms, n)| (ms.into(), n.into()))
                .collect(),
        }
    }
}

/// The rows of the hours in `[from, to)`.
pub async fn rows(
    pool: &PgPool,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> sqlx::Result<Vec<Row>> {
    let mut rows: Vec<Row> = sqlx::query_as(
        "select hour, agent, conversations, messages, turns, replies, resolutions, escalations,
                failures, tool_calls, tool_errors, latency_buckets, latency_count, latency_sum_ms,
                prompt_tokens, completion_tokens
         from analytics_hourly where hour >= $1 and hour < $2 order by hour, agent",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let latencies: Vec<(OffsetDateTime, String, i16, i32)> = sqlx::query_as(
        "select hour, agent, latency_ms, turns from analytics_latency
         where hour >= $1 and hour < $2 order by hour, agent, latency_ms",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let index: HashMap<(OffsetDateTime, String), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| ((row.hour, row.agent.clone()), i))
        .collect();
    for (hour, agent, ms, turns) in latencies {
        // Written in the same statement batch as its `analytics_hourly` row: it has one.
        if let Some(&i) = index.get(&(hour, agent)) {
            rows[i].latency_exact.push((ms, turns));
        }
    }
    Ok(rows)
}

/// Totals with the rates and percentiles derived from them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = AnalyticsSummary)]
pub struct Summary {
    #[serde(flatten)]
    pub counts: Counts,
    /// resolutions / conversations (null without conversations).
    pub resolution_rate: Option<f64>,
    /// escalations / conversations.
    pub escalation_rate: Option<f64>,
    /// tool_errors / tool_calls.
    pub tool_error_rate: Option<f64>,
    /// Reply latency, ms: exact under a second; from a second on, the upper bound of the
    /// histogram bucket the percentile falls in.
    pub reply_latency_p50_ms: Option<i64>,
    pub reply_latency_p95_ms: Option<i64>,
    pub reply_latency_mean_ms: Option<f64>,
}

impl Summary {
    fn of(counts: Counts) -> Summary {
        let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
        Summary {
            resolution_rate: ratio(counts.resolutions, counts.conversations),
            escalation_rate: ratio(counts.escalations, counts.conversations),
            tool_error_rate: ratio(counts.tool_errors, counts.tool_calls),
            reply_latency_p50_ms: percentile(&counts, 0.50),
            reply_latency_p95_ms: percentile(&counts, 0.95),
            reply_latency_mean_ms: ratio(counts.latency_sum_ms, counts.latency_count),
            counts,
        }
    }
}

/// The `q` quantile of the reply latencies (nearest rank: the ⌈q·n⌉-th smallest); None
/// without latencies. Under a second it is the exact millisecond; from a second on, the
/// upper bound of its histogram bucket (the last bound for the overflow bucket).
fn percentile(counts: &Counts, q: f64) -> Option<i64> {
    let values = latency_values(counts);
    let total: i64 = values.iter().map(|&(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (value, n) in values {
        seen += n;
        if seen >= rank {
            return Some(value);
        }
    }
    LATENCY_BUCKETS_MS.last().copied()
}

/// The latencies as (value in ms, turns), ascending: the exact ones under a second, and
/// each bucket's count at its upper bound. A sub-second bucket holds only what the exact
/// counts do not explain (rows written before `analytics_latency` existed, until a rebuild).
fn latency_values(counts: &Counts) -> Vec<(i64, i64)> {
    let mut values: Vec<(i64, i64)> = counts
        .latency_exact
        .iter()
        .map(|(&ms, &n)| (ms, n))
        .collect();
    let mut lower = -1;
    for (i, &n) in counts.latency_buckets.iter().enumerate() {
        let bound = LATENCY_BUCKETS_MS
            .get(i)
            .copied()
            .unwrap_or(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1]);
        let explained: i64 = if bound <= EXACT_BELOW_MS {
            counts
                .latency_exact
                .range(lower + 1..=bound)
                .map(|(_, n)| n)
                .sum()
        } else {
            0
        };
        if n > explained {
            values.push((bound, n - explained));
        }
        lower = bound;
    }
    values.sort_unstable();
    values
}

/// One agent's line.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentSummary {
    pub agent: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// One bucket of the time series.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = SeriesPoint)]
pub struct Point {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The analytics report of a range.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = AnalyticsReport)]
pub struct Report {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// `hour` or `day`.
    #[schema(value_type = String, example = "hour")]
    pub bucket: &'static str,
    pub totals: Summary,
    /// One line per agent that answered turns, by name ('' — no agent yet — left out).
    pub agents: Vec<AgentSummary>,
    /// Every bucket from `from` to `to`, empty ones included.
    pub series: Vec<Point>,
    /// What people did at the desk in the range (`desk_hourly`, `desk_first_reply`).
    pub desk: super::desk::DeskSummary,
}

/// Sums rows of `[from, to)` into a report with buckets of `bucket` length (an hour or
/// a day; `from` is a multiple of it).
pub fn report(rows: &[Row], from: OffsetDateTime, to: OffsetDateTime, day_buckets: bool) -> Report {
    let width = if day_buckets {
        Duration::DAY
    } else {
        Duration::HOUR
    };
    let mut totals = Counts::default();
    let mut agents: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut series: BTreeMap<OffsetDateTime, Counts> = BTreeMap::new();
    let mut start = from;
    while start < to {
        series.insert(start, Counts::default());
        start += width;
    }
    for row in rows {
        let counts = row.counts();
        totals.add(&counts);
        if !row.agent.is_empty() {
            agents.entry(row.agent.as_str()).or_default().add(&counts);
        }
        let offset = (row.hour - from).whole_seconds() / width.whole_seconds();
        let bucket = from + width * offset as i32;
        if let Some(point) = series.get_mut(&bucket) {
            point.add(&counts);
        }
    }
    Report {
        from,
        to,
        bucket: if day_buckets { "day" } else { "hour" },
        totals: Summary::of(totals),
        agents: agents
            .into_iter()
            .map(|(agent, counts)| AgentSummary {
                agent: agent.to_owned(),
                summary: Summary::of(counts),
            })
            .collect(),
        series: series
            .into_iter()
            .map(|(start, counts)| Point {
                start,
                summary: Summary::of(counts),
            })
            .collect(),
        // Filled from the desk's tables by the caller (`desk::report`).
        desk: super::desk::DeskSummary::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts of these latencies, as the fold would store them.
    fn counts_of(latencies: &[u64]) -> Counts {
        let mut delta = Delta::new(Key {
            hour: time::macros::datetime!(2026-11-25 10:00 UTC),
            agent: "orders".into(),
        });
        for &latency in latencies {
            delta.observe_latency(latency);
        }
        let mut counts = Counts::default();
        counts.add(&Counts {
            latency_buckets: delta.latency_buckets.iter().map(|&n| n.into()).collect(),
            latency_count: delta.latency_count.into(),
            latency_sum_ms: delta.latency_sum_ms,
            latency_exact: delta
                .latency_exact
                .iter()
                .map(|(&ms, &n)| (ms.into(), n.into()))
                .collect(),
            ..Counts::default()
        });
        counts
    }

    #[test]
    fn percentiles_under_a_second_are_exact_to_the_millisecond() {
        // Ten fast replies all in the first bucket (≤ 25 ms): the bucket bound said 25
        // for both; the nearest ranks are the 5th (p50) and the 10th (p95).
        let counts = counts_of(&[3, 4, 4, 6, 7, 9, 11, 12, 18, 23]);
        assert_eq!(percentile(&counts, 0.50), Some(7));
        assert_eq!(percentile(&counts, 0.95), Some(23));
    }

    #[test]
    fn percentiles_from_a_second_on_are_the_bucket_bound() {
        let counts = counts_of(&[120, 999, 1_000, 3_000]);
        assert_eq!(percentile(&counts, 0.25), Some(120));
        assert_eq!(percentile(&counts, 0.50), Some(999));
        assert_eq!(percentile(&counts, 0.75), Some(1_000));
        assert_eq!(percentile(&counts, 0.95), Some(5_000));
    }

    #[test]
    fn buckets_without_exact_latencies_count_at_their_bound() {
        // A row written before `analytics_latency` existed: only the histogram.
        let mut counts = counts_of(&[10, 30, 40]);
        counts.latency_exact.remove(&30);
        counts.latency_exact.remove(&40);
        assert_eq!(latency_values(&counts), [(10, 1), (50, 2)]);
        assert_eq!(percentile(&counts, 0.50), Some(50));
        assert_eq!(percentile(&Counts::default(), 0.5), None);
    }
}
