//! The agents config: which agents exist, how a message is routed to one, which tools
//! each may call and with which permission, when a human takes over, and (for the rule
//! engine) the intents with their reply templates. Read once at start-up from YAML; a
//! mistake fails the start with the file, the line and the reason. Every field is
//! documented with an example in `docs/agent-config.md`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use common::events::Permission;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::AgentCard;

/// Tool calls one turn may make before the agent gives up and escalates.
const DEFAULT_MAX_TOOL_CALLS: usize = 4;

/// A config that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line, when the mistake can be placed.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

/// What the tools document has under a name an agent gives ([`AgentsConfig::check_tools`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolLookup {
    /// A tool.
    Found,
    /// An operation that cannot be a tool, and why (a `$ref` to nothing).
    Unusable(String),
    /// No operation of that name.
    Missing,
}

/// The whole config, checked.
#[derive(Debug, Clone)]
pub struct AgentsConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// The OpenAPI document the tools come from (resolved against the config's folder).
    pub openapi: Option<PathBuf>,
    /// The agent for messages no rule routes (when the engine does not choose either).
    pub default_agent: String,
    pub escalation: Escalation,
    pub confirmation: Confirmation,
    /// Most tool calls in one turn.
    pub max_tool_calls: usize,
    /// In routing order: the first agent whose route matches answers.
    pub agents: Vec<Agent>,
    source: String,
}

/// One agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub card: AgentCard,
    pub route: Route,
    /// The tools it may call, by operation id.
    pub tools: Vec<AgentTool>,
    /// The rule engine's intents, in matching order.
    pub intents: Vec<Intent>,
    /// The rule engine's reply when no intent matches (`{message}` is the user's text).
    pub fallback_reply: String,
    /// Which engine answers its turns and with which model settings (all optional: the
    /// worker's `AGENT_ENGINE` and `OPENAI_*` settings otherwise).
    pub engine: EngineSettings,
}

/// An engine an agent may name (`engine: rules | openai`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineName {
    /// The deterministic rule engine (the agent's intents).
    Rules,
    /// The OpenAI-compatible chat-completions engine.
    Openai,
}

impl EngineName {
    /// As written in the config and in `agent.replied`'s `engine`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineName::Rules => "rules",
            EngineName::Openai => "openai",
        }
    }
}

/// An agent's own engine and model settings; `None` is the worker's setting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineSettings {
    /// The engine of its turns (default: the worker's `AGENT_ENGINE`).
    pub name: Option<EngineName>,
    /// The model asked (default: `OPENAI_MODEL`).
    pub model: Option<String>,
    /// Sampling temperature sent to the model, 0 to 2 (default: none sent).
    pub temperature: Option<f64>,
    /// Most tokens the model may write per request (default: none sent).
    pub max_tokens: Option<u32>,
}

/// Highest `temperature` the OpenAI API accepts.
const MAX_TEMPERATURE: f64 = 2.0;

/// When a message goes to an agent.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Whole words (a trailing plural `s` allowed) or phrases, case-insensitive.
    pub keywords: Vec<String>,
    /// Regular expressions, case-insensitive.
    pub patterns: Vec<Regex>,
}

/// A tool an agent may call.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTool {
    /// Operation id in the OpenAPI document.
    pub operation: String,
    pub permission: Permission,
    /// For `write` tools: the question asked before running it (`{name}` is an argument).
    pub confirm: Option<String>,
}

/// A rule-engine intent: when the message matches, call this tool (or none) and answer
/// with this template.
#[derive(Debug, Clone)]
pub struct Intent {
    pub name: String,
    pub patterns: Vec<Regex>,
    pub tool: Option<String>,
    /// Arguments taken from the message, in name order.
    pub params: Vec<Param>,
    /// The answer; `{result.<field>}` and `{params.<name>}` are filled in.
    pub reply: String,
    /// The answer when an argument could not be found in the message.
    pub missing_reply: Option<String>,
    /// The answer when the tool failed (`{error}` is what went wrong).
    pub error_reply: Option<String>,
}

/// An argument of an intent's tool call, found in the user's message.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub pattern: Regex,
    /// How the value is written from the pattern's capture groups (`ORD-{1}`); without
    /// it, the first group (or the whole match) upper-cased.
    pub format: Option<String>,
}

impl Param {
    /// The argument's value in `message`, when the pattern matches.
    pub fn find(&self, message: &str) -> Option<String> {
        let captures = self.pattern.captures(message)?;
        let Some(format) = &self.format else {
            let found = captures.get(1).or(captures.get(0))?;
            return Some(found.as_str().to_uppercase());
        };
        let mut value = String::with_capacity(format.len());
        for piece in format_pieces(format) {
            match piece {
                FormatPiece::Text(text) => value.push_str(text),
                FormatPiece::Group(group) => {
                    value.push_str(captures.get(group).map_or("", |m| m.as_str()));
                }
            }
        }
        Some(value)
    }
}

/// A piece of a parameter's `format`: literal text, or `{N}`, the pattern's group N.
#[derive(Debug, PartialEq, Eq)]
enum FormatPiece<'a> {
    Text(&'a str),
    Group(usize),
}

/// Splits a `format` into text and `{N}` groups; `{` that does not open `{<digits>}`
/// is text. (Checked at load: every format names at least one group the pattern has.)
fn format_pieces(format: &str) -> Vec<FormatPiece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        let group = rest[open + 1..]
            .find('}')
            .and_then(|close| Some((rest[open + 1..open + 1 + close].parse().ok()?, close)));
        match group {
            Some((group, close)) => {
                if open > 0 {
                    pieces.push(FormatPiece::Text(&rest[..open]));
                }
                pieces.push(FormatPiece::Group(group));
                rest = &rest[open + close + 2..];
            }
            None => {
                pieces.push(FormatPiece::Text(&rest[..=open]));
                rest = &rest[open + 1..];
            }
        }
    }
    if !rest.is_empty() {
        pieces.push(FormatPiece::Text(rest));
    }
    pieces
}

/// When a human takes over.
#[derive(Debug, Clone)]
pub struct Escalation {
    /// The user asks for a human: regular expressions, case-insensitive.
    pub human_request: Vec<Regex>,
    /// Words or phrases that always escalate.
    pub keywords: Vec<String>,
    /// Failed tool calls in one turn that escalate.
    pub max_failed_tool_calls: usize,
    /// What the user is told.
    pub reply: String,
}

/// How the user answers a confirmation question.
#[derive(Debug, Clone)]
pub struct Confirmation {
    pub yes: Vec<String>,
    pub no: Vec<String>,
    /// The answer to a "no".
    pub cancelled_reply: String,
}

/// The user's answer to a pending confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Something else: the pending action is dropped and the message answered as new.
    Other,
}

impl AgentsConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<AgentsConfig, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|err| ConfigError {
            file: path.to_owned(),
            line: None,
            reason: format!("cannot read: {err}"),
        })?;
        AgentsConfig::parse(path, &source)
    }

    /// Parses and checks config text; `path` names it in errors and anchors `openapi`.
    pub fn parse(path: &Path, source: &str) -> Result<AgentsConfig, ConfigError> {
        let error = |line: Option<usize>, reason: String| ConfigError {
            file: path.to_owned(),
            line,
            reason,
        };
        let raw: RawConfig = serde_yaml_ng::from_str(source)
            .map_err(|err| error(err.location().map(|l| l.line()), strip_location(&err)))?;
        let at = |needle: &str| line_of(source, needle);
        let regexes = |patterns: &[String]| -> Result<Vec<Regex>, ConfigError> {
            patterns
                .iter()
                .map(|p| {
                    Regex::new(&format!("(?i){p}"))
                        .map_err(|err| error(at(p), format!("invalid pattern {p:?}: {err}")))
                })
                .collect()
        };
        if raw.agents.is_empty() {
            return Err(error(at("agents"), "at least one agent is needed".into()));
        }
        let mut names = HashSet::new();
        let mut agents = Vec::with_capacity(raw.agents.len());
        for agent in &raw.agents {
            if !valid_name(&agent.name) {
                return Err(error(
                    at(&agent.name),
                    format!(
                        "agent name {:?} must be 1 to 64 characters of a-z, 0-9, '-' and '_'",
                        agent.name
                    ),
                ));
            }
            if !names.insert(agent.name.as_str()) {
                return Err(error(
                    at(&format!("name: {}", agent.name)),
                    format!("agent {:?} is defined twice", agent.name),
                ));
            }
            let tools: Vec<AgentTool> = agent
                .tools
                .iter()
                .map(|(operation, tool)| match tool {
                    RawTool::Level(permission) => AgentTool {
                        operation: operation.clone(),
                        permission: *permission,
                        confirm: None,
                    },
                    RawTool::Detailed(RawToolDetail {
                        permission,
                        confirm,
                    }) => AgentTool {
                        operation: operation.clone(),
                        permission: *permission,
                        confirm: confirm.clone(),
                    },
                })
                .collect();
            let mut intents = Vec::with_capacity(agent.intents.len());
            for intent in &agent.intents {
                // An intent may name a tool the agent does not have here: a published
                // one (docs/openapi-import.md#publish). Until it is published, the call
                // is refused in the turn.
                let mut params = Vec::with_capacity(intent.params.len());
                for (name, param) in &intent.params {
                    let (pattern, format) = match param {
                        RawParam::Pattern(pattern) => (pattern, None),
                        RawParam::Detailed(RawParamDetail { pattern, format }) => {
                            (pattern, format.as_ref())
                        }
                    };
                    let pattern = regexes(std::slice::from_ref(pattern))?.remove(0);
                    if let Some(format) = format {
                        check_format(&pattern, format).map_err(|reason| {
                            error(
                                at(&format!("format: {format}"))
                                    .or_else(|| at(&format!("format: \"{format}\"")))
                                    .or_else(|| at(format)),
                                format!(
                                    "intent {:?}, param {name:?}: format {format:?} {reason}",
                                    intent.name
                                ),
                            )
                        })?;
                    }
                    params.push(Param {
                        name: name.clone(),
                        pattern,
                        format: format.cloned(),
                    });
                }
                intents.push(Intent {
                    name: intent.name.clone(),
                    patterns: regexes(&intent.patterns)?,
                    tool: intent.tool.clone(),
                    params,
                    reply: intent.reply.clone(),
                    missing_reply: intent.missing_reply.clone(),
                    error_reply: intent.error_reply.clone(),
                });
            }
            let engine = engine_settings(agent, source).map_err(|(line, reason)| {
                error(line, format!("agent {:?}: {reason}", agent.name))
            })?;
            agents.push(Agent {
                engine,
                card: AgentCard {
                    name: agent.name.clone(),
                    description: agent.description.clone(),
                    instructions: agent.instructions.clone().unwrap_or_else(|| {
                        format!(
                            "You are the {} support agent. {}",
                            agent.name, agent.description
                        )
                    }),
                },
                route: Route {
                    keywords: lower(&agent.route.keywords),
                    patterns: regexes(&agent.route.patterns)?,
                },
                tools,
                intents,
                fallback_reply: agent.fallback_reply.clone().unwrap_or_else(|| {
                    "I'm not sure I understood. Could you tell me a bit more?".into()
                }),
            });
        }
        if !names.contains(raw.default_agent.as_str()) {
            return Err(error(
                at("default_agent"),
                format!(
                    "default_agent {:?} is not one of the agents",
                    raw.default_agent
                ),
            ));
        }
        let escalation = Escalation {
            human_request: regexes(&raw.escalation.human_request)?,
            keywords: lower(&raw.escalation.keywords),
            max_failed_tool_calls: raw.escalation.max_failed_tool_calls,
            reply: raw.escalation.reply,
        };
        let confirmation = Confirmation {
            yes: lower(&raw.confirmation.yes),
            no: lower(&raw.confirmation.no),
            cancelled_reply: raw.confirmation.cancelled_reply,
        };
        let openapi = raw
            .openapi
            .map(|file| path.parent().unwrap_or_else(|| Path::new(".")).join(file));
        Ok(AgentsConfig {
            path: path.to_owned(),
            openapi,
            default_agent: raw.default_agent,
            escalation,
            confirmation,
            max_tool_calls: raw.max_tool_calls.unwrap_or(DEFAULT_MAX_TOOL_CALLS),
            agents,
            source: source.to_owned(),
        })
    }

    /// Checks that every tool an agent names is a usable operation of the loaded document
    /// (`lookup` says what the document has under a name).
    pub fn check_tools(&self, lookup: &dyn Fn(&str) -> ToolLookup) -> Result<(), ConfigError> {
        for agent in &self.agents {
            for tool in &agent.tools {
                let reason = match (lookup(&tool.operation), &self.openapi) {
                    (ToolLookup::Found, _) => continue,
                    (ToolLookup::Unusable(why), _) => format!(
                        "agent {:?} names tool {:?}, an operation of the OpenAPI document that cannot be used: {why}",
                        agent.card.name, tool.operation
                    ),
                    (ToolLookup::Missing, Some(_)) => format!(
                        "agent {:?} names tool {:?}, which is not an operation of the OpenAPI document",
                        agent.card.name, tool.operation
                    ),
                    (ToolLookup::Missing, None) => format!(
                        "agent {:?} names tool {:?}, but the config names no `openapi` document",
                        agent.card.name, tool.operation
                    ),
                };
                return Err(ConfigError {
                    file: self.path.clone(),
                    line: line_of(&self.source, &format!("{}:", tool.operation)),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Whether an agent names this tool.
    pub fn names_tool(&self, operation: &str) -> bool {
        self.agents
            .iter()
            .any(|agent| agent.tools.iter().any(|tool| tool.operation == operation))
    }

    /// The agent with this name.
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|agent| agent.card.name == name)
    }

    /// Every agent as an engine sees it.
    pub fn cards(&self) -> Vec<AgentCard> {
        self.agents.iter().map(|agent| agent.card.clone()).collect()
    }

    /// The first agent whose route matches, and why.
    pub fn route(&self, message: &str) -> Option<(&Agent, String)> {
        let text = Text::new(message);
        self.agents.iter().find_map(|agent| {
            if let Some(keyword) = agent.route.keywords.iter().find(|k| text.has(k)) {
                return Some((agent, format!("keyword {keyword:?}")));
            }
            agent
                .route
                .patterns
                .iter()
                .find(|p| p.is_match(message))
                .map(|p| (agent, format!("pattern {:?}", pattern_source(p))))
        })
    }

    /// Whether the message asks for a human or names an escalation keyword, and which.
    pub fn escalation_trigger(
        &self,
        message: &str,
    ) -> Option<(common::events::EscalationReason, String)> {
        use common::events::EscalationReason;
        if let Some(pattern) = self
            .escalation
            .human_request
            .iter()
            .find(|p| p.is_match(message))
        {
            return Some((
                EscalationReason::UserRequest,
                format!(
                    "the user asked for a human (pattern {:?})",
                    pattern_source(pattern)
                ),
            ));
        }
        let text = Text::new(message);
        self.escalation
            .keywords
            .iter()
            .find(|k| text.has(k))
            .map(|k| (EscalationReason::Keyword, format!("keyword {k:?}")))
    }

    /// How a message answers a pending confirmation.
    pub fn answer(&self, message: &str) -> Answer {
        let said = message
            .trim()
            .trim_end_matches(['.', '!'])
            .trim()
            .to_lowercase();
        if self.confirmation.yes.contains(&said) {
            Answer::Yes
        } else if self.confirmation.no.contains(&said) {
            Answer::No
        } else {
            Answer::Other
        }
    }
}

impl Agent {
    /// The tool of this agent with this operation id.
    pub fn tool(&self, operation: &str) -> Option<&AgentTool> {
        self.tools.iter().find(|tool| tool.operation == operation)
    }
}

/// A message split into lower-case words, for keyword matching.
struct Text {
    lower: String,
    words: Vec<String>,
}

impl Text {
    fn new(message: &str) -> Text {
        let lower = message.to_lowercase();
        let words = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        Text { lower, words }
    }

    /// A phrase matches as a substring; a word as a whole word, also with a plural `s`.
    fn has(&self, keyword: &str) -> bool {
        if keyword.contains(' ') {
            self.lower.contains(keyword)
        } else {
            self.words
                .iter()
                .any(|w| w == keyword || w.strip_suffix('s') == Some(keyword))
        }
    }
}

/// A compiled pattern as written in the config (without the `(?i)` we add).
fn pattern_source(regex: &Regex) -> &str {
    regex
        .as_str()
        .strip_prefix("(?i)")
        .unwrap_or(regex.as_str())
}

fn lower(words: &[String]) -> Vec<String> {
    words.iter().map(|w| w.trim().to_lowercase()).collect()
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// An agent's engine settings, checked: a model setting on an agent whose engine is
/// `rules` would be silently ignored, so it is refused; `(line, reason)` when wrong.
fn engine_settings(
    agent: &RawAgent,
    source: &str,
) -> Result<EngineSettings, (Option<usize>, String)> {
    let at = |key: &str| line_in_agent(source, &agent.name, key);
    if let Some(model) = &agent.model
        && (model.trim().is_empty() || model.len() > 200)
    {
        return Err((at("model:"), "model must be 1 to 200 characters".into()));
    }
    if let Some(temperature) = agent.temperature
        && !(0.0..=MAX_TEMPERATURE).contains(&temperature)
    {
        return Err((
            at("temperature:"),
            format!("temperature {temperature} is not between 0 and {MAX_TEMPERATURE}"),
        ));
    }
    if agent.max_tokens == Some(0) {
        return Err((at("max_tokens:"), "max_tokens must be at least 1".into()));
    }
    if agent.engine == Some(EngineName::Rules) {
        for (key, set) in [
            ("model", agent.model.is_some()),
            ("temperature", agent.temperature.is_some()),
            ("max_tokens", agent.max_tokens.is_some()),
        ] {
            if set {
                return Err((
                    at(&format!("{key}:")),
                    format!("{key} is a model setting, and the agent's engine is rules"),
                ));
            }
        }
    }
    Ok(EngineSettings {
        name: agent.engine,
        model: agent.model.clone(),
        temperature: agent.temperature,
        max_tokens: agent.max_tokens,
    })
}

/// The first line (1-based) containing `needle` after the line naming agent `agent`.
fn line_in_agent(source: &str, agent: &str, needle: &str) -> Option<usize> {
    let start = line_of(source, &format!("name: {agent}"))?;
    source
        .lines()
        .enumerate()
        .skip(start)
        .find(|(_, line)| line.contains(needle))
        .map(|(index, _)| index + 1)
}

/// The first line (1-based) that contains `needle`.
fn line_of(source: &str, needle: &str) -> Option<usize> {
    source
        .lines()
        .position(|line| line.contains(needle))
        .map(|index| index + 1)
}

/// serde_yaml_ng's message without its own " at line N column M" (we print the line),
/// and in words where serde's would name a Rust type.
fn strip_location(err: &serde_yaml_ng::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    };
    text.replace(
        "data did not match any variant of untagged enum RawTool",
        "a tool is `read`, `write`, `destructive`, or `{ permission: <one of those>, confirm: \"<question>\" }` (no other fields)",
    )
    .replace(
        "data did not match any variant of untagged enum RawParam",
        "a param is a pattern, or `{ pattern: '<pattern>', format: \"<text with {1}, {2}…>\" }` (no other fields)",
    )
}

/// Why a param's `format` cannot be used with its pattern: it must name at least one
/// capture group, and only groups the pattern has.
fn check_format(pattern: &Regex, format: &str) -> Result<(), String> {
    // captures_len counts the whole match as group 0.
    let groups = pattern.captures_len() - 1;
    let named: Vec<usize> = format_pieces(format)
        .into_iter()
        .filter_map(|piece| match piece {
            FormatPiece::Group(group) => Some(group),
            FormatPiece::Text(_) => None,
        })
        .collect();
    if named.is_empty() {
        return Err("names no capture group: write `{1}` where the first group goes".into());
    }
    match named.iter().find(|&&group| group == 0 || group > groups) {
        Some(group) => Err(format!(
            "names group {{{group}}}, but its pattern has {groups} capture group{} (counted from 1)",
            if groups == 1 { "" } else { "s" }
        )),
        None => Ok(()),
    }
}

/// Fills `{path}` placeholders from `context` (`{result.status}`, `{params.order_id}`);
/// `{path|money}` formats cents as `$12.34`. A missing value reads `unknown`.
pub fn render(template: &str, context: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let (path, filter) = match after[..close].split_once('|') {
            Some((path, filter)) => (path.trim(), Some(filter.trim())),
            None => (after[..close].trim(), None),
        };
        let value = path.split('.').try_fold(context, |value, key| match value {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        });
        match (value, filter) {
            (Some(Value::Number(cents)), Some("money")) if cents.as_i64().is_some() => {
                let cents = cents.as_i64().unwrap_or_default();
                let sign = if cents < 0 { "-" } else { "" };
                let cents = cents.unsigned_abs();
                out.push_str(&format!("{sign}${}.{:02}", cents / 100, cents % 100));
            }
            (Some(Value::String(text)), _) => out.push_str(text),
            (Some(Value::Null) | None, _) => out.push_str("unknown"),
            (Some(other), _) => out.push_str(&other.to_string()),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    openapi: Option<String>,
    default_agent: String,
    #[serde(default)]
    escalation: RawEscalation,
    #[serde(default)]
    confirmation: RawConfirmation,
    #[serde(default)]
    max_tool_calls: Option<usize>,
    agents: Vec<RawAgent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    #[serde(default)]
    human_request: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default = "default_max_failed")]
    max_failed_tool_calls: usize,
    #[serde(default = "default_escalation_reply")]
    reply: String,
}

impl Default for RawEscalation {
    fn default() -> RawEscalation {
        RawEscalation {
            human_request: Vec::new(),
            keywords: Vec::new(),
            max_failed_tool_calls: default_max_failed(),
            reply: default_escalation_reply(),
        }
    }
}

fn default_max_failed() -> usize {
    2
}

fn default_escalation_reply() -> String {
    "I've asked a member of our support team to take over; they will answer here.".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfirmation {
    #[serde(default = "default_yes")]
    yes: Vec<String>,
    #[serde(default = "default_no")]
    no: Vec<String>,
    #[serde(default = "default_cancelled")]
    cancelled_reply: String,
}

impl Default for RawConfirmation {
    fn default() -> RawConfirmation {
        RawConfirmation {
            yes: default_yes(),
            no: default_no(),
            cancelled_reply: default_cancelled(),
        }
    }
}

fn default_yes() -> Vec<String> {
    [
        "yes", "y", "yep", "yeah", "confirm", "ok", "okay", "sure", "go ahead",
    ]
    .map(String::from)
    .to_vec()
}

fn default_no() -> Vec<String> {
    ["no", "n", "nope", "cancel", "stop", "don't"]
        .map(String::from)
        .to_vec()
}

fn default_cancelled() -> String {
    "All right, I won't do that. Anything else I can help with?".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: String,
    description: String,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    route: RawRoute,
    #[serde(default)]
    tools: BTreeMap<String, RawTool>,
    #[serde(default)]
    intents: Vec<RawIntent>,
    #[serde(default)]
    fallback_reply: Option<String>,
    #[serde(default)]
    engine: Option<EngineName>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawTool {
    Level(Permission),
    Detailed(RawToolDetail),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolDetail {
    permission: Permission,
    #[serde(default)]
    confirm: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawParam {
    Pattern(String),
    Detailed(RawParamDetail),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParamDetail {
    pattern: String,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: String,
    #[serde(default)]
    patterns: Vec<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, RawParam>,
    reply: String,
    #[serde(default)]
    missing_reply: Option<String>,
    #[serde(default)]
    error_reply: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Result<AgentsConfig, ConfigError> {
        AgentsConfig::parse(Path::new("agents.yaml"), source)
    }

    const SMALL: &str = "\
default_agent: general
agents:
  - name: orders
    description: Orders
    route:
      keywords: [order, \"where is\"]
      patterns: ['\\bORD-\\d+']
    tools:
      getOrder: read
      cancelOrder: { permission: write, confirm: \"Cancel {order_id}?\" }
  - name: general
    description: Anything else
";

    #[test]
    fn the_demo_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/agents.yaml");
        let config = AgentsConfig::load(&path).unwrap();
        let names: Vec<_> = config.agents.iter().map(|a| a.card.name.as_str()).collect();
        for needed in ["triage", "orders", "billing", "general"] {
            assert!(names.contains(&needed), "{names:?}");
        }
        assert!(config.openapi.unwrap().ends_with("shop-openapi.yaml"));
    }

    #[test]
    fn an_agent_may_name_its_engine_model_temperature_and_max_tokens() {
        let source = SMALL.replace(
            "    description: Anything else\n",
            "    description: Anything else\n    engine: openai\n    model: gpt-4o\n    temperature: 0.2\n    max_tokens: 300\n",
        );
        let config = parse(&source).unwrap();
        assert_eq!(
            config.agent("general").unwrap().engine,
            EngineSettings {
                name: Some(EngineName::Openai),
                model: Some("gpt-4o".into()),
                temperature: Some(0.2),
                max_tokens: Some(300),
            }
        );
        assert_eq!(
            config.agent("orders").unwrap().engine,
            EngineSettings::default(),
            "unset: the worker's settings"
        );
    }

    #[test]
    fn an_unknown_engine_is_refused_with_its_line() {
        let source = SMALL.replace(
            "    description: Anything else\n",
            "    description: Anything else\n    engine: gpt\n",
        );
        let err = parse(&source).unwrap_err();
        assert_eq!(err.line, Some(13), "{err}");
        assert!(err.to_string().contains("rules"), "{err}");
    }

    #[test]
    fn a_temperature_out_of_range_is_refused_with_its_line() {
        let source = SMALL.replace(
            "    description: Anything else\n",
            "    description: Anything else\n    engine: openai\n    temperature: 2.5\n",
        );
        let err = parse(&source).unwrap_err();
        assert_eq!(err.line, Some(14), "{err}");
        assert!(
            err.to_string()
                .ends_with("agent \"general\": temperature 2.5 is not between 0 and 2"),
            "{err}"
        );
    }

    #[test]
    fn zero_max_tokens_is_refused_with_its_line() {
        let source = SMALL.replace(
            "    description: Anything else\n",
            "    description: Anything else\n    max_tokens: 0\n",
        );
        let err = parse(&source).unwrap_err();
        assert_eq!(err.line, Some(13), "{err}");
    }

    #[test]
    fn a_model_setting_on_a_rules_agent_is_refused_with_its_line() {
        let source = SMALL.replace(
            "    description: Orders\n",
            "    description: Orders\n    engine: rules\n    model: gpt-4o\n",
        );
        let err = parse(&source).unwrap_err();
        assert_eq!(err.line, Some(6), "{err}");
        assert!(err.to_string().contains("engine is rules"), "{err}");
    }

    #[test]
    fn tools_take_a_level_or_a_level_with_a_question() {
        let config = parse(SMALL).unwrap();
        let orders = config.agent("orders").unwrap();
        assert_eq!(
            orders.tool("getOrder").unwrap().permission,
            Permission::Read
        );
        let cancel = orders.tool("cancelOrder").unwrap();
        assert_eq!(cancel.permission, Permission::Write);
        assert_eq!(cancel.confirm.as_deref(), Some("Cancel {order_id}?"));
    }

    #[test]
    fn routing_takes_the_first_agent_whose_keyword_or_pattern_matches() {
        let config = parse(SMALL).unwrap();
        let (agent, why) = config.route("Where are my ORDERS?").unwrap();
        assert_eq!(
            (agent.card.name.as_str(), why.as_str()),
            ("orders", "keyword \"order\"")
        );
        let (agent, why) = config.route("about ord-77").unwrap();
        assert_eq!(agent.card.name, "orders");
        assert!(why.starts_with("pattern"), "{why}");
        assert!(config.route("bordering on silly").is_none());
    }

    #[test]
    fn a_yaml_mistake_names_the_file_and_line() {
        let err = parse("default_agent: general\nagents:\n  - name: [oops\n").unwrap_err();
        assert_eq!(err.file, Path::new("agents.yaml"));
        assert!(err.line.is_some(), "{err}");
        assert!(err.to_string().starts_with("agents.yaml:"), "{err}");
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_line() {
        let err = parse(&SMALL.replace(
            "    description: Orders\n",
            "    description: Orders\n    colour: red\n",
        ))
        .unwrap_err();
        assert!(err.reason.contains("colour"), "{err}");
        assert_eq!(err.line, Some(5), "{err}");
    }

    #[test]
    fn a_bad_permission_level_is_refused_in_words() {
        let err = parse(&SMALL.replace("getOrder: read", "getOrder: sometimes")).unwrap_err();
        assert_eq!(err.line, Some(9), "{err}");
        assert!(
            err.reason
                .contains("a tool is `read`, `write`, `destructive`"),
            "{err}"
        );
    }

    #[test]
    fn a_misspelt_field_of_a_tool_is_refused() {
        let err = parse(&SMALL.replace("confirm: \"Cancel", "confrim: \"Cancel")).unwrap_err();
        // serde_yaml_ng places an untagged mismatch at the start of the tools map.
        assert_eq!(err.line, Some(9), "{err}");
        assert!(err.reason.contains("no other fields"), "{err}");
    }

    #[test]
    fn an_unknown_default_agent_is_refused() {
        let err =
            parse(&SMALL.replace("default_agent: general", "default_agent: nobody")).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.reason.contains("nobody"), "{err}");
    }

    #[test]
    fn an_invalid_pattern_is_refused_with_its_line() {
        let err = parse(&SMALL.replace("'\\bORD-\\d+'", "'ORD-(\\d+'")).unwrap_err();
        assert_eq!(err.line, Some(7), "{err}");
        assert!(err.reason.contains("invalid pattern"), "{err}");
    }

    #[test]
    fn an_agent_defined_twice_is_refused() {
        let err = parse(&format!(
            "{SMALL}  - name: orders\n    description: again\n"
        ))
        .unwrap_err();
        assert!(err.reason.contains("defined twice"), "{err}");
    }

    #[test]
    fn a_tool_missing_from_the_document_is_refused_with_its_line() {
        let config = parse(SMALL).unwrap();
        let err = config
            .check_tools(&|name| match name {
                "getOrder" => ToolLookup::Found,
                _ => ToolLookup::Missing,
            })
            .unwrap_err();
        assert!(err.reason.contains("cancelOrder"), "{err}");
        assert_eq!(err.line, Some(10));
    }

    #[test]
    fn a_tool_the_document_cannot_use_is_refused_with_the_reason() {
        let config = parse(SMALL).unwrap();
        let err = config
            .check_tools(&|name| match name {
                "cancelOrder" => ToolLookup::Unusable(
                    "`#/components/schemas/Gone` does not exist (at /paths/~1x/post/requestBody)"
                        .into(),
                ),
                _ => ToolLookup::Found,
            })
            .unwrap_err();
        assert!(err.reason.contains("\"cancelOrder\""), "{err}");
        assert!(err.reason.contains("cannot be used"), "{err}");
        assert!(err.reason.contains("#/components/schemas/Gone"), "{err}");
        assert_eq!(err.line, Some(10));
    }

    #[test]
    fn the_user_asking_for_a_human_escalates() {
        let config = parse(&format!(
            "{SMALL}escalation:\n  human_request: ['\\b(human|real person)\\b']\n  keywords: [lawyer]\n"
        ))
        .unwrap();
        use common::events::EscalationReason;
        assert_eq!(
            config
                .escalation_trigger("Can I talk to a HUMAN please")
                .unwrap()
                .0,
            EscalationReason::UserRequest
        );
        assert_eq!(
            config.escalation_trigger("my lawyer will call").unwrap().0,
            EscalationReason::Keyword
        );
        assert!(config.escalation_trigger("humane society").is_none());
    }

    #[test]
    fn yes_and_no_answer_a_confirmation() {
        let config = parse(SMALL).unwrap();
        assert_eq!(config.answer(" Yes! "), Answer::Yes);
        assert_eq!(config.answer("nope"), Answer::No);
        assert_eq!(config.answer("yes but first tell me"), Answer::Other);
    }

    const WITH_PARAM: &str = "\
default_agent: orders
agents:
  - name: orders
    description: Orders
    intents:
      - name: status
        patterns: ['.']
        tool: getOrder
        params:
          order_id:
            pattern: '(?:\\border\\s*#?\\s*|#|\\bord-)(\\d+)'
            format: \"ORD-{1}\"
        reply: ok
";

    fn order_param(source: &str) -> Result<Param, ConfigError> {
        let config = parse(source)?;
        Ok(config.agent("orders").unwrap().intents[0].params[0].clone())
    }

    #[test]
    fn a_param_format_writes_every_spelling_the_same_way() {
        let param = order_param(WITH_PARAM).unwrap();
        for message in [
            "my order 1001?",
            "order #1001",
            "#1001",
            "ord-1001",
            "ORD-1001",
        ] {
            assert_eq!(
                param.find(message).as_deref(),
                Some("ORD-1001"),
                "{message}"
            );
        }
        assert_eq!(param.find("my order"), None);
    }

    #[test]
    fn a_param_without_format_is_its_first_group_upper_cased() {
        let param = order_param(&WITH_PARAM.replace(
            "          order_id:\n            pattern: '(?:\\border\\s*#?\\s*|#|\\bord-)(\\d+)'\n            format: \"ORD-{1}\"\n",
            "          order_id: '\\b(ORD-\\d+)\\b'\n",
        ))
        .unwrap();
        assert_eq!(param.format, None);
        assert_eq!(param.find("where is ord-7?").as_deref(), Some("ORD-7"));
    }

    #[test]
    fn a_format_naming_a_group_the_pattern_lacks_is_refused_with_its_line() {
        let err = order_param(&WITH_PARAM.replace("ORD-{1}", "ORD-{2}")).unwrap_err();
        assert_eq!(err.line, Some(12), "{err}");
        assert!(
            err.reason
                .contains("names group {2}, but its pattern has 1 capture group"),
            "{err}"
        );
        assert!(err.to_string().starts_with("agents.yaml:12: "), "{err}");
    }

    #[test]
    fn a_format_without_a_group_is_refused() {
        let err = order_param(&WITH_PARAM.replace("ORD-{1}", "ORD-{digits}")).unwrap_err();
        assert_eq!(err.line, Some(12), "{err}");
        assert!(err.reason.contains("names no capture group"), "{err}");
    }

    #[test]
    fn a_misspelt_field_of_a_param_is_refused_in_words() {
        let err = order_param(&WITH_PARAM.replace("format:", "fromat:")).unwrap_err();
        assert!(err.line.is_some(), "{err}");
        assert!(err.reason.contains("a param is a pattern"), "{err}");
    }

    #[test]
    fn format_text_keeps_braces_that_name_no_group() {
        assert_eq!(
            format_pieces("a{x}{1}b{"),
            [
                FormatPiece::Text("a{"),
                FormatPiece::Text("x}"),
                FormatPiece::Group(1),
                FormatPiece::Text("b{"),
            ]
        );
    }

    #[test]
    fn templates_fill_in_paths_and_money() {
        let context = serde_json::json!({
            "result": {"id": "ORD-1", "total_cents": 1299, "items": [{"name": "Mug"}]},
            "params": {"order_id": "ORD-1"}
        });
        assert_eq!(
            render(
                "{result.id}: {result.items.0.name}, {result.total_cents|money}, {result.nope}",
                &context
            ),
            "ORD-1: Mug, $12.99, unknown"
        );
        assert_eq!(render("no braces { here", &context), "no braces { here");
    }
}
