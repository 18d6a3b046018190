"""The pieces benches/driver.py is built from: timing a command with its CPU, the loopback
servers (moto and the harness portal), the per-account buckets, and markdown tables.

Nothing here knows which rows a table has; driver.py does. Every process started here is
stopped by the ExitStack that started it, so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
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

START_URL = "https://harness-portal.awsapps.com/start#/"  # what make_home.py writes
ROLE = "ReadOnly"
REGION = "us-east-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- timing -----------------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of one command."""

    wall: float  # seconds, from spawn to exit
    cpu: float  # user+sys of the command and every descendant it waited for (wait4)
    own_cpu: float  # user+sys of the command's own process alone (its /proc stat as it exits)
    rc: int
    out: str
    err: str
    calls: int = 0  # portal calls answered during the run, when the caller counts them

    def tail(self) -> str:
        """The last line of stderr, for a log line when the run failed."""
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""


def timed(argv: list[str], env: dict[str, str], timeout: float, cwd: str | None = None) -> Run:
    """Run argv and measure it. Output goes to temp files, not pipes, so a command that
    writes a lot never blocks on a reader and the reading costs no CPU while it runs.

    own_cpu is read from /proc while the process is a zombie (waitid WNOWAIT), before
    wait4 reaps it: that is the only moment both its own and its children's CPU exist."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
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
        return Run(wall, usage.ru_utime + usage.ru_stime, own, proc.returncode,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def _kill_group(pgid: int, argv: list[str], timeout: float) -> None:
    log(f"timeout after {timeout:.0f} s, killing: {shlex.join(argv)[:200]}")
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Series:
    """Every run of one row, kept so a table can show the best and all of them."""

    runs: list[Run] = field(default_factory=list)

    def best(self) -> Run | None:
        return min(self.runs, key=lambda r: r.wall) if self.runs else None

    def walls(self) -> str:
        return ", ".join(f"{r.wall:.2f}" for r in self.runs)


# --- servers ----------------------------------------------------------------------------


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


def _spawn(stack: ExitStack, argv: list[str], out: Path, env: dict[str, str]) -> subprocess.Popen:
    """A background server, stopped (and reaped) when the stack closes."""
    fh = out.open("w")
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        fh.close()

    stack.callback(stop)
    return proc


def start_moto(stack: ExitStack, scratch: Path, base_env: dict[str, str]) -> str:
    """A moto server on loopback; returns its URL."""
    out = scratch / "moto.out"
    proc = _spawn(stack, [shutil.which("moto_server") or "moto_server", "-H", "127.0.0.1", "-p", "0"],
                  out, base_env)
    return _wait_for(out, r"(http://127\.0\.0\.1:\d+)", proc, "moto_server")


@dataclass
class Portal:
    """The harness portal and a HOME logged in to it (what `aws sso login` leaves)."""

    port: int
    home: Path
    cache: Path  # XDG_CACHE_HOME for fanout: its inventory cache (and remembered rate) live here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as resp:
            return json.load(resp)

    def calls(self) -> int:
        s = self.stats()
        return s.get("ListAccounts", 0) + s.get("ListAccountRoles", 0) + s.get("GetRoleCredentials", 0)

    def env(self, base_env: dict[str, str]) -> dict[str, str]:
        """The environment every runner gets against this portal."""
        return dict(base_env, HOME=str(self.home), AWS_CONFIG_FILE=str(self.home / ".aws/config"),
                    AWS_ENDPOINT_URL_SSO=self.url, XDG_CACHE_HOME=str(self.cache))


def start_portal(stack: ExitStack, harness: Path, scratch: Path, name: str, accounts: int,
                 latency_ms: int, base_env: dict[str, str], moto: str | None = None) -> Portal:
    """sso_portal.py with `accounts` accounts, pages of up to 100 (what the real portal
    serves when asked; the harness caps every page, the seed script's too, at this size)."""
    argv = [sys.executable, str(harness / "sso_portal.py"), "--port", "0", "--accounts", str(accounts),
            "--latency-ms", str(latency_ms), "--page-size", "100"]
    if moto:
        argv += ["--moto", moto]
    out = scratch / f"{name}-portal.out"
    proc = _spawn(stack, argv, out, base_env)
    port = int(_wait_for(out, r"PORT (\d+)", proc, "the harness portal"))
    home = scratch / f"{name}-home"
    subprocess.run([sys.executable, str(harness / "make_home.py"), str(home), str(port)], check=True,
                   stdout=subprocess.DEVNULL)
    cache = scratch / f"{name}-cache"
    cache.mkdir()
    return Portal(port, home, cache)


def harness_accounts(harness: Path, accounts: int) -> list[dict]:
    """The accounts the harness portal serves (its own generated list, same seed)."""
    dump = subprocess.run([sys.executable, str(harness / "sso_portal.py"), "--accounts", str(accounts),
                           "--dump-accounts"], check=True, capture_output=True, text=True).stdout
    return json.loads(dump)


def role_holders(harness: Path, accounts: int) -> list[str]:
    """The ids of the accounts holding ROLE."""
    return [a["accountId"] for a in harness_accounts(harness, accounts) if ROLE in a["roles"]]


# --- moto: buckets and one account's keys -------------------------------------------------


def account_keys(moto: str, account_id: str) -> dict[str, str]:
    """Keys for one account, minted by moto's STS as the harness portal mints them."""
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
    session_file = cache / (hashlib.sha1(b"harness").hexdigest() + ".json")
    shutil.copy(session_file, cache / (hashlib.sha1(START_URL.encode()).hexdigest() + ".json"))
    return dest


def populated_profiles(config: Path) -> list[str]:
    """The profile names in config that hold ROLE, as a user would pick them."""
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


# --- markdown -----------------------------------------------------------------------------


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
