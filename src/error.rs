//! The one error type that reaches `main`: it knows its exit code and a hint naming the
//! fix. A failing account is not an error (see `outcome.rs`).

use crate::config::ConfigError;
use crate::login::LoginError;
use crate::organizations::OrganizationsError;
use crate::portal::PortalError;
use crate::reporter::dir::OutputDirError;
use crate::settings::SettingsError;
use crate::token::TokenError;
use crate::{exit_code, text};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The config file of defaults could not be read or is wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Token(#[from] TokenError),
    /// `--org-role`: the organization could not be read; the message holds the fix.
    #[error(transparent)]
    Organizations(#[from] OrganizationsError),
    /// `--output-dir` names a directory another user could redirect writes through.
    #[error(transparent)]
    OutputDir(#[from] OutputDirError),
    /// The portal answered 401 before any command started.
    #[error("the portal rejected the cached SSO token ({message})")]
    LoginRejected { message: String, login_command: String },
    /// Listing the accounts failed before any command started.
    #[error(transparent)]
    Portal(PortalError),
    #[error("--accounts names {name:?}, which {} accounts bear ({})", ids.len(), ids.join(", "))]
    AmbiguousName { name: String, ids: Vec<String> },
    #[error("cannot write {}", path.display())]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The person asked before a big run did not say yes.
    #[error("the run was not confirmed: nothing was run")]
    NotConfirmed,
    #[error("{context}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_)
            | Error::Login(_)
            | Error::Settings(_)
            | Error::AmbiguousName { .. }
            | Error::OutputDir(_)
            | Error::Write { .. }
            | Error::Io { .. } => exit_code::USAGE,
            Error::Token(_) | Error::LoginRejected { .. } => exit_code::NO_LOGIN,
            Error::Organizations(error) => error.exit_code(),
            Error::Portal(_) => exit_code::PORTAL_UNAVAILABLE,
            Error::NotConfirmed => exit_code::ACCOUNT_FAILED,
        }
    }

    /// `error: <message>: <cause>: <cause>; <hint>`, on one line: control characters and
    /// line breaks from anywhere in the chain (a portal's message, a file's name) are escaped.
    pub fn line(&self) -> String {
        let mut line = format!("error: {}", text::error_chain(self));
        if let Some(hint) = self.hint() {
            line.push_str("; ");
            line.push_str(&hint);
        }
        line.push('\n');
        line
    }

    /// What to do about it, when fanout knows.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Login(error) => error.hint(),
            Error::Settings(error) => error.hint(),
            Error::OutputDir(error) => error.hint(),
            Error::Token(error) => error.login_command().map(|command| format!("run: {command}")),
            Error::LoginRejected { login_command, .. } => Some(format!("run: {login_command}")),
            Error::Portal(_) => {
                Some("check the network and the portal endpoint (AWS_ENDPOINT_URL_SSO), then try again".to_owned())
            }
            Error::AmbiguousName { ids, .. } => Some(format!("name the account by id, e.g. --accounts {}", ids[0])),
            Error::Config(_)
            | Error::Organizations(_)
            | Error::Write { .. }
            | Error::Io { .. }
            | Error::NotConfirmed => None,
        }
    }

    /// Wraps a portal error met before any command started.
    pub fn from_portal(error: PortalError, login_command: String) -> Self {
        match error {
            PortalError::Unauthorized { message } => Error::LoginRejected { message, login_command },
            other => Error::Portal(other),
        }
    }
}
