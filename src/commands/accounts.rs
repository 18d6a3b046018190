//! `fanout accounts`: the selected accounts and their roles, as a table or JSON.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::cache::inventory::{self, InventoryAccount, InventoryWriter, KnownRoles, RolesCache};
use crate::config::{Config, ListFormat};
use crate::error::Error;
use crate::login::SsoLogin;
use crate::portal::Portal;
use crate::reporter::tables::{self, AccountRoles};
use crate::reporter::writer::{Output, Stream};

use super::Connected;

/// `fanout accounts`: every selected account with its roles, sorted by id. The accounts
/// are always the portal's; roles the fresh cache knows are not asked again. With
/// several logins, the union, each account once with the first login that lists it (as
/// a run would use).
pub async fn list(connected: &[Connected], config: &Config, format: ListFormat, output: &Output) -> Result<(), Error> {
    let mut accounts = Vec::new();
    let mut seen = HashSet::new();
    for Connected { login, portal, cache } in connected {
        if config.verbosity > 0 {
            output.send(Stream::Stderr, cache.describe(login, connected.len()).into_bytes()).await;
        }
        let roles = cache.roles(config.inventory_ttl);
        for mut entry in list_from_portal(portal, config, login, roles, cache.writer(login)).await? {
            if seen.insert(entry.account.id.clone()) {
                entry.login = (connected.len() > 1).then(|| login.name().to_owned());
                accounts.push(entry);
            }
        }
    }
    accounts.sort_by(|a, b| a.account.id.cmp(&b.account.id));
    let text = match format {
        ListFormat::Table => tables::accounts_table(&accounts),
        ListFormat::Json => tables::accounts_json(&accounts),
    };
    output.send(Stream::Stdout, text).await;
    Ok(())
}

/// The selected accounts as the portal lists them, with their roles: from `cached`
/// when it knows them, else listed. Every account goes to `writer`, committed once the
/// listing is complete.
async fn list_from_portal(
    portal: &Arc<Portal>,
    config: &Config,
    login: &SsoLogin,
    mut cached: RolesCache,
    mut writer: Option<InventoryWriter>,
) -> Result<Vec<AccountRoles>, Error> {
    let portal_error = |e| Error::from_portal(e, login.login_command());
    let mut lookups = JoinSet::new();
    let mut pages = portal.account_pages();
    while let Some(page) = pages.next_page().await.map_err(portal_error)? {
        for account in page {
            let known = cached.take(&account.id);
            let account = config.selection.with_facts(account);
            if !config.selection.selects(&account) {
                inventory::record(&mut writer, &InventoryAccount::new(account, known));
                continue;
            }
            let portal = Arc::clone(portal);
            lookups.spawn(async move {
                let mut known = match known {
                    Some(known) => known,
                    None => KnownRoles::listed_now(portal.list_roles(&account.id).await?),
                };
                known.roles.sort();
                Ok((account, known))
            });
        }
    }
    let mut accounts = Vec::new();
    while let Some(joined) = lookups.join_next().await {
        let (account, known) = joined.expect("role lookups do not panic").map_err(portal_error)?;
        let listed = AccountRoles::new(account.clone(), known.roles.clone());
        inventory::record(&mut writer, &InventoryAccount::new(account, Some(known)));
        accounts.push(listed);
    }
    inventory::commit(writer);
    Ok(accounts)
}
