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
use crate::text;

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

/// `ListRegions` pages asked for at most, of up to [`PAGE_SIZE`]: AWS has under 40
/// regions, so a real answer is one page, and 8 hold [`MAX_REGIONS`] even in pages of 8;
/// the rest is an account's admin answering for it.
const MAX_PAGES: usize = 8;
/// The API's largest page.
const PAGE_SIZE: i32 = 50;
/// Regions one account runs in at most: more than AWS has. `ListRegions` is answered
/// by the account itself (its admin, or whoever took it over), so without a cap one
/// account could make the run start thousands of children.
pub const MAX_REGIONS: usize = 64;
/// Refused region names a warning quotes at most.
const EXAMPLES: usize = 3;

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
    #[error(
        "invalid region {0:?} in --regions: a region is a lowercase letter, then lowercase letters, digits and '-' (at most 63), e.g. eu-west-1"
    )]
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

/// What `ListRegions` answered for one account, and what of it was refused: each
/// refusal is one warning line for the run to print, naming the account.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub enabled: Enabled,
    pub warnings: Vec<String>,
}

/// Regions collected from `ListRegions` pages: valid ones, each once, up to
/// [`MAX_REGIONS`]; what is refused is counted for the warnings.
#[derive(Debug, Default)]
struct Collected {
    regions: Vec<String>,
    /// Names that are not regions ([`validate::is_region`]), and the first few of them.
    invalid: usize,
    examples: Vec<String>,
    /// Valid regions past the cap.
    over_cap: usize,
    pages: usize,
    /// Whether pages were left unread at [`MAX_PAGES`].
    pages_left: bool,
}

impl Collected {
    fn add(&mut self, name: &str) {
        if !validate::is_region(name) {
            self.invalid += 1;
            if self.examples.len() < EXAMPLES {
                self.examples.push(format!("{:?}", text::show(name)));
            }
        } else if self.regions.iter().all(|r| r != name) {
            if self.regions.len() < MAX_REGIONS {
                self.regions.push(name.to_owned());
            } else {
                self.over_cap += 1;
            }
        }
    }

    /// Past the cap, no further page can change what runs.
    fn full(&self) -> bool {
        self.over_cap > 0
    }

    /// The warnings, one per kind of refusal.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.invalid > 0 {
            warnings.push(format!(
                "ListRegions listed {} names that are not regions ({}); refused them",
                self.invalid,
                self.examples.join(", ")
            ));
        }
        if self.full() {
            warnings.push(format!(
                "ListRegions listed more than {MAX_REGIONS} regions ({} in {} pages, then it was not asked further); running in the first {MAX_REGIONS}, refusing the rest",
                self.regions.len() + self.over_cap,
                self.pages
            ));
        } else if self.pages_left {
            warnings.push(format!(
                "ListRegions still had pages after {MAX_PAGES}; running in the {} regions listed so far",
                self.regions.len()
            ));
        }
        warnings
    }

    fn into_answer(mut self) -> Answer {
        let warnings = self.warnings();
        if self.regions.is_empty() {
            return Answer { enabled: Enabled::Default("ListRegions listed no region".to_owned()), warnings };
        }
        self.regions.sort();
        Answer { enabled: Enabled::Listed(self.regions), warnings }
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
    /// page up to [`MAX_PAGES`] and [`MAX_REGIONS`]; names that are not regions are
    /// refused. An account with none listed (an answer that cannot be right) gets the
    /// default list too.
    pub async fn enabled(&self, credentials: &Credentials) -> Answer {
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
        let mut collected = Collected::default();
        let mut next_token: Option<String> = None;
        loop {
            let page = client
                .list_regions()
                .region_opt_status_contains(RegionOptStatus::Enabled)
                .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
                .max_results(PAGE_SIZE)
                .set_next_token(next_token.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => return Answer { enabled: Enabled::Default(describe(&error)), warnings: Vec::new() },
            };
            collected.pages += 1;
            for name in page.regions().iter().filter_map(|r| r.region_name()) {
                collected.add(name);
            }
            match page.next_token() {
                Some(token) if !token.is_empty() && !collected.full() => {
                    if collected.pages >= MAX_PAGES {
                        collected.pages_left = true;
                        break;
                    }
                    next_token = Some(token.to_owned());
                }
                _ => break,
            }
        }
        collected.into_answer()
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
        None => text::error_chain(error),
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
    fn hostile_names_are_refused_and_the_regions_capped() {
        let mut collected = Collected { pages: 1, ..Collected::default() };
        for name in ["--help", "-e", "-", "US-EAST-1", "eu-west-1", "eu-west-1", "us-east-1"] {
            collected.add(name);
        }
        let answer = collected.into_answer();
        assert_eq!(answer.enabled, Enabled::Listed(vec!["eu-west-1".to_owned(), "us-east-1".to_owned()]));
        assert_eq!(answer.warnings.len(), 1);
        assert!(answer.warnings[0].contains(r#"4 names that are not regions ("--help", "-e", "-")"#), "{answer:?}");

        let mut collected = Collected { pages: 2, ..Collected::default() };
        for i in 0..100 {
            collected.add(&format!("r{i:03}"));
        }
        assert!(collected.full());
        let answer = collected.into_answer();
        assert_eq!(answer.enabled.regions().len(), MAX_REGIONS);
        assert!(answer.warnings[0].contains("more than 64 regions (100 in 2 pages"), "{answer:?}");
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
