"""The pieces benches/driver.py is built from: the fanout builds measured, timing a command
with its CPU and memory, the loopback servers (the project's fake portal, moto), the
per-account buckets and profiles, output checks, and markdown.

Nothing here knows which rows a table has; driver.py does. Every process started here is
stopped by the ExitStack that started it, so an interrupted run leaves nothing behind.
Standard library only; boto3 is imported where a helper needs it (the moto tables).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What `fake-portal --home` writes: an sso-session `corp` and a profile `corp` using it.
SESSION = "corp"
START_URL = "https://corp.awsapps.com/start"
ROLE = "ReadOnly"
REGION = "us-east-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the builds measured ------------------------------------------------------------------


@dataclass
class Build:
    """One fanout binary, copied aside so that a concurrent rebuild cannot swap it mid-run."""

    label: str  # how tables name it: "fanout", or A, B, … when builds are compared
    source: str  # the path it was given as
    path: str  # the private copy that runs
    help: str  # its --help, to ask which flags it has

    @property
    def debug(self) -> bool:
        return "/debug/" in os.path.realpath(self.source)

    def has(self, flag: str) -> bool:
        return flag in self.help

    def version(self) -> str:
        v = subprocess.run([self.path, "--version"], capture_output=True, text=True).stdout.strip()
        build = "debug build: a trial, not figures" if self.debug else "release build"
        return f"{v or 'fanout ?'} ({self.source}; {build})"


def copy_build(label: str, source: str, scratch: Path) -> Build:
    if not os.access(source, os.X_OK):
        raise SystemExit(f"driver: no fanout binary at {source}")
    path = scratch / f"fanout-{label}"
    shutil.copy(source, path)
    text = subprocess.run([str(path), "--help"], capture_output=True, text=True).stdout
    return Build(label, source, str(path), text)


def cargo_build(package: str, binary: str) -> str:
    """target/release/BINARY, built with cargo (a figure needs a release build)."""
    log(f"cargo build --release --locked -p {package}")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", package], cwd=ROOT, check=True)
    return str(ROOT / "target/release" / binary)


# --- timing -------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of one command."""

    wall: float  # seconds, from spawn to exit
    cpu: float  # user+sys of the command and every descendant it waited for (wait4)
    own_cpu: float  # user+sys of the command's own process alone (its /proc stat as it exits)
    maxrss_mb: float  # the largest resident set of the command or any one child (wait4)
    rc: int
    out: str
    err: str
    calls: int = 0  # portal calls answered during the run, when the caller counts them
    servers_cpu: dict[str, float] = field(default_factory=dict)  # CPU the servers used meanwhile

    def tail(self) -> str:
        """The last line of stderr, for a log line when the run failed."""
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""

    def summary(self) -> tuple[str, str, str]:
        """fanout's `N succeeded, N failed, N skipped` (the last one it printed), or `?`s."""
        found = re.findall(r"(\d+) succeeded, (\d+) failed, (\d+) skipped", self.err)
        return found[-1] if found else ("?", "?", "?")


def timed(argv: list[str], env: dict[str, str], timeout: float, cwd: str | None = None,
          discard_stdout: bool = False) -> Run:
    """Run argv and measure it. Output goes to temp files (or /dev/null), not pipes, so a
    command that writes a lot never blocks on a reader and the reading costs no CPU while
    it runs.

    own_cpu is read from /proc while the process is a zombie (waitid WNOWAIT), before
    wait4 reaps it: that is the only moment both its own and its children's CPU exist."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL if discard_stdout else out, stderr=err,
                                start_new_session=True)
        # A run past its timeout loses its whole process group (it leads a session of its own).
        timer = threading.Timer(timeout, _kill_group, (proc.pid, argv, timeout))
        timer.start()
        try:
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(stat[11]) + int(stat[12])) / CLK_TCK
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_utime + usage.ru_stime, own, usage.ru_maxrss / 1024, proc.returncode,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def _kill_group(pgid: int, argv: list[str], timeout: float) -> None:
    log(f"timeout after {timeout:.0f} s, killing: {shlex.join(argv)[:200]}")
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def proc_cpu(pid: int) -> float | None:
    """user+sys seconds so far of a running process and the children it reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(x) for x in stat[11:15]) / CLK_TCK


@dataclass
class Series:
    """Every run of one row, kept so a table can show the best and all of them."""

    runs: list[Run] = field(default_factory=list)

    def best(self) -> Run | None:
        return min(self.runs, key=lambda r: r.wall) if self.runs else None

    def least(self, what: str) -> float | None:
        """The least of one figure over the runs (a busy moment only ever raises it)."""
        return min(getattr(r, what) for r in self.runs) if self.runs else None

    def walls(self) -> str:
        return ", ".join(f"{r.wall:.2f}" for r in self.runs)


# --- servers ------------------------------------------------------------------------------


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen, what: str) -> str:
    """The first match of pattern in a server's output file, waiting up to 30 s."""
    for _ in range(300):
        found = re.search(pattern, path.read_text(errors="replace")) if path.exists() else None
        if found:
            return found.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"bench: {what} did not start: {path.read_text(errors='replace')[-500:]}")


def _spawn(stack: ExitStack, argv: list[str], out: Path, env: dict[str, str]) -> tuple[subprocess.Popen, ExitStack]:
    """A background server, stopped (and reaped) when `stack` closes, or earlier by closing
    the stack it returns."""
    fh = out.open("w")
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        fh.close()

    own = ExitStack()
    own.callback(stop)
    stack.push(own)
    return proc, own


@dataclass
class Moto:
    url: str
    pid: int


def start_moto(stack: ExitStack, scratch: Path, base_env: dict[str, str]) -> Moto:
    """A moto server on loopback."""
    out = scratch / "moto.out"
    proc, _ = _spawn(stack, [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", "0"],
                     out, base_env)
    return Moto(_wait_for(out, r"(http://127\.0\.0\.1:\d+)", proc, "moto_server"), proc.pid)


@dataclass
class Portal:
    """The project's fake portal and a HOME logged in to it (what `aws sso login` leaves)."""

    port: int
    pid: int
    home: Path
    cache: Path  # XDG_CACHE_HOME for fanout: its inventory cache (and remembered rate) live here
    accounts: list[dict]  # what it serves: accountId, accountName, emailAddress, roles
    stop: ExitStack

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as resp:
            return json.load(resp)

    def calls(self) -> int:
        s = self.stats()
        return s.get("ListAccounts", 0) + s.get("ListAccountRoles", 0) + s.get("GetRoleCredentials", 0)

    def holders(self) -> list[str]:
        """The ids of the accounts holding ROLE."""
        return [a["accountId"] for a in self.accounts if ROLE in a["roles"]]

    def env(self, base_env: dict[str, str]) -> dict[str, str]:
        """The environment every runner gets against this portal."""
        return dict(base_env, HOME=str(self.home), AWS_CONFIG_FILE=str(self.home / ".aws/config"),
                    AWS_ENDPOINT_URL_SSO=self.url, XDG_CACHE_HOME=str(self.cache))


def start_portal(stack: ExitStack, binary: str, scratch: Path, name: str, accounts: int, latency_ms: int,
                 base_env: dict[str, str], rps: float = 0, sts: str | None = None,
                 default_page: int | None = None, accounts_file: Path | None = None) -> Portal:
    """`fake-portal` with `accounts` generated accounts, a fresh HOME and an empty fanout
    cache. rps: its rate limit (429 past it); sts: a moto URL minting each account's keys;
    default_page: the page it serves a call that asks for none (boto3's paginator);
    accounts_file: the accounts to serve instead (as --dump-accounts prints them)."""
    listing = ["--accounts-file", str(accounts_file)] if accounts_file else ["--accounts", str(accounts)]
    argv = [binary, "--port", "0", *listing, "--latency-ms", str(latency_ms)]
    if rps:
        argv += ["--rps", str(rps)]
    if sts:
        argv += ["--sts-endpoint", sts]
    if default_page:
        argv += ["--default-page-size", str(default_page)]
    home, cache = scratch / f"{name}-home", scratch / f"{name}-cache"
    for d in (home, cache):
        shutil.rmtree(d, ignore_errors=True)
    cache.mkdir(parents=True)
    out = scratch / f"{name}-portal.out"
    proc, own = _spawn(stack, [*argv, "--home", str(home)], out, base_env)
    port = int(_wait_for(out, r"PORT (\d+)", proc, "fake-portal"))
    dump = subprocess.run([binary, *listing, "--dump-accounts"], check=True,
                          capture_output=True, text=True).stdout
    return Portal(port, proc.pid, home, cache, json.loads(dump), own)


def portal_binary(given: str | None) -> str:
    """fake-portal: --portal, else $FAKE_PORTAL_BIN, else a release build of it."""
    path = given or os.environ.get("FAKE_PORTAL_BIN") or cargo_build("fake-portal", "fake-portal")
    if not os.access(path, os.X_OK):
        raise SystemExit(f"driver: no fake-portal binary at {path} (cargo build --release --locked -p fake-portal)")
    return path


# --- moto: buckets and one account's keys -------------------------------------------------


def account_keys(moto: str, account_id: str) -> dict[str, str]:
    """Keys for one account, minted by moto's STS as `fake-portal --sts-endpoint` mints them."""
    import boto3  # noqa: PLC0415  (only the moto tables need boto3)

    sts = boto3.client("sts", endpoint_url=moto, region_name=REGION,
                       aws_access_key_id="AKIABENCHSETUP", aws_secret_access_key="x")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE}",
                            RoleSessionName="bench-setup")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}


def make_buckets(moto: str, account_ids: list[str], most: int) -> dict[str, list[str]]:
    """1 to `most` buckets in each account (the i-th account gets 1 + i % most), created
    in-process with that account's own keys. Returns each account's bucket names."""
    import boto3  # noqa: PLC0415

    made = {}
    for i, account_id in enumerate(account_ids):
        keys = account_keys(moto, account_id)
        s3 = boto3.client("s3", endpoint_url=moto, region_name=REGION,
                          aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
                          aws_session_token=keys["AWS_SESSION_TOKEN"])
        made[account_id] = [f"b-{account_id}-{k}" for k in range(1 + i % most)]
        for name in made[account_id]:
            s3.create_bucket(Bucket=name)
    return made


def make_organization(moto: str, accounts: int, top: int, per_top: int) -> dict:
    """An organization in moto: `top` OUs under the root (`T0`, `T1`, …), each with
    `per_top` OUs under it (`T0/S0`, …), and `accounts` tagged member accounts spread over
    the lower OUs. Returns {"management": id, "accounts": [(id, name, ou_path)]}."""
    import boto3  # noqa: PLC0415

    org = boto3.client("organizations", endpoint_url=moto, region_name="us-east-1",
                       aws_access_key_id="AKIABENCHSETUP", aws_secret_access_key="x")
    management = org.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
    root = org.list_roots()["Roots"][0]["Id"]
    lower = []
    for t in range(top):
        upper = org.create_organizational_unit(ParentId=root, Name=f"T{t}")["OrganizationalUnit"]["Id"]
        for k in range(per_top):
            ou = org.create_organizational_unit(ParentId=upper, Name=f"S{k}")["OrganizationalUnit"]["Id"]
            lower.append((ou, f"Root/T{t}/S{k}"))
    made = []
    for i in range(accounts):
        name = f"org-{i:05d}"
        tags = [{"Key": "env", "Value": ("prod", "dev", "test")[i % 3]}, {"Key": "team", "Value": f"team{i % 7}"}]
        account_id = org.create_account(AccountName=name, Email=f"{name}@example.com",
                                        Tags=tags)["CreateAccountStatus"]["AccountId"]
        ou, path = lower[i % len(lower)]
        org.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=ou)
        made.append((account_id, name, path))
    return {"management": management, "accounts": made}


# --- per-account SSO profiles for the peers ----------------------------------------------


def profile_home(portal: Portal, dest: Path) -> Path:
    """A copy of the portal's HOME for aws-sso-util to populate. Its profiles are the legacy
    form (sso_start_url), whose token cache botocore names sha1 of the start URL, not of the
    session: the login is copied under that name too, as `aws sso login` on such a profile
    would have written it."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(portal.home, dest)
    cache = dest / ".aws/sso/cache"
    session_file = cache / (hashlib.sha1(SESSION.encode()).hexdigest() + ".json")
    shutil.copy(session_file, cache / (hashlib.sha1(START_URL.encode()).hexdigest() + ".json"))
    return dest


def written_profiles(portal: Portal, dest: Path, account_ids: list[str]) -> list[str]:
    """A copy of the portal's HOME with one `[profile acct-<id>]` (sso_session form) per
    account, as a user scripting `aws --profile` over accounts writes them by hand."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(portal.home, dest)
    with (dest / ".aws/config").open("a") as config:
        for account_id in account_ids:
            config.write(f"\n[profile acct-{account_id}]\nsso_session = {SESSION}\nsso_account_id = {account_id}\n"
                         f"sso_role_name = {ROLE}\nregion = {REGION}\n")
    return [f"acct-{a}" for a in account_ids]


def populated_profiles(config: Path) -> list[str]:
    """The profile names in config that aws-sso-util populated and that hold ROLE."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config)
    return sorted(s.removeprefix("profile ") for s in parser.sections()
                  if s.startswith("profile ") and parser[s].get("sso_role_name") == ROLE
                  and parser[s].get("sso_auto_populated") == "true")


# --- output checks ------------------------------------------------------------------------


def lines_check(got: list[str], want: list[str]) -> tuple[bool, str]:
    """Compare `account|bucket` lines as multisets: order may differ, nothing else may."""
    got_sorted, want_sorted = sorted(got), sorted(want)
    if got_sorted == want_sorted:
        return True, f"equal ({len(want)} lines)"
    missing = len(set(want) - set(got))
    extra = len(set(got) - set(want))
    dups = len(got) - len(set(got))
    return False, f"**differ**: {missing} missing, {extra} extra, {dups} duplicated (of {len(want)})"


# --- markdown and the report's header -------------------------------------------------------


def table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """A markdown table; columns in `right` are right-aligned (numbers)."""
    right = right or set()
    align = ["---:" if i in right else "---" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "–" if x is None else format(x, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def exact_command() -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items())
                   if k in ("FANOUT_BIN", "FAKE_PORTAL_BIN"))
    return (env + " " if env else "") + shlex.join(["python3", "benches/driver.py", *sys.argv[1:]])


def machine(cores: int) -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split()[1]
    return (f"{cores} cores usable ({os.cpu_count()} in the machine), {model}, {int(mem) // 1048576} GiB RAM, "
            f"Linux {platform.release()}")


def git_rev() -> str:
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--"]).returncode != 0
    return rev + (" + uncommitted changes" if dirty else "")
