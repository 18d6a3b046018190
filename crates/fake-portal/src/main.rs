//! `fake-portal`: the emulated IAM Identity Center portal as a program, for trying fanout
//! without AWS and for benchmarks. Prints `PORT <n>` first, then serves until killed.

// Doc comments here are the `--help` text, where backticks would show as they are.
#![allow(clippy::doc_markdown, reason = "doc comments are clap's help text here")]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use fake_portal::home::{HomeOptions, write_home};
use fake_portal::{Account, Misbehaviour, PortalOptions, State, generated_accounts};
use serde_json::json;

/// An emulated IAM Identity Center portal on 127.0.0.1.
#[derive(Parser)]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How many accounts to serve.
    #[arg(long, default_value_t = 12)]
    accounts: usize,
    /// Latency added to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Requests a second before answering 429 TooManyRequestsException; 0 is unlimited.
    #[arg(long, default_value_t = 0.0)]
    rps: f64,
    /// Largest page returned, whatever max_result asks (the real portal's is 100).
    #[arg(long, default_value_t = fake_portal::MAX_PAGE)]
    page_size: usize,
    /// Page size when a call gives no max_result.
    #[arg(long, default_value_t = 20)]
    default_page_size: usize,
    /// An account whose GetRoleCredentials always answers 500 (repeatable).
    #[arg(long)]
    fail_creds: Vec<String>,
    /// Also write a throwaway HOME here whose profile `corp` reaches this portal.
    #[arg(long)]
    home: Option<PathBuf>,
    /// Make the whole portal misbehave in one way.
    #[arg(long, value_enum)]
    misbehave: Option<Misbehave>,
    /// Mint GetRoleCredentials' keys with AssumeRole on this STS endpoint (a moto server:
    /// http://127.0.0.1:PORT), so each account's keys are that account's identity there.
    #[arg(long, value_name = "URL")]
    sts_endpoint: Option<String>,
    /// Print the accounts served (JSON: accountId, accountName, emailAddress, roles) and exit.
    #[arg(long)]
    dump_accounts: bool,
    /// Serve the accounts in this file instead of --accounts generated ones: a JSON array
    /// as --dump-accounts prints it (emailAddress may be left out), so that the portal
    /// lists accounts another service made (moto's Organizations).
    #[arg(long, value_name = "FILE")]
    accounts_file: Option<PathBuf>,
}

/// The accounts the portal serves: the file's, else `n` generated ones.
fn accounts(file: Option<&PathBuf>, n: usize) -> std::io::Result<Vec<Account>> {
    let Some(path) = file else { return Ok(generated_accounts(n)) };
    let listed: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)?;
    let bad =
        || std::io::Error::other(format!("{}: not an array of {{accountId, accountName, roles}}", path.display()));
    let entries = listed.as_array().ok_or_else(bad)?;
    entries
        .iter()
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().ok_or_else(bad);
            let roles: Option<Vec<&str>> =
                entry["roles"].as_array().and_then(|r| r.iter().map(|v| v.as_str()).collect());
            Ok(Account::new(field("accountId")?, field("accountName")?, &roles.ok_or_else(bad)?))
        })
        .collect()
}

/// The command line's names for [`Misbehaviour`].
#[derive(Clone, Copy, ValueEnum)]
enum Misbehave {
    /// ListAccounts and ListAccountRoles always answer the first page with the same nextToken.
    LoopNextToken,
    /// ListAccounts requests are never answered.
    Stall,
    /// GetRoleCredentials requests are never answered.
    StallCredentials,
    /// ListAccounts answers 200 with an HTML sign-in page.
    Html,
    /// Every operation answers 429 TooManyRequestsException.
    ThrottleForever,
}

impl From<Misbehave> for Misbehaviour {
    fn from(m: Misbehave) -> Self {
        match m {
            Misbehave::LoopNextToken => Misbehaviour::LoopNextToken,
            Misbehave::Stall => Misbehaviour::Stall,
            Misbehave::StallCredentials => Misbehaviour::StallCredentials,
            Misbehave::Html => Misbehaviour::Html,
            Misbehave::ThrottleForever => Misbehaviour::ThrottleForever,
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if args.dump_accounts {
        let accounts: Vec<_> = accounts(args.accounts_file.as_ref(), args.accounts)?
            .into_iter()
            .map(|a| json!({"accountId": a.id, "accountName": a.name, "emailAddress": a.email, "roles": a.roles}))
            .collect();
        println!("{}", serde_json::Value::Array(accounts));
        return Ok(());
    }
    let options = PortalOptions {
        accounts: accounts(args.accounts_file.as_ref(), args.accounts)?,
        page_size: args.page_size,
        default_page_size: args.default_page_size,
        latency: Duration::from_millis(args.latency_ms),
        rate_limit: (args.rps > 0.0).then_some(args.rps),
        failing_credentials: args.fail_creds.into_iter().collect::<HashSet<_>>(),
        misbehave: args.misbehave.map(Misbehaviour::from),
        sts_endpoint: args.sts_endpoint,
        ..PortalOptions::default()
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let port = listener.local_addr()?.port();
    if let Some(home) = &args.home {
        let url = format!("http://127.0.0.1:{port}");
        write_home(home, &HomeOptions { portal_url: Some(url), ..HomeOptions::default() })?;
    }
    println!("PORT {port}");
    tokio::select! {
        () = fake_portal::serve(listener, Arc::new(State::new(options))) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
