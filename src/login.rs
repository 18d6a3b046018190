//! Stage 1a: which IAM Identity Center login to use, read from `~/.aws/config`.
//!
//! The file is parsed by aws-config's own parser, so fanout reads it exactly as the SDK
//! (and so the AWS CLI) does, `AWS_CONFIG_FILE` included. The order of choice follows the
//! CLI: `--sso-session`, else the profile from `--profile`/`AWS_PROFILE`, else the only
//! sso-session in the file.

use aws_config::profile::{ProfileFileLoadError, ProfileSet};

/// The login fanout uses, and where its settings came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoLogin {
    /// The sso-session's name; `None` for a legacy profile with `sso_start_url`.
    pub session: Option<String>,
    pub start_url: String,
    /// The portal's region, which is not the profile's `region`.
    pub sso_region: String,
    /// The profile the login was found through: its `[services]` endpoint applies.
    pub profile: Option<String>,
    /// The chosen profile's `region`, the children's default region.
    pub profile_region: Option<String>,
}

impl SsoLogin {
    /// What names the token cache file: the session name, or the legacy start URL
    /// exactly as written (a trailing `#/` changes the name, as in botocore).
    pub fn cache_key(&self) -> &str {
        self.session.as_deref().unwrap_or(&self.start_url)
    }

    /// The command that logs in again, for hints.
    pub fn login_command(&self) -> String {
        match (&self.session, &self.profile) {
            (Some(session), _) => format!("aws sso login --sso-session {session}"),
            (None, Some(profile)) => format!("aws sso login --profile {profile}"),
            (None, None) => "aws sso login".to_owned(),
        }
    }

    /// How messages name this login: `SSO session "corp"`.
    pub fn describe(&self) -> String {
        match &self.session {
            Some(session) => format!("SSO session \"{session}\""),
            None => format!("SSO login for {}", self.start_url),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("cannot read the AWS config")]
    Load(#[source] ProfileFileLoadError),
    #[error("no sso-session named \"{name}\" in the AWS config (it has: {})", list(known))]
    UnknownSession { name: String, known: Vec<String> },
    #[error("no profile named \"{0}\" in the AWS config")]
    UnknownProfile(String),
    #[error("profile \"{0}\" has no SSO settings (sso_session, or sso_start_url and sso_region)")]
    NotSso(String),
    #[error("sso-session \"{session}\" has no {key}")]
    Incomplete { session: String, key: &'static str },
    #[error("the AWS config has several sso-sessions ({}); choose one with --sso-session", list(.0))]
    Ambiguous(Vec<String>),
    #[error("the AWS config has no sso-session")]
    NoSession,
}

impl LoginError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LoginError::NoSession => Some("run `aws configure sso` to add one".to_owned()),
            LoginError::Ambiguous(known) => known.first().map(|s| format!("for example: fanout --sso-session {s} ...")),
            _ => None,
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
}

/// Reads `~/.aws/config` (or `AWS_CONFIG_FILE`) the way the SDK does.
pub async fn load_profiles() -> Result<ProfileSet, LoginError> {
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let (fs, env) = (aws_types::os_shim_internal::Fs::real(), aws_types::os_shim_internal::Env::real());
    aws_config::profile::load(&fs, &env, &files, None).await.map_err(LoginError::Load)
}

/// Chooses the login from `--sso-session` and `--profile`, as the AWS CLI would.
pub fn resolve_login(
    profiles: &ProfileSet,
    session: Option<&str>,
    profile: Option<&str>,
) -> Result<SsoLogin, LoginError> {
    let chosen_profile = profile.and_then(|name| profiles.get_profile(name));
    let profile_region = chosen_profile.and_then(|p| p.get("region")).map(str::to_owned);
    if let Some(session) = session {
        return from_session(profiles, session, profile.filter(|_| chosen_profile.is_some()), profile_region);
    }
    if let Some(name) = profile {
        let p = chosen_profile.ok_or_else(|| LoginError::UnknownProfile(name.to_owned()))?;
        if let Some(session) = p.get("sso_session") {
            return from_session(profiles, session, Some(name), profile_region);
        }
        return match (p.get("sso_start_url"), p.get("sso_region")) {
            (Some(start_url), Some(sso_region)) => Ok(SsoLogin {
                session: None,
                start_url: start_url.to_owned(),
                sso_region: sso_region.to_owned(),
                profile: Some(name.to_owned()),
                profile_region,
            }),
            _ => Err(LoginError::NotSso(name.to_owned())),
        };
    }
    let mut sessions: Vec<String> = profiles.sso_sessions().map(str::to_owned).collect();
    sessions.sort();
    match sessions.as_slice() {
        [only] => from_session(profiles, only, None, None),
        [] => Err(LoginError::NoSession),
        _ => Err(LoginError::Ambiguous(sessions)),
    }
}

fn from_session(
    profiles: &ProfileSet,
    name: &str,
    profile: Option<&str>,
    profile_region: Option<String>,
) -> Result<SsoLogin, LoginError> {
    let Some(session) = profiles.sso_session(name) else {
        let mut known: Vec<String> = profiles.sso_sessions().map(str::to_owned).collect();
        known.sort();
        return Err(LoginError::UnknownSession { name: name.to_owned(), known });
    };
    let get = |key: &'static str| {
        session.get(key).map(str::to_owned).ok_or_else(|| LoginError::Incomplete { session: name.to_owned(), key })
    };
    Ok(SsoLogin {
        session: Some(name.to_owned()),
        start_url: get("sso_start_url")?,
        sso_region: get("sso_region")?,
        profile: profile.map(str::to_owned),
        profile_region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
    use aws_types::os_shim_internal::{Env, Fs};

    const CONFIG: &str = "\
[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1

[profile work]
sso_session = corp
region = us-west-2

[profile legacy]
sso_start_url = https://old.awsapps.com/start#/
sso_region = us-east-1

[profile plain]
region = us-east-1
";

    fn parse(config: &str) -> ProfileSet {
        let fs = Fs::from_slice(&[("/cfg", config)]);
        let env = Env::from_slice(&[("HOME", "/home")]);
        let files = EnvConfigFiles::builder().with_file(EnvConfigFileKind::Config, "/cfg").build();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(aws_config::profile::load(&fs, &env, &files, None)).unwrap()
    }

    #[test]
    fn the_only_session_is_the_default() {
        let login = resolve_login(&parse(CONFIG), None, None).unwrap();
        assert_eq!(login.session.as_deref(), Some("corp"));
        assert_eq!(login.sso_region, "eu-west-1");
        assert_eq!(login.cache_key(), "corp");
        assert_eq!(login.login_command(), "aws sso login --sso-session corp");
    }

    #[test]
    fn a_profile_brings_its_session_and_region() {
        let login = resolve_login(&parse(CONFIG), None, Some("work")).unwrap();
        assert_eq!(login.session.as_deref(), Some("corp"));
        assert_eq!(login.profile.as_deref(), Some("work"));
        assert_eq!(login.profile_region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn a_legacy_profile_is_keyed_by_its_start_url_as_written() {
        let login = resolve_login(&parse(CONFIG), None, Some("legacy")).unwrap();
        assert_eq!(login.session, None);
        assert_eq!(login.cache_key(), "https://old.awsapps.com/start#/");
        assert_eq!(login.login_command(), "aws sso login --profile legacy");
    }

    #[test]
    fn several_sessions_and_none_chosen_lists_them() {
        let config = format!("{CONFIG}\n[sso-session other]\nsso_start_url = x\nsso_region = y\n");
        let err = resolve_login(&parse(&config), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the AWS config has several sso-sessions (corp, other); choose one with --sso-session"
        );
    }

    #[test]
    fn bad_choices_are_named() {
        let profiles = parse(CONFIG);
        assert!(matches!(resolve_login(&profiles, Some("nope"), None), Err(LoginError::UnknownSession { .. })));
        assert!(matches!(resolve_login(&profiles, None, Some("nope")), Err(LoginError::UnknownProfile(_))));
        assert!(matches!(resolve_login(&profiles, None, Some("plain")), Err(LoginError::NotSso(_))));
        assert!(matches!(resolve_login(&parse("[default]\nregion=x\n"), None, None), Err(LoginError::NoSession)));
    }
}
