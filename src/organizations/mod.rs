//! Stage 2c (`--org-role`): the organization read from AWS Organizations, through a role
//! the SSO login reaches like any other. Its credentials come from the portal
//! (`GetRoleCredentials`); then a breadth-first walk from each root lists every OU and
//! every account with its state and tags ([`walk`]), each call paced and retried on its
//! own limiter ([`client`]). The answer is returned raw (`org::tree::Listed`), to be
//! checked, cached and turned into the facts the selection reads.
//!
//! What stops the run (before any command) is one line with its fix: the role not being
//! reachable, the role not being allowed to read the organization, its account not being
//! in one.

mod client;
mod walk;

use crate::credentials;
use crate::login::{AwsConfig, SsoLogin, endpoint};
use crate::org::OrgRole;
use crate::org::tree::{Listed, ListedError};
use crate::portal::{Portal, PortalError};
use crate::{exit_code, text};

/// The permissions the role needs, as the fix for a denial names them.
const PERMISSIONS: &str = "organizations:ListRoots, organizations:ListOrganizationalUnitsForParent, organizations:ListAccountsForParent and organizations:ListTagsForResource";

#[derive(Debug, thiserror::Error)]
pub enum OrganizationsError {
    #[error(
        "--org-role {role}: the SSO login cannot reach that role (GetRoleCredentials: {}); name a role the login has (fanout accounts lists them) in the management account or a delegated administrator, one that allows {PERMISSIONS}",
        text::show(message)
    )]
    RoleUnreachable { role: OrgRole, message: String },
    #[error(
        "--org-role {role} may not read the organization ({operation}: AccessDeniedException); use a role in the management account or a delegated administrator that allows {PERMISSIONS}"
    )]
    Denied { role: OrgRole, operation: &'static str },
    #[error(
        "--org-role {role}: account {} is in no organization (AWSOrganizationsNotInUseException); name a role in the management account or a delegated administrator, or give the facts with --accounts-meta FILE", role.account_id
    )]
    NotInUse { role: OrgRole },
    #[error("Organizations throttled {operation} {attempts} times in a row; gave up (try again later)")]
    Throttled { operation: &'static str, attempts: u32 },
    #[error("Organizations {operation} failed: {} (HTTP {status}): {}", text::show(code), text::show(message))]
    Service { operation: &'static str, code: String, status: u16, message: String },
    #[error(
        "Organizations could not be reached for {operation} after {attempts} attempts; check the network and AWS_ENDPOINT_URL_ORGANIZATIONS"
    )]
    Transport {
        operation: &'static str,
        attempts: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Organizations {operation} listed more than {limit} {what}: stopped (a service bug?)")]
    TooLong { operation: &'static str, limit: usize, what: &'static str },
    #[error("Organizations {operation} returned a page token it had returned before: its listing loops; stopped it")]
    RepeatedPageToken { operation: &'static str },
    #[error("Organizations listed the OU {id} twice: the organization's tree loops; stopped")]
    RepeatedOu { id: String },
    #[error("--org-role {role}: the organization's answer cannot be used")]
    Listed {
        role: OrgRole,
        #[source]
        source: ListedError,
    },
    #[error(
        "no account of the organization is in the OU {}; check its id or its path (names from the root, case-sensitive: Root/Workloads/Prod)",
        text::show(ou)
    )]
    UnknownOu { ou: String },
}

impl OrganizationsError {
    /// A problem with the role or the command line is a usage error (2); an
    /// Organizations that cannot be queried is like a portal that cannot be (4).
    pub fn exit_code(&self) -> u8 {
        match self {
            OrganizationsError::Throttled { .. }
            | OrganizationsError::Service { .. }
            | OrganizationsError::Transport { .. }
            | OrganizationsError::TooLong { .. }
            | OrganizationsError::RepeatedPageToken { .. }
            | OrganizationsError::RepeatedOu { .. } => exit_code::PORTAL_UNAVAILABLE,
            _ => exit_code::USAGE,
        }
    }
}

/// Why listing the organization failed: the portal would not give the role's
/// credentials (its error, for the run's portal handling), or Organizations refused.
#[derive(Debug)]
pub enum ListError {
    Portal(PortalError),
    Organizations(OrganizationsError),
}

impl From<OrganizationsError> for ListError {
    fn from(error: OrganizationsError) -> Self {
        ListError::Organizations(error)
    }
}

/// `fanout doctor`: whether `role` is reachable and may read the organization, by the
/// first call a run makes (`ListRoots`, which needs the permission runs need, where
/// `DescribeOrganization` would need one they do not). The roots' ids, shown.
pub async fn probe(
    portal: &Portal,
    role: &OrgRole,
    login: &SsoLogin,
    aws_config: &AwsConfig,
) -> Result<Vec<String>, ListError> {
    let client = connect(portal, role, login, aws_config).await?;
    let roots = client.call("ListRoots", || client.client.list_roots().send()).await?;
    Ok(roots.roots().iter().map(|root| text::show(root.id().unwrap_or_default()).into_owned()).collect())
}

/// The whole organization as `role` sees it, through `login`'s portal.
pub async fn list(
    portal: &Portal,
    role: &OrgRole,
    login: &SsoLogin,
    aws_config: &AwsConfig,
) -> Result<Listed, ListError> {
    let client = connect(portal, role, login, aws_config).await?;
    Ok(walk::walk(&client).await?)
}

/// A paced Organizations client signing as `role`, its credentials from the portal.
async fn connect(
    portal: &Portal,
    role: &OrgRole,
    login: &SsoLogin,
    aws_config: &AwsConfig,
) -> Result<client::Paced, ListError> {
    let credentials = credentials::fetch(portal, &role.account_id, &role.role).await.map_err(|error| {
        if error.is_forbidden() {
            let message = match &error {
                PortalError::Service { code, .. } => code.clone(),
                other => other.to_string(),
            };
            ListError::Organizations(OrganizationsError::RoleUnreachable { role: role.clone(), message })
        } else {
            ListError::Portal(error)
        }
    })?;
    let endpoint = endpoint::organizations_endpoint(login, aws_config).await;
    Ok(client::Paced::new(&credentials, endpoint, role.clone()))
}
