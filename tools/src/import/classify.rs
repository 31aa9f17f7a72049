//! The rule table of `docs/openapi-import.md`: a class (`read`, `write`, `destructive`)
//! from the method, the last literal path segment and the operation id's words, with a
//! reason for every rule that fired; and a suggested agent whose name or routing keywords
//! match a path word, an operation id word or a tag.

use common::events::Permission;

use super::ImportedOperation;
use crate::agents_config::AgentsConfig;

/// Words that mean data goes away: destructive whatever the method.
pub const DESTRUCTIVE_WORDS: [&str; 7] = [
    "delete",
    "remove",
    "destroy",
    "purge",
    "erase",
    "wipe",
    "terminate",
];
/// Words of actions that change state (money, orders, messages): at least `write`, even
/// behind a GET, so the agent asks for confirmation.
pub const ACTION_WORDS: [&str; 18] = [
    "cancel", "refund", "void", "revoke", "reverse", "capture", "charge", "pay", "approve",
    "reject", "send", "close", "archive", "reset", "transfer", "publish", "submit", "execute",
];
/// Last path segments of a POST that only asks a question: `read`.
pub const QUERY_WORDS: [&str; 6] = ["search", "query", "lookup", "find", "validate", "preview"];

/// What the suggestion knows of an agent: its name and one-word routing keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentHint {
    pub name: String,
    pub words: Vec<String>,
}

impl AgentHint {
    /// The hints of every agent of a config.
    pub fn from_config(config: &AgentsConfig) -> Vec<AgentHint> {
        config
            .agents
            .iter()
            .map(|agent| AgentHint {
                name: agent.card.name.clone(),
                words: agent
                    .route
                    .keywords
                    .iter()
                    .filter(|k| !k.contains(' '))
                    .map(|k| k.to_lowercase())
                    .collect(),
            })
            .collect()
    }

    fn matches(&self, word: &str) -> bool {
        let stem = singular(word);
        [self.name.as_str()]
            .into_iter()
            .chain(self.words.iter().map(String::as_str))
            .any(|w| w == word || stem == singular(w))
    }
}

/// `orders` → `order`, `addresses` → `address`; other words as they are.
fn singular(word: &str) -> &str {
    if let Some(stem) = word.strip_suffix("sses") {
        return &word[..stem.len() + 2];
    }
    match word.strip_suffix('s') {
        Some(stem) if stem.len() > 2 && !stem.ends_with('s') => stem,
        _ => word,
    }
}

/// Lower-case words of an identifier: `cancelOrder`, `cancel_order`, `cancel-order` →
/// `cancel`, `order`.
pub fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_numeric();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The literal segments of a path template (no `{parameters}`), in order.
fn literal_segments(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{'))
        .collect()
}

/// Sets `class`, `reasons`, `suggested_agent` and `agent_reason`.
pub fn classify(operation: &mut ImportedOperation, agents: &[AgentHint]) {
    let method = operation.method.as_str();
    let segments = literal_segments(&operation.path);
    // Only the last segment names an action: `/orders/{id}/cancel` cancels, while
    // `/cancellations/{id}` or `/refunds` is a collection a GET lists.
    let last = operation
        .path
        .rsplit('/')
        .find(|s| !s.is_empty())
        .filter(|s| !s.starts_with('{'))
        .unwrap_or("");
    let last_words = words(last);
    let id_words = if operation.generated_id {
        Vec::new()
    } else {
        words(&operation.operation_id)
    };
    let said = |list: &[&str]| -> Option<String> {
        if let Some(word) = last_words.iter().find(|w| list.contains(&w.as_str())) {
            return Some(format!("path ends in /{last} ({word})"));
        }
        id_words
            .iter()
            .find(|w| list.contains(&w.as_str()))
            .map(|word| format!("operation id `{}` says {word}", operation.operation_id))
    };

    let mut reasons = Vec::new();
    let class = if method == "DELETE" {
        reasons.push("DELETE removes data".to_owned());
        Permission::Destructive
    } else if let Some(why) = said(&DESTRUCTIVE_WORDS) {
        reasons.push(format!(
            "{why}: removes data although the method is {method}"
        ));
        Permission::Destructive
    } else if let Some(why) = said(&ACTION_WORDS) {
        if matches!(method, "GET" | "HEAD") {
            reasons.push(format!(
                "{why}: an action that changes state, not a harmless read"
            ));
        } else {
            reasons.push(format!("{why}: an action that changes state"));
        }
        reasons.push("write: the agent asks the user to confirm before calling it".to_owned());
        Permission::Write
    } else if matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE") {
        reasons.push(format!("{method} only reads"));
        Permission::Read
    } else if method == "POST"
        && let Some(word) = last_words
            .iter()
            .find(|w| QUERY_WORDS.contains(&w.as_str()))
    {
        reasons.push(format!(
            "POST to /{last} ({word}) sends a query and changes nothing"
        ));
        Permission::Read
    } else {
        reasons.push(match method {
            "PUT" => "PUT replaces data".to_owned(),
            "PATCH" => "PATCH changes data".to_owned(),
            "POST" => "POST creates or changes data".to_owned(),
            other => format!("{other} is not a read"),
        });
        Permission::Write
    };
    operation.class = class;
    operation.reasons = reasons;

    // The most specific word first: the last segment, the id, the tags, then the other
    // segments from the end.
    let mut candidates: Vec<(String, String)> = Vec::new();
    for word in &last_words {
        candidates.push((word.clone(), format!("path word `{word}`")));
    }
    for word in &id_words {
        candidates.push((word.clone(), format!("operation id word `{word}`")));
    }
    for tag in &operation.tags {
        for word in words(tag) {
            candidates.push((word, format!("tag `{tag}`")));
        }
    }
    for segment in segments.iter().rev() {
        for word in words(segment) {
            candidates.push((word.clone(), format!("path word `{word}`")));
        }
    }
    let suggestion = candidates.iter().find_map(|(word, source)| {
        agents
            .iter()
            .find(|agent| agent.matches(word))
            .map(|agent| (agent, source))
    });
    (operation.suggested_agent, operation.agent_reason) = match suggestion {
        Some((agent, source)) => (
            Some(agent.name.clone()),
            Some(format!("{source} matches agent `{}`", agent.name)),
        ),
        None => (None, None),
    };
}
