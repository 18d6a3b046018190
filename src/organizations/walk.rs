//! The breadth-first walk: the roots, then for each OU (a root first) its child OUs and
//! its accounts, and each account's tags. Every listing is paginated to a bound on pages
//! and items and stops at a repeated page token, as the portal's are (`portal/pages.rs`);
//! an OU met twice (a loop) stops the walk. Values are taken as they come (a missing one
//! as empty) and checked whole by `org::tree`.

use std::collections::{HashSet, VecDeque};
use std::future::Future;

use aws_sdk_organizations::config::http::HttpResponse;
use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};

use super::OrganizationsError;
use super::client::Paced;
use crate::org::tree::{Listed, ListedAccount, ListedOu, MAX_ACCOUNTS, MAX_OUS};
use crate::text;

/// The most a page of OUs or accounts holds (Organizations' own maximum).
const PAGE_SIZE: i32 = 20;
/// Pages of one listing: the most accounts an OU could hold, a page per 20.
const MAX_PAGES: usize = MAX_ACCOUNTS / 20;
/// Tags of one account: Organizations allows 50; past this the answer is wrong, and
/// `org::tree` refuses anything past 50 anyway.
const MAX_TAGS: usize = 1_000;
const MAX_TAG_PAGES: usize = 50;

/// Every root, OU and account of the organization, parents first.
pub(super) async fn walk(paced: &Paced) -> Result<Listed, OrganizationsError> {
    let client = &paced.client;
    let mut listed = Listed::default();
    let mut queue = VecDeque::new();
    let mut seen = HashSet::new();
    let roots = all_pages(
        paced,
        "ListRoots",
        MAX_OUS,
        10,
        |token| client.list_roots().set_next_token(token).send(),
        |page| {
            let roots = page.roots().iter().map(|r| ou(r.id(), r.name(), None));
            (roots.collect(), page.next_token())
        },
    )
    .await?;
    for root in roots {
        enqueue(root, &mut listed, &mut queue, &mut seen)?;
    }
    while let Some(parent) = queue.pop_front() {
        let children = all_pages(
            paced,
            "ListOrganizationalUnitsForParent",
            MAX_OUS,
            MAX_PAGES,
            |token| {
                let call = client.list_organizational_units_for_parent().parent_id(&parent).max_results(PAGE_SIZE);
                call.set_next_token(token).send()
            },
            |page| {
                let ous = page.organizational_units().iter().map(|o| ou(o.id(), o.name(), Some(&parent)));
                (ous.collect(), page.next_token())
            },
        )
        .await?;
        for child in children {
            enqueue(child, &mut listed, &mut queue, &mut seen)?;
        }
        let accounts = all_pages(
            paced,
            "ListAccountsForParent",
            MAX_ACCOUNTS,
            MAX_PAGES,
            |token| {
                let call = client.list_accounts_for_parent().parent_id(&parent).max_results(PAGE_SIZE);
                call.set_next_token(token).send()
            },
            |page| {
                let accounts = page.accounts().iter().map(|a| {
                    let state = a.state().map(|s| s.as_str().to_owned()).unwrap_or_default();
                    (a.id().unwrap_or_default().to_owned(), state)
                });
                (accounts.collect(), page.next_token())
            },
        )
        .await?;
        for (id, state) in accounts {
            let tags = tags_of(paced, &id).await?;
            listed.accounts.push(ListedAccount { id, parent: parent.clone(), state, tags });
            if listed.accounts.len() > MAX_ACCOUNTS {
                return Err(too_long("ListAccountsForParent", MAX_ACCOUNTS, "accounts"));
            }
        }
    }
    Ok(listed)
}

fn ou(id: Option<&str>, name: Option<&str>, parent: Option<&str>) -> ListedOu {
    let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
    ListedOu { id: text(id), name: text(name), parent: parent.map(str::to_owned) }
}

fn too_long(operation: &'static str, limit: usize, what: &'static str) -> OrganizationsError {
    OrganizationsError::TooLong { operation, limit, what }
}

/// Takes in one OU (or root) and queues it for its children, unless it was met before.
fn enqueue(
    ou: ListedOu,
    listed: &mut Listed,
    queue: &mut VecDeque<String>,
    seen: &mut HashSet<String>,
) -> Result<(), OrganizationsError> {
    if !seen.insert(ou.id.clone()) {
        return Err(OrganizationsError::RepeatedOu { id: text::show(&ou.id).into_owned() });
    }
    if listed.ous.len() >= MAX_OUS {
        return Err(too_long("ListOrganizationalUnitsForParent", MAX_OUS, "OUs"));
    }
    queue.push_back(ou.id.clone());
    listed.ous.push(ou);
    Ok(())
}

/// One account's tags, as `(key, value)` in the order given.
async fn tags_of(paced: &Paced, account_id: &str) -> Result<Vec<(String, String)>, OrganizationsError> {
    let client = &paced.client;
    all_pages(
        paced,
        "ListTagsForResource",
        MAX_TAGS,
        MAX_TAG_PAGES,
        |token| client.list_tags_for_resource().resource_id(account_id).set_next_token(token).send(),
        |page| {
            let tags = page.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned()));
            (tags.collect(), page.next_token())
        },
    )
    .await
}

/// Every item of one paginated listing: `send` asks for the page after a token, `take`
/// reads its items and next token. At most `max_items` items and `max_pages` pages, and
/// no page token twice.
async fn all_pages<T, O, E, F, Fut, Take>(
    paced: &Paced,
    operation: &'static str,
    max_items: usize,
    max_pages: usize,
    mut send: F,
    take: Take,
) -> Result<Vec<T>, OrganizationsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<O, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    Take: for<'a> Fn(&'a O) -> (Vec<T>, Option<&'a str>),
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut seen_tokens = HashSet::new();
    for _ in 0..max_pages {
        let page = paced.call(operation, || send(token.clone())).await?;
        let (mut got, next) = take(&page);
        items.append(&mut got);
        if items.len() > max_items {
            return Err(too_long(operation, max_items, "items"));
        }
        match next.filter(|t| !t.is_empty()) {
            None => return Ok(items),
            Some(next) if !seen_tokens.insert(next.to_owned()) => {
                return Err(OrganizationsError::RepeatedPageToken { operation });
            }
            Some(next) => token = Some(next.to_owned()),
        }
    }
    Err(too_long(operation, max_pages, "pages"))
}
