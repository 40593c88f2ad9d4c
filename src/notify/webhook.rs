//! A webhook: one POST of JSON (Slack, Teams or erpdrop's own object), with a timeout,
//! never following a redirect. Only a 2xx answer is delivery. The URL's path (often the
//! webhook's key) is never printed: messages name the host only.

use super::Event;
use crate::config::{Webhook, WebhookFormat};
use std::time::Duration;

/// The body for an event in the webhook's format.
pub fn body(format: WebhookFormat, event: &Event) -> serde_json::Value {
    match format {
        WebhookFormat::Slack => serde_json::json!({
            "text": format!("*{}*\n{}", event.subject(), event.text()),
        }),
        WebhookFormat::Teams => serde_json::json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": event.subject(), "weight": "Bolder", "size": "Medium", "wrap": true},
                        {"type": "TextBlock", "text": event.text(), "wrap": true}
                    ]
                }
            }]
        }),
        WebhookFormat::Json => event.json(),
    }
}

pub fn send(w: &Webhook, timeout: Duration, event: &Event) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(timeout)
        .user_agent(concat!("erpdrop/", env!("CARGO_PKG_VERSION")))
        .build();
    let hide = |m: String| m.replace(&w.url, &w.shown);
    match agent
        .post(&w.url)
        .set("Content-Type", "application/json")
        .send_string(&body(w.format, event).to_string())
    {
        Ok(r) if (200..300).contains(&r.status()) => Ok(()),
        Ok(r) => Err(format!(
            "{} answered HTTP {}{}: only a 2xx answer is delivery (a redirect is not followed)",
            w.shown,
            r.status(),
            r.header("Location")
                .map(|l| format!(" to {}", hide(l.to_string())))
                .unwrap_or_default()
        )),
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            let text = crate::problem::bound(text.trim(), 300).into_owned();
            Err(format!("{} answered HTTP {code}: {}", w.shown, hide(text)))
        }
        Err(ureq::Error::Transport(t)) => Err(hide(format!("{}: {t}", w.shown))),
    }
}
