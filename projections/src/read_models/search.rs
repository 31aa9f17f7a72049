//! Search of conversations: the words of the customer's messages and of the replies, as
//! `replay_step` stores them (one document per step, indexed by `replay_step_search_idx` of
//! migration 0005), ranked per conversation, with a snippet of its best-matching step. A
//! read only: the projector writes nothing for it beyond the steps it stores anyway.
//!
//! - The query is `websearch_to_tsquery('english', q)`: words, `"a phrase"`, `or`, `-word`;
//!   never a syntax error, whatever the text.
//! - A conversation's rank is the best `ts_rank` of its steps (a maximum, so the same
//!   however PostgreSQL orders the rows, which keeps the keyset cursor exact).
//! - The snippet is `ts_headline` of that step's text, each match between [`MATCH_START`]
//!   and [`MATCH_END`].

use sqlx::PgPool;
use time::OffsetDateTime;

use super::conversation::{Filter, SUMMARY_COLUMNS, Summary};

/// Opens a match in a snippet. A private-use character: every one of the two is replaced by
/// U+FFFD in the text before it is highlighted, so in a snippet they mark matches only.
pub const MATCH_START: char = '\u{E000}';
/// Closes a match in a snippet.
pub const MATCH_END: char = '\u{E001}';

/// The searchable text of a step of `replay_step` (aliased `s`), and the steps that have
/// one. Exactly the expression and predicate of `replay_step_search_idx`: PostgreSQL uses
/// the index only for the same ones.
pub const DOCUMENT: &str =
    "to_tsvector('english', coalesce(s.fields ->> 'content', s.fields ->> 'text', ''))";
pub const SEARCHED_STEPS: &str =
    "s.kind in ('message.received', 'agent.replied', 'operator.replied')";
const QUERY: &str = "websearch_to_tsquery('english', $1)";

/// A conversation that matches, with its rank and snippet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Hit {
    #[sqlx(flatten)]
    pub summary: Summary,
    /// The best `ts_rank` of its steps; higher is better.
    pub rank: f32,
    /// Where its best-matching step matches (see [`MATCH_START`]).
    pub snippet: String,
}

/// Where a page of hits starts: just after this one, in the order of [`page`].
#[derive(Debug, Clone, PartialEq)]
pub struct AfterHit {
    pub rank: f32,
    pub started_at: OffsetDateTime,
    pub thread_id: String,
}

/// One page of the conversations `filter` takes that match `q`: best rank first, then
/// newest first (by start time, then thread id).
pub async fn page(
    pool: &PgPool,
    q: &str,
    filter: &Filter,
    after: Option<&AfterHit>,
    limit: i64,
) -> sqlx::Result<Vec<Hit>> {
    // The rank of every matching step is needed to order the conversations; the snippet,
    // the costly part, only for the page's.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "with best as (
             select distinct on (s.thread_id) s.thread_id, s.seq, ts_rank({DOCUMENT}, {QUERY}) as rank
             from replay_step s
             where {SEARCHED_STEPS} and {DOCUMENT} @@ {QUERY}
             order by s.thread_id, rank desc, s.seq
         ),
         hit as (
             select {SUMMARY_COLUMNS}, best.rank, best.seq as best_seq
             from best join conversation c on c.thread_id = best.thread_id
             where ($2::text is null or c.status = $2)
               and ($3::text is null or c.agent = $3)
               and ($4::timestamptz is null or c.started_at >= $4)
               and ($5::timestamptz is null or c.started_at < $5)
               and ($6::real is null or (best.rank, c.started_at, c.thread_id) < ($6, $7, $8))
             order by best.rank desc, c.started_at desc, c.thread_id desc
             limit $9
         )
         select hit.*,
                ts_headline('english',
                            translate(coalesce(s.fields ->> 'content', s.fields ->> 'text', ''),
                                      $10, $11),
                            {QUERY}, $12) as snippet
         from hit join replay_step s on s.seq = hit.best_seq
         order by hit.rank desc, hit.started_at desc, hit.thread_id desc"
    )))
    .bind(q)
    .bind(filter.status.as_deref())
    .bind(filter.agent.as_deref())
    .bind(filter.from)
    .bind(filter.to)
    .bind(after.map(|a| a.rank))
    .bind(after.map(|a| a.started_at))
    .bind(after.map(|a| a.thread_id.as_str()))
    .bind(limit)
    .bind(format!("{MATCH_START}{MATCH_END}"))
    .bind("\u{FFFD}\u{FFFD}")
    .bind(headline_options())
    .fetch_all(pool)
    .await
}

/// `ts_headline`'s options: matches between the two markers, up to two fragments of about
/// 10 to 30 words.
fn headline_options() -> String {
    format!(
        "StartSel={MATCH_START}, StopSel={MATCH_END}, MinWords=10, MaxWords=30, \
         MaxFragments=2, FragmentDelimiter=\" … \""
    )
}
