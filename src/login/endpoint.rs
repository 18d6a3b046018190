//! Where a login's services are reached (the portal, `sso`, SSO OIDC, `sso_oidc`, and
//! AWS Organizations, `organizations`, read through `--org-role`) and the SDK
//! configuration the SSO clients are built from. One resolver, so the portal, the token
//! refresh, the organization's listing and `fanout doctor` agree on which endpoint is in
//! force.
//!
//! The order is the AWS CLI's: the service's own variable (`AWS_ENDPOINT_URL_SSO`,
//! `AWS_ENDPOINT_URL_SSO_OIDC`, `AWS_ENDPOINT_URL_ORGANIZATIONS`), `AWS_ENDPOINT_URL`,
//! the `[services]` section the profile
//! names, then the profile's `endpoint_url`; none of them when configured endpoints are
//! ignored (`AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`, or the profile's setting).

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::profile::ProfileSet;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_runtime::env_config::property::PropertiesKey;
use aws_types::region::Region;

use super::{AwsConfig, SsoLogin};

/// One of a login's services, by the names the CLI gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The SSO portal (`ListAccounts`, `GetRoleCredentials`).
    Portal,
    /// SSO OIDC (`CreateToken`, the token refresh).
    Oidc,
    /// AWS Organizations (`--org-role`), a global service signed in `us-east-1`.
    Organizations,
}

impl Service {
    /// The service's own endpoint variable.
    fn variable(self) -> &'static str {
        match self {
            Service::Portal => "AWS_ENDPOINT_URL_SSO",
            Service::Oidc => "AWS_ENDPOINT_URL_SSO_OIDC",
            Service::Organizations => "AWS_ENDPOINT_URL_ORGANIZATIONS",
        }
    }

    /// The service's key in a `[services]` section, as botocore spells it.
    fn services_key(self) -> &'static str {
        match self {
            Service::Portal => "sso",
            Service::Oidc => "sso_oidc",
            Service::Organizations => "organizations",
        }
    }
}

/// The endpoint variables of fanout's environment, read once so tests can build them.
#[derive(Clone, Debug, Default)]
pub struct EndpointEnv {
    pub endpoint_url_sso: Option<String>,
    pub endpoint_url_sso_oidc: Option<String>,
    pub endpoint_url_organizations: Option<String>,
    pub endpoint_url: Option<String>,
    pub ignore_configured_endpoint_urls: Option<String>,
}

impl EndpointEnv {
    pub fn real() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        EndpointEnv {
            endpoint_url_sso: var(Service::Portal.variable()),
            endpoint_url_sso_oidc: var(Service::Oidc.variable()),
            endpoint_url_organizations: var(Service::Organizations.variable()),
            endpoint_url: var("AWS_ENDPOINT_URL"),
            ignore_configured_endpoint_urls: var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"),
        }
    }

    fn service_variable(&self, service: Service) -> Option<&str> {
        match service {
            Service::Portal => self.endpoint_url_sso.as_deref(),
            Service::Oidc => self.endpoint_url_sso_oidc.as_deref(),
            Service::Organizations => self.endpoint_url_organizations.as_deref(),
        }
    }
}

/// Where one endpoint setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    ServiceVariable,
    GenericVariable,
    ServicesSection,
    ProfileSetting,
}

/// One endpoint setting that is set, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub origin: Origin,
    /// For a reader: the variable, or the file's section and key.
    pub source: String,
    pub url: String,
}

/// Every endpoint setting for one service, in the order that decides, and what turns
/// them all off.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub overrides: Vec<Override>,
    /// What makes configured endpoints ignored, for a reader; `None` when they count.
    pub ignored_by: Option<String>,
}

impl Endpoints {
    /// The setting in force; `None` for the service's default endpoint.
    pub fn in_force(&self) -> Option<&Override> {
        if self.ignored_by.is_some() { None } else { self.overrides.first() }
    }
}

/// `service`'s endpoint settings for `login`, in the CLI's order.
pub fn resolve(service: Service, env: &EndpointEnv, profiles: &ProfileSet, login: &SsoLogin) -> Endpoints {
    let profile_name = login.profile.as_deref().unwrap_or_else(|| profiles.selected_profile());
    let profile = profiles.get_profile(profile_name);
    let mut overrides = Vec::new();
    let mut add = |origin, source: String, url: Option<&str>| {
        if let Some(url) = url.filter(|u| !u.is_empty()) {
            overrides.push(Override { origin, source, url: url.to_owned() });
        }
    };
    add(Origin::ServiceVariable, service.variable().to_owned(), env.service_variable(service));
    add(Origin::GenericVariable, "AWS_ENDPOINT_URL".to_owned(), env.endpoint_url.as_deref());
    if let Some(services) = profile.and_then(|p| p.get("services")) {
        let key = PropertiesKey::builder()
            .section_key("services")
            .section_name(services)
            .property_name(service.services_key())
            .sub_property_name("endpoint_url")
            .build()
            .ok();
        let url = key.as_ref().and_then(|key| profiles.other_sections().get(key)).map(String::as_str);
        let source = format!("[services {services}] {} endpoint_url (profile {profile_name})", service.services_key());
        add(Origin::ServicesSection, source, url);
    }
    let profile_url = profile.and_then(|p| p.get("endpoint_url"));
    add(Origin::ProfileSetting, format!("endpoint_url of profile {profile_name}"), profile_url);
    let ignored_by = ignored_by(env, profile.and_then(|p| p.get("ignore_configured_endpoint_urls")), profile_name);
    Endpoints { overrides, ignored_by }
}

/// What turns configured endpoints off, if anything.
fn ignored_by(env: &EndpointEnv, profile_setting: Option<&str>, profile_name: &str) -> Option<String> {
    let is_true = |v: &str| v.trim().eq_ignore_ascii_case("true");
    if let Some(value) = env.ignore_configured_endpoint_urls.as_deref().filter(|v| is_true(v)) {
        return Some(format!("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS={}", value.trim()));
    }
    profile_setting
        .filter(|v| is_true(v))
        .map(|_| format!("ignore_configured_endpoint_urls = true in profile {profile_name}"))
}

/// The SDK configuration for `login`'s services (the portal, SSO OIDC): its `sso_region`,
/// no credentials (both are unsigned), no SDK retries, and the SDK's own endpoint
/// resolution, which follows the order above for the portal.
pub async fn sdk_config(login: &SsoLogin, aws_config: &AwsConfig) -> aws_types::SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .no_credentials()
        .region(Region::new(login.sso_region.clone()))
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts)
        .profile_files(aws_config.profile_files());
    if let Some(profile) = &login.profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// The SSO OIDC endpoint the SDK would miss: the profile's `[services]` `sso_oidc`
/// `endpoint_url`, the key the AWS CLI reads, when it is the setting in force.
/// aws-sdk-ssooidc looks for `sso-oidc` instead (aws-runtime's
/// `format_service_id_for_profile` hyphenates the service id), so a config written for
/// the CLI would go unheeded; every other setting the SDK reads itself.
pub async fn oidc_services_endpoint(login: &SsoLogin, aws_config: &AwsConfig) -> Option<String> {
    let profiles = aws_config.profiles().await.ok()?;
    let endpoints = resolve(Service::Oidc, &EndpointEnv::real(), &profiles, login);
    endpoints.in_force().filter(|o| o.origin == Origin::ServicesSection).map(|o| o.url.clone())
}

/// The Organizations endpoint in force for `login`, when one is configured; `None` for
/// the service's own (global, in `us-east-1`). The SDK client is given it explicitly, so
/// this resolver, not a second reading of the same settings, decides.
pub async fn organizations_endpoint(login: &SsoLogin, aws_config: &AwsConfig) -> Option<String> {
    let profiles = aws_config.profiles().await.ok()?;
    let endpoints = resolve(Service::Organizations, &EndpointEnv::real(), &profiles, login);
    endpoints.in_force().map(|o| o.url.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_endpoints_are_ignored_by_the_variable_or_the_profile() {
        let env = EndpointEnv { ignore_configured_endpoint_urls: Some("TRUE".to_owned()), ..EndpointEnv::default() };
        assert_eq!(ignored_by(&env, None, "p").as_deref(), Some("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=TRUE"));
        let by_profile = ignored_by(&EndpointEnv::default(), Some("true"), "p");
        assert_eq!(by_profile.as_deref(), Some("ignore_configured_endpoint_urls = true in profile p"));
        assert_eq!(ignored_by(&EndpointEnv::default(), Some("false"), "p"), None);
    }

    #[test]
    fn the_first_setting_is_in_force_unless_all_are_ignored() {
        let set = |url: &str| Override { origin: Origin::GenericVariable, source: "x".to_owned(), url: url.to_owned() };
        let mut endpoints = Endpoints { overrides: vec![set("http://a"), set("http://b")], ignored_by: None };
        assert_eq!(endpoints.in_force().map(|o| o.url.as_str()), Some("http://a"));
        endpoints.ignored_by = Some("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true".to_owned());
        assert_eq!(endpoints.in_force(), None);
    }
}
