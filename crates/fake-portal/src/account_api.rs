//! The Account API's `ListRegions` (botocore's `data/account/2021-02-01/service-2.json`):
//! rest-json, `POST /listRegions` with a JSON body `{RegionOptStatusContains, MaxResults,
//! NextToken}`, answered `{Regions: [{RegionName, RegionOptStatus}], NextToken}`.
//!
//! The request is SigV4-signed with role credentials the portal minted: any signature is
//! accepted, and the account is the one whose access key it is ([`crate::credentials_for`]
//! mints `ASIA<account id>`). Each account's enabled regions are configurable
//! ([`crate::PortalOptions::enabled_regions`], else [`DEFAULT_REGIONS`]), and chosen
//! accounts are refused with 403 `AccessDeniedException`, as a role without
//! `account:ListRegions` is.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::{Reply, State};

/// The regions an account not configured otherwise has enabled.
pub const DEFAULT_REGIONS: [&str; 2] = ["eu-west-1", "us-east-1"];

/// Regions every account lists as `DISABLED` unless enabled, so that the status filter
/// matters.
const OPT_IN: [&str; 2] = ["af-south-1", "me-central-1"];

/// The API's default and largest page.
const MAX_RESULTS: usize = 50;

impl State {
    /// Answers `POST /listRegions`; `authorization` is the request's `SigV4` header.
    pub fn list_regions(&self, authorization: Option<&str>, body: &[u8]) -> Reply {
        let Some(account_id) = authorization.and_then(signing_account) else {
            return Reply::error(403, "UnrecognizedClientException", "The security token included is invalid");
        };
        if !self.accounts.read().unwrap().by_id.contains_key(&account_id) {
            return Reply::error(403, "UnrecognizedClientException", "The security token included is invalid");
        }
        if self.options.regions_denied.contains(&account_id) {
            self.stats.list_regions_denied.fetch_add(1, Ordering::Relaxed);
            let message = format!(
                "User: arn:aws:sts::{account_id}:assumed-role/x is not authorized to perform: account:ListRegions"
            );
            return Reply::error(403, "AccessDeniedException", &message);
        }
        let Ok(request) = serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { body }) else {
            return Reply::error(400, "ValidationException", "the body is not JSON");
        };
        self.stats.list_regions.fetch_add(1, Ordering::Relaxed);
        let wanted: Option<Vec<&str>> =
            request["RegionOptStatusContains"].as_array().map(|s| s.iter().filter_map(Value::as_str).collect());
        let enabled: Vec<String> = self
            .options
            .enabled_regions
            .get(&account_id)
            .cloned()
            .unwrap_or_else(|| DEFAULT_REGIONS.iter().map(|r| (*r).to_owned()).collect());
        let mut regions: Vec<(String, &str)> = enabled
            .iter()
            .map(|r| (r.clone(), if DEFAULT_REGIONS.contains(&r.as_str()) { "ENABLED_BY_DEFAULT" } else { "ENABLED" }))
            .collect();
        regions
            .extend(OPT_IN.iter().filter(|r| !enabled.iter().any(|e| e == *r)).map(|r| ((*r).to_owned(), "DISABLED")));
        regions.sort();
        let listed: Vec<Value> = regions
            .into_iter()
            .filter(|(_, status)| wanted.as_ref().is_none_or(|w| w.contains(status)))
            .map(|(name, status)| json!({"RegionName": name, "RegionOptStatus": status}))
            .collect();
        let start: usize = request["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let size = request["MaxResults"].as_u64().map_or(MAX_RESULTS, |m| usize::try_from(m).unwrap_or(MAX_RESULTS));
        let end = (start + size.clamp(1, MAX_RESULTS)).min(listed.len());
        let mut answer = json!({ "Regions": listed.get(start..end).unwrap_or_default() });
        if end < listed.len() {
            answer["NextToken"] = json!(end.to_string());
        }
        Reply::ok(answer)
    }
}

/// The account whose minted key signed the request: `Credential=ASIA<id>/<date>/…`.
fn signing_account(authorization: &str) -> Option<String> {
    let credential = authorization.split("Credential=").nth(1)?;
    let key = credential.split('/').next()?;
    key.strip_prefix("ASIA").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Account, PortalOptions};

    fn auth(id: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=ASIA{id}/20261130/us-east-1/account/aws4_request, SignedHeaders=host, Signature=00"
        )
    }

    #[test]
    fn lists_the_signing_accounts_regions_filtered_and_paged() {
        let mut options = PortalOptions {
            accounts: vec![Account::new("111111111111", "a", &["R"]), Account::new("222222222222", "b", &["R"])],
            ..PortalOptions::default()
        };
        options.enabled_regions.insert("222222222222".into(), vec!["us-east-1".into(), "af-south-1".into()]);
        options.regions_denied.insert("111111111111".into());
        let state = State::new(options);
        let body = br#"{"RegionOptStatusContains":["ENABLED","ENABLED_BY_DEFAULT"],"MaxResults":1}"#;
        let first = state.list_regions(Some(&auth("222222222222")), body);
        let first = first.json().unwrap();
        assert_eq!(first["Regions"], json!([{"RegionName": "af-south-1", "RegionOptStatus": "ENABLED"}]));
        let next = format!(
            r#"{{"RegionOptStatusContains":["ENABLED","ENABLED_BY_DEFAULT"],"NextToken":"{}"}}"#,
            first["NextToken"].as_str().unwrap()
        );
        let second = state.list_regions(Some(&auth("222222222222")), next.as_bytes());
        assert_eq!(second.json().unwrap()["Regions"][0]["RegionName"], "us-east-1");
        assert!(second.json().unwrap().get("NextToken").is_none());
        let denied = state.list_regions(Some(&auth("111111111111")), body);
        assert_eq!((denied.status, denied.error_type), (403, Some("AccessDeniedException")));
        assert_eq!(state.list_regions(None, body).status, 403);
    }
}
