//! The portal's misbehaviours and its faithfulness to hostile values, through
//! [`State::handle`] and, for a stall, through a real connection.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use super::*;

fn portal(misbehave: Option<Misbehaviour>, accounts: Vec<Account>) -> State {
    State::new(PortalOptions { accounts, misbehave, ..PortalOptions::default() })
}

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn get(state: &State, path: &str, pairs: &[(&str, &str)]) -> Reply {
    state.handle("GET", path, &query(pairs), Some(DEFAULT_TOKEN)).await
}

fn json(reply: &Reply) -> &Value {
    reply.json().expect("a JSON body")
}

/// Every account `ListAccounts` serves, page by page, as (id, name).
async fn list_all(state: &State) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let mut pairs = vec![("max_result", "100")];
        if let Some(t) = &token {
            pairs.push(("next_token", t));
        }
        let reply = get(state, "/assignment/accounts", &pairs).await;
        assert_eq!(reply.status, 200);
        for a in json(&reply)["accountList"].as_array().unwrap() {
            seen.push((a["accountId"].as_str().unwrap().to_owned(), a["accountName"].as_str().unwrap().to_owned()));
        }
        match json(&reply).get("nextToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_owned()),
            None => return seen,
        }
    }
    panic!("the listing did not end");
}

#[tokio::test]
async fn loop_next_token_repeats_the_first_page_forever() {
    let state = portal(Some(Misbehaviour::LoopNextToken), generated_accounts(3));
    let first = get(&state, "/assignment/accounts", &[("max_result", "2")]).await;
    assert_eq!(json(&first)["nextToken"], LOOP_TOKEN);
    assert_eq!(json(&first)["accountList"].as_array().unwrap().len(), 2);
    for _ in 0..5 {
        let again = get(&state, "/assignment/accounts", &[("max_result", "2"), ("next_token", LOOP_TOKEN)]).await;
        assert_eq!(json(&again), json(&first));
    }
    let id = generated_accounts(3)[1].id.clone();
    let roles = get(&state, "/assignment/roles", &[("account_id", &id)]).await;
    assert_eq!(json(&roles)["nextToken"], LOOP_TOKEN);
    let again = get(&state, "/assignment/roles", &[("account_id", &id), ("next_token", LOOP_TOKEN)]).await;
    assert_eq!(json(&again), json(&roles));
    assert_eq!(state.stats.snapshot().list_accounts, 6);
    assert_eq!(state.stats.snapshot().list_account_roles, 2);
}

#[tokio::test]
async fn stall_never_answers_list_accounts() {
    let state = portal(Some(Misbehaviour::Stall), generated_accounts(3));
    let stalled = tokio::time::timeout(Duration::from_millis(200), get(&state, "/assignment/accounts", &[])).await;
    assert!(stalled.is_err(), "ListAccounts answered");
    assert_eq!(state.stats.snapshot().stalled, 1);
    // The abandoned request leaves the in-flight count; other operations still answer.
    assert_eq!(state.stats.in_flight.load(Ordering::Relaxed), 0);
    let id = generated_accounts(3)[1].id.clone();
    assert_eq!(get(&state, "/assignment/roles", &[("account_id", &id)]).await.status, 200);
    let creds = get(&state, "/federation/credentials", &[("account_id", &id), ("role_name", "ReadOnly")]).await;
    assert_eq!(creds.status, 200);
}

#[tokio::test]
async fn stall_credentials_never_answers_get_role_credentials() {
    let state = portal(Some(Misbehaviour::StallCredentials), generated_accounts(3));
    let id = generated_accounts(3)[1].id.clone();
    let pairs = [("account_id", id.as_str()), ("role_name", "ReadOnly")];
    let stalled =
        tokio::time::timeout(Duration::from_millis(200), get(&state, "/federation/credentials", &pairs)).await;
    assert!(stalled.is_err(), "GetRoleCredentials answered");
    assert_eq!(list_all(&state).await.len(), 3);
    assert_eq!(get(&state, "/assignment/roles", &[("account_id", &id)]).await.status, 200);
    let counts = state.stats.snapshot();
    assert_eq!((counts.stalled, counts.get_role_credentials), (1, 0));
}

#[tokio::test]
async fn html_answers_list_accounts_with_a_login_page() {
    let state = portal(Some(Misbehaviour::Html), generated_accounts(3));
    let reply = get(&state, "/assignment/accounts", &[]).await;
    assert_eq!((reply.status, reply.error_type), (200, None));
    assert!(reply.json().is_none());
    assert_eq!(reply.body.content_type(), "text/html");
    let bytes = reply.body.into_bytes();
    assert!(bytes.starts_with(b"<html><head><title>Sign in</title>"));
    assert!(bytes.contains(&0x1b), "the page carries its ESC byte");
    let id = generated_accounts(3)[0].id.clone();
    let roles = get(&state, "/assignment/roles", &[("account_id", &id)]).await;
    assert_eq!(roles.body.content_type(), "application/json");
}

#[tokio::test]
async fn throttle_forever_answers_429_to_every_operation() {
    let state = portal(Some(Misbehaviour::ThrottleForever), generated_accounts(3));
    let id = generated_accounts(3)[1].id.clone();
    for _ in 0..3 {
        for (path, pairs) in [
            ("/assignment/accounts", vec![]),
            ("/assignment/roles", vec![("account_id", id.as_str())]),
            ("/federation/credentials", vec![("account_id", id.as_str()), ("role_name", "ReadOnly")]),
        ] {
            let reply = get(&state, path, &pairs).await;
            assert_eq!((reply.status, reply.error_type), (429, Some("TooManyRequestsException")), "{path}");
        }
    }
    let logout = state.handle("POST", "/logout", &HashMap::new(), Some(DEFAULT_TOKEN)).await;
    assert_eq!(logout.status, 429);
    let counts = state.stats.snapshot();
    assert_eq!((counts.throttled, counts.served()), (10, 0));
    // The stats hook is no operation and keeps answering.
    assert_eq!(get(&state, "/_stats", &[]).await.status, 200);
}

#[tokio::test]
async fn hostile_names_and_ids_are_served_faithfully() {
    let hostile = [
        Account::new("12345", "q$(touch /tmp/p)", &["ReadOnly"]),
        Account::new("abc\"def", "esc\x1b[31mred\nnew \"line\" \\ 'q' `b`", &["ReadOnly", "x y"]),
        Account::new("1234567890123456", "", &["ReadOnly"]),
        Account::new("../../etc", "\u{202e}rtl\u{0}nul", &["Admin;rm -rf /"]),
    ];
    let state = portal(None, hostile.to_vec());
    let served = list_all(&state).await;
    let expected: Vec<_> = hostile.iter().map(|a| (a.id.clone(), a.name.clone())).collect();
    assert_eq!(served, expected);
    // On the wire the control characters are JSON escapes, never raw bytes.
    let reply = get(&state, "/assignment/accounts", &[]).await;
    let wire = reply.body.into_bytes();
    assert!(!wire.iter().any(|b| *b < 0x20), "raw control byte on the wire");
    assert!(String::from_utf8(wire).unwrap().contains(r#"esc\u001b[31mred\nnew \"line\""#));
    for account in &hostile {
        let roles = get(&state, "/assignment/roles", &[("account_id", &account.id)]).await;
        let names: Vec<_> =
            json(&roles)["roleList"].as_array().unwrap().iter().map(|r| r["roleName"].clone()).collect();
        assert_eq!(names, account.roles);
        assert!(json(&roles)["roleList"].as_array().unwrap().iter().all(|r| r["accountId"] == *account.id));
        let role = account.roles[0].as_str();
        let creds = get(&state, "/federation/credentials", &[("account_id", &account.id), ("role_name", role)]).await;
        assert_eq!(creds.status, 200);
        let (key, ..) = credentials_for(&account.id, role);
        assert_eq!(json(&creds)["roleCredentials"]["accessKeyId"], key);
    }
}

#[tokio::test]
async fn an_account_listed_twice_is_served_twice_across_pages() {
    let a = Account::new("111111111111", "alpha", &["ReadOnly"]);
    let b = Account::new("222222222222", "beta", &["ReadOnly"]);
    let state = State::new(PortalOptions {
        accounts: vec![a.clone(), b.clone(), a.clone()],
        page_size: 1,
        ..PortalOptions::default()
    });
    let served = list_all(&state).await;
    let ids: Vec<_> = served.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, [a.id.as_str(), b.id.as_str(), a.id.as_str()]);
    assert_eq!(state.stats.snapshot().list_accounts, 3);
}

/// Sends one raw HTTP/1.1 GET and reads until the server closes or `timeout` passes.
fn raw_get(portal: &FakePortal, path: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(portal.addr)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nx-amz-sso_bearer_token: {DEFAULT_TOKEN}\r\nConnection: close\r\n\r\n",
        portal.addr
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn stall_holds_a_real_connection_open_unanswered() {
    let portal = FakePortal::start(PortalOptions { misbehave: Some(Misbehaviour::Stall), ..PortalOptions::default() });
    let stalled = raw_get(&portal, "/assignment/accounts", Duration::from_millis(300)).unwrap_err();
    assert!(matches!(stalled.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{stalled}");
    let id = &generated_accounts(1)[0].id;
    let roles = raw_get(&portal, &format!("/assignment/roles?account_id={id}"), Duration::from_secs(10)).unwrap();
    assert!(roles.starts_with("HTTP/1.1 200"), "{roles}");
    assert_eq!(portal.stats().stalled, 1);
}

#[test]
fn html_goes_out_as_text_html_with_its_esc_byte() {
    let portal = FakePortal::start(PortalOptions { misbehave: Some(Misbehaviour::Html), ..PortalOptions::default() });
    let page = raw_get(&portal, "/assignment/accounts", Duration::from_secs(10)).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("content-type: text/html\r\n"), "{page}");
    assert!(page.ends_with(HTML_PAGE), "{page}");
}

#[tokio::test]
async fn a_raw_name_is_sent_as_its_bytes_and_the_rest_as_json() {
    let mut options = PortalOptions {
        accounts: vec![Account::new("111111111111", "a", &["R"]), Account::new("222222222222", "b", &["R"])],
        ..PortalOptions::default()
    };
    options.raw_names.insert("222222222222".into(), b"x\\ud800\xff".to_vec());
    let state = State::new(options);
    let reply = get(&state, "/assignment/accounts", &[("max_result", "100")]).await;
    assert_eq!((reply.status, reply.body.content_type()), (200, "application/json"));
    let bytes = reply.body.into_bytes();
    assert!(bytes.windows(10).any(|w| w == b"\"x\\ud800\xff\""), "{}", String::from_utf8_lossy(&bytes));
    assert!(String::from_utf8_lossy(&bytes).contains(r#""accountName":"a""#));
}

/// A one-shot STS stand-in on loopback: answers the first request with `AssumeRole` XML
/// naming the role ARN it was asked for, and hands that request back.
fn one_shot_sts() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0; 4096];
        while !String::from_utf8_lossy(&request).contains("DurationSeconds") {
            let n = stream.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8(request).unwrap();
        let account = request.split("iam%3A%3A").nth(1).unwrap()[..12].to_owned();
        let xml = format!(
            "<AssumeRoleResponse><Credentials><AccessKeyId>FSIA{account}</AccessKeyId>\
             <SecretAccessKey>sts-secret</SecretAccessKey><SessionToken>sts-token</SessionToken>\
             </Credentials></AssumeRoleResponse>"
        );
        write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{xml}", xml.len()).unwrap();
        request
    });
    (url, thread)
}

#[tokio::test]
async fn an_sts_endpoint_mints_the_keys_for_the_account_asked() {
    let (url, sts) = one_shot_sts();
    let state = State::new(PortalOptions { sts_endpoint: Some(url), ..PortalOptions::default() });
    let creds =
        get(&state, "/federation/credentials", &[("account_id", "100000001111"), ("role_name", "ReadOnly")]).await;
    assert_eq!(creds.status, 200);
    let minted = &json(&creds)["roleCredentials"];
    assert_eq!(minted["accessKeyId"], "FSIA100000001111");
    assert_eq!(minted["secretAccessKey"], "sts-secret");
    assert_eq!(minted["sessionToken"], "sts-token");
    assert!(minted["expiration"].as_u64().is_some());
    let request = sts.join().unwrap();
    assert!(request.starts_with("POST / HTTP/1.0"), "{request}");
    assert!(request.contains("Action=AssumeRole") && request.contains("role%2FReadOnly"), "{request}");
}

#[tokio::test]
async fn an_unreachable_sts_endpoint_is_a_server_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let state = State::new(PortalOptions { sts_endpoint: Some(url), ..PortalOptions::default() });
    let creds =
        get(&state, "/federation/credentials", &[("account_id", "100000001111"), ("role_name", "ReadOnly")]).await;
    assert_eq!((creds.status, creds.error_type), (500, Some("InternalServerException")));
}
