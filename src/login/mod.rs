//! Stage 1a: which IAM Identity Center login to use, read from `~/.aws/config`.
//!
//! The file is parsed by aws-config's own parser, so fanout reads it exactly as the SDK
//! (and so the AWS CLI) does, `AWS_CONFIG_FILE` included. The order of choice follows the
//! CLI: `--sso-session`, else the profile from `--profile`/`AWS_PROFILE`, else the only
//! sso-session in the file.
//!
//! Several `--sso-session`s are several logins (an organisation with two IAM Identity
//! Center instances): [`resolve_logins`] resolves each, in the order given, which is
//! the order that decides through which login an account reachable by more than one
//! runs.

pub mod endpoint;

use std::path::{Path, PathBuf};

use aws_config::profile::{ProfileFileLoadError, ProfileSet};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};

use crate::files::{self, ReadLimitError};

/// The largest AWS config file read; real ones are a few KiB.
pub const MAX_CONFIG_FILE: u64 = 1024 * 1024;

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

    /// How results and the summary name the login: the session name, or the legacy
    /// start URL.
    pub fn name(&self) -> &str {
        self.cache_key()
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
    #[error("cannot parse the AWS config {}: {}", path.display(), one_line(&source.to_string()))]
    Parse { path: PathBuf, source: ProfileFileLoadError },
    #[error("cannot read the AWS config {}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: ReadLimitError,
    },
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

/// `~/.aws/config` (or `AWS_CONFIG_FILE`) as read once, with a bounded read, and then
/// handed to the SDK as text: every later reader (the portal client's `[services]`
/// endpoint) sees the same bytes, and no reader can be made to read without end.
#[derive(Clone, Debug)]
pub struct AwsConfig {
    pub path: PathBuf,
    /// Empty when there is no file at all: the SDK then has no profiles either.
    text: String,
}

impl AwsConfig {
    /// Reads the config file the SDK would read; a missing file is an empty config,
    /// anything else that cannot be read is an error naming the file.
    pub fn read(home: &Path, config_file_env: Option<&str>) -> Result<Self, LoginError> {
        let path = config_path(home, config_file_env);
        let text = match files::read_bounded(&path, MAX_CONFIG_FILE) {
            Ok(text) => text,
            Err(ReadLimitError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(LoginError::Unreadable { path, source }),
        };
        Ok(AwsConfig { path, text })
    }

    /// The file for the SDK's loaders, as the text read (empty for a missing file: the
    /// SDK's builder refuses a set with no file in it, by panicking); the shared
    /// credentials file is left out, as no credentials are read from it.
    pub fn profile_files(&self) -> EnvConfigFiles {
        EnvConfigFiles::builder()
            .include_default_credentials_file(false)
            .with_contents(EnvConfigFileKind::Config, self.text.clone())
            .build()
    }

    /// Parses the file with aws-config's own parser, as the SDK and so the AWS CLI do.
    pub async fn profiles(&self) -> Result<ProfileSet, LoginError> {
        let (fs, env) = (aws_types::os_shim_internal::Fs::real(), aws_types::os_shim_internal::Env::real());
        aws_config::profile::load(&fs, &env, &self.profile_files(), None)
            .await
            .map_err(|source| LoginError::Parse { path: self.path.clone(), source })
    }
}

/// `AWS_CONFIG_FILE` (a leading `~/` is the home directory, as in the SDK), else
/// `~/.aws/config`.
fn config_path(home: &Path, config_file_env: Option<&str>) -> PathBuf {
    match config_file_env.filter(|p| !p.is_empty()) {
        Some(path) => match path.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(path),
        },
        None => home.join(".aws").join("config"),
    }
}

/// The parser's message spans lines ("error parsing F on line 3:\n  Expected …"); an
/// error here is one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The logins of a run: one as [`resolve_login`] chooses it, or with several
/// `--sso-session`s (each once; `config/` refuses a profile with them) each of those,
/// in the order given. A login reached through several sessions has no profile of its
/// own to take a region and a `[services]` endpoint from, so it takes those of
/// [`session_profile`].
pub fn resolve_logins(
    profiles: &ProfileSet,
    sessions: &[String],
    profile: Option<&str>,
) -> Result<Vec<SsoLogin>, LoginError> {
    if let [_, _, ..] = sessions {
        return sessions
            .iter()
            .map(|name| {
                let profile = session_profile(profiles, name);
                let region = profile.and_then(|p| profiles.get_profile(p)).and_then(|p| p.get("region"));
                from_session(profiles, name, profile, region.map(str::to_owned))
            })
            .collect();
    }
    resolve_login(profiles, sessions.first().map(String::as_str), profile).map(|login| vec![login])
}

/// The profile that speaks for sso-session `name` among several: the first by name of
/// the profiles whose `sso_session` is `name` (as `aws configure sso` writes them), so
/// the choice is the same on every run whatever the file's order.
fn session_profile<'p>(profiles: &'p ProfileSet, name: &str) -> Option<&'p str> {
    profiles.profiles().filter(|p| profiles.get_profile(p).and_then(|p| p.get("sso_session")) == Some(name)).min()
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
    fn several_sessions_each_take_their_first_profile() {
        let config = format!(
            "{CONFIG}\n[sso-session lab]\nsso_start_url = https://lab.awsapps.com/start\nsso_region = us-east-2\n\
             [profile lab-z]\nsso_session = lab\nregion = ap-south-1\n[profile lab-a]\nsso_session = lab\nregion = eu-north-1\n"
        );
        let sessions = ["lab".to_owned(), "corp".to_owned()];
        let logins = resolve_logins(&parse(&config), &sessions, None).unwrap();
        let names: Vec<&str> = logins.iter().map(SsoLogin::name).collect();
        assert_eq!(names, ["lab", "corp"], "in the order given");
        assert_eq!(logins[0].profile.as_deref(), Some("lab-a"));
        assert_eq!(logins[0].profile_region.as_deref(), Some("eu-north-1"));
        assert_eq!(logins[1].profile.as_deref(), Some("work"));
        let unknown = ["corp".to_owned(), "nope".to_owned()];
        assert!(matches!(resolve_logins(&parse(&config), &unknown, None), Err(LoginError::UnknownSession { .. })));
    }

    #[test]
    fn one_session_is_chosen_as_before() {
        let logins = resolve_logins(&parse(CONFIG), &["corp".to_owned()], None).unwrap();
        assert_eq!(logins, [resolve_login(&parse(CONFIG), Some("corp"), None).unwrap()]);
        assert_eq!(logins[0].profile, None);
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
