//! One bad value costs one account, never the page: the SDK's JSON deserializer fails a
//! whole `ListAccounts` page over one name holding invalid UTF-8 or a lone UTF-16
//! surrogate escape (`\ud800`), which any account's admin can set. When a 2xx answer
//! fails to deserialize, [`TolerantJson`] repairs its body, putting a marker in place
//! of each such value ([`validate::MARK_INVALID_UTF8`], [`validate::MARK_LONE_SURROGATE`]:
//! NUL, which no valid name holds), and deserializes it again with the SDK's own
//! deserializer. The listing then refuses the marked account, naming it and what was
//! wrong, and keeps the others. A body the repair does not change keeps its error.

use aws_sdk_sso::config::interceptors::FinalizerInterceptorContextMut;
use aws_sdk_sso::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sso::error::BoxError;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse as _, SharedResponseDeserializer};
use aws_smithy_types::body::SdkBody;

use super::validate;

/// Re-deserializes a 2xx answer whose body [`repair`] changes; see the module doc.
#[derive(Debug)]
pub struct TolerantJson;

impl Intercept for TolerantJson {
    fn name(&self) -> &'static str {
        "fanout::TolerantJson"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !matches!(context.output_or_error(), Some(Err(_))) {
            return Ok(());
        }
        let Some(response) = context.response_mut() else { return Ok(()) };
        if !response.status().is_success() {
            return Ok(());
        }
        let Some(repaired) = response.body().bytes().and_then(repair) else { return Ok(()) };
        let cfg: &ConfigBag = cfg;
        let Some(deserializer) = cfg.load::<SharedResponseDeserializer>() else { return Ok(()) };
        let original = std::mem::replace(response.body_mut(), SdkBody::from(repaired));
        let again = deserializer.deserialize_nonstreaming_with_config(response, cfg);
        if again.is_ok() {
            tracing::debug!("a portal answer held invalid UTF-8 or a lone surrogate; read it with markers");
            if let Some(slot) = context.output_or_error_mut() {
                *slot = again;
            }
        } else if let Some(response) = context.response_mut() {
            // The repair did not help: the original body stays, for the error to describe.
            *response.body_mut() = original;
        }
        Ok(())
    }
}

/// `body` with each invalid UTF-8 sequence and each lone surrogate escape replaced by
/// its marker, written as a JSON escape (`\u0000U`, `\u0000S`) so that inside a string
/// it stays valid JSON; `None` if there was none of either.
pub fn repair(body: &[u8]) -> Option<Vec<u8>> {
    let mut text = String::with_capacity(body.len());
    let mut changed = false;
    for chunk in body.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            text.push_str(&json_escape(validate::MARK_INVALID_UTF8));
            changed = true;
        }
    }
    let (text, surrogates) = replace_lone_surrogates(&text);
    (changed || surrogates).then(|| text.into_bytes())
}

/// `mark` as JSON string content: `\u0000` for the NUL, the rest as it is.
fn json_escape(mark: &str) -> String {
    mark.chars().fold(String::new(), |mut out, c| {
        if c == '\0' {
            out.push_str("\\u0000");
        } else {
            out.push(c);
        }
        out
    })
}

/// Replaces each `\uXXXX` escape of a surrogate that is not one half of a
/// high-then-low pair by the lone-surrogate marker; other escapes (an escaped
/// backslash before a `u` included) are copied as they are. Returns whether any was.
fn replace_lone_surrogates(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(unit) = escaped_unit(rest) else {
            // `\\`, `\"`, `\n`…: two characters (a trailing lone `\` is one).
            let end = rest.char_indices().nth(2).map_or(rest.len(), |(i, _)| i);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        };
        let is_high = (0xD800..0xDC00).contains(&unit);
        let is_low = (0xDC00..0xE000).contains(&unit);
        if is_high && escaped_unit(&rest[6..]).is_some_and(|next| (0xDC00..0xE000).contains(&next)) {
            out.push_str(&rest[..12]);
            rest = &rest[12..];
        } else if is_high || is_low {
            out.push_str(&json_escape(validate::MARK_LONE_SURROGATE));
            changed = true;
            rest = &rest[6..];
        } else {
            out.push_str(&rest[..6]);
            rest = &rest[6..];
        }
    }
    out.push_str(rest);
    (out, changed)
}

/// The UTF-16 unit of a `\uXXXX` escape at the start of `text`.
fn escaped_unit(text: &str) -> Option<u32> {
    let hex = text.strip_prefix("\\u")?.get(..4)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// For a test's message: the repaired body as text.
#[cfg(test)]
fn repaired(body: &[u8]) -> Option<String> {
    repair(body).map(|b| String::from_utf8(b).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_and_lone_surrogates_become_markers_and_pairs_stay() {
        assert_eq!(repaired(br#"{"a":"x\ud800y"}"#).unwrap(), r#"{"a":"x\u0000Sy"}"#);
        assert_eq!(repaired(br#"{"a":"\udc00"}"#).unwrap(), r#"{"a":"\u0000S"}"#);
        assert_eq!(repaired(b"{\"a\":\"x\xff\xfey\"}").unwrap(), r#"{"a":"x\u0000U\u0000Uy"}"#);
        let value: serde_json::Value =
            serde_json::from_str(&repaired(br#"{"a":"\ud800\ud83d\ude00"}"#).unwrap()).unwrap();
        assert_eq!(value["a"], "\0S\u{1F600}");
        assert_eq!(repaired(br#"{"a":"\\ud800 \u00e9 \n \ud83d\ude00"}"#), None, "an escaped backslash, a pair");
        assert_eq!(repaired(b"plain \\"), None);
    }

    #[test]
    fn markers_are_what_the_validator_names() {
        let value: serde_json::Value = serde_json::from_slice(&repair(b"[\"\\ud800\", \"\xc3\"]").unwrap()).unwrap();
        assert!(validate::account_name_problem(value[0].as_str().unwrap()).unwrap().contains("surrogate"));
        assert!(validate::account_name_problem(value[1].as_str().unwrap()).unwrap().contains("UTF-8"));
    }
}
