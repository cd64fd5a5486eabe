//! The user's own body (`format = "template"`): a minijinja template over the JSON payload.

use serde_json::Value;

use super::json::payload;
use super::{Rendered, TemplateError};
use crate::alert::Alert;
use crate::config::Webhook;

/// Renders notifier `name`'s template (configured in `hook`) with `context`, an alert's or a
/// digest's payload.
pub(super) fn rendered(
    name: &str,
    hook: &Webhook,
    context: Value,
) -> Result<Rendered, TemplateError> {
    Ok(Rendered {
        content_type: hook.content_type.clone(),
        body: render_template(
            hook.template.as_deref().unwrap_or_default(),
            &hook.content_type,
            context,
        )
        .map_err(|message| TemplateError {
            notifier: name.to_string(),
            message,
        })?,
        headers: Vec::new(),
    })
}

/// Renders the user's minijinja `source` with the alert's JSON payload as context: `type`
/// (`"alert"`), `rule`, `feed`, `article`, `matched`, `snippet`, `delivery_id`, `created_at`.
/// A digest renders the same template with the digest payload (`type` is `"digest"`, the
/// alerts are in `alerts`). For a JSON content type every `{{ … }}` is written as a JSON value
/// (strings come quoted and escaped); for HTML it is HTML-escaped; for anything else it is
/// inserted as is.
pub fn template(
    source: &str,
    content_type: &str,
    alert: &Alert,
    delivery_id: &str,
) -> Result<String, String> {
    render_template(source, content_type, payload(alert, delivery_id))
}

fn render_template(source: &str, content_type: &str, context: Value) -> Result<String, String> {
    use minijinja::{AutoEscape, Environment};
    let escape = if content_type.contains("json") {
        AutoEscape::Json
    } else if content_type.contains("html") {
        AutoEscape::Html
    } else {
        AutoEscape::None
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(move |_| escape.clone());
    env.add_template("body", source)
        .map_err(|e| e.to_string())?;
    let template = env.get_template("body").map_err(|e| e.to_string())?;
    template
        .render(minijinja::value::Serde(context))
        .map_err(|e| e.to_string())
}
