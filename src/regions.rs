//! `--regions`: one run fanned out over account × region.
//!
//! `--regions us-east-1,eu-west-1` names the regions; `--regions enabled` asks each
//! account which regions it has enabled (opt-in regions differ from account to
//! account), through the Account API's `ListRegions`, with that account's own role
//! credentials, once per account. A role that may not call it gets the regions AWS
//! enables by default ([`DEFAULT_ENABLED`]) and the run says so.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_account::config::{Credentials as SdkCredentials, Region};
use aws_sdk_account::types::RegionOptStatus;
use secrecy::ExposeSecret as _;
use tokio::sync::OnceCell;

use crate::credentials::Credentials;
use crate::portal::validate;

/// The commercial regions every account has enabled by default, as the AWS Account
/// Management guide lists them (all regions launched before 20 March 2019); later
/// regions are opt-in. The fallback of `--regions enabled` for an account whose role
/// may not call `ListRegions`.
pub const DEFAULT_ENABLED: [&str; 17] = [
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// `ListRegions` pages asked for at most: far more than AWS has regions.
const MAX_PAGES: usize = 20;

/// Which regions each account runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Regions {
    /// The regions given, each once, in the order given.
    List(Vec<String>),
    /// The regions each account has enabled, asked at run time.
    Enabled,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegionsError {
    #[error("--regions is empty: give regions (--regions us-east-1,eu-west-1) or `enabled`")]
    Empty,
    #[error("invalid region {0:?} in --regions: a region is lowercase letters, digits and '-', e.g. eu-west-1")]
    Bad(String),
    #[error("--regions enabled stands alone: give `enabled` or a list of regions, not both")]
    EnabledInList,
}

impl Regions {
    /// `enabled`, or a comma list of regions; blanks around a comma are ignored and a
    /// region given twice runs once.
    pub fn parse(text: &str) -> Result<Self, RegionsError> {
        if text.trim() == "enabled" {
            return Ok(Regions::Enabled);
        }
        let mut regions: Vec<String> = Vec::new();
        for region in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            if region == "enabled" {
                return Err(RegionsError::EnabledInList);
            }
            if !validate::is_region(region) {
                return Err(RegionsError::Bad(region.to_owned()));
            }
            if !regions.iter().any(|r| r == region) {
                regions.push(region.to_owned());
            }
        }
        if regions.is_empty() {
            return Err(RegionsError::Empty);
        }
        Ok(Regions::List(regions))
    }
}

/// An account's enabled regions, or why the default list stands in for them.
#[derive(Debug, PartialEq, Eq)]
pub enum Enabled {
    /// What `ListRegions` answered, sorted.
    Listed(Vec<String>),
    /// [`DEFAULT_ENABLED`], because of this error (the role may not call `ListRegions`,
    /// or the call failed).
    Default(String),
}

impl Enabled {
    /// The regions to run in.
    pub fn regions(&self) -> Vec<String> {
        match self {
            Enabled::Listed(regions) => regions.clone(),
            Enabled::Default(_) => DEFAULT_ENABLED.iter().map(|r| (*r).to_owned()).collect(),
        }
    }
}

/// Asks accounts for their enabled regions. The SDK's configuration (endpoint
/// overrides such as `AWS_ENDPOINT_URL_ACCOUNT` included) is loaded once, at the first
/// question; each account's client gets that account's credentials.
#[derive(Debug, Default)]
pub struct RegionLister {
    config: OnceCell<aws_config::SdkConfig>,
}

impl RegionLister {
    /// The regions `credentials`' account has enabled (or enabled by default), every
    /// page. An account with none listed (an answer that cannot be right) gets the
    /// default list too.
    pub async fn enabled(&self, credentials: &Credentials) -> Enabled {
        let config = self.config.get_or_init(load_config).await;
        let keys = SdkCredentials::new(
            credentials.access_key_id.expose_secret(),
            credentials.secret_access_key.expose_secret(),
            Some(credentials.session_token.expose_secret().to_owned()),
            None,
            "fanout-role-credentials",
        );
        let client = aws_sdk_account::Client::from_conf(
            aws_sdk_account::config::Builder::from(config).credentials_provider(keys).build(),
        );
        let mut regions = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = client
                .list_regions()
                .region_opt_status_contains(RegionOptStatus::Enabled)
                .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
                .max_results(50)
                .set_next_token(next_token.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => return Enabled::Default(describe(&error)),
            };
            let names = page.regions().iter().filter_map(|r| r.region_name());
            regions.extend(names.filter(|name| validate::is_region(name)).map(str::to_owned));
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        if regions.is_empty() {
            return Enabled::Default("ListRegions listed no region".to_owned());
        }
        regions.sort();
        regions.dedup();
        Enabled::Listed(regions)
    }
}

/// The Account API is global, served from us-east-1.
async fn load_config() -> aws_config::SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .no_credentials()
        .region(Region::new("us-east-1"))
        .timeout_config(timeouts)
        .load()
        .await
}

/// `AccessDeniedException: …`, or the error chain's text: never a key (the request's
/// signature is not in an error).
fn describe<E, R>(error: &aws_sdk_account::error::SdkError<E, R>) -> String
where
    E: aws_sdk_account::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => {
            let code = service.code().unwrap_or("error");
            match service.message() {
                Some(message) => format!("{code}: {message}"),
                None => code.to_owned(),
            }
        }
        None => crate::output::report::error_chain(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_validated_trimmed_and_deduplicated() {
        assert_eq!(
            Regions::parse("us-east-1, eu-west-1,us-east-1,").unwrap(),
            Regions::List(vec!["us-east-1".to_owned(), "eu-west-1".to_owned()])
        );
        assert_eq!(Regions::parse("enabled").unwrap(), Regions::Enabled);
        assert_eq!(Regions::parse(" , ").unwrap_err(), RegionsError::Empty);
        assert_eq!(Regions::parse("us-east-1,enabled").unwrap_err(), RegionsError::EnabledInList);
        assert_eq!(Regions::parse("us-east-1,EU-WEST-1").unwrap_err(), RegionsError::Bad("EU-WEST-1".to_owned()));
        assert_eq!(Regions::parse("us-east-1;rm -rf").unwrap_err(), RegionsError::Bad("us-east-1;rm -rf".to_owned()));
    }

    #[test]
    fn the_default_list_is_the_seventeen_default_regions_sorted_and_valid() {
        assert!(DEFAULT_ENABLED.iter().all(|r| validate::is_region(r)));
        assert!(DEFAULT_ENABLED.is_sorted());
        for opt_in in ["af-south-1", "ap-east-1", "eu-south-1", "me-south-1", "il-central-1", "ca-west-1"] {
            assert!(!DEFAULT_ENABLED.contains(&opt_in), "{opt_in} is opt-in");
        }
        let fallback = Enabled::Default("AccessDeniedException".to_owned()).regions();
        assert_eq!(fallback.len(), 17);
        assert!(fallback.contains(&"us-east-1".to_owned()));
    }
}
