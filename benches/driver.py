#!/usr/bin/env python3
"""fanout's benchmark driver for the tables of issues 8 and 9, run by hand (never by CI).

    FANOUT_BIN=target/release/fanout python3 benches/driver.py [--doc]

Everything runs on 127.0.0.1: a moto server and the harness portal (../shared/harness,
`sso_portal.py`, 30 ms a call). Four tables, each printed as markdown on stdout (and with
--doc appended to docs/benchmarks.md with the date, machine and this exact command):

  article  issue 8: the article's own job, listing every account's S3 buckets (100 accounts,
           84 with the role): (a) the seed script, serial; (b) fanout running `aws s3api
           list-buckets`; (c) `fanout credentials --format jsonl | benches/consumer.py`.
  peers    issue 9 point 4: the same job by fanout (default and -j cores), GNU parallel
           (-j 16 and -j cores) and awsrun over per-account profiles that `aws-sso-util
           configure populate` writes (timed apart), and the seed script; the child-CPU floor.
  net      a child that waits on the network, `sh -c 'sleep 0.5; echo done'`, 300 accounts:
           fanout's default against -j 16, and the floor.
  true     child `true`, 400 accounts, against the seed script: a cold run, --refresh, and a
           cached inventory; fanout's own CPU per account.

article and peers share their runs: each runner runs --rounds times, every other round in
reverse order, and a row shows its fastest run and lists all. Every run of every row has its
`account|bucket` lines checked against the buckets that were made. A last table checks the
targets of both issues. Needs: python3 with boto3 and moto[server], the AWS CLI, GNU
parallel, and `pip install 'awsrun[aws]' aws-sso-util` (found on PATH or in --peers-bin);
a row whose tool is missing is reported as skipped. Real figures need a release build.
"""

from __future__ import annotations

import argparse
import configparser
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import benchkit as bk
from benchkit import ROLE, REGION, Run, Series, fmt, log, table, verdict

ROOT = Path(__file__).resolve().parent.parent
LIST_BUCKETS = ["s3api", "list-buckets", "--query", "Buckets[].[Name]", "--output", "text"]
SLEEP_CHILD = ["sh", "-c", "sleep 0.5; echo done"]
DEFAULT_MAX_CONCURRENCY = 256  # issue 9's --max-concurrency default, when the binary has none


def stated(n: int, size: int) -> str:
    """A note on a target measured at another size than the one it is stated for (a trial)."""
    return "" if n == size else f" (stated for {size} accounts; this run had {n})"


# --- what the run needs -------------------------------------------------------------------


@dataclass
class Tools:
    fanout: str
    fanout_debug: bool
    has_credentials: bool  # does this fanout have the `credentials` subcommand (issue 8)?
    max_concurrency: int
    aws: str | None
    parallel: str | None
    awsrun: str | None
    sso_util: str | None
    harness: Path
    seed: Path
    cores: int
    base_env: dict[str, str]


def real_path(exe: str | None) -> str | None:
    """The program behind a pyenv shim: a shim costs a bash and a `pyenv exec` per start,
    which would be charged to every `aws` child."""
    if exe and "/.pyenv/shims/" in exe:
        name = os.path.basename(exe)
        found = subprocess.run(["pyenv", "which", name], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.strip()
    return exe


def find_peer(name: str, peers_bin: Path) -> str | None:
    candidate = peers_bin / name
    return shutil.which(name) or (str(candidate) if candidate.exists() else None)


def help_default(help_text: str, flag: str) -> int | None:
    """The `[default: N]` of one option in fanout's --help, if it has one."""
    m = re.search(re.escape(flag) + r"\b(.*?)(?=\n\s{2,}-|\Z)", help_text, re.S)
    d = re.search(r"\[default: (\d+)\]", m.group(1)) if m else None
    return int(d.group(1)) if d else None


def require_moto_tools() -> None:
    """The S3 tables cannot run at all without boto3 (buckets, the seed script) and moto."""
    missing = [what for what, ok in (("boto3", _importable("boto3")), ("moto[server]", shutil.which("moto_server")))
               if not ok]
    if missing:
        raise SystemExit(f"driver: the article and peers tables need {' and '.join(missing)}: "
                         "pip install boto3 'moto[server]' (or --tables net,true)")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def fanout_binary(args: argparse.Namespace) -> str:
    if args.fanout:
        return args.fanout
    log("no FANOUT_BIN: cargo build --release --locked -p fanout")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "fanout"], cwd=ROOT, check=True)
    return str(ROOT / "target/release/fanout")


def find_tools(args: argparse.Namespace, scratch: Path) -> Tools:
    src = fanout_binary(args)
    fanout = str(scratch / "fanout")  # a private copy: a concurrent rebuild cannot swap it mid-run
    shutil.copy(src, fanout)
    help_text = subprocess.run([fanout, "--help"], capture_output=True, text=True).stdout
    has_credentials = subprocess.run([fanout, "credentials", "--help"], capture_output=True).returncode == 0
    aws = real_path(shutil.which("aws"))
    # Nothing from the caller's AWS or fanout setup may reach a runner.
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "FANOUT_")) and k not in ("XDG_CACHE_HOME", "AWSRUN_CONFIG")}
    if aws:
        base_env["PATH"] = os.path.dirname(aws) + os.pathsep + base_env.get("PATH", "")
    base_env["AWS_DEFAULT_REGION"] = REGION
    peers_bin = Path(args.peers_bin).expanduser()
    return Tools(
        fanout=fanout,
        fanout_debug="/debug/" in os.path.realpath(src),
        has_credentials=has_credentials,
        max_concurrency=help_default(help_text, "--max-concurrency") or DEFAULT_MAX_CONCURRENCY,
        aws=aws,
        parallel=shutil.which("parallel"),
        awsrun=find_peer("awsrun", peers_bin),
        sso_util=find_peer("aws-sso-util", peers_bin),
        harness=Path(args.harness).resolve(),
        seed=Path(args.seed).resolve(),
        cores=len(os.sched_getaffinity(0)),
        base_env=base_env,
    )


# --- runners --------------------------------------------------------------------------------


@dataclass
class Runner:
    """One row: how to run it, and how to read `account|bucket` lines from its output."""

    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    lines: Callable[[str], list[str]] = lambda out: out.splitlines()
    skip: str | None = None  # why the row cannot run here
    series: Series = field(default_factory=Series)
    checks: list[tuple[bool, str]] = field(default_factory=list)

    def check(self) -> str:
        """Every run's lines must match; the first run that did not is the one shown."""
        if self.skip:
            return "–"
        bad = [c for c in self.checks if not c[0]]
        return (bad or self.checks or [(False, "no run")])[0][1]

    def all_equal(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks)


def run_once(runner: Runner, portal: bk.Portal, timeout: float, want: list[str] | None,
             cwd: str | None = None) -> Run:
    before = portal.calls()
    run = bk.timed(runner.argv, runner.env, timeout, cwd=cwd)
    run.calls = portal.calls() - before
    runner.series.runs.append(run)
    if want is not None:
        runner.checks.append(bk.lines_check(runner.lines(run.out), want))
    log(f"{runner.key}: {run.wall:.2f} s, CPU {run.cpu:.2f} s (own {run.own_cpu:.2f} s), exit {run.rc}, "
        f"{run.calls} portal calls{'' if run.rc == 0 else ': ' + run.tail()}")
    return run


def rounds(runners: list[Runner], n: int, between: Callable[[Runner], None], once: Callable[[Runner], None]) -> None:
    """n rounds of every runner, every other round in reverse order, so that a drift in the
    machine's load does not favour whichever runs last."""
    live = [r for r in runners if not r.skip]
    for i in range(n):
        for runner in live if i % 2 == 0 else list(reversed(live)):
            once(runner)
            between(runner)


def profile_lines(profile_to_id: dict[str, str], pattern: str) -> Callable[[str], list[str]]:
    """Lines `<profile><sep><bucket>` (GNU parallel --tag, awsrun's annotation) as
    `account|bucket`; a line that does not parse is kept as it is, and so fails the check."""
    rx = re.compile(pattern)

    def parse(out: str) -> list[str]:
        result = []
        for line in out.splitlines():
            m = rx.match(line)
            result.append(f"{profile_to_id.get(m.group(1), m.group(1))}|{m.group(2)}" if m else line)
        return result

    return parse


# --- tables: article and peers (one moto, one portal, shared runs) ---------------------------


def moto_tables(t: Tools, args: argparse.Namespace, stack: ExitStack, scratch: Path,
                which: set[str]) -> tuple[list[str], list[list[str]]]:
    n = args.accounts
    moto = bk.start_moto(stack, scratch, t.base_env)
    portal = bk.start_portal(stack, t.harness, scratch, "s3", n, args.latency_ms, t.base_env, moto)
    holders = bk.role_holders(t.harness, n)
    log(f"moto at {moto}, portal at {portal.url}: {n} accounts, {len(holders)} with {ROLE}; making buckets")
    buckets = bk.make_buckets(moto, [a["accountId"] for a in bk.harness_accounts(t.harness, n)], args.buckets)
    want = [f"{a}|{b}" for a in holders for b in buckets[a]]
    env = dict(portal.env(t.base_env), AWS_ENDPOINT_URL_S3=moto)
    timeout = args.timeout

    # Untimed: fanout's inventory cache is filled once, so every fanout row below finds it
    # warm, as a user's second run within the hour does.
    bk.timed([t.fanout, "--role", ROLE, "--", "true"], env, timeout)

    seed = Runner("seed", "the article's seed script, serial (RUN_LIST_BUCKETS=1)",
                  [sys.executable, str(t.seed)],
                  dict(env, ROLE_NAME=ROLE, OUTPUT_FILE=str(scratch / "seed-creds.json"), RUN_LIST_BUCKETS="1"))
    aws_missing = None if t.aws else "the AWS CLI is not installed (pip install awscli)"
    fan = Runner("fanout", f"`fanout --role {ROLE} -- aws {' '.join(LIST_BUCKETS)}` (its default -j)",
                 [t.fanout, "--role", ROLE, "--", "aws", *LIST_BUCKETS], env, skip=aws_missing)
    fan_j = Runner("fanout-j", f"fanout -j {t.cores} (the cores), same command",
                   [t.fanout, "--role", ROLE, "-j", str(t.cores), "--", "aws", *LIST_BUCKETS], env, skip=aws_missing)
    pipeline = (f"{shlex.quote(t.fanout)} credentials --role {ROLE} --format jsonl | "
                f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'benches/consumer.py'))} --role {ROLE}")
    creds = Runner("credentials", f"`fanout credentials --role {ROLE} --format jsonl \\| python3 benches/consumer.py`",
                   ["bash", "-o", "pipefail", "-c", pipeline], env,
                   skip=None if t.has_credentials else "fanout has no `credentials` subcommand")

    runners = [seed, fan, creds] if "article" in which else [seed, fan]
    populate = Series()
    if "peers" in which:
        runners.insert(2, fan_j)
        peer_runners, populate = _peers(t, args, portal, env, scratch)
        runners += peer_runners
    # The child-CPU floor: one `aws s3api list-buckets` alone, keys in its environment as
    # fanout runs it. Its CPU is the least of many lone runs (3 first, one after each timed
    # run, 3 last): a busy moment only ever raises it.
    lone = Series()
    lone_env = dict(env, **bk.account_keys(moto, holders[0]))

    def sample(_: Runner | None = None) -> None:
        if t.aws:
            lone.runs.append(bk.timed(["aws", *LIST_BUCKETS], lone_env, timeout))

    for _ in range(3):
        sample()
    rounds(runners, args.rounds, sample, lambda r: run_once(r, portal, timeout, want, cwd=str(scratch)))
    for _ in range(3):
        sample()
    for r in runners:
        if not r.skip and not r.all_equal():
            log(f"{r.key}: its lines differ from the buckets made: {r.check()}")

    sections, targets = [], []
    context = (f"Harness portal (`sso_portal.py --moto`, {args.latency_ms} ms a call, pages of 100) on loopback, "
               f"moto server on loopback; {n} accounts, {len(holders)} with {ROLE}; 1 to {args.buckets} "
               f"buckets in each account ({len(want)} `account|bucket` lines expected). "
               f"{t.cores} cores. Rounds: {args.rounds}, every other one in reverse order; "
               "wall is its fastest run, and every run is listed. CPU = user+sys of the runner and all its "
               "children; own = the runner's process alone. fanout's inventory cache is warm.")
    lone_best = min(lone.runs, key=lambda r: r.cpu) if lone.runs else None
    floor = len(holders) * lone_best.cpu / t.cores if lone_best else None
    floor_row = [f"**child-CPU floor**: {len(holders)} `aws` processes × {fmt(lone_best.cpu if lone_best else None)} s "
                 f"(one alone, keys in its environment, least CPU of {len(lone.runs)} lone runs) / {t.cores} cores",
                 fmt(floor)]
    if "article" in which:
        sections.append(_article_table(seed, fan, creds, floor_row, floor, context))
        a, c = seed.series.best(), creds.series.best()
        ratio = a.wall / c.wall if a and c and creds.all_equal() else None
        targets.append(["issue 8: (c) `fanout credentials \\| consumer.py` ≥ 4× faster than (a) the seed script, "
                        "same lines" + stated(n, 100), f"{fmt(ratio, '.1f')}×" if ratio else creds.skip or "–",
                        verdict(None if ratio is None else ratio >= 4)])
    if "peers" in which:
        sections.append(_peers_table(runners, populate, lone_best, floor_row, floor, context))
        targets += [[what + stated(n, 100), *rest] for what, *rest in _peers_targets(fan, runners, floor, t.cores)]
    return sections, targets


def _peers(t: Tools, args: argparse.Namespace, portal: bk.Portal, env: dict[str, str],
           scratch: Path) -> tuple[list[Runner], Series]:
    """The GNU parallel and awsrun rows, over the profiles aws-sso-util writes (timed apart,
    each round into a fresh copy of the login's HOME)."""
    populate = Series()
    skip = None if t.sso_util else "aws-sso-util is not installed (pip install aws-sso-util)"
    phome = scratch / "profiles-home"
    populate_argv = [t.sso_util or "aws-sso-util", "configure", "populate", "--sso-start-url", bk.START_URL,
                     "--sso-region", REGION, "--region", REGION, "--components", "account_id,role_name",
                     # The SDK's own SSO provider fetches the credentials either way (it comes
                     # before credential_process); without it the profiles carry no dead line.
                     "--no-credential-process"]
    profiles: list[str] = []
    profile_to_id: dict[str, str] = {}
    if not skip:
        for _ in range(args.rounds):
            bk.profile_home(portal, phome)
            penv = dict(env, HOME=str(phome), AWS_CONFIG_FILE=str(phome / ".aws/config"))
            run = bk.timed(populate_argv, penv, args.timeout)
            populate.runs.append(run)
            log(f"aws-sso-util configure populate: {run.wall:.2f} s, exit {run.rc}")
            if run.rc != 0:
                skip = f"`aws-sso-util configure populate` failed against the harness portal: {run.tail()}"
                break
        if not skip:
            profiles = bk.populated_profiles(phome / ".aws/config")
            cfg = configparser.ConfigParser(interpolation=None)
            cfg.read(phome / ".aws/config")
            profile_to_id = {p: cfg[f"profile {p}"]["sso_account_id"] for p in profiles}
            if not profiles:
                skip = f"`aws-sso-util configure populate` wrote no {ROLE} profile"
    profile_list = scratch / "profiles.txt"
    profile_list.write_text("".join(p + "\n" for p in profiles))
    penv = dict(env, HOME=str(phome), AWS_CONFIG_FILE=str(phome / ".aws/config"))
    (scratch / "awsrun.yaml").write_text("Credentials:\n  plugin: awsrun.plugins.creds.aws.Profile\n")
    tagged = profile_lines(profile_to_id, r"^(\S+)\t(.*)$")
    annotated = profile_lines(profile_to_id, r"^(.+)/" + re.escape(REGION) + r": (.*)$")

    def par(jobs: int, label: str) -> Runner:
        return Runner(f"parallel-{label}", f"GNU parallel -j {jobs} --tag `aws --profile {{}} {' '.join(LIST_BUCKETS)}`"
                      f" over the populated profiles", [t.parallel or "parallel", "-j", str(jobs), "--tag", "-q", "aws",
                      "--profile", "{}", *LIST_BUCKETS, "::::", str(profile_list)], penv, tagged,
                      skip=skip or (None if t.parallel else "GNU parallel is not installed (apt-get install parallel)"))

    awsrun = Runner("awsrun", "awsrun (its default --threads 10) `aws --awsrun-annotate text s3api list-buckets`"
                    " over the same profiles",
                    [t.awsrun or "awsrun", "--force", "--account-file", str(profile_list), "aws", "--region", REGION,
                     "--awsrun-annotate", "text", *LIST_BUCKETS[:-2]],
                    dict(penv, AWSRUN_CONFIG=str(scratch / "awsrun.yaml")), annotated,
                    skip=skip or (None if t.awsrun else "awsrun is not installed (pip install 'awsrun[aws]')"))
    return [par(16, "16"), par(t.cores, "cores"), awsrun], populate


def _article_table(seed: Runner, fan: Runner, creds: Runner, floor_row: list[str], floor: float | None,
                   context: str) -> str:
    a = seed.series.best()
    rows = []
    for tag, r in (("(a)", seed), ("(b)", fan), ("(c)", creds)):
        best = r.series.best()
        if r.skip or not best:
            rows.append([f"{tag} {r.label}", f"skipped: {r.skip}"] + ["–"] * 5)
            continue
        # Only (b) starts `aws` processes, so only its wall has the child-CPU floor under it.
        vs_floor = fmt(best.wall / floor if floor else None) if r is fan else "–"
        rows.append([f"{tag} {r.label}", f"{best.wall:.2f} ({r.series.walls()})", vs_floor, f"{best.cpu:.2f}",
                     str(best.calls), fmt(a.wall / best.wall if a else None, ".1f") + "×", r.check()])
    rows.append(floor_row + ["1.00"] + ["–"] * 4)
    return ("### The article's job: every account's S3 buckets (issue 8)\n\n" + context + "\n\n"
            + table(["row", "wall s (best; all runs)", "wall ÷ floor", "CPU s", "portal calls", "(a) ÷ row",
                     "`account\\|bucket` lines"], rows, {1, 2, 3, 4, 5}))


def _peers_table(runners: list[Runner], populate: Series, lone: Run | None, floor_row: list[str],
                 floor: float | None, context: str) -> str:
    rows = []
    for r in [x for x in runners if x.key != "credentials"]:
        best = r.series.best()
        if r.skip or not best:
            rows.append([r.label, f"skipped: {r.skip}"] + ["–"] * 6)
            continue
        # The seed script starts no `aws` process: the floor is not under it.
        ratio = fmt(best.wall / floor if floor and r.key != "seed" else None)
        rows.append([r.label, f"{best.wall:.2f} ({r.series.walls()})", ratio, f"{best.cpu:.2f}",
                     f"{best.own_cpu:.2f}", str(best.calls), r.check(), str(best.rc)])
    p = populate.best()
    rows.append(["`aws-sso-util configure populate` (the profiles parallel and awsrun need; apart)",
                 f"{p.wall:.2f} ({populate.walls()})" if p else "–", "–", f"{p.cpu:.2f}" if p else "–",
                 "–", "–", "–", str(p.rc) if p else "–"])
    rows.append([f"one `aws {' '.join(LIST_BUCKETS)}` alone, keys in its environment (its least-CPU run)",
                 fmt(lone.wall if lone else None), "–", fmt(lone.cpu if lone else None), "–", "0", "–", "–"])
    rows.append(floor_row + ["1.00", "–", "–", "–", "–", "–"])
    return ("### With the peers: `aws s3api list-buckets` in every account (issue 9)\n\n" + context
            + " Profiles for GNU parallel and awsrun: `aws-sso-util configure populate --components "
              "account_id,role_name` (one per account and role; the ReadOnly ones are used); each `aws` process "
              "they start fetches its own credentials from the portal.\n\n"
            + table(["runner", "wall s (best; all runs)", "wall ÷ floor", "CPU s", "own CPU s", "portal calls",
                     "`account\\|bucket` lines", "exit"], rows, {1, 2, 3, 4, 5}))


def _peers_targets(fan: Runner, runners: list[Runner], floor: float | None, cores: int) -> list[list[str]]:
    by = {r.key: r for r in runners}
    f = fan.series.best()
    out = []
    ok = fan.all_equal()
    r = f.wall / floor if f and floor and ok else None
    out.append(["issue 9: fanout (default) within 1.10× the child-CPU floor", f"{fmt(r)}×", verdict(None if r is None else r <= 1.10)])
    for key, need, what in (("parallel-16", 1.15, "at least 1.15× faster than GNU parallel -j 16"),
                            ("parallel-cores", 1.0, f"no slower than GNU parallel -j {cores}")):
        p = by[key].series.best()
        r = p.wall / f.wall if p and f and ok and by[key].all_equal() else None
        out.append([f"issue 9: fanout (default) {what}", f"{fmt(r)}×" if r else by[key].skip or "–",
                    verdict(None if r is None else r >= need)])
    return out


# --- table: a child that waits on the network ------------------------------------------------


def net_table(t: Tools, args: argparse.Namespace, stack: ExitStack, scratch: Path) -> tuple[list[str], list[list[str]]]:
    n = args.net_accounts
    portal = bk.start_portal(stack, t.harness, scratch, "net", n, args.latency_ms, t.base_env)
    holders = bk.role_holders(t.harness, n)
    env = portal.env(t.base_env)
    bk.timed([t.fanout, "--role", ROLE, "--", "true"], env, args.timeout)  # untimed: warm inventory
    want = [f"{a}|done" for a in holders]
    portal_only = Runner("net-true", f"`fanout --role {ROLE} -- true`: the portal's time alone",
                         [t.fanout, "--role", ROLE, "--", "true"], env)
    default = Runner("net-default", "fanout (its default -j) `-- sh -c 'sleep 0.5; echo done'`",
                     [t.fanout, "--role", ROLE, "--", *SLEEP_CHILD], env)
    j16 = Runner("net-j16", "fanout -j 16, same command", [t.fanout, "--role", ROLE, "-j", "16", "--", *SLEEP_CHILD], env)

    def once(r: Runner) -> None:
        run_once(r, portal, args.timeout, None if r is portal_only else want)

    rounds([portal_only, default, j16], args.rounds, lambda _: None, once)
    pt = portal_only.series.best()
    floor = len(holders) * 0.5 / t.max_concurrency + pt.wall
    rows = []
    for r in (default, j16):
        b = r.series.best()
        rows.append([r.label, f"{b.wall:.2f} ({r.series.walls()})", f"{b.wall / floor:.2f}", f"{b.cpu:.2f}", r.check()])
    rows.append([portal_only.label, f"{pt.wall:.2f} ({portal_only.series.walls()})", "–", f"{pt.cpu:.2f}", "–"])
    rows.append([f"**floor**: {len(holders)} × 0.5 s / {t.max_concurrency} (max concurrency) + the portal's time",
                 f"{floor:.2f}", "1.00", "–", "–"])
    text = (f"### A child that waits on the network, {n} accounts (issue 9)\n\n"
            f"Harness portal at {args.latency_ms} ms a call (no moto), {n} accounts, {len(holders)} with {ROLE}; "
            f"inventory cache warm; {t.cores} cores. Rounds: {args.rounds}, every other one in reverse order.\n\n"
            + table(["run", "wall s (best; all runs)", "wall ÷ floor", "CPU s", "`account\\|done` lines"], rows, {1, 2, 3}))
    d, j = default.series.best(), j16.series.best()
    ok = default.all_equal() and j16.all_equal()
    targets = [
        ["issue 9: network-bound child, fanout (default) within 1.3× its floor" + stated(n, 300),
         f"{d.wall / floor:.2f}×", verdict(d.wall / floor <= 1.3 if ok else None)],
        ["issue 9: network-bound child, fanout (default) at least 3× faster than -j 16" + stated(n, 300),
         f"{j.wall / d.wall:.2f}×", verdict(j.wall / d.wall >= 3 if ok else None)],
    ]
    return [text], targets


# --- table: child `true` against the seed script --------------------------------------------


def true_table(t: Tools, args: argparse.Namespace, stack: ExitStack, scratch: Path) -> tuple[list[str], list[list[str]]]:
    n = args.true_accounts
    portal = bk.start_portal(stack, t.harness, scratch, "true", n, args.latency_ms, t.base_env)
    holders = bk.role_holders(t.harness, n)
    env = portal.env(t.base_env)
    seed = Runner("true-seed", "the article's seed script, serial (credentials only)", [sys.executable, str(t.seed)],
                  dict(env, ROLE_NAME=ROLE, OUTPUT_FILE=str(scratch / "true-creds.json")))
    argv = [t.fanout, "--role", ROLE]
    cold = Runner("true-cold", f"`fanout --role {ROLE} -- true`, cold: no inventory cache, no remembered rate",
                  argv + ["--", "true"], env)
    refresh = Runner("true-refresh", "`fanout --refresh …`: the portal asked again, the rest of the cache kept",
                     argv + ["--refresh", "--", "true"], env)
    cached = Runner("true-cached", "`fanout …` with the inventory cached", argv + ["--", "true"], env)
    succeeded = re.compile(r"(\d+) succeeded")

    def fanout_once(r: Runner) -> None:
        run = run_once(r, portal, args.timeout, None)
        m = succeeded.findall(run.err)
        got = int(m[-1]) if m else -1
        r.checks.append((run.rc == 0 and got == len(holders), f"{got} of {len(holders)} succeeded, exit {run.rc}"))

    def fanout_sequence() -> None:
        # The three depend on each other's cache, so they always run in this order.
        shutil.rmtree(portal.cache)
        portal.cache.mkdir()
        for r in (cold, refresh, cached):
            fanout_once(r)

    def seed_once() -> None:
        run = run_once(seed, portal, args.timeout, None, cwd=str(scratch))
        seed.checks.append((run.rc == 0, f"exit {run.rc}"))

    for i in range(args.rounds):
        for step in ((seed_once, fanout_sequence) if i % 2 == 0 else (fanout_sequence, seed_once)):
            step()
    s = seed.series.best()
    rows = [[seed.label, f"{s.wall:.2f} ({seed.series.walls()})", "1.0×", "–", "–", str(s.calls), seed.check()]]
    targets = []
    for r, need in ((cold, 28), (refresh, 32), (cached, 55)):
        b = r.series.best()
        own = min(x.own_cpu for x in r.series.runs)
        rows.append([r.label, f"{b.wall:.2f} ({r.series.walls()})", f"{s.wall / b.wall:.1f}×", f"{own:.2f}",
                     f"{own / n * 1000:.2f}", str(b.calls), r.check()])
        ratio = s.wall / b.wall if r.all_equal() and seed.all_equal() else None
        targets.append([f"issue 9: child `true`, {r.key.split('-')[1]} run ≥ {need}× faster than the seed "
                        "script" + stated(n, 400), f"{fmt(ratio, '.1f')}×", verdict(None if ratio is None else ratio >= need)])
    own_ms = min(x.own_cpu for x in cold.series.runs) / n * 1000
    targets.append(["issue 9: fanout's own CPU ≤ 1 ms an account (cold run)" + stated(n, 400), f"{own_ms:.2f} ms",
                    verdict(own_ms <= 1)])
    text = (f"### Child `true`, {n} accounts, against the seed script (issue 9)\n\n"
            f"Harness portal at {args.latency_ms} ms a call (no moto), pages of 100, {n} accounts, {len(holders)} "
            f"with {ROLE}. Each round: the seed script, and fanout cold (its cache directory emptied), then "
            f"`--refresh`, then cached, in that order (each leaves the cache the next one starts from); "
            f"rounds: {args.rounds}, the seed first in every other one. fanout's own CPU = its process alone, "
            "children excluded, the least of its runs.\n\n"
            + table(["run", "wall s (best; all runs)", "seed ÷ run", "fanout's own CPU s", "ms an account",
                     "portal calls", "check"], rows, {1, 2, 3, 4, 5}))
    return [text], targets


# --- the report --------------------------------------------------------------------------------


def exact_command() -> str:
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items()) if k == "FANOUT_BIN")
    return (env + " " if env else "") + shlex.join(["python3", "benches/driver.py", *sys.argv[1:]])


def machine(cores: int) -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split()[1]
    return f"{cores} cores usable ({os.cpu_count()} in the machine), {model}, {int(mem) // 1048576} GiB RAM, " \
           f"Linux {platform.release()}"


def fanout_version(t: Tools) -> str:
    v = subprocess.run([t.fanout, "--version"], capture_output=True, text=True).stdout.strip() or "fanout ?"
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    build = "**debug build: a trial, not figures**" if t.fanout_debug else "release build"
    return f"{v}, worktree at git {rev or '?'}; {build}"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", default="article,peers,net,true",
                   help="which tables, comma-separated (default: all four)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each row (default 3)")
    p.add_argument("--accounts", type=int, default=100, help="accounts for article and peers (default 100)")
    p.add_argument("--net-accounts", type=int, default=300, help="accounts for net (default 300)")
    p.add_argument("--true-accounts", type=int, default=400, help="accounts for true (default 400)")
    p.add_argument("--latency-ms", type=int, default=30, help="portal latency a call (default 30)")
    p.add_argument("--buckets", type=int, default=3, help="most buckets in one account (default 3)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds one run may take (default 1800)")
    p.add_argument("--cpus", help="run everything on these CPUs (a taskset-style list: 0,1 or 0-1)")
    p.add_argument("--fanout", default=os.environ.get("FANOUT_BIN"),
                   help="the fanout binary (default: $FANOUT_BIN, else cargo build --release)")
    p.add_argument("--harness", default=str(ROOT.parent / "shared/harness"), help="the harness directory")
    p.add_argument("--seed", default=str(ROOT.parent / "shared/seed/seed_script.py"), help="the seed script")
    p.add_argument("--peers-bin", default="~/.cache/fanout-bench/venv-peers/bin",
                   help="where awsrun and aws-sso-util are when not on PATH")
    p.add_argument("--doc", action="store_true", help="also append the report to docs/benchmarks.md")
    return p.parse_args()


def cpu_list(spec: str) -> set[int]:
    cpus = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def main() -> int:
    args = parse_args()
    which = set(args.tables.split(","))
    unknown = which - {"article", "peers", "net", "true"}
    if unknown:
        raise SystemExit(f"driver: unknown table(s) {', '.join(sorted(unknown))}; pick from article,peers,net,true")
    if args.doc and args.fanout and "/debug/" in os.path.realpath(args.fanout):
        raise SystemExit("driver: --doc takes figures from a release build only (cargo build --release; FANOUT_BIN)")
    if args.cpus:
        os.sched_setaffinity(0, cpu_list(args.cpus))  # inherited by every server and runner
    started = time.monotonic()
    load = os.getloadavg()
    sections: list[str] = []
    targets: list[list[str]] = []
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fanout-bench.")))
        t = find_tools(args, scratch)
        log(f"fanout {t.fanout} ({'debug' if t.fanout_debug else 'release'}), {t.cores} cores, aws {t.aws}, "
            f"parallel {t.parallel}, awsrun {t.awsrun}, aws-sso-util {t.sso_util}; load {load[0]:.2f}")
        if which & {"article", "peers"}:
            require_moto_tools()
            s, tg = moto_tables(t, args, stack, scratch, which)
            sections += s
            targets += tg
        if "net" in which:
            s, tg = net_table(t, args, stack, scratch)
            sections += s
            targets += tg
        if "true" in which:
            s, tg = true_table(t, args, stack, scratch)
            sections += s
            targets += tg
        took = time.monotonic() - started
        header = "\n".join([
            f"## Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (benches/driver.py)", "",
            f"- command: `{exact_command()}`",
            f"- machine: {machine(t.cores)}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            f"- fanout: {fanout_version(t)}",
            f"- took {took:.0f} s; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        ])
    report = "\n\n".join([header, *sections, "### Targets\n\n" + table(["target", "measured", "verdict"], targets)]) + "\n"
    print(report)
    if args.doc:
        with (ROOT / "docs/benchmarks.md").open("a") as doc:
            doc.write("\n" + report)
        log("appended to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
