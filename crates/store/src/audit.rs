//! Bounds on what one audit row may hold, the same on both backends.
//!
//! The audit log records what clients did, so clients choose much of what it
//! stores (a path, a header, an address): without bounds, one request with a
//! megabyte path writes a megabyte row, and a flood of them fills the disk. Every
//! string an event carries is cut to [`AUDIT_FIELD_MAX_BYTES`] (on a character
//! boundary, ending with [`TRUNCATION_MARK`] so a reader knows), and a detail
//! document that is still larger than [`AUDIT_DETAIL_MAX_BYTES`] (many fields, a
//! long array) is replaced by its cut JSON text under the key `truncated_detail`.

use serde_json::Value;

use crate::types::AuditEvent;

/// The most bytes a string of an audit event keeps (its kind, key id, client
/// address, and each string inside its detail, object keys included), the
/// truncation mark included.
pub const AUDIT_FIELD_MAX_BYTES: usize = 256;

/// The most bytes the detail document of an audit event keeps, as JSON text.
pub const AUDIT_DETAIL_MAX_BYTES: usize = 4096;

/// What ends a string the audit log cut.
pub const TRUNCATION_MARK: &str = "…[truncated]";

/// `event` as the audit log stores it: every field within its bound.
pub(crate) fn bounded(event: &AuditEvent) -> AuditEvent {
    AuditEvent {
        at_ms: event.at_ms,
        kind: cut(&event.kind, AUDIT_FIELD_MAX_BYTES),
        key_id: event
            .key_id
            .as_deref()
            .map(|s| cut(s, AUDIT_FIELD_MAX_BYTES)),
        client_addr: event
            .client_addr
            .as_deref()
            .map(|s| cut(s, AUDIT_FIELD_MAX_BYTES)),
        detail: bounded_detail(&event.detail),
    }
}

/// A detail document within [`AUDIT_DETAIL_MAX_BYTES`].
fn bounded_detail(detail: &Value) -> Value {
    let detail = cut_strings(detail);
    let text = detail.to_string();
    if text.len() <= AUDIT_DETAIL_MAX_BYTES {
        return detail;
    }
    // Still too large: keep the start of its text, which is what a reader looks at.
    serde_json::json!({ "truncated_detail": cut(&text, AUDIT_FIELD_MAX_BYTES) })
}

/// `value` with every string in it (object keys too) cut to the field bound.
fn cut_strings(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(cut(s, AUDIT_FIELD_MAX_BYTES)),
        Value::Array(items) => Value::Array(items.iter().map(cut_strings).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (cut(k, AUDIT_FIELD_MAX_BYTES), cut_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `s` if it fits in `max` bytes; else its longest start that fits, on a character
/// boundary, with [`TRUNCATION_MARK`] after it (the whole within `max`).
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(TRUNCATION_MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATION_MARK}", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_string_is_kept_as_it_is() {
        assert_eq!(cut("GET /api/v1/execute", 256), "GET /api/v1/execute");
        assert_eq!(cut(&"a".repeat(256), 256), "a".repeat(256));
    }

    #[test]
    fn a_long_string_is_cut_on_a_character_boundary_and_marked() {
        let long = "é".repeat(300); // two bytes each
        let cut = cut(&long, 256);
        assert!(cut.len() <= 256, "{}", cut.len());
        assert!(cut.ends_with(TRUNCATION_MARK));
        let kept = cut.strip_suffix(TRUNCATION_MARK).expect("marked");
        assert!(kept.chars().all(|c| c == 'é'));
        assert_eq!(kept.len(), (256 - TRUNCATION_MARK.len()) / 2 * 2);
    }

    #[test]
    fn a_detail_with_many_fields_is_replaced_by_the_start_of_its_text() {
        let many: serde_json::Map<String, Value> = (0..1000)
            .map(|n| (format!("field-{n}"), Value::from(n)))
            .collect();
        let detail = bounded_detail(&Value::Object(many));
        let text = detail["truncated_detail"].as_str().expect("cut text");
        assert!(text.starts_with("{\"field-0\":0"), "{text}");
        assert!(detail.to_string().len() <= AUDIT_DETAIL_MAX_BYTES);
    }
}
