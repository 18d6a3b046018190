//! The command line as clap sees it: flags and help text, no I/O. `config/` turns it
//! into a plain [`crate::config::Config`]; nothing after that sees these types.

// Doc comments here are the `--help` text, where backticks would show as they are.
#![allow(clippy::doc_markdown, reason = "doc comments are clap's help text here")]

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  fanout --role ReadOnly -- aws s3api list-buckets
  fanout --sso-session corp --role ReadOnly --match '*-dev' --dry-run -- ./audit.sh {account_id}
  fanout --role ReadOnly,ViewOnly --prefix '{account_name}' -- sh -c 'aws iam list-users | wc -l'
  fanout accounts --output json
  fanout doctor
  fanout credentials --role ReadOnly --output-file sso_role_credentials.json
  fanout --role Admin --dry-run --save-plan plan.json -- ./fix.sh
  fanout apply plan.json --dry-run
  fanout --canary 2 apply plan.json --approve <sha256 printed by --save-plan and --dry-run>

Exit codes:
  0    every selected account ran and its command exited 0
  1    at least one account failed (non-zero exit, killed, timed out, no credentials,
       throttled, spawn error), was interrupted or never started; or output could not be
       written; or the run was not confirmed at the prompt (nothing ran); or, with
       --require-all, an account in scope was not reached
  2    usage or configuration error (bad flag, template, glob, config file, no such
       program, a placeholder where a shell or interpreter would run it as code; a plan
       edited since it was saved, a wrong --approve, no --approve and no terminal, a plan
       of another login)
  3    no valid SSO login: token missing, expired or rejected; run `aws sso login`
  4    the SSO portal could not be queried before any command started, or its account
       listing broke off (a repeated page token, an error)
  5    the selection matched no account
  130  interrupted by SIGINT (143: SIGTERM, 129: SIGHUP), after the children were stopped

Defaults:
  Options marked [env: FANOUT_...] take their default from that variable, then from the
  config file FANOUT_CONFIG names (else $XDG_CONFIG_HOME/fanout/config.toml, else
  ~/.config/fanout/config.toml), keys spelled as the flags (role = [\"ReadOnly\"],
  exclude = [\"*-prod\"], concurrency = 8, timeout = \"10m\"). A flag beats the
  environment, which beats the file, which beats the built-in default. `fanout config`
  shows what is in force and where each value came from.

A closed standard output (`fanout ... | head`) ends fanout quietly with 0, as ripgrep does.";

/// Run one command in every AWS account an IAM Identity Center (AWS SSO) login reaches.
///
/// fanout reads the token `aws sso login` cached, lists the accounts the login reaches,
/// fetches short-term credentials for --role in each selected account, and runs COMMAND
/// once per account with that account's AWS_* variables, printing its output as
/// `account|line`.
#[derive(Debug, Parser)]
#[command(
    name = "fanout",
    version,
    after_long_help = AFTER_HELP,
    subcommand_value_name = "SUBCOMMAND",
    subcommand_help_heading = "Subcommands"
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Subcommands>,

    #[command(flatten)]
    pub login: LoginArgs,

    #[command(flatten)]
    pub selection: SelectionArgs,

    #[command(flatten)]
    pub run: RunArgs,

    /// More diagnostics on stderr (-v: throttles and retries, -vv: every portal call,
    /// -vvv: the SDK's own debug log). Secrets are never logged.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// The command to run in each account, after `--`. It runs directly, not through a
    /// shell (write `sh -c '...'` for one). Arguments may hold {account_id},
    /// {account_name}, {role}, {region} and {ou_path} (--org-role or --accounts-meta; as hostile as a
    /// name); any other {word} is an error, other braces
    /// are literal, and `{{` and `}}` are literal braces. In the script of `sh -c` (bash,
    /// dash, zsh, ksh, mksh, busybox sh) a placeholder becomes a reference to its
    /// variable ({account_name} → "$FANOUT_ACCOUNT_NAME"), so no account name can run as
    /// code; where no form is safe (a heredoc, eval, a nested sh -c, python3 -c, the
    /// program itself) it is refused with exit 2.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Subcommands {
    /// List the accounts this login reaches, with their names and roles.
    Accounts {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Run a plan saved by `--dry-run --save-plan FILE`, exactly: its accounts, roles,
    /// region and commands as they were rendered, under the same login (else exit 2).
    /// Accounts the portal no longer lists, or whose role is gone, are skipped and
    /// reported. Run flags go before `apply` (fanout -j 4 --canary 2 apply plan.json).
    Apply {
        /// The plan file.
        #[arg(value_name = "FILE")]
        file: PathBuf,

        /// The SHA-256 of the plan file (as `sha256sum FILE` and --dry-run print it) as
        /// its reviewer approved it: runs without asking. It proves the file is byte for
        /// byte the one reviewed, not who wrote it. Another hash is refused (exit 2).
        /// Without it, fanout shows the review and asks on the terminal, and without a
        /// terminal refuses (exit 2).
        #[arg(long, value_name = "SHA256")]
        approve: Option<String>,

        /// Review the plan and run nothing: print every distinct argv with the accounts
        /// that run it, every role and region, and the file's sha256 (the prompt shows
        /// the same), marking accounts renamed since the plan (old → new) or no longer
        /// listed. Lists the accounts from the portal; fetches no credentials. Exit 0.
        /// Example: fanout apply plan.json --dry-run
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a completion script for SHELL on stdout (bash, zsh, fish, powershell,
    /// elvish). Needs no AWS config or login. Where to put it: README, "Everyday use".
    Completions {
        /// The shell to complete in.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print fanout's man page (roff) on stdout: every flag, the exit codes and the
    /// environment. Needs no AWS config or login (fanout man > ~/.local/share/man/man1/fanout.1).
    Man,
    /// Check the login end to end, each problem with its fix.
    ///
    /// Prints one screen: the AWS config file, the sso-session and why it was chosen,
    /// the token file, its expiry and whether a refresh would be possible, the portal
    /// endpoint and every override in force, whether the portal answers and how fast,
    /// clock skew, the inventory cache's age, and the credential variables stripped from
    /// the commands (names only). Exit 0 when all is well, else the code of the first
    /// problem (2 config, 3 login, 4 portal). Never prints a secret.
    Doctor,
    /// Fetch role credentials for the selected accounts and write them out instead of
    /// running a command: the same selection, portal limiter, retries and inventory cache
    /// as a run; accounts without the role are skipped; the summary and exit code on
    /// stderr are a run's. Secrets go only where asked (stdout or --output-file), never
    /// to logs, the summary or the cache. Guide: docs/credentials-export.md.
    ///
    ///   fanout credentials --role ReadOnly --output-file sso_role_credentials.json
    ///   fanout credentials --role ReadOnly --format jsonl | python3 audit.py
    ///   eval "$(fanout credentials --account 111122223333 --role ReadOnly --format env)"
    ///   credential_process = fanout credentials --account 111122223333 --role ReadOnly --format process
    #[command(verbatim_doc_comment)]
    Credentials {
        /// The role whose credentials to fetch, or a comma-separated fallback list (the
        /// first one each account has). Default: --role given before the subcommand,
        /// FANOUT_ROLE, or the config file's `role`.
        #[arg(long, value_delimiter = ',', value_name = "ROLE,...")]
        role: Vec<String>,

        /// `json`: the article's sso_role_credentials.json, an array of {accountId,
        /// accountName, emailAddress, roles: {ROLE: {accessKeyId, secretAccessKey,
        /// sessionToken, expiration (epoch ms)}}}, written once all accounts are done;
        /// needs --output-file. `jsonl`: one such object a line on stdout as each account's
        /// credentials arrive. `env`: `export AWS_ACCESS_KEY_ID=...` lines for `eval`.
        /// `process`: the credential_process JSON (Version 1), with no summary unless it
        /// fails. `env` and `process` need exactly one selected account (else exit 2).
        #[arg(long, value_enum, default_value_t = ExportFormatArg::Json)]
        format: ExportFormatArg,

        /// With --format json: the file to write, created 0600 and renamed into place
        /// whole (never partly written, never readable by others), or written in place
        /// when it is no regular file (a FIFO); `-` for stdout. A stopped run leaves no
        /// file; one that cannot be written (a full disk) is exit 1. Without it, a json export is refused (exit 2): no
        /// secrets file is written that was not named.
        #[arg(long, value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
    /// Print the effective defaults, one a line, and where each came from: `flag`,
    /// `env FANOUT_X`, `file PATH` (the config file) or `default`. Needs no AWS config or
    /// login.
    Config,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// What `fanout credentials` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    Json,
    Jsonl,
    Env,
    Process,
}

/// How a run's output is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunOutput {
    Text,
    Json,
}

/// Which login to use.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The sso-session in ~/.aws/config to use. Default: the profile's, else the only
    /// sso-session in the file. Repeatable, or comma-separated (FANOUT_SSO_SESSION=corp,lab),
    /// for an organisation with several IAM Identity Center instances: the run reaches
    /// every login's accounts, each once, through the first login given that lists it
    /// (see docs/login.md, "Several logins").
    #[arg(long, global = true, env = "FANOUT_SSO_SESSION", value_name = "NAME", value_delimiter = ',')]
    pub sso_session: Vec<String>,

    /// A profile whose sso_session (or legacy sso_start_url) names the login; its region
    /// and [services] endpoint apply too. Refused (exit 2) with several --sso-session.
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

/// Which accounts to reach.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    /// Only accounts whose name, id or email matches GLOB (case-insensitive; repeatable:
    /// any may match). Example: --match '*-dev' --match '1234*'
    #[arg(long = "match", global = true, value_name = "GLOB")]
    pub matches: Vec<String>,

    /// Leave out accounts whose name, id or email matches GLOB (repeatable).
    #[arg(long, global = true, env = "FANOUT_EXCLUDE", value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Only these accounts, by id or name, comma-separated (--account is the same flag).
    /// Twelve digits are an account id and match ids only, never a name (each account's
    /// administrator chooses its name); name:111122223333 chooses an account by a name of
    /// digits, id: says id explicitly.
    #[arg(long, global = true, visible_alias = "account", value_delimiter = ',', value_name = "ID|NAME,...")]
    pub accounts: Vec<String>,

    /// Only the accounts listed in FILE: one id or name a line, as for --accounts (name:
    /// and id: too); `#` starts a comment. At most 16 MiB; a regular file or a pipe
    /// (--accounts-file <(grep prod ids.txt)), never a device.
    #[arg(long, global = true, value_name = "FILE")]
    pub accounts_file: Option<PathBuf>,

    /// What the organization says of each account, from a local file: its OU path, tags
    /// and state, for --ou, --exclude-ou and --tag, in results, plans, joblogs and
    /// reports, and as FANOUT_OU_PATH and {ou_path} in commands. CSV (a header row with
    /// account_id and any of ou_path, ou_id, tags as k=v;k2=v2, state) or TOML
    /// ([[account]] tables with id, ou_path, ou_id, tags = {...}, state), chosen by the
    /// extension. Accounts it lists as SUSPENDED, PENDING_CLOSURE or CLOSED are skipped
    /// and counted. At most 16 MiB; every value is checked (see docs/organizations.md).
    /// Example: --accounts-meta org.csv --ou Root/Workloads/Prod
    #[arg(long, global = true, env = "FANOUT_ACCOUNTS_META", value_name = "FILE")]
    pub accounts_meta: Option<PathBuf>,

    /// The same facts read from AWS Organizations, through this role in the management
    /// account (or a delegated administrator), reached through the same SSO login: its
    /// credentials are fetched from the portal, then ListRoots,
    /// ListOrganizationalUnitsForParent, ListAccountsForParent and ListTagsForResource
    /// give every account's OU path, tags and state. Kept in the inventory cache for
    /// --cache-ttl (--refresh reads it again). The role needs those four organizations:
    /// permissions; without them the run stops before any command. Not with
    /// --accounts-meta (a flag of either sets aside the other's default). Example: --org-role 111122223333:OrganizationsReadOnly --ou
    /// Root/Workloads/Prod
    #[arg(long, global = true, env = "FANOUT_ORG_ROLE", value_name = "ACCOUNT:ROLE")]
    pub org_role: Option<String>,

    /// Only accounts in this OU or any OU under it, by id (ou-ab12-34567890) or by its path
    /// of names from the root (Root/Workloads/Prod; names are case-sensitive); repeatable:
    /// any may hold the account. Needs --accounts-meta or --org-role. An OU no account is in is an
    /// error (a typo must not select nothing). An id is known where the file gives it
    /// (ou_id) for an account in that OU directly.
    #[arg(long, global = true, value_name = "OU-ID|PATH")]
    pub ou: Vec<String>,

    /// Leave out accounts in this OU or any OU under it, as for --ou (repeatable).
    #[arg(long, global = true, value_name = "OU-ID|PATH")]
    pub exclude_ou: Vec<String>,

    /// Only accounts with this tag: KEY=VALUE, where VALUE may be a glob (env=prod*,
    /// case-sensitive as AWS tags are), or KEY alone for any value; repeatable: all must
    /// match. Needs --accounts-meta or --org-role. Example: --tag env=prod --tag team
    #[arg(long, global = true, value_name = "KEY[=VALUE]")]
    pub tag: Vec<String>,

    /// Only shard I of N (1-based) of the selected accounts, to split one run across N
    /// machines (a CI matrix, a Kubernetes Indexed Job). Accounts are assigned by a hash
    /// of their id: the N shards are disjoint, together they are the whole selection,
    /// and a new account moves no other. Divides the default --portal-rps by N.
    #[arg(long, global = true, value_name = "I/N")]
    pub shard: Option<String>,
}

/// How to run the command.
#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "each is an independent on/off flag on the command line")]
pub struct RunArgs {
    /// The role to assume in each account, or a comma-separated fallback list: the first
    /// one the account has is used (--role ReadOnly,ViewOnly). Accounts with none of them
    /// are skipped and counted.
    #[arg(long, env = "FANOUT_ROLE", value_delimiter = ',', value_name = "ROLE,...")]
    pub role: Vec<String>,

    /// How many commands run at once: `auto` adapts it while the run goes, from the
    /// number of cores up while the children wait (on the network) and back down when
    /// they saturate the CPU, up to --max-concurrency (see docs/concurrency.md); a number
    /// (1 to 10000) keeps it fixed. Capped, with a warning, to what the open-file limit
    /// (ulimit -n) allows. At -j 1 commands start strictly in selection order (the order
    /// --dry-run prints), credentials still fetched ahead; at any other -j a command starts
    /// as its credentials arrive, so one throttled account holds back no other.
    #[arg(short = 'j', long, env = "FANOUT_CONCURRENCY", value_name = "N", default_value = "auto",
          value_parser = parse_jobs)]
    pub concurrency: Jobs,

    /// With `-j auto`: the most commands it may run at once (1 to 10000). Capped, too, to
    /// the open-file and process limits (ulimit -n, ulimit -u).
    #[arg(long, env = "FANOUT_MAX_CONCURRENCY", value_name = "N", default_value = "256",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_concurrency: u32,

    /// How many SSO portal calls are in flight at once (1 to 1024).
    #[arg(long, global = true, env = "FANOUT_PORTAL_CONCURRENCY", value_name = "N", default_value = "64",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub portal_concurrency: u32,

    /// Portal requests a second to start at [default: the rate the portal last sustained
    /// for this login (remembered beside the inventory cache, at most 400 and at most a
    /// week old), else 20; divided by N with --shard I/N]. Given, it overrides the
    /// remembered rate. fanout speeds up while the portal does not throttle and slows the
    /// whole client down at the first 429 (HTTP TooManyRequests), then probes back up.
    #[arg(long, global = true, env = "FANOUT_PORTAL_RPS", value_name = "RATE")]
    pub portal_rps: Option<f64>,

    /// Give up on the portal once it has throttled every call (HTTP 429) for this many
    /// seconds: the accounts not reached yet fail as `throttled`, and the run ends.
    #[arg(long, global = true, env = "FANOUT_THROTTLE_TIMEOUT", value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub throttle_timeout: u64,

    /// List roles from the portal again instead of using the ones cached by an earlier
    /// run. Accounts are always listed from the portal, cache or not; the cache only
    /// saves asking for roles (it holds names and roles, never credentials), and a skip
    /// it decided says so in the summary and the JSON result.
    #[arg(long, global = true)]
    pub refresh: bool,

    /// How long cached roles are used, in seconds (counted from when each account's roles
    /// were listed); 0 neither reads nor writes the inventory cache, nor remembers the
    /// portal rate.
    #[arg(long, global = true, env = "FANOUT_CACHE_TTL", value_name = "SECONDS", default_value_t = 3600)]
    pub cache_ttl: u64,

    /// AWS_REGION and AWS_DEFAULT_REGION for the commands. Default: the profile's region,
    /// else the sso-session's sso_region.
    #[arg(long, env = "FANOUT_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// Run the command once per account and region: a comma list (us-east-1,eu-west-1),
    /// or `enabled` for the regions each account has enabled (asked once per account
    /// through the Account API's ListRegions with its role's credentials; a role that
    /// may not call it gets the 17 regions enabled by default, with a warning; names
    /// that are not regions are refused, and an account runs in at most 64). Each
    /// child gets its region as AWS_REGION, AWS_DEFAULT_REGION and FANOUT_REGION and
    /// {region}; the default prefix becomes {account_id}/{region}. Credentials are
    /// fetched once per account; -j bounds all children. Not with --region. See
    /// docs/regions.md.
    #[arg(long, value_name = "REGIONS|enabled")]
    pub regions: Option<String>,

    /// What precedes `|` on each output line; takes the same placeholders as COMMAND.
    #[arg(long, env = "FANOUT_PREFIX", value_name = "TEMPLATE", default_value = "{account_id}")]
    pub prefix: String,

    /// `text`: each line as `prefix|line`, the summary on stderr. `json`: JSON lines on
    /// stdout, one per output line (with its account and stream), one per finished
    /// account (status, failure class, exit code, duration), and a final summary; the
    /// schema is in docs/json-output.md.
    #[arg(long = "output", env = "FANOUT_OUTPUT", value_enum, value_name = "FORMAT", default_value_t = RunOutput::Text)]
    pub run_output: RunOutput,

    #[command(flatten)]
    pub order: OrderArgs,

    /// Also write each account's raw stdout and stderr to DIR/<account_id>/stdout and
    /// DIR/<account_id>/stderr, and the JSON result and summary records (as --output json
    /// prints them) to DIR/results.jsonl, whatever is printed. DIR is created if missing
    /// and used if it exists: the files of an earlier run are replaced. Files are
    /// 0600 and directories 0700 (a command may print secrets). DIR must be your own,
    /// writable by no one else and not a symlink, or the run is refused (exit 2).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Stop a command that runs longer than DURATION (90s, 5m, 1h30m): its whole process
    /// group gets SIGTERM, then SIGKILL after --kill-after, and the account fails as
    /// `timeout`. Its output so far, last line included, is still printed. Default: no
    /// limit.
    #[arg(long, env = "FANOUT_TIMEOUT", value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// After --timeout's SIGTERM, how long the command's process group has to exit
    /// before it gets SIGKILL.
    #[arg(long, env = "FANOUT_KILL_AFTER", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub kill_after: Duration,

    /// Serve each command its account's credentials from a server on 127.0.0.1 (the
    /// container-credentials protocol every AWS SDK and the AWS CLI speak), renewed from
    /// the portal before they expire, instead of setting AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN: for commands that run longer than the
    /// role's session. Each command gets AWS_CONTAINER_CREDENTIALS_FULL_URI and a token of
    /// its own (AWS_CONTAINER_AUTHORIZATION_TOKEN) that reads only its account's
    /// credentials, and no AWS config or credentials file; see docs/child-environment.md.
    #[arg(long)]
    pub credential_server: bool,

    /// Fail the run (exit 1) if any account in scope was not reached: with --org-role or
    /// --accounts-meta, the scope is the accounts the organization lists that the
    /// filters draw in, and the summary names each one the run could not reach (not in
    /// the portal, suspended or closed, no role, credentials denied, never started).
    /// Without the flag the same coverage is reported and does not change the exit code.
    /// Needs --org-role or --accounts-meta. Example: --accounts-meta org.csv --ou
    /// Root/Workloads/Prod --require-all
    #[arg(long, env = "FANOUT_REQUIRE_ALL", value_parser = clap::builder::FalseyValueParser::new())]
    pub require_all: bool,

    /// Credentials fetched ahead of a command slot (while earlier commands run) that
    /// expire within DURATION when the slot frees are fetched again, once, before the
    /// command starts; AWS_CREDENTIAL_EXPIRATION is always the expiry of the credentials
    /// the command gets.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub expiry_margin: Duration,

    /// Print each selected account's role and command, placeholders filled (and its OU
    /// path and tags with --accounts-meta), and stop: no credentials are fetched and
    /// nothing is run.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: also write the resolved run to FILE as JSON (the login, and per
    /// account its id, name, role, region and exact argv) with a sha256 over it, for a
    /// reviewer to approve and `fanout apply FILE --approve SHA256` to run.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub save_plan: Option<PathBuf>,

    /// On a terminal, ask before running in more than N accounts (0: never ask). The
    /// prompt shows the count, a few account names, the role(s) and the command.
    /// Without a terminal on stdin and stderr (CI) fanout never asks.
    #[arg(long, env = "FANOUT_CONFIRM_ABOVE", value_name = "N", default_value_t = 10)]
    pub confirm_above: u32,

    /// Do not ask before a big run (see --confirm-above). Does not approve a plan: that
    /// is `apply --approve SHA256`.
    #[arg(short = 'y', long, env = "FANOUT_YES", action = ArgAction::SetTrue, value_parser = clap::builder::FalseyValueParser::new())]
    pub yes: bool,

    /// Run the command in the first N selected accounts first, wait for them, and stop
    /// before touching any other account (not even fetching its credentials) if one of
    /// them failed. Try a write on a few accounts before all of them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub canary: Option<u32>,

    /// The canary accounts, by id or name, instead of the first N (--canary-accounts
    /// sandbox-1,111122223333). As for --accounts, 12 digits match an id only; name: for
    /// a name of digits.
    #[arg(long, value_delimiter = ',', value_name = "ID|NAME,...", conflicts_with = "canary")]
    pub canary_accounts: Vec<String>,

    /// Stop starting accounts once N have failed, or N% of those selected (--max-failures
    /// 5, --max-failures 2%); commands already running finish. The summary counts the
    /// accounts never started.
    #[arg(long, env = "FANOUT_MAX_FAILURES", value_name = "N|N%")]
    pub max_failures: Option<String>,

    /// Stop starting accounts at the first failure (--max-failures 1). It sets aside a
    /// default --max-failures (FANOUT_MAX_FAILURES, the config file); with the flag itself it
    /// is an error.
    #[arg(long)]
    pub fail_fast: bool,

    /// Record every account as it ends in FILE: GNU parallel's joblog columns (Seq, Host,
    /// Starttime, JobRuntime, Send, Receive, Exitval, Signal, Command) plus AccountId,
    /// AccountName, Role, Status and Class, tab-separated. For --resume and
    /// --retry-failed. A log that cannot be written (a full disk) fails the run: exit 1,
    /// one error naming it, every account still run.
    #[arg(long, value_name = "FILE")]
    pub joblog: Option<PathBuf>,

    /// Append a Markdown summary to FILE when the run ends: the totals, then a table of
    /// the failed accounts with their class, error and last stderr line, in one O_APPEND
    /// write (the file is never copied or replaced; a symlink stays one). Meant for
    /// `--summary-markdown "$GITHUB_STEP_SUMMARY"`. The reports are described in
    /// docs/ci-reports.md.
    #[arg(long, value_name = "FILE")]
    pub summary_markdown: Option<PathBuf>,

    /// Write JUnit XML to FILE when the run ends: one test case per account, a failure
    /// (its class, error and the end of its stderr) per failed account, skipped for
    /// accounts without the role or never started. For CI test reports.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write a self-contained HTML page to FILE when the run ends: the totals, the portal
    /// throttles, and a timeline of each account (waiting for credentials, waiting for a
    /// command slot, running, its end). For a CI artifact.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    /// Run only the accounts the joblog FILE does not show as done (succeeded, failed or
    /// without the role): finish a run that was stopped. A torn last line (a write cut
    /// short by a full disk or a kill) is skipped with a warning, and its account runs.
    /// Appends to FILE when it is also the --joblog.
    #[arg(long, value_name = "FILE", conflicts_with = "retry_failed")]
    pub resume: Option<PathBuf>,

    /// Run again only the accounts that failed, were interrupted or never started in the
    /// joblog FILE, with its command and roles unless new ones are given. Appends to FILE
    /// when it is also the --joblog.
    #[arg(long, value_name = "FILE")]
    pub retry_failed: Option<PathBuf>,

    /// No progress bar, and no summary unless something failed (the exit code is not
    /// 0). Without it, a progress bar (done, failed and running accounts, rate, ETA) is
    /// drawn on stderr when stderr is a terminal and the output is not json; the
    /// commands' lines are printed above it, never cut by it.
    #[arg(short, long, env = "FANOUT_QUIET", value_parser = clap::builder::FalseyValueParser::new())]
    pub quiet: bool,
}

/// When each account's lines are printed.
#[derive(Debug, Args)]
pub struct OrderArgs {
    /// Hold each account's output and print it whole when the account ends, so its lines
    /// stay together (stdout and stderr lines keep their streams; with --output json its
    /// records stay together). Output past 1 MiB an account waits in a private temp file.
    #[arg(long, env = "FANOUT_GROUP", value_parser = clap::builder::FalseyValueParser::new())]
    pub group: bool,

    /// Like --group, and print the accounts in the order they were selected: a finished
    /// account waits until every account before it has been printed. The output is the
    /// same as a -j 1 run's.
    #[arg(long, env = "FANOUT_KEEP_ORDER", value_parser = clap::builder::FalseyValueParser::new())]
    pub keep_order: bool,
}

/// A duration as `humantime` reads it: `90s`, `5m`, `1h30m`, `500ms`.
/// `-j`: `auto`, or a fixed number of commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jobs {
    Auto,
    Fixed(u32),
}

fn parse_jobs(text: &str) -> Result<Jobs, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(Jobs::Auto);
    }
    match text.parse::<u32>() {
        Ok(n @ 1..=10_000) => Ok(Jobs::Fixed(n)),
        _ => {
            Err("expected `auto` or a number from 1 to 10000 (-j auto adapts to the machine and the children)"
                .to_owned())
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("not a duration ({error}); write one such as 90s, 5m or 1h30m"))
}

/// A duration longer than zero: a zero timeout would stop every command at its start.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("a timeout must be longer than zero".to_owned()),
        duration => Ok(duration),
    }
}
