//! The comparison of a replayed turn with the recorded one, the summary of a run, and the
//! report in three formats: text (a terminal), JSON (scripts) and HTML (a page to share).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

use super::recorded::{Call, Decision, RecordedTurn, Skipped};

/// What can change in a turn, in the order the report lists them.
pub const KINDS: [&str; 5] = ["agent", "tool_calls", "confirmation", "escalation", "reply"];

/// The kinds of change between a recorded decision and a replayed one (none: unchanged).
pub fn changes(recorded: &Decision, replayed: &Decision) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if recorded.agent != replayed.agent {
        kinds.push("agent");
    }
    if recorded.tool_calls != replayed.tool_calls {
        kinds.push("tool_calls");
    }
    if recorded.confirmation != replayed.confirmation {
        kinds.push("confirmation");
    }
    if recorded.escalation != replayed.escalation {
        kinds.push("escalation");
    }
    if recorded.reply != replayed.reply {
        kinds.push("reply");
    }
    kinds
}

/// A turn whose replay differs from the recording.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedTurn {
    pub thread_id: String,
    pub turn_id: String,
    /// The user message's stream sequence.
    pub seq: u64,
    pub occurred_at: String,
    pub message: String,
    pub changes: Vec<&'static str>,
    pub recorded: Decision,
    pub replayed: Decision,
}

impl ChangedTurn {
    pub fn new(
        turn: &RecordedTurn,
        changes: Vec<&'static str>,
        recorded: Decision,
        replayed: Decision,
    ) -> ChangedTurn {
        ChangedTurn {
            thread_id: turn.thread().to_string(),
            turn_id: turn.message.turn_id.to_string(),
            seq: turn.seq,
            occurred_at: turn
                .message
                .occurred_at
                .format(&Rfc3339)
                .unwrap_or_default(),
            message: turn.content().to_owned(),
            changes,
            recorded,
            replayed,
        }
    }
}

/// A turn that could not be replayed (the model engine failed).
#[derive(Debug, Clone, Serialize)]
pub struct Unreplayed {
    pub thread_id: String,
    pub seq: u64,
    pub error: String,
}

/// Counts of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Turns run again.
    pub replayed: u64,
    pub unchanged: u64,
    pub changed: u64,
    /// Changed turns by kind of change (a turn may count under several).
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Tool calls of the replays that the recorded turns never made (sent nowhere).
    pub new_tool_calls: u64,
    /// Turns that could not be replayed (an engine error).
    pub errors: u64,
    pub skipped: Skipped,
    pub seconds: f64,
    pub turns_per_second: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The config tried.
    pub config: String,
    /// The engine that proposed the steps (`rules`, `openai`).
    pub engine: String,
    pub summary: Summary,
    /// The changed turns, in stream order.
    pub changed: Vec<ChangedTurn>,
    /// The turns that could not be replayed.
    pub errors: Vec<Unreplayed>,
}

impl Report {
    pub fn new(config: String, engine: String) -> Report {
        let mut summary = Summary::default();
        for kind in KINDS {
            summary.by_kind.insert(kind, 0);
        }
        Report {
            config,
            engine,
            summary,
            changed: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Counts one replayed turn.
    pub fn add(&mut self, turn: &RecordedTurn, replayed: Decision) {
        self.summary.replayed += 1;
        self.summary.new_tool_calls += replayed.tool_calls.iter().filter(|c| c.new).count() as u64;
        let recorded = Decision::of(&turn.events);
        let kinds = changes(&recorded, &replayed);
        if kinds.is_empty() {
            self.summary.unchanged += 1;
            return;
        }
        self.summary.changed += 1;
        for kind in &kinds {
            *self.summary.by_kind.entry(kind).or_default() += 1;
        }
        self.changed
            .push(ChangedTurn::new(turn, kinds, recorded, replayed));
    }

    pub fn failed(&mut self, turn: &RecordedTurn, error: String) {
        self.summary.errors += 1;
        self.errors.push(Unreplayed {
            thread_id: turn.thread().to_string(),
            seq: turn.seq,
            error,
        });
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }

    /// The summary, then each changed turn with the recorded and the replayed decision side
    /// by side (`*` marks what changed).
    pub fn text(&self) -> String {
        let s = &self.summary;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "regress: {} with the {} engine",
            self.config, self.engine
        );
        let _ = writeln!(
            out,
            "  turns replayed  {}   unchanged {}   changed {}",
            s.replayed, s.unchanged, s.changed
        );
        let kinds: Vec<String> = s
            .by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        let _ = writeln!(out, "  changed by kind {}", kinds.join(", "));
        let _ = writeln!(
            out,
            "  new tool calls  {} (not in the recording: sent nowhere)",
            s.new_tool_calls
        );
        let _ = writeln!(
            out,
            "  not replayed    {} held by a person, {} failed, {} unfinished, {} unreadable{}",
            s.skipped.held,
            s.skipped.failed,
            s.skipped.unfinished,
            s.skipped.unreadable,
            if s.errors > 0 {
                format!("; {} engine errors", s.errors)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "  in {:.2}s ({:.0} turns/s)",
            s.seconds, s.turns_per_second
        );
        for error in &self.errors {
            let _ = writeln!(
                out,
                "  error: thread {} seq {}: {}",
                error.thread_id, error.seq, error.error
            );
        }
        for turn in &self.changed {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "── thread {}  seq {}  {}  changed: {}",
                turn.thread_id,
                turn.seq,
                turn.occurred_at,
                turn.changes.join(", ")
            );
            let _ = writeln!(out, "   customer: {}", one_line(&turn.message));
            let rows = rows(&turn.recorded, &turn.replayed);
            let _ = writeln!(out, "   {:<14}{:<WIDTH$} │ replayed", "", "recorded");
            for (field, changed, left, right) in rows {
                let left = wrap(&left, WIDTH);
                let right = wrap(&right, WIDTH);
                for i in 0..left.len().max(right.len()) {
                    let mark = if i == 0 && changed { "*" } else { " " };
                    let name = if i == 0 { field } else { "" };
                    let l = left.get(i).map_or("", String::as_str);
                    let r = right.get(i).map_or("", String::as_str);
                    let pad = WIDTH.saturating_sub(l.chars().count());
                    let line = format!(" {mark} {name:<14}{l}{} │ {r}", " ".repeat(pad));
                    let _ = writeln!(out, "{}", line.trim_end());
                }
            }
        }
        out
    }

    /// A page of its own: the summary, then a table per changed turn.
    pub fn html(&self) -> String {
        let s = &self.summary;
        let mut out = String::new();
        out.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        let _ = writeln!(out, "<title>regress: {}</title>", escape(&self.config));
        out.push_str(
            "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0 2em}\
             td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}\
             tr.changed td{background:#fff3cd}pre{margin:0;white-space:pre-wrap}</style></head><body>\n",
        );
        let _ = writeln!(
            out,
            "<h1>regress: {} ({} engine)</h1>",
            escape(&self.config),
            escape(&self.engine)
        );
        out.push_str("<table><tbody>\n");
        let mut row = |name: &str, value: String| {
            let _ = writeln!(
                out,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(name),
                escape(&value)
            );
        };
        row("turns replayed", s.replayed.to_string());
        row("unchanged", s.unchanged.to_string());
        row("changed", s.changed.to_string());
        for (kind, n) in &s.by_kind {
            row(&format!("changed: {kind}"), n.to_string());
        }
        row(
            "new tool calls (sent nowhere)",
            s.new_tool_calls.to_string(),
        );
        row("held by a person", s.skipped.held.to_string());
        row("failed", s.skipped.failed.to_string());
        row("unfinished", s.skipped.unfinished.to_string());
        row("engine errors", s.errors.to_string());
        out.push_str("</tbody></table>\n");
        for turn in &self.changed {
            let _ = writeln!(
                out,
                "<h2>thread {} · seq {} · {}</h2>\n<p>customer: {}</p>",
                escape(&turn.thread_id),
                turn.seq,
                escape(&turn.occurred_at),
                escape(&turn.message)
            );
            out.push_str("<table><thead><tr><th></th><th>recorded</th><th>replayed</th></tr></thead><tbody>\n");
            for (field, changed, left, right) in rows(&turn.recorded, &turn.replayed) {
                let _ = writeln!(
                    out,
                    "<tr{}><th>{}</th><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
                    if changed { " class=\"changed\"" } else { "" },
                    escape(field),
                    escape(&left),
                    escape(&right)
                );
            }
            out.push_str("</tbody></table>\n");
        }
        out.push_str("</body></html>\n");
        out
    }
}

/// Width of a column of the text report.
const WIDTH: usize = 48;

/// The fields of two decisions as text: name, whether it changed, recorded, replayed.
fn rows(recorded: &Decision, replayed: &Decision) -> Vec<(&'static str, bool, String, String)> {
    let none = || "—".to_owned();
    let calls = |calls: &[Call]| {
        if calls.is_empty() {
            return none();
        }
        calls
            .iter()
            .map(|c| {
                let mut text = format!("{} {}", c.tool, compact(&c.params));
                if c.refused {
                    text.push_str(" (refused)");
                }
                if c.new {
                    text.push_str(" (new: not called)");
                }
                text
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let confirmation = |d: &Decision| {
        d.confirmation
            .as_ref()
            .map_or_else(none, |c| format!("{} {}", c.tool, compact(&c.params)))
    };
    let escalation = |d: &Decision| {
        d.escalation
            .as_ref()
            .map_or_else(none, |e| format!("{} ({})", e.reason, e.detail))
    };
    vec![
        (
            "agent",
            recorded.agent != replayed.agent,
            recorded.agent.clone().unwrap_or_else(none),
            replayed.agent.clone().unwrap_or_else(none),
        ),
        (
            "tool calls",
            recorded.tool_calls != replayed.tool_calls,
            calls(&recorded.tool_calls),
            calls(&replayed.tool_calls),
        ),
        (
            "confirmation",
            recorded.confirmation != replayed.confirmation,
            confirmation(recorded),
            confirmation(replayed),
        ),
        (
            "escalation",
            recorded.escalation != replayed.escalation,
            escalation(recorded),
            escalation(replayed),
        ),
        (
            "reply",
            recorded.reply != replayed.reply,
            recorded.reply.clone().unwrap_or_else(none),
            replayed.reply.clone().unwrap_or_else(none),
        ),
    ]
}

fn compact(value: &Value) -> String {
    if value.is_null() {
        String::new()
    } else {
        value.to_string()
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lines of at most `width` characters, broken at spaces where possible, keeping the
/// text's own line breaks.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ') {
            let mut word = word.to_owned();
            loop {
                let len = line.chars().count();
                let wlen = word.chars().count();
                let sep = usize::from(len > 0);
                if len + sep + wlen <= width {
                    if sep == 1 {
                        line.push(' ');
                    }
                    line.push_str(&word);
                    break;
                }
                if len > 0 {
                    lines.push(std::mem::take(&mut line));
                    continue;
                }
                // A word longer than a line: cut it.
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                lines.push(head);
            }
        }
        lines.push(line);
    }
    lines
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decision() -> Decision {
        Decision {
            agent: Some("orders".into()),
            tool_calls: vec![Call {
                tool: "getOrder".into(),
                params: json!({"order_id": "ORD-1001"}),
                refused: false,
                new: false,
            }],
            confirmation: None,
            escalation: None,
            reply: Some("Order ORD-1001 is shipped.".into()),
        }
    }

    #[test]
    fn the_same_decision_is_no_change() {
        assert!(changes(&decision(), &decision()).is_empty());
    }

    #[test]
    fn each_field_is_a_kind_of_change() {
        let mut other = decision();
        other.agent = Some("billing".into());
        other.reply = Some("Something else".into());
        assert_eq!(changes(&decision(), &other), ["agent", "reply"]);
        let mut other = decision();
        other.tool_calls[0].params = json!({"order_id": "ORD-1002"});
        assert_eq!(changes(&decision(), &other), ["tool_calls"]);
    }

    #[test]
    fn a_call_answered_from_nowhere_is_still_the_same_call() {
        let mut other = decision();
        other.tool_calls[0].new = true;
        assert!(changes(&decision(), &other).is_empty());
    }

    #[test]
    fn a_long_text_wraps_within_its_column() {
        let lines = wrap(&"word ".repeat(30), 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(wrap(&"x".repeat(45), 20).len(), 3);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("<b>&\""), "&lt;b&gt;&amp;&quot;");
    }
}
