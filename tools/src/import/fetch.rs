//! A document fetched from a URL, through the same SSRF guard as tool calls (scheme,
//! addresses after DNS resolution, every redirect hop), with the document size cap and a
//! time-out.

use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

use super::{ImportError, MAX_DOCUMENT_BYTES};
use crate::http::{self, Limits, Prepared};
use crate::ssrf::Guard;

/// Longest a fetch may take, from connect to the last byte.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Prefix of the guard's refusals ([`crate::ssrf::Refused`]'s message).
const REFUSED: &str = "refused by the SSRF guard";

/// Fetches the text at `url`. `allow_hosts` are let through the guard although they
/// resolve to private addresses (`host` or `host:port`).
pub async fn fetch(url: &str, allow_hosts: &[String]) -> Result<String, ImportError> {
    let guard = Guard::new(allow_hosts).map_err(ImportError::FetchFailed)?;
    fetch_through(url, &guard).await
}

/// Fetches the text at `url` through `guard` (tests give it a scripted resolver).
pub async fn fetch_through(url: &str, guard: &Guard) -> Result<String, ImportError> {
    let url = Url::parse(url)
        .map_err(|e| ImportError::UrlRefused(format!("`{url}` is not a URL: {e}")))?;
    guard
        .check_url(&url)
        .map_err(|refused| ImportError::UrlRefused(refused.to_string()))?;
    let client = crate::guarded_client(guard).map_err(ImportError::FetchFailed)?;
    let request = Prepared {
        method: Method::GET,
        url,
        body: None,
    };
    let limits = Limits {
        timeout: FETCH_TIMEOUT,
        max_response_bytes: MAX_DOCUMENT_BYTES,
    };
    match http::send(&client, &request, None, limits).await {
        // A JSON answer arrives parsed; written back it is the same document.
        Ok(response) => Ok(match response.body {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => other.to_string(),
        }),
        Err(error) if error.message.starts_with(REFUSED) => {
            Err(ImportError::UrlRefused(error.message))
        }
        Err(error) if error.message.starts_with("response larger than") => {
            Err(ImportError::DocumentTooLarge {
                size: "larger".into(),
            })
        }
        Err(error) => Err(ImportError::FetchFailed(format!(
            "fetching the document failed: {}",
            error.message
        ))),
    }
}
