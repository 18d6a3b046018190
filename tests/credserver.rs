//! `--credential-server`: children read their account's credentials through the
//! container-credentials protocol, renewed from the (fake) portal, with a token of
//! their own; real clients (botocore, the AWS CLI) as the children where installed.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, stderr_of, stdout_of};
use fake_portal::{Account, PortalOptions, credentials_for};

/// The keys no child of a credential-server run may see.
const KEY_VARS: [&str; 4] =
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"];

fn two_accounts() -> Vec<Account> {
    vec![Account::new("111111111111", "alpha", &["ReadOnly"]), Account::new("222222222222", "beta", &["ReadOnly"])]
}

/// Whether `python3` can import `module`; if not, says why the test is skipped.
fn python_has(module: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!("skipped: python3 with {module} is not installed");
    }
    found
}

/// Writes a child's script to a file: braces in Python would read as placeholders.
fn script(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Each account's lines of `stdout`, prefix removed.
fn lines_of<'a>(stdout: &'a str, account_id: &str) -> Vec<&'a str> {
    let prefix = format!("{account_id}|");
    stdout.lines().filter_map(|line| line.strip_prefix(&prefix)).collect()
}

const BOTOCORE_CHILD: &str = r#"
import json, os, time
import botocore.session

session = botocore.session.get_session()
credentials = session.get_credentials()
first = credentials.get_frozen_credentials()
first_expiry = credentials._expiry_time.isoformat()
# Past the minted credentials' lifetime: botocore must ask the server again.
time.sleep(4)
second = credentials.get_frozen_credentials()
second_expiry = credentials._expiry_time.isoformat()
print(json.dumps(dict(
    method=credentials.method,
    keys=[first.access_key, first.secret_key, first.token, second.access_key, second.secret_key, second.token],
    expiries=[first_expiry, second_expiry],
    aws=sorted(name for name in os.environ if name.startswith("AWS_")),
)))
"#;

#[test]
fn botocore_reads_its_accounts_credentials_across_an_expiry() {
    if !python_has("botocore") {
        return;
    }
    let accounts = two_accounts();
    let env = TestEnv::new(PortalOptions {
        accounts: accounts.clone(),
        credentials_ttl: Duration::from_secs(3),
        ..PortalOptions::default()
    });
    // Everything inherited that could give the child other credentials: keys, a
    // profile, a credentials file with a [default] profile, the container variables.
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("credentials");
    std::fs::write(&foreign, "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file-secret\n").unwrap();
    std::fs::write(env.home().join(".aws/credentials"), std::fs::read(&foreign).unwrap()).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "inherited-token").unwrap();
    let child = script(dir.path(), "child.py", BOTOCORE_CHILD);
    let output = env
        .fanout()
        .env("AWS_ACCESS_KEY_ID", "AKIAINHERITED")
        .env("AWS_SECRET_ACCESS_KEY", "inherited-secret")
        .env("AWS_SHARED_CREDENTIALS_FILE", &foreign)
        .env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/inherited")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/inherited")
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "inherited-token")
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file)
        .args(["--role", "ReadOnly", "--credential-server", "-j", "2", "--", "python3", &child])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    for account in &accounts {
        let lines = lines_of(&stdout, &account.id);
        assert_eq!(lines.len(), 1, "{stdout}");
        let seen: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(seen["method"], "container-role", "{seen}");
        let (key, secret, session) = credentials_for(&account.id, "ReadOnly");
        assert_eq!(seen["keys"], serde_json::json!([key, secret, session, key, secret, session]), "{seen}");
        let expiries = seen["expiries"].as_array().unwrap();
        assert!(expiries[1].as_str() > expiries[0].as_str(), "not renewed: {seen}");
        let aws: Vec<&str> = seen["aws"].as_array().unwrap().iter().filter_map(serde_json::Value::as_str).collect();
        for name in KEY_VARS.iter().chain(&["AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]) {
            assert!(!aws.contains(name), "{name} in the child's environment: {aws:?}");
        }
        assert!(
            aws.contains(&"AWS_CONTAINER_CREDENTIALS_FULL_URI") && aws.contains(&"AWS_CONTAINER_AUTHORIZATION_TOKEN")
        );
        assert!(!aws.contains(&"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), "{aws:?}");
    }
    // One fetch before each child starts, then at least one for each of its two reads.
    let calls = env.portal.stats().get_role_credentials;
    assert!(calls >= 3 * accounts.len() as u64, "{calls} GetRoleCredentials calls");
}

#[test]
fn the_aws_cli_uses_the_container_role() {
    let installed = Command::new("aws").arg("--version").output().is_ok_and(|output| output.status.success());
    if !installed {
        eprintln!("skipped: the aws CLI is not installed");
        return;
    }
    let env = TestEnv::new(PortalOptions { accounts: two_accounts(), ..PortalOptions::default() });
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--credential-server", "--", "aws", "configure", "list"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    for account in two_accounts() {
        let lines = lines_of(&stdout, &account.id);
        let access_key = lines.iter().find(|line| line.trim_start().starts_with("access_key")).expect(&stdout);
        assert!(access_key.contains("container-role"), "{stdout}");
        // The CLI shows the key's last four characters: this account's.
        let (key, _, _) = credentials_for(&account.id, "ReadOnly");
        assert!(access_key.contains(&key[key.len() - 4..]), "{stdout}");
    }
}

/// Writes its URI and token for the other child, waits for the other's, then asks at its
/// URI with the other's token, with none and with its own, and with its own token at the
/// other's URI and on another path; prints the answers.
const CROSS_CHILD: &str = r#"
import json, os, sys, time, urllib.request, urllib.error

share = sys.argv[1]
mine = os.environ["FANOUT_ACCOUNT_ID"]
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
with open(os.path.join(share, mine + ".tmp"), "w") as out:
    out.write(uri + "\n" + token)
os.rename(os.path.join(share, mine + ".tmp"), os.path.join(share, mine))

def wait_for(name):
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(share, name)):
        if time.time() > deadline:
            sys.exit("the other child never came: " + name)
        time.sleep(0.05)

other = [name for name in ("111111111111", "222222222222") if name != mine][0]
wait_for(other)
with open(os.path.join(share, other)) as theirs:
    their_uri, their_token = theirs.read().split("\n")

def ask(token, url=uri):
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(request) as response:
            return [response.status, json.load(response)]
    except urllib.error.HTTPError as error:
        return [error.code, json.load(error)]

answers = dict(
    other=ask(their_token),
    none=ask(None),
    mine=ask(token),
    there=ask(token, their_uri),
    path=ask(token, uri + "/x"),
)
print(json.dumps(answers))
# The other child must still be running when this one asks with its token.
open(os.path.join(share, mine + ".done"), "w").close()
wait_for(other + ".done")
"#;

#[test]
fn a_child_reads_only_its_own_account_and_a_refusal_is_logged_without_the_token() {
    if !python_has("urllib.request") {
        return;
    }
    let env = TestEnv::new(PortalOptions { accounts: two_accounts(), ..PortalOptions::default() });
    let dir = tempfile::tempdir().unwrap();
    let child = script(dir.path(), "child.py", CROSS_CHILD);
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let share = share.display().to_string();
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--credential-server", "-j", "2", "--", "python3", &child, &share])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
    for account in two_accounts() {
        let lines = lines_of(&stdout, &account.id);
        assert_eq!(lines.len(), 1, "{stdout}");
        let answers: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(answers["other"][0], 403, "{answers}");
        assert_eq!(answers["other"][1]["Code"], "AccessDenied", "{answers}");
        assert_eq!(answers["none"][0], 403, "{answers}");
        assert_eq!(answers["mine"][0], 200, "{answers}");
        assert_eq!(answers["there"][0], 403, "{answers}");
        assert_eq!(answers["path"][0], 403, "{answers}");
        let body = &answers["mine"][1];
        let (key, secret, session) = credentials_for(&account.id, "ReadOnly");
        assert_eq!(body["AccountId"], account.id.as_str());
        assert_eq!(
            (&body["AccessKeyId"], &body["SecretAccessKey"], &body["Token"]),
            (&key.into(), &secret.into(), &session.into())
        );
        assert!(body["Expiration"].as_str().is_some_and(|e| e.starts_with("20") && e.ends_with('Z')), "{body}");
        // Each token is the child's own: 32 random bytes, base64.
        let shared = std::fs::read_to_string(Path::new(&share).join(&account.id)).unwrap();
        let (uri, token) = shared.split_once('\n').unwrap();
        assert!(uri.ends_with(&format!("/fanout/{}/ReadOnly", account.id)), "{uri}");
        assert!(token.len() >= 43, "{token}");
        assert!(!stderr.contains(token), "a token was logged: {stderr}");
    }
    // Eight refusals (six with a wrong token, two with none): the first is said, the
    // other seven counted in one line when the server stops (issue 16 point 10).
    assert_eq!(stderr.matches("the credential server refused a request with ").count(), 1, "{stderr}");
    assert!(stderr.contains("refused 7 more requests (403) since its last warning"), "{stderr}");
}

#[test]
fn without_key_variables_and_gone_after_the_run() {
    let env = TestEnv::new(PortalOptions { accounts: two_accounts(), ..PortalOptions::default() });
    let output = env
        .fanout()
        .args(["--role", "ReadOnly", "--credential-server", "--", "sh", "-c", "env | grep ^AWS_ | sort"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    let mut tokens = Vec::new();
    let mut uris = Vec::new();
    for account in two_accounts() {
        let lines = lines_of(&stdout, &account.id);
        for name in KEY_VARS {
            assert!(!lines.iter().any(|line| line.starts_with(&format!("{name}="))), "{name}: {stdout}");
        }
        let value = |name: &str| {
            let prefix = format!("{name}=");
            lines.iter().find_map(|line| line.strip_prefix(&prefix)).map(str::to_owned).expect(&stdout)
        };
        assert_eq!(value("AWS_SHARED_CREDENTIALS_FILE"), "/dev/null");
        assert_eq!(value("AWS_CONFIG_FILE"), "/dev/null");
        assert_eq!(value("AWS_ACCOUNT_ID"), account.id);
        uris.push(value("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
        tokens.push(value("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    }
    assert_ne!(tokens[0], tokens[1], "the children share a token");
    let split = |uri: &str| {
        uri.strip_prefix("http://").and_then(|rest| rest.split_once('/')).map(|(a, p)| (a.to_owned(), p.to_owned()))
    };
    let (address, path) = split(&uris[0]).expect(&uris[0]);
    assert_eq!(split(&uris[1]), Some((address.clone(), "fanout/222222222222/ReadOnly".to_owned())));
    assert_eq!(path, "fanout/111111111111/ReadOnly");
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert!(std::net::TcpStream::connect(&address).is_err(), "the server outlived the run");
}

/// Asks once, tells the test, waits until the portal is gone, asks again.
const OUTAGE_CHILD: &str = r#"
import json, os, sys, time, urllib.request, urllib.error

share = sys.argv[1]
def ask():
    request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
    request.add_header("Authorization", os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
    try:
        with urllib.request.urlopen(request) as response:
            return [response.status, json.load(response)]
    except urllib.error.HTTPError as error:
        return [error.code, json.load(error)]

first = ask()
open(os.path.join(share, "asked"), "w").close()
deadline = time.time() + 30
while not os.path.exists(os.path.join(share, "portal-gone")) and time.time() < deadline:
    time.sleep(0.05)
# The credentials minted have expired by now: the server must go to the portal.
time.sleep(1.5)
print(json.dumps(dict(first=first[0], second=ask())))
"#;

#[test]
fn a_portal_that_cannot_renew_gives_a_502_with_a_reason() {
    if !python_has("urllib.request") {
        return;
    }
    let env = TestEnv::new(PortalOptions {
        accounts: vec![Account::new("111111111111", "alpha", &["ReadOnly"])],
        credentials_ttl: Duration::from_secs(1),
        ..PortalOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let child = script(dir.path(), "child.py", OUTAGE_CHILD);
    let share = dir.path().to_path_buf();
    let fanout = env
        .std_fanout()
        .args(["--role", "ReadOnly", "--credential-server", "--", "python3", &child])
        .arg(&share)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !share.join("asked").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let TestEnv { home: _home, portal } = env;
    drop(portal);
    std::fs::write(share.join("portal-gone"), "").unwrap();
    let output = fanout.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let (stdout, stderr) = (stdout_of(&output), stderr_of(&output));
    let lines = lines_of(&stdout, "111111111111");
    assert_eq!(lines.len(), 1, "{stdout}\n{stderr}");
    let answers: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(answers["first"], 200, "{answers}");
    assert_eq!(answers["second"][0], 502, "{answers}");
    assert_eq!(answers["second"][1]["Code"], "CredentialsUnavailable", "{answers}");
    let message = answers["second"][1]["Message"].as_str().unwrap_or_default();
    assert!(message.contains("role ReadOnly in account 111111111111"), "{message}");
    assert!(stderr.contains("the credential server answered 502"), "{stderr}");
}
