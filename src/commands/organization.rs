//! `--org-role`: the organization's facts, from the inventory cache when it holds them
//! within `--cache-ttl`, else listed through the role (and kept), checked, and attached
//! to the selection before the portal's listing, so `--ou`, `--tag` and the skip of
//! inactive accounts read them exactly as they read `--accounts-meta`'s.

use std::sync::Arc;

use crate::config::Config;
use crate::error::Error;
use crate::login::AwsConfig;
use crate::org::tree;
use crate::organizations::{self, ListError, OrganizationsError};
use crate::portal::PortalError;
use crate::stop::Stopper;

use super::Connected;

/// Reads the organization through `config.org_role`, if given, into the selection. The
/// role is reached through the run's first login (the one `--sso-session` names first).
pub(super) async fn attach_facts(
    config: &mut Config,
    connected: &[Connected],
    aws_config: &AwsConfig,
    stopper: &Stopper,
) -> Result<(), Error> {
    let Some(role) = config.org_role.clone() else { return Ok(()) };
    let Connected { login, portal, cache } = &connected[0];
    let cached = cache.org_listing(config, login, &role);
    let from_cache = cached.is_some();
    let listed = if let Some(listed) = cached {
        tracing::info!("the organization's facts come from the cache (--refresh lists them again)");
        listed
    } else {
        tokio::select! {
            listed = organizations::list(portal, &role, login, aws_config) => listed.map_err(|error| match error {
                ListError::Portal(error) => Error::from_portal(error, login.login_command()),
                ListError::Organizations(error) => Error::Organizations(error),
            })?,
            () = stopper.stopped() => return Err(Error::Portal(PortalError::Cancelled)),
        }
    };
    let source = format!("the organization (--org-role {role})");
    let facts =
        tree::facts(&listed, source).map_err(|source| OrganizationsError::Listed { role: role.clone(), source })?;
    if !from_cache {
        cache.remember_org_listing(login, &role, &listed);
    }
    config.selection.org.facts = Some(Arc::new(facts));
    if let Some(ou) = config.selection.org.unknown_ou() {
        return Err(OrganizationsError::UnknownOu { ou: ou.to_string() }.into());
    }
    Ok(())
}
