//! The rule engine: keyword routing to an agent and a reply template per agent. It is
//! deterministic — the same message always gets the same reply — so tests and the
//! offline demo need no model server.

use super::{AgentCard, BoxFuture, Engine, EngineError, Step, TurnView};

/// An agent's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub agent: String,
    pub text: String,
}

/// One routing rule: any of these words sends the message to this agent.
struct Rule {
    agent: &'static str,
    keywords: &'static [&'static str],
    reply: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        agent: "billing",
        keywords: &["refund", "invoice", "bill", "charge", "payment", "paid"],
        reply: "I can help with billing. Tell me the order number and what looks wrong with the charge.",
    },
    Rule {
        agent: "orders",
        keywords: &["order", "delivery", "shipping", "package", "track"],
        reply: "I can help with your order. Please send me your order number (for example ORD-1001) and I will look it up.",
    },
    Rule {
        agent: "triage",
        keywords: &["hello", "hi", "hey", "good morning", "good evening"],
        reply: "Hello! I am the support assistant. Ask me about an order, a delivery or a charge.",
    },
];

/// The built-in deterministic engine.
#[derive(Debug, Default, Clone)]
pub struct RuleEngine;

impl RuleEngine {
    /// The reply to a message, without I/O.
    pub fn answer(&self, message: &str) -> Reply {
        let words: Vec<String> = message
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let lower = message.to_lowercase();
        let matches = |keyword: &str| {
            if keyword.contains(' ') {
                lower.contains(keyword)
            } else {
                words
                    .iter()
                    .any(|w| w == keyword || w.strip_suffix('s') == Some(keyword))
            }
        };
        match RULES
            .iter()
            .find(|rule| rule.keywords.iter().any(|k| matches(k)))
        {
            Some(rule) => Reply {
                agent: rule.agent.into(),
                text: rule.reply.into(),
            },
            None => Reply {
                agent: "general".into(),
                text: format!(
                    "Thanks for your message: \u{201c}{}\u{201d}. I can help with orders, deliveries and charges — what do you need?",
                    excerpt(message, 80)
                ),
            },
        }
    }
}

impl Engine for RuleEngine {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn choose_agent<'a>(
        &'a self,
        _agents: &'a [AgentCard],
        message: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, EngineError>> {
        Box::pin(async move { Ok(Some(self.answer(message).agent)) })
    }

    fn next_step<'a>(&'a self, turn: TurnView<'a>) -> BoxFuture<'a, Result<Step, EngineError>> {
        Box::pin(async move { Ok(Step::Reply(self.answer(turn.message).text)) })
    }
}

/// The first `max` characters of `text` on one line, with an ellipsis when cut.
fn excerpt(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_questions_go_to_the_orders_agent() {
        assert_eq!(RuleEngine.answer("Where is my order?").agent, "orders");
        assert_eq!(
            RuleEngine.answer("Track my packages please").agent,
            "orders"
        );
    }

    #[test]
    fn refund_questions_go_to_the_billing_agent() {
        assert_eq!(RuleEngine.answer("I want a refund").agent, "billing");
        assert_eq!(
            RuleEngine.answer("Refund my order ORD-1001").agent,
            "billing"
        );
    }

    #[test]
    fn a_greeting_is_answered_by_triage() {
        assert_eq!(RuleEngine.answer("hi there").agent, "triage");
        // "hi" inside another word is not a greeting.
        assert_eq!(RuleEngine.answer("this is odd").agent, "general");
    }

    #[test]
    fn anything_else_gets_a_general_reply_quoting_the_message() {
        let reply = RuleEngine.answer("The   colour is\nwrong");
        assert_eq!(reply.agent, "general");
        assert!(
            reply.text.contains("\u{201c}The colour is wrong\u{201d}"),
            "{}",
            reply.text
        );
    }

    #[test]
    fn the_same_message_always_gets_the_same_reply() {
        assert_eq!(RuleEngine.answer("hello"), RuleEngine.answer("hello"));
    }
}
