#!/usr/bin/env python3
"""fanout's benchmarks, run by hand (never by the tests or CI).

    python3 benches/driver.py TARGET... [--fanout PATH]... [--accounts N] [--doc]

Everything runs on 127.0.0.1 from this repository alone: the project's fake portal
(crates/fake-portal: latency per call, a rate limit answering 429, and with
--sts-endpoint keys minted by a moto server's STS), a moto server for the targets that run
the AWS CLI, and benches/serial_reference.py, the article's algorithm run serially, as the
reference fanout is compared with. Each target prints a markdown table on stdout; with
--doc the report is appended to docs/benchmarks.md with the date, the machine and this exact
command. Every report ends with the targets table for the targets that ran.

The fanout measured is --fanout PATH, else $FANOUT_BIN, else a release build made here.
Give --fanout twice (say, before and after a refactor) and scale, rate-limit, own-cpu and
true-400 measure both builds in one sitting, interleaved, and the report ends with a
before-and-after table: each row's figure for every build and its ratio to the first.
The other targets measure the first build.

A row runs --rounds times (default 3), every other round in reverse order, and shows its
fastest run and every run. Needs python3; the AWS targets also need boto3, moto[server] and
the AWS CLI; peers and aws-jobs use GNU parallel, peers awsrun and aws-sso-util (found on
PATH or in --peers-bin). A row or target whose tool is missing is reported as skipped, with
the reason. Real figures need release builds (--doc refuses a debug one).
"""

from __future__ import annotations

import argparse
import configparser
import importlib.util
import json
import os
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
from benchkit import ROLE, REGION, ROOT, START_URL, Build, Run, Series, fmt, log, ratio, table, verdict

SERIAL_REFERENCE = ROOT / "benches/serial_reference.py"
LIST_BUCKETS = ["s3api", "list-buckets", "--query", "Buckets[].[Name]", "--output", "text"]
SLEEP_CHILD = ["sh", "-c", "sleep 0.5; echo done"]
DEFAULT_MAX_CONCURRENCY = 256  # --max-concurrency's default, when the binary's --help names none
FANOUT_PAGE = 100  # what fanout asks the portal for; the serial reference takes the portal's default
PORTAL_DEFAULT_PAGE = 20  # fake-portal's page for a call that asks for none


def stated(n: int, size: int) -> str:
    """A note on a target measured at another size than the one it is stated for (a trial)."""
    return "" if n == size else f" (stated for {size} accounts; this run had {n})"


# --- what a run has -------------------------------------------------------------------------


@dataclass
class Tools:
    aws: str | None
    parallel: str | None
    awsrun: str | None
    sso_util: str | None
    boto3: bool
    moto: str | None
    cores: int


@dataclass
class Ctx:
    """One sitting: the options, the builds, the tools, and what the targets found."""

    args: argparse.Namespace
    stack: ExitStack
    scratch: Path
    builds: list[Build]
    portal_bin: str
    tools: Tools
    base_env: dict[str, str]
    targets: list[list[str]] = field(default_factory=list)
    compared: dict[str, dict[str, float]] = field(default_factory=dict)  # row -> build label -> figure

    @property
    def fanout(self) -> Build:
        return self.builds[0]

    def size(self, own: int | None, default: int) -> int:
        """A target's account count: its own option, else --accounts (a trial), else its default."""
        return own or self.args.accounts or default

    def sizes(self, own: str | None, default: str) -> list[int]:
        return [int(x) for x in own.split(",")] if own else ([self.args.accounts] if self.args.accounts else
                                                            [int(x) for x in default.split(",")])

    def portal(self, name: str, accounts: int, latency_ms: int | None = None, **kw) -> bk.Portal:
        return bk.start_portal(self.stack, self.portal_bin, self.scratch, name, accounts,
                               self.args.latency_ms if latency_ms is None else latency_ms, self.base_env, **kw)

    def compare(self, row: str, build: Build, figure: float) -> None:
        self.compared.setdefault(row, {})[build.label] = figure

    def ordered(self, i: int) -> list[Build]:
        """The builds in round i's order: every other round reversed."""
        return self.builds if i % 2 == 0 else list(reversed(self.builds))


def real_path(exe: str | None) -> str | None:
    """The program behind a pyenv shim: a shim costs a bash and a `pyenv exec` per start,
    which would be charged to every `aws` child."""
    if exe and "/.pyenv/shims/" in exe:
        found = subprocess.run(["pyenv", "which", os.path.basename(exe)], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.strip()
    return exe


def find_tools(args: argparse.Namespace) -> Tools:
    peers_bin = Path(args.peers_bin).expanduser()

    def peer(name: str) -> str | None:
        return shutil.which(name) or (str(peers_bin / name) if (peers_bin / name).exists() else None)

    parallel = shutil.which("parallel")
    if parallel and "GNU parallel" not in subprocess.run([parallel, "--version"], capture_output=True,
                                                         text=True).stdout:
        parallel = None  # moreutils' parallel takes other arguments
    return Tools(aws=real_path(shutil.which("aws")), parallel=parallel, awsrun=peer("awsrun"),
                 sso_util=peer("aws-sso-util"), boto3=importlib.util.find_spec("boto3") is not None,
                 moto=real_path(shutil.which("moto_server")), cores=len(os.sched_getaffinity(0)))


def help_default(help_text: str, flag: str) -> int | None:
    """The `[default: N]` of one option in fanout's --help, if it has one."""
    m = re.search(re.escape(flag) + r"\b(.*?)(?=\n\s{2,}-|\Z)", help_text, re.S)
    d = re.search(r"\[default: (\d+)\]", m.group(1)) if m else None
    return int(d.group(1)) if d else None


def fanout_true(b: Build, *flags: str) -> list[str]:
    return [b.path, "--role", ROLE, *flags, "--", "true"]


def jobs_variants(b: Build) -> list[tuple[str, list[str]]]:
    """fanout's -j settings a scale row runs; --portal-rps 1000 (its limiter starting high)
    where the build has it, to show the slow start's share."""
    out = [("defaults (-j auto)", []), ("-j 1", ["-j", "1"])]
    if b.has("--portal-rps"):
        out.append(("--portal-rps 1000", ["--portal-rps", "1000"]))
    return out


def label(ctx: Ctx, b: Build, what: str) -> str:
    return f"{b.label}: {what}" if len(ctx.builds) > 1 else what


# --- runners ----------------------------------------------------------------------------------


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
             cwd: str | None = None, servers: dict[str, int] | None = None) -> Run:
    """One timed run of runner, with the portal calls it made and, for each of `servers`
    (name -> pid), the CPU that server used meanwhile."""
    before = portal.calls()
    cpu0 = {name: bk.proc_cpu(pid) for name, pid in (servers or {}).items()}
    run = bk.timed(runner.argv, runner.env, timeout, cwd=cwd)
    for name, pid in (servers or {}).items():
        now, then = bk.proc_cpu(pid), cpu0[name]
        if now is not None and then is not None:
            run.servers_cpu[name] = now - then
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


def references(ctx: Ctx, env: dict[str, str], scratch: Path, key: str, what: str,
               **extra: str) -> list[Runner]:
    """The serial reference, and the outside copy of the article's script when --seed-script
    names one, as rows against the portal of env."""
    env = dict(env, START_URL=START_URL, ROLE_NAME=ROLE, **extra)
    rows = [Runner(key, f"the serial reference, `benches/serial_reference.py` ({what})",
                   [sys.executable, str(SERIAL_REFERENCE)],
                   dict(env, OUTPUT_FILE=str(scratch / f"{key}-creds.json")),
                   skip=None if ctx.tools.boto3 else "boto3 is not installed (pip install boto3)")]
    if ctx.args.seed_script:
        rows.append(Runner(f"{key}-seed", f"the article's script, `{Path(ctx.args.seed_script).name}` ({what})",
                           [sys.executable, str(Path(ctx.args.seed_script).resolve())],
                           dict(env, OUTPUT_FILE=str(scratch / f"{key}-seed-creds.json")), skip=rows[0].skip))
    return rows


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


# --- scale and rate limit: `fanout -- true` on a fresh portal, cold ----------------------------


def cold_run(ctx: Ctx, b: Build, n: int, flags: list[str], rps: float = 0) -> tuple[Run, dict[str, int]]:
    """`fanout -- true` against a fresh portal and an empty cache: its run and the portal's /_stats."""
    portal = ctx.portal("cold", n, rps=rps)
    run = bk.timed(fanout_true(b, *flags), portal.env(ctx.base_env), ctx.args.timeout, discard_stdout=True)
    stats = portal.stats()
    portal.stop.close()
    if run.rc != 0:
        log(f"{b.label} N={n} {' '.join(flags)}: exit {run.rc}: {run.tail()}")
    return run, stats


def scale(ctx: Ctx) -> list[str]:
    rows = []
    sizes = ctx.sizes(ctx.args.sizes, "100,1000,5000")
    for n in sizes:
        best: dict[tuple[str, str], tuple[Run, dict[str, int]]] = {}
        for i in range(ctx.args.rounds):
            for b in ctx.ordered(i):
                for what, flags in jobs_variants(b):
                    run, stats = cold_run(ctx, b, n, flags)
                    log(f"scale {b.label} N={n} {what}: {run.wall:.2f} s, {run.maxrss_mb:.1f} MB")
                    if (b.label, what) not in best or run.wall < best[(b.label, what)][0].wall:
                        best[(b.label, what)] = (run, stats)
        for b in ctx.builds:
            for what, _ in jobs_variants(b):
                run, s = best[(b.label, what)]
                calls = (s["ListAccounts"], s["ListAccountRoles"], s["GetRoleCredentials"])
                rows.append([str(n), label(ctx, b, what), f"{run.wall:.2f}",
                             f"{sum(calls)} ({' / '.join(map(str, calls))})", str(s["inflight_max"]),
                             f"{run.maxrss_mb:.1f}", " / ".join(run.summary()), str(run.rc)])
                ctx.compare(f"scale: {n} accounts, {what}, wall s", b, run.wall)
                if n == max(sizes):
                    ctx.compare(f"scale: {n} accounts, {what}, peak RSS MB", b, run.maxrss_mb)
                    ok = run.maxrss_mb < 30 if run.rc == 0 else None
                    ctx.targets.append([f"peak RSS < 30 MB at {n} accounts, fanout {label(ctx, b, what)}"
                                        + stated(n, 5000), f"{run.maxrss_mb:.1f} MB", verdict(ok)])
    return [f"### Scale: `fanout --role {ROLE} -- true`, portal at {ctx.args.latency_ms} ms a call, no rate limit\n\n"
            f"Each case on a fresh `fake-portal` with a fresh HOME (a cold inventory cache); the fastest of "
            f"{ctx.args.rounds} runs. Peak RSS is the largest of fanout and any one child (wait4); a `true` child "
            "is about 1 MB, so here it is fanout's own. Portal calls are the ones the portal answered with data "
            "(its /_stats); fanout asks for credentials directly, so each account without the role also costs one "
            "GetRoleCredentials answered 403, which the portal does not count: that is the skipped column.\n\n"
            + table(["accounts", "fanout", "wall s", "portal calls answered (ListAccounts / ListAccountRoles / "
                     "GetRoleCredentials)", "in flight max", "peak RSS MB", "succeeded / failed / skipped", "exit"],
                    rows, {0, 2, 4, 5, 7})]


def serial_calls(n: int) -> int:
    """The calls the serial reference makes for n generated accounts: every ListAccounts page
    (the portal's default page), one ListAccountRoles an account, one GetRoleCredentials an
    account with the role (all but every tenth)."""
    return -(-n // PORTAL_DEFAULT_PAGE) + n + n - n // 10


def rate_limit(ctx: Ctx) -> list[str]:
    rps = ctx.args.rps
    rows = []
    for n in ctx.sizes(ctx.args.rps_sizes, "100,1000"):
        for b in ctx.builds:
            for what, flags in jobs_variants(b):
                run, s = cold_run(ctx, b, n, flags, rps=rps)
                answered = s["ListAccounts"] + s["ListAccountRoles"] + s["GetRoleCredentials"]
                ok, failed, skipped = run.summary()
                requests = answered + (int(skipped) if skipped != "?" else 0)
                floor = requests / rps
                vs_serial = run.wall / (serial_calls(n) / rps)
                log(f"rate-limit {b.label} N={n} {what}: {run.wall:.2f} s, {s['throttled']} throttled")
                rows.append([str(n), label(ctx, b, what), f"{run.wall:.2f}", f"{requests} ({answered} + {skipped})",
                             str(s["throttled"]), f"{floor:.2f}", f"{run.wall / floor:.2f}", str(serial_calls(n)),
                             f"{vs_serial:.2f}", f"{ok} / {failed} / {skipped}", str(run.rc)])
                ctx.compare(f"rate-limit: {n} accounts, {what}, wall s", b, run.wall)
                met = None if failed == "?" else (vs_serial <= 1.15 and failed == "0")
                ctx.targets.append([f"{rps:g} requests/s, {n} accounts, fanout {label(ctx, b, what)}: wall ≤ 1.15 × "
                                    f"the serial reference's calls / {rps:g}, none failed",
                                    f"{vs_serial:.2f}×, {failed} failed", verdict(met)])
    return [f"### Rate limit: portal at {ctx.args.latency_ms} ms a call and {rps:g} requests/s (429 past it), "
            "child `true`\n\n"
            f"One run a case, on a fresh portal, cold. requests = calls answered with data + one 403 per skipped "
            f"account; throttled requests are not in it. floor = requests / {rps:g}, the least time the portal allows "
            f"for fanout's own requests. serial calls = what the serial reference needs for the same accounts "
            f"(ListAccounts pages of {PORTAL_DEFAULT_PAGE} + one ListAccountRoles an account + one GetRoleCredentials "
            "an account with the role); the target is stated against that.\n\n"
            + table(["accounts", "fanout", "wall s", "requests (answered + 403)", "throttled (429)", "floor s",
                     "wall / floor", "serial calls", f"wall / (serial calls / {rps:g})", "succeeded / failed / skipped",
                     "exit"], rows, {0, 2, 3, 4, 5, 6, 7, 8, 10})]


# --- output throughput ------------------------------------------------------------------------


def throughput(ctx: Ctx) -> list[str]:
    n_run, lines = ctx.size(ctx.args.tp_accounts, 200), ctx.args.tp_lines
    total = n_run + (n_run - 1) // 9  # every tenth generated account lacks the role
    portal = ctx.portal("tp", total, latency_ms=ctx.args.tp_latency_ms)
    env = portal.env(ctx.base_env)
    ids = portal.holders()
    if len(ids) != n_run:
        raise SystemExit(f"driver: expected {n_run} accounts with {ROLE}, the portal has {len(ids)}")
    awk = f'BEGIN{{for(i=0;i<{lines};i++) print "some line of output number " i}}'
    ids_file, payload = ctx.scratch / "tp-ids", ctx.scratch / "tp-payload"
    ids_file.write_text("".join(i + "\n" for i in ids))
    one = subprocess.run(["awk", awk], capture_output=True, check=True).stdout
    with payload.open("wb") as fh:
        for _ in ids:
            fh.write(one)
    size = len(one) * n_run
    fan = [ctx.fanout.path, "--role", ROLE]
    par = [ctx.tools.parallel or "parallel", "-j", "16", "--tag", "--line-buffer", "-q", "awk", awk,
           "::::", str(ids_file)]

    def bytes_out(argv: list[str]) -> int:
        with tempfile.TemporaryFile() as out:
            subprocess.run(argv, env=env, stdout=out, stderr=subprocess.DEVNULL, timeout=ctx.args.timeout)
            return out.seek(0, os.SEEK_END)

    fan_bytes = bytes_out([*fan, "--", "awk", awk])  # untimed: also warms the inventory cache
    cases = [(f"`fanout --role {ROLE} -- awk …` (defaults, -j auto)", [*fan, "--", "awk", awk], fan_bytes, "fanout"),
             (f"`fanout --role {ROLE} -- true` (the portal calls and spawns alone)", [*fan, "--", "true"], 0, None)]
    if ctx.fanout.has("--portal-rps"):
        cases += [(f"`fanout --role {ROLE} --portal-rps 1000 -- awk …` (rate limiter starting high)",
                   [*fan, "--portal-rps", "1000", "--", "awk", awk], fan_bytes, "fanout-high"),
                  (f"`fanout --role {ROLE} --portal-rps 1000 -- true`", [*fan, "--portal-rps", "1000", "--", "true"],
                   0, None)]
    cases += [("`xargs -P 16 awk … \\| cat` (the same children into cat; no prefix, lines may interleave)",
               ["bash", "-c", f"xargs -P 16 -n 1 awk {shlex.quote(awk)} <{shlex.quote(str(ids_file))} | cat"], size,
               "pipe"),
              ("`cat file` (the same bytes precomputed: a copy ceiling)", ["cat", str(payload)], size, "cat")]
    if ctx.tools.parallel:
        # --tag prefixes each line with the argument (the account id), as fanout does; awk
        # ignores the operand because its program is only a BEGIN block.
        version = subprocess.run([ctx.tools.parallel, "--version"], capture_output=True, text=True).stdout
        cases.append((f"`parallel -j 16 --tag --line-buffer awk …` ({version.splitlines()[0]})", par, bytes_out(par),
                      "parallel"))
    walls: dict[str, float] = {}
    rows = []
    for what, argv, written, key in cases:
        series = Series([bk.timed(argv, env, ctx.args.timeout, discard_stdout=True) for _ in range(ctx.args.rounds)])
        wall = series.best().wall
        log(f"throughput {what[:50]}: {series.walls()}")
        if key:
            walls[key] = wall
        rows.append([what, str(written), f"{wall:.2f} ({series.walls()})", fmt(size / 1e6 / wall, ".0f") if written
                     else "–"])
    if not ctx.tools.parallel:
        rows.append(["GNU parallel", "–", "skipped: not installed (apt-get install parallel)", "–"])
    portal.stop.close()
    payload.unlink()
    for key, what in (("fanout", "defaults"), ("fanout-high", "--portal-rps 1000")):
        if key not in walls:
            continue
        r = ratio(walls.get("parallel"), walls[key])
        ctx.targets.append([f"output throughput ≥ 3× GNU parallel --tag --line-buffer (fanout {what})",
                            f"{fmt(r)}×" if r else "skipped: no GNU parallel", verdict(None if r is None else r >= 3)])
        for base, against in (("pipe", "the same children piped into `cat`"), ("cat", "`cat` of the precomputed file")):
            r = walls[base] / walls[key]
            ctx.targets.append([f"output throughput ≥ 50% of cat: {against} (fanout {what})", f"{r * 100:.0f}%",
                                verdict(r >= 0.5)])
    return [f"### Output throughput: {n_run} children × {lines} lines ({size / 1e6:.1f} MB of child output), "
            "stdout to /dev/null\n\n"
            f"MB/s is the children's output (the same {size / 1e6:.1f} MB in every row) over the wall time, best of "
            f"{ctx.args.rounds}; `fanout` and `parallel --tag` also add the account prefix to each line. "
            "Portal latency "
            f"{ctx.args.tp_latency_ms} ms; fanout's inventory cache is warm.\n\n"
            + table(["pipeline", "bytes written", "wall s (best; all runs)", "MB/s"], rows, {1, 2, 3})]


# --- the serial reference at each size --------------------------------------------------------------


def serial(ctx: Ctx) -> list[str]:
    rows = []
    for n in ctx.sizes(ctx.args.serial_sizes, "100,1000"):
        portal = ctx.portal("serial", n)
        fan = bk.timed(fanout_true(ctx.fanout), portal.env(ctx.base_env), ctx.args.timeout, discard_stdout=True)
        portal.stop.close()
        for i in range(len(references(ctx, {}, ctx.scratch, "serial", ""))):
            portal = ctx.portal("serial", n)  # each reference on a fresh portal, as fanout was
            ref = references(ctx, portal.env(ctx.base_env), ctx.scratch, "serial", "credentials only")[i]
            if ref.skip:
                portal.stop.close()
                rows.append([str(n), ref.label, f"skipped: {ref.skip}"] + ["–"] * 5)
                continue
            run = run_once(ref, portal, ctx.args.timeout, None, cwd=str(ctx.scratch))
            s = portal.stats()
            portal.stop.close()
            calls = (s["ListAccounts"], s["ListAccountRoles"], s["GetRoleCredentials"])
            r = run.wall / fan.wall
            rows.append([str(n), ref.label, f"{run.wall:.2f}", f"{sum(calls)} ({' / '.join(map(str, calls))})",
                         f"{run.maxrss_mb:.1f}", f"{fan.wall:.2f}", f"{r:.1f}", str(run.rc)])
            if ref.key == "serial" and run.rc == 0:
                ctx.targets.append([f"{n} accounts at {ctx.args.latency_ms} ms: fanout (defaults) ≥ 40× faster than "
                                    "the serial reference" + stated(n, 1000), f"{r:.1f}×", verdict(r >= 40)])
    return [f"### The serial reference against fanout, portal at {ctx.args.latency_ms} ms a call\n\n"
            "Each run on a fresh portal; fanout `--role ReadOnly -- true` at its defaults, cold. The reference takes "
            f"the portal's default page ({PORTAL_DEFAULT_PAGE}), fanout asks for {FANOUT_PAGE}. One run each.\n\n"
            + table(["accounts", "reference", "wall s", "portal calls (ListAccounts / ListAccountRoles / "
                     "GetRoleCredentials)", "peak RSS MB", "fanout wall s", "reference ÷ fanout", "exit"], rows,
                    {0, 2, 4, 5, 6, 7})]


# --- the AWS CLI against moto: article, peers, aws-jobs (one moto, one portal, shared runs) -------------


def moto_tables(ctx: Ctx, which: set[str]) -> list[str]:
    t, args = ctx.tools, ctx.args
    missing = [what for what, ok in (("boto3", t.boto3), ("moto[server]", t.moto)) if not ok]
    if missing:
        why = f"{' and '.join(missing)} not installed (pip install boto3 'moto[server]')"
        ctx.targets += [[f"{w}: every target of this table", "–", f"skipped: {why}"] for w in sorted(which)]
        return [f"### {w}\n\nskipped: {why}" for w in sorted(which)]
    n = ctx.size(None, 100)
    moto = bk.start_moto(ctx.stack, ctx.scratch, ctx.base_env)
    portal = ctx.portal("s3", n, sts=moto.url, default_page=FANOUT_PAGE)
    holders = portal.holders()
    log(f"moto at {moto.url}, portal at {portal.url}: {n} accounts, {len(holders)} with {ROLE}; making buckets")
    buckets = bk.make_buckets(moto.url, [a["accountId"] for a in portal.accounts], args.buckets)
    want = [f"{a}|{b}" for a in holders for b in buckets[a]]
    env = dict(portal.env(ctx.base_env), AWS_ENDPOINT_URL_S3=moto.url)
    servers = {"moto": moto.pid, "portal": portal.pid}
    fanout = ctx.fanout.path
    # Untimed: fanout's inventory cache is filled once, so every fanout row below finds it
    # warm, as a user's second run within the hour does.
    bk.timed([fanout, "--role", ROLE, "--", "true"], env, args.timeout)

    seeds = references(ctx, env, ctx.scratch, "serial", "serial, RUN_LIST_BUCKETS=1", RUN_LIST_BUCKETS="1")
    aws_missing = None if t.aws else "the AWS CLI is not installed (pip install awscli)"
    command = f"`fanout --role {ROLE} -- aws {' '.join(LIST_BUCKETS)}`"

    def fan_j(jobs: str | None, what: str) -> Runner:
        flags = ["-j", jobs] if jobs else []
        return Runner(f"fanout-j{jobs or 'auto'}", what, [fanout, "--role", ROLE, *flags, "--", "aws", *LIST_BUCKETS],
                      env, skip=aws_missing)

    fan = fan_j(None, f"{command} (its default -j)")
    consumer = (f"{shlex.quote(fanout)} credentials --role {ROLE} --format jsonl | "
                f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'benches/consumer.py'))} --role {ROLE}")
    creds = Runner("credentials", f"`fanout credentials --role {ROLE} --format jsonl \\| python3 benches/consumer.py`",
                   ["bash", "-o", "pipefail", "-c", consumer], env,
                   skip=None if ctx.fanout.has("credentials") else "fanout has no `credentials` subcommand")
    runners = [*seeds, fan]
    if "article" in which:
        runners.append(creds)
    # The -j rows: the cores for peers, 8, 4 and 2 for aws-jobs; one runner for each -j.
    wanted = ([str(t.cores)] if "peers" in which else []) + (["8", "4", "2"] if "aws-jobs" in which else [])
    by_jobs = {j: fan_j(j, f"fanout -j {j}{' (the cores)' if j == str(t.cores) else ''}, same command")
               for j in dict.fromkeys(wanted)}
    runners += by_jobs.values()
    jobs_rows = [by_jobs[j] for j in ("8", "4", "2") if j in by_jobs and "aws-jobs" in which]
    populate = Series()
    if "peers" in which:
        peer_runners, populate = _peers(ctx, portal, env)
        runners += peer_runners
    hand = _hand_written_parallel(ctx, portal, env) if "aws-jobs" in which else None
    if hand:
        runners.append(hand)
    # The child-CPU floor: one `aws s3api list-buckets` alone, keys in its environment as
    # fanout runs it. Its CPU is the least of many lone runs (3 first, one after each timed
    # run, 3 last): a busy moment only ever raises it.
    lone = Series()
    lone_env = dict(env, **bk.account_keys(moto.url, holders[0]))

    def sample(_: Runner | None = None) -> None:
        if t.aws:
            lone.runs.append(bk.timed(["aws", *LIST_BUCKETS], lone_env, args.timeout))

    for _ in range(3):
        sample()
    rounds(runners, args.rounds, sample, lambda r: run_once(r, portal, args.timeout, want, cwd=str(ctx.scratch),
                                                            servers=servers))
    for _ in range(3):
        sample()
    for r in runners:
        if not r.skip and not r.all_equal():
            log(f"{r.key}: its lines differ from the buckets made: {r.check()}")

    context = (f"`fake-portal --sts-endpoint` (moto's STS mints each account's keys; {args.latency_ms} ms a call, "
               f"pages of {FANOUT_PAGE} to every client) and a moto server, both on loopback; {n} accounts, "
               f"{len(holders)} with {ROLE}; 1 to {args.buckets} buckets in each account ({len(want)} "
               f"`account|bucket` lines expected). {t.cores} cores. Rounds: {args.rounds}, every other one in reverse "
               "order; wall is its fastest run, and every run is listed. CPU = user+sys of the runner and all its "
               "children; own = the runner's process alone. fanout's inventory cache is warm.")
    lone_best = min(lone.runs, key=lambda r: r.cpu) if lone.runs else None
    floor = len(holders) * lone_best.cpu / t.cores if lone_best else None
    lone_cpu = fmt(lone_best.cpu if lone_best else None)
    floor_row = [f"**child-CPU floor**: {len(holders)} `aws` processes × {lone_cpu} s "
                 f"(one alone, keys in its environment, least CPU of {len(lone.runs)} lone runs) / {t.cores} cores",
                 fmt(floor)]
    sections = []
    seed = seeds[0]
    if "article" in which:
        sections.append(_article_table(seed, fan, creds, floor_row, floor, context))
        a, c = seed.series.best(), creds.series.best()
        r = a.wall / c.wall if a and c and creds.all_equal() and seed.all_equal() else None
        ctx.targets.append(["the article's job: `fanout credentials \\| consumer.py` ≥ 4× faster than the serial "
                            "reference, same lines" + stated(n, 100),
                            f"{fmt(r, '.1f')}×" if r else creds.skip or "–",
                            verdict(None if r is None else r >= 4)])
    if "peers" in which:
        sections.append(_peers_table(runners, populate, lone_best, floor_row, floor, context))
        ctx.targets += [[what + stated(n, 100), *rest] for what, *rest in _peers_targets(fan, runners, floor, t.cores)]
    if "aws-jobs" in which:
        sections.append(_jobs_table([fan, *jobs_rows] + ([hand] if hand else []), floor, floor_row, len(holders),
                                    t.cores, context))
        f = fan.series.best()
        r = ratio(f.wall if f else None, floor) if fan.all_equal() else None
        ctx.targets.append(["AWS CLI child: fanout (defaults) wall ≤ 1.10 × the child-CPU floor" + stated(n, 100),
                            f"{fmt(r)}×", verdict(None if r is None else r <= 1.10)])
        if hand:
            p = hand.series.best()
            r = ratio(p.wall if p else None, f.wall if f else None) if hand.all_equal() and fan.all_equal() else None
            ctx.targets.append(["AWS CLI child: fanout (defaults) faster than GNU parallel -j 16 over per-account "
                                "profiles" + stated(n, 100), f"{fmt(r)}×" if r else hand.skip or "–",
                                verdict(None if r is None else r > 1)])
    return sections


def _peers(ctx: Ctx, portal: bk.Portal, env: dict[str, str]) -> tuple[list[Runner], Series]:
    """The GNU parallel and awsrun rows, over the profiles aws-sso-util writes (timed apart,
    each round into a fresh copy of the login's HOME)."""
    t, args, scratch = ctx.tools, ctx.args, ctx.scratch
    populate = Series()
    skip = None if t.sso_util else "aws-sso-util is not installed (pip install aws-sso-util)"
    phome = scratch / "profiles-home"
    populate_argv = [t.sso_util or "aws-sso-util", "configure", "populate", "--sso-start-url", START_URL,
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
                skip = f"`aws-sso-util configure populate` failed against the fake portal: {run.tail()}"
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

    def par(jobs: int, key: str) -> Runner:
        return Runner(f"parallel-{key}", f"GNU parallel -j {jobs} --tag `aws --profile {{}} {' '.join(LIST_BUCKETS)}`"
                      " over the populated profiles", [t.parallel or "parallel", "-j", str(jobs), "--tag", "-q", "aws",
                      "--profile", "{}", *LIST_BUCKETS, "::::", str(profile_list)], penv, tagged,
                      skip=skip or (None if t.parallel else "GNU parallel is not installed (apt-get install parallel)"))

    awsrun = Runner("awsrun", "awsrun (its default --threads 10) `aws --awsrun-annotate text s3api list-buckets`"
                    " over the same profiles",
                    [t.awsrun or "awsrun", "--force", "--account-file", str(profile_list), "aws", "--region", REGION,
                     "--awsrun-annotate", "text", *LIST_BUCKETS[:-2]],
                    dict(penv, AWSRUN_CONFIG=str(scratch / "awsrun.yaml")), annotated,
                    skip=skip or (None if t.awsrun else "awsrun is not installed (pip install 'awsrun[aws]')"))
    return [par(16, "16"), par(t.cores, "cores"), awsrun], populate


def _hand_written_parallel(ctx: Ctx, portal: bk.Portal, env: dict[str, str]) -> Runner:
    """GNU parallel -j 16 over one hand-written `[profile acct-<id>]` (sso_session form) per
    account with the role, as users script it today; each `aws` fetches its own credentials."""
    home = ctx.scratch / "hand-profiles-home"
    profiles = bk.written_profiles(portal, home, portal.holders())
    (ctx.scratch / "hand-profiles.txt").write_text("".join(p + "\n" for p in profiles))
    penv = dict(env, HOME=str(home), AWS_CONFIG_FILE=str(home / ".aws/config"))
    skip = None if ctx.tools.parallel else "GNU parallel is not installed (apt-get install parallel)"
    skip = skip or (None if ctx.tools.aws else "the AWS CLI is not installed (pip install awscli)")
    return Runner("parallel-hand", f"GNU parallel -j 16 --tag `aws --profile {{}} {' '.join(LIST_BUCKETS)}` over "
                  "one hand-written sso_session profile an account (`acct-<id>`)",
                  [ctx.tools.parallel or "parallel", "-j", "16", "--tag", "-q", "aws", "--profile", "{}", *LIST_BUCKETS,
                   "::::", str(ctx.scratch / "hand-profiles.txt")], penv,
                  profile_lines({p: p.removeprefix("acct-") for p in profiles}, r"^(\S+)\t(.*)$"), skip=skip)


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
    return ("### The article's job: every account's S3 buckets\n\n" + context + "\n\n"
            + table(["row", "wall s (best; all runs)", "wall ÷ floor", "CPU s", "portal calls", "(a) ÷ row",
                     "`account\\|bucket` lines"], rows, {1, 2, 3, 4, 5}))


def _peers_table(runners: list[Runner], populate: Series, lone: Run | None, floor_row: list[str],
                 floor: float | None, context: str) -> str:
    rows = []
    keys = {"serial", "serial-seed", "fanout-jauto", "parallel-16", "parallel-cores", "awsrun"}
    keys |= {r.key for r in runners if "(the cores)" in r.label}
    for r in [x for x in runners if x.key in keys]:
        best = r.series.best()
        if r.skip or not best:
            rows.append([r.label, f"skipped: {r.skip}"] + ["–"] * 6)
            continue
        # The serial reference starts no `aws` process: the floor is not under it.
        vs = fmt(best.wall / floor if floor and not r.key.startswith("serial") else None)
        rows.append([r.label, f"{best.wall:.2f} ({r.series.walls()})", vs, f"{best.cpu:.2f}",
                     f"{best.own_cpu:.2f}", str(best.calls), r.check(), str(best.rc)])
    p = populate.best()
    rows.append(["`aws-sso-util configure populate` (the profiles parallel and awsrun need; apart)",
                 f"{p.wall:.2f} ({populate.walls()})" if p else "–", "–", f"{p.cpu:.2f}" if p else "–",
                 "–", "–", "–", str(p.rc) if p else "–"])
    rows.append([f"one `aws {' '.join(LIST_BUCKETS)}` alone, keys in its environment (its least-CPU run)",
                 fmt(lone.wall if lone else None), "–", fmt(lone.cpu if lone else None), "–", "0", "–", "–"])
    rows.append(floor_row + ["1.00", "–", "–", "–", "–", "–"])
    return ("### With the peers: `aws s3api list-buckets` in every account\n\n" + context
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
    out.append(["peers: fanout (default) within 1.10× the child-CPU floor", f"{fmt(r)}×",
                verdict(None if r is None else r <= 1.10)])
    for key, need, what in (("parallel-16", 1.15, "at least 1.15× faster than GNU parallel -j 16"),
                            ("parallel-cores", 1.0, f"no slower than GNU parallel -j {cores}")):
        p = by[key].series.best()
        r = p.wall / f.wall if p and f and ok and by[key].all_equal() else None
        out.append([f"peers: fanout (default) {what}", f"{fmt(r)}×" if r else by[key].skip or "–",
                    verdict(None if r is None else r >= need)])
    return out


def _jobs_table(rows_of: list[Runner], floor: float | None, floor_row: list[str], processes: int, cores: int,
                context: str) -> str:
    rows = []
    for r in rows_of:
        b = r.series.best()
        if r.skip or not b:
            rows.append([r.label, f"skipped: {r.skip}"] + ["–"] * 10)
            continue
        moto, portal = b.servers_cpu.get("moto"), b.servers_cpu.get("portal")
        busy = (b.cpu + (moto or 0) + (portal or 0)) / b.wall
        rows.append([r.label, f"{b.wall:.2f} ({r.series.walls()})", fmt(ratio(b.wall, floor)), f"{b.cpu:.2f}",
                     f"{b.own_cpu:.2f}", fmt((b.cpu - b.own_cpu) / processes), f"{fmt(moto)} / {fmt(portal)}",
                     f"{busy:.2f}", str(b.calls), f"{b.maxrss_mb:.1f}", r.check(), str(b.rc)])
    rows.append(floor_row + ["1.00"] + ["–"] * 9)
    return (f"### The AWS CLI as the child, at each -j: `aws s3api list-buckets` in every account\n\n{context} "
            f"moto / portal CPU = what the two servers used during the run (/proc/PID/stat), on the same {cores} "
            "cores; cores busy = (CPU + moto + portal) / wall. The GNU parallel row's profiles are written by the "
            "driver (one `[profile acct-<id>]` an account, `sso_session` form); each `aws` it starts fetches its own "
            "credentials.\n\n"
            + table(["runner", "wall s (best; all runs)", "wall ÷ floor", "CPU s (runner + children)", "runner's own "
                     "CPU s", f"CPU s per `aws` process: (CPU − own) / {processes}", "moto / portal CPU s",
                     "cores busy", "portal calls", "peak RSS MB", "`account\\|bucket` lines", "exit"], rows,
                    {1, 2, 3, 4, 5, 7, 8, 9}))


# --- a child that waits on the network ------------------------------------------------------


def network_child(ctx: Ctx) -> list[str]:
    args, t = ctx.args, ctx.tools
    n = ctx.size(args.net_accounts, 300)
    portal = ctx.portal("net", n, default_page=FANOUT_PAGE)
    holders = portal.holders()
    env = portal.env(ctx.base_env)
    fanout = ctx.fanout.path
    bk.timed(fanout_true(ctx.fanout), env, args.timeout)  # untimed: warm inventory
    want = [f"{a}|done" for a in holders]
    portal_only = Runner("net-true", f"`fanout --role {ROLE} -- true`: the portal's time alone",
                         fanout_true(ctx.fanout), env)
    default = Runner("net-default", "fanout (its default -j) `-- sh -c 'sleep 0.5; echo done'`",
                     [fanout, "--role", ROLE, "--", *SLEEP_CHILD], env)
    j16 = Runner("net-j16", "fanout -j 16, same command", [fanout, "--role", ROLE, "-j", "16", "--", *SLEEP_CHILD], env)
    rounds([portal_only, default, j16], args.rounds, lambda _: None,
           lambda r: run_once(r, portal, args.timeout, None if r is portal_only else want))
    portal.stop.close()
    max_conc = help_default(ctx.fanout.help, "--max-concurrency") or DEFAULT_MAX_CONCURRENCY
    pt = portal_only.series.best()
    floor = len(holders) * 0.5 / max_conc + pt.wall
    rows = []
    for r in (default, j16):
        b = r.series.best()
        rows.append([r.label, f"{b.wall:.2f} ({r.series.walls()})", f"{b.wall / floor:.2f}", f"{b.cpu:.2f}", r.check()])
    rows.append([portal_only.label, f"{pt.wall:.2f} ({portal_only.series.walls()})", "–", f"{pt.cpu:.2f}", "–"])
    rows.append([f"**floor**: {len(holders)} × 0.5 s / {max_conc} (max concurrency) + the portal's time",
                 f"{floor:.2f}", "1.00", "–", "–"])
    d, j = default.series.best(), j16.series.best()
    ok = default.all_equal() and j16.all_equal()
    ctx.targets += [
        ["network-bound child: fanout (default) within 1.3× its floor" + stated(n, 300), f"{d.wall / floor:.2f}×",
         verdict(d.wall / floor <= 1.3 if ok else None)],
        ["network-bound child: fanout (default) at least 3× faster than -j 16" + stated(n, 300),
         f"{j.wall / d.wall:.2f}×", verdict(j.wall / d.wall >= 3 if ok else None)],
    ]
    return [f"### A child that waits on the network, {n} accounts\n\n"
            f"fake-portal at {args.latency_ms} ms a call, {n} accounts, {len(holders)} with {ROLE}; inventory cache "
            f"warm; {t.cores} cores. Rounds: {args.rounds}, every other one in reverse order.\n\n"
            + table(["run", "wall s (best; all runs)", "wall ÷ floor", "CPU s", "`account\\|done` lines"], rows,
                    {1, 2, 3})]


# --- child `true` at 400 accounts against the serial reference; fanout's own CPU ------------------


def true_400(ctx: Ctx) -> list[str]:
    args = ctx.args
    n = ctx.size(args.true_accounts, 400)
    portal = ctx.portal("true", n, default_page=FANOUT_PAGE)
    holders = portal.holders()
    env = portal.env(ctx.base_env)
    seeds = references(ctx, env, ctx.scratch, "true-serial", "credentials only")
    kinds = (("cold", "`fanout --role ReadOnly -- true`, cold: no inventory cache, no remembered rate", [], 28),
             ("refresh", "`fanout --refresh …`: the portal asked again, the rest of the cache kept", ["--refresh"],
              32),
             ("cached", "`fanout …` with the inventory cached", [], 55))
    per_build = {b.label: [Runner(f"{b.label}-{k}", label(ctx, b, what), fanout_true(b, *flags), env)
                           for k, what, flags, _ in kinds] for b in ctx.builds}
    succeeded = re.compile(r"(\d+) succeeded")

    def fanout_sequence(b: Build) -> None:
        # The three depend on each other's cache, so they always run in this order.
        shutil.rmtree(portal.cache)
        portal.cache.mkdir()
        for r in per_build[b.label]:
            run = run_once(r, portal, args.timeout, None)
            m = succeeded.findall(run.err)
            got = int(m[-1]) if m else -1
            r.checks.append((run.rc == 0 and got == len(holders), f"{got} of {len(holders)} succeeded, exit {run.rc}"))

    def seed_once() -> None:
        for seed in seeds:
            if not seed.skip:
                run = run_once(seed, portal, args.timeout, None, cwd=str(ctx.scratch))
                seed.checks.append((run.rc == 0, f"exit {run.rc}"))

    for i in range(args.rounds):
        steps = [seed_once] + [lambda b=b: fanout_sequence(b) for b in ctx.ordered(i)]
        for step in steps if i % 2 == 0 else reversed(steps):
            step()
    portal.stop.close()
    s = seeds[0].series.best()
    rows = []
    for seed in seeds:
        b = seed.series.best()
        rows.append([seed.label, f"skipped: {seed.skip}" if seed.skip else f"{b.wall:.2f} ({seed.series.walls()})",
                     fmt(ratio(s.wall if s else None, b.wall if b else None), ".1f") + "×", "–", "–",
                     str(b.calls) if b else "–", seed.check()])
    for b in ctx.builds:
        for r, (kind, _, _, need) in zip(per_build[b.label], kinds):
            best = r.series.best()
            own = r.series.least("own_cpu")
            rows.append([r.label, f"{best.wall:.2f} ({r.series.walls()})",
                         fmt(ratio(s.wall if s else None, best.wall), ".1f") + "×", f"{own:.2f}",
                         f"{own / n * 1000:.2f}", str(best.calls), r.check()])
            ctx.compare(f"true-400: {n} accounts, {kind}, wall s", b, best.wall)
            rr = s.wall / best.wall if s and r.all_equal() and seeds[0].all_equal() else None
            which_build = "" if len(ctx.builds) == 1 else f" ({b.label})"
            ctx.targets.append([f"child `true`, {kind} run ≥ {need}× faster than the serial reference{which_build}"
                                + stated(n, 400),
                                f"{fmt(rr, '.1f')}×", verdict(None if rr is None else rr >= need)])
        own_ms = per_build[b.label][0].series.least("own_cpu") / n * 1000
        ctx.compare(f"true-400: {n} accounts, cold, fanout's own CPU ms an account", b, own_ms)
        which_build = "" if len(ctx.builds) == 1 else f", {b.label}"
        ctx.targets.append([f"fanout's own CPU ≤ 1 ms an account (cold run{which_build})" + stated(n, 400),
                            f"{own_ms:.2f} ms", verdict(own_ms <= 1)])
    return [f"### Child `true`, {n} accounts, against the serial reference\n\n"
            f"fake-portal at {args.latency_ms} ms a call, pages of {FANOUT_PAGE} to every client, {n} accounts, "
            f"{len(holders)} with {ROLE}. Each round: the serial reference, and fanout cold (its cache directory "
            "emptied), then `--refresh`, then cached, in that order (each leaves the cache the next one starts from); "
            f"rounds: {args.rounds}, every other one in reverse order. fanout's own CPU = its process alone, children "
            "excluded, the least of its runs.\n\n"
            + table(["run", "wall s (best; all runs)", "reference ÷ run", "fanout's own CPU s", "ms an account",
                     "portal calls", "check"], rows, {1, 2, 3, 4, 5})]


def own_cpu(ctx: Ctx) -> list[str]:
    args = ctx.args
    n = ctx.size(args.own_cpu_accounts, 1000)
    runs: dict[str, Series] = {b.label: Series() for b in ctx.builds}
    for i in range(args.rounds):
        for b in ctx.ordered(i):
            run, _ = cold_run(ctx, b, n, [])
            runs[b.label].runs.append(run)
            log(f"own-cpu {b.label}: {run.wall:.2f} s, own {run.own_cpu:.2f} s, with children {run.cpu:.2f} s")
    rows = []
    for b in ctx.builds:
        series = runs[b.label]
        ok = series.runs[0].summary()[0]
        children = int(ok) if ok != "?" else 0
        xargs = Series([bk.timed(["bash", "-c", f"seq {children} | xargs -P 16 -n 1 true"], ctx.base_env,
                                 args.timeout) for _ in range(3)])
        own, cpu, base = series.least("own_cpu"), series.least("cpu"), xargs.least("cpu")
        rows.append([label(ctx, b, "defaults (-j auto), cold inventory cache"), str(n), str(children),
                     f"{series.least('wall'):.2f}", f"{own:.2f}", f"**{own / n * 1000:.2f}**", f"{cpu:.2f}",
                     f"{base:.2f}", f"{(cpu - base) / n * 1000:.2f}", " / ".join(series.runs[0].summary())])
        ctx.compare(f"own-cpu: {n} accounts, fanout's own CPU ms an account", b, own / n * 1000)
        which_build = "" if len(ctx.builds) == 1 else f", {b.label}"
        ctx.targets.append([f"fanout's own CPU ≤ 1 ms an account ({n} accounts, child `true`{which_build})",
                            f"{own / n * 1000:.2f} ms "
                            f"(by subtraction: {(cpu - base) / n * 1000:.2f} ms)", verdict(own / n * 1000 <= 1)])
    return [f"### fanout's own CPU an account, child `true`, {n} accounts\n\n"
            f"fake-portal at {args.latency_ms} ms a call, a fresh portal and a cold inventory cache each run; every "
            f"figure is the least of {args.rounds} runs, each column on its own. fanout's own CPU = user+sys of "
            "fanout's process alone, all its threads, its children excluded (/proc/PID/stat as it exits; 10 ms "
            "ticks). CPU with children = fanout and its `true` children (wait4). Cross-check by subtraction: (CPU "
            "with children − the CPU of as many `true` started by `seq N | xargs -P 16 -n 1 true`) / accounts; that "
            "baseline includes xargs's own cost of starting them. Per account = over all accounts, skipped ones "
            "included.\n\n"
            + table(["run", "accounts", "`true` children", "wall s", "fanout's own CPU s",
                     "**fanout's own CPU, ms an account**", "CPU s with children", "CPU s of as many `true` via xargs",
                     "by subtraction, ms an account", "succeeded / failed / skipped"], rows, {1, 2, 3, 4, 5, 6, 7, 8})]


ORG_ROLE_NAME = "OrgReader"
ORG_CALL = re.compile(r'organizations call operation="(\w+)"')


def org_calls(b: Build, argv: list[str], env: dict[str, str], timeout: float) -> dict[str, int] | None:
    """The Organizations calls one run at `-vv` made, by operation (its `organizations call`
    lines); `None` if it failed."""
    run = bk.timed([argv[0], "-vv", *argv[1:]], env, timeout, discard_stdout=True)
    if run.rc != 0:
        log(f"{b.label} org -vv: exit {run.rc}: {run.tail()}")
        return None
    ops: dict[str, int] = {}
    for op in ORG_CALL.findall(run.err):
        ops[op] = ops.get(op, 0) + 1
    return ops


def org(ctx: Ctx) -> list[str]:
    """`--org-role` against moto's Organizations: a run in one top OU, cold and cached."""
    args = ctx.args
    n = ctx.size(args.org_accounts, 1000)
    top, per_top = 5, 10
    heading = f"### The organization from Organizations: `--org-role --ou`, {n} accounts, cold and cached"
    if not shutil.which("moto_server"):
        return [f"{heading}\n\nskipped: moto_server is not installed (pip install 'moto[server]')"]
    moto = bk.start_moto(ctx.stack, ctx.scratch, ctx.base_env)
    made = bk.make_organization(moto.url, n, top, per_top)
    management = made["management"]
    listing = [{"accountId": management, "accountName": "management", "roles": [ORG_ROLE_NAME, ROLE]}]
    listing += [{"accountId": i, "accountName": name, "roles": [ROLE]} for i, name, _ in made["accounts"]]
    accounts_file = ctx.scratch / "org-accounts.json"
    accounts_file.write_text(json.dumps(listing))
    portal = ctx.portal("org", n + 1, accounts_file=accounts_file)
    env = dict(portal.env(ctx.base_env), AWS_ENDPOINT_URL_ORGANIZATIONS=moto.url)
    in_scope = sum(1 for _, _, path in made["accounts"] if path.startswith("Root/T0/"))
    # Organizations' pages hold 20: each OU costs one page per 20 of its accounts, an
    # empty OU (a top one) its one empty page; the root holds the management account.
    per_ou: dict[str, int] = {}
    for _, _, path in made["accounts"]:
        per_ou[path] = per_ou.get(path, 0) + 1
    page_bound = sum(-(-k // 20) for k in per_ou.values()) + top + 1

    def argv(b: Build) -> list[str]:
        return [b.path, "--org-role", f"{management}:{ORG_ROLE_NAME}", "--ou", "Root/T0", "--role", ROLE,
                "--", "true"]

    runners = {b.label: (Runner(f"{b.label}-org-cold", label(ctx, b, "cold: no organization cache"), argv(b), env),
                         Runner(f"{b.label}-org-cached", label(ctx, b, "cached organization"), argv(b), env))
               for b in ctx.builds}
    succeeded = re.compile(r"(\d+) succeeded")

    def empty_cache() -> None:
        shutil.rmtree(portal.cache)
        portal.cache.mkdir()

    for i in range(args.rounds):
        for b in ctx.ordered(i):
            empty_cache()
            for r in runners[b.label]:
                run = run_once(r, portal, args.timeout, None)
                got = [int(x) for x in succeeded.findall(run.err)]
                r.checks.append((run.rc == 0 and got[-1:] == [in_scope],
                                 f"{got[-1] if got else '?'} of {in_scope} succeeded, exit {run.rc}"))
    rows = []
    for b in ctx.builds:
        # The calls, counted from one more cold and cached pair at -vv (not timed: it logs every call).
        empty_cache()
        counts = [org_calls(b, argv(b), env, args.timeout) for _ in range(2)]
        for r, ops in zip(runners[b.label], counts):
            best = r.series.best()
            by_op = "failed" if ops is None else ", ".join(f"{k} {v}" for k, v in sorted(ops.items())) or "none"
            rows.append([r.label, f"{best.wall:.2f} ({r.series.walls()})", f"{r.series.least('own_cpu'):.2f}",
                         "–" if ops is None else str(sum(ops.values())), by_op, r.check()])
            ctx.compare(f"org: {n} accounts, {r.key.split('-org-')[1]}, wall s", b, best.wall)
        cold, warm = counts
        which = "" if len(ctx.builds) == 1 else f" ({b.label})"
        pages = None if cold is None else cold.get("ListAccountsForParent", 0)
        tags = None if cold is None else cold.get("ListTagsForResource", 0)
        ctx.targets += [
            [f"cold: ListAccountsForParent pages ≤ one per 20 accounts of each OU ({page_bound}){which}",
             str(pages), verdict(None if pages is None else pages <= page_bound)],
            [f"cold: one ListTagsForResource per account ({n + 1}){which}", str(tags),
             verdict(None if tags is None else tags == n + 1)],
            [f"cached: no Organizations call{which}", "–" if warm is None else str(sum(warm.values())),
             verdict(None if warm is None else not warm)],
        ]
    return [f"{heading}\n\n"
            f"moto's Organizations on loopback (`AWS_ENDPOINT_URL_ORGANIZATIONS`), built with boto3: {n} tagged member "
            f"accounts spread over {top * per_top} OUs, {per_top} under each of {top} top OUs, the management account "
            f"at the root. fake-portal ({args.latency_ms} ms a call) lists the same accounts (`--accounts-file`), the "
            f"management account with `{ORG_ROLE_NAME}`. Each round: the cache emptied, then `fanout --org-role … --ou "
            f"Root/T0 --role {ROLE} -- true` ({in_scope} accounts) cold and again cached; rounds: {args.rounds}. The "
            "Organizations calls are counted from one more cold and cached pair at `-vv` (its `organizations call` "
            "lines), not timed.\n\n"
            + table(["run", "wall s (best; all runs)", "fanout's own CPU s", "Organizations calls", "by operation",
                     "check"], rows, {1, 2, 3})]


# --- the targets, and the report ----------------------------------------------------------------------


TARGETS: dict[str, tuple[str, Callable[[Ctx], list[str]] | None]] = {
    "scale": ("`fanout -- true` at each of --sizes accounts, default -j and -j 1: wall, portal calls, peak RSS",
              scale),
    "rate-limit": ("the same against a portal answering 429 past --rps requests/s: wall against the limit's floor",
                   rate_limit),
    "throughput": ("200 children × 50,000 lines through fanout, through `xargs | cat`, `cat` and GNU parallel --tag",
                   throughput),
    "serial": ("benches/serial_reference.py (the article's algorithm, serial) against fanout at each size",
               serial),
    "article": ("the article's S3 job: the serial reference, fanout -- aws, fanout credentials | consumer.py", None),
    "peers": ("`aws s3api list-buckets` in every account by fanout, GNU parallel and awsrun; the child-CPU floor",
              None),
    "aws-jobs": ("the AWS CLI as the child at -j auto, 8, 4, 2 and GNU parallel -j 16; moto's and the portal's CPU",
                 None),
    "network-child": ("a child that waits 0.5 s, 300 accounts: fanout's default -j against -j 16 and the floor",
                      network_child),
    "true-400": ("child `true`, 400 accounts: cold, --refresh and cached against the serial reference; own CPU",
                 true_400),
    "own-cpu": ("fanout's own CPU an account, child `true`, 1,000 accounts, cold, with a cross-check", own_cpu),
    "org": ("`--org-role --ou` against moto's Organizations, 1,000 accounts in 50 OUs: cold and cached, its calls",
            org),
}
MOTO_TARGETS = {"article", "peers", "aws-jobs"}


def targets_help() -> str:
    width = max(map(len, TARGETS))
    return "targets:\n" + "\n".join(f"  {name:<{width}}  {what}" for name, (what, _) in TARGETS.items()) + \
        f"\n  {'all':<{width}}  every target above, in this order"


def parse_args() -> argparse.Namespace:
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(prog="driver.py", description=doc[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=targets_help() + "\n\n" + "\n\n".join(doc[2:]))
    p.add_argument("targets", nargs="+", metavar="TARGET", help="what to measure (listed below)")
    p.add_argument("--fanout", metavar="PATH", action="append", default=None,
                   help="a fanout binary to measure; twice or more compares builds (default: $FANOUT_BIN, "
                        "else cargo build --release)")
    p.add_argument("--portal", metavar="PATH",
                   help="the fake-portal binary (default: $FAKE_PORTAL_BIN, else cargo build --release)")
    p.add_argument("--accounts", metavar="N", type=int,
                   help="accounts for every target (a trial at a small size); each "
                   "target's own option below wins")
    p.add_argument("--sizes", metavar="LIST", help="scale: account counts, comma-separated (default 100,1000,5000)")
    p.add_argument("--rps-sizes", metavar="LIST", help="rate-limit: account counts (default 100,1000)")
    p.add_argument("--serial-sizes", metavar="LIST", help="serial: account counts (default 100,1000)")
    p.add_argument("--net-accounts", metavar="N", type=int, help="network-child: accounts (default 300)")
    p.add_argument("--true-accounts", metavar="N", type=int, help="true-400: accounts (default 400)")
    p.add_argument("--org-accounts", metavar="N", type=int, help="org: member accounts (default 1000)")
    p.add_argument("--own-cpu-accounts", metavar="N", type=int, help="own-cpu: accounts (default 1000)")
    p.add_argument("--tp-accounts", metavar="N", type=int, help="throughput: children (default 200)")
    p.add_argument("--tp-lines", metavar="N", type=int, default=50_000,
                   help="throughput: lines a child prints (default 50000)")
    p.add_argument("--tp-latency-ms", metavar="MS", type=int, default=0, help="throughput: portal latency (default 0)")
    p.add_argument("--rps", metavar="N", type=float, default=20,
                   help="rate-limit: the portal's requests a second (default 20)")
    p.add_argument("--rounds", metavar="N", type=int, default=3, help="runs of each row (default 3)")
    p.add_argument("--latency-ms", metavar="MS", type=int, default=30, help="portal latency a call (default 30)")
    p.add_argument("--buckets", metavar="N", type=int, default=3, help="most buckets in one account (default 3)")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=1800,
                   help="seconds one run may take (default 1800)")
    p.add_argument("--cpus", metavar="LIST", help="run everything on these CPUs (a taskset-style list: 0,1 or 0-1)")
    p.add_argument("--peers-bin", metavar="DIR", default="~/.cache/fanout-bench/venv-peers/bin",
                   help="where awsrun and aws-sso-util are when not on PATH")
    p.add_argument("--seed-script", metavar="PATH",
                   help="also run an outside copy of the article's script beside the serial reference "
                        "(optional; e.g. ../shared/seed/seed_script.py)")
    p.add_argument("--doc", action="store_true", help="also append the report to docs/benchmarks.md")
    args = p.parse_args()
    names = [n for t in args.targets for n in (TARGETS if t == "all" else [t])]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        p.error(f"unknown target(s) {', '.join(unknown)}\n\n{targets_help()}")
    args.targets = list(dict.fromkeys(names))
    return args


def cpu_list(spec: str) -> set[int]:
    cpus = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def base_environment(tools: Tools) -> dict[str, str]:
    """Nothing from the caller's AWS or fanout setup may reach a runner."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "FANOUT_")) and k not in ("XDG_CACHE_HOME", "AWSRUN_CONFIG")}
    if tools.aws:
        env["PATH"] = os.path.dirname(tools.aws) + os.pathsep + env.get("PATH", "")
    env["AWS_DEFAULT_REGION"] = REGION
    return env


def comparison(ctx: Ctx) -> str:
    first = ctx.builds[0].label
    rows = []
    for row, figures in ctx.compared.items():
        base = figures.get(first)
        cells = [fmt(figures.get(b.label)) for b in ctx.builds]
        later = [figures.get(b.label) for b in ctx.builds[1:]]
        ratios = [fmt(ratio(x, base)) for x in later]
        worst = max((ratio(x, base) or 0 for x in later), default=0)
        rows.append([row, *cells, *ratios, verdict(worst <= 1.05 if base else None)])
    builds = "; ".join(f"{b.label} = `{b.source}`" for b in ctx.builds)
    return ("### Before and after: the same rows for each build\n\n"
            f"{builds}. Measured in one sitting, the builds interleaved (every other round in reverse order); a "
            f"figure is the row's best (least) over its runs. Lower is better in every row; the verdict is that no "
            f"build is more than 5% above {first}.\n\n"
            + table(["row", *[b.label for b in ctx.builds], *[f"{b.label} ÷ {first}" for b in ctx.builds[1:]],
                     "within 5%"], rows, set(range(1, 2 * len(ctx.builds)))))


def main() -> int:
    args = parse_args()
    sources = args.fanout or ([os.environ["FANOUT_BIN"]] if os.environ.get("FANOUT_BIN") else None)
    if args.doc and sources and any("/debug/" in os.path.realpath(s) for s in sources):
        raise SystemExit("driver: --doc takes figures from release builds only (cargo build --release; FANOUT_BIN)")
    if args.cpus:
        os.sched_setaffinity(0, cpu_list(args.cpus))  # inherited by every server and runner
    started = time.monotonic()
    load = os.getloadavg()
    sections: list[str] = []
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fanout-bench.")))
        sources = sources or [bk.cargo_build("fanout", "fanout")]
        labels = ["fanout"] if len(sources) == 1 else [chr(ord("A") + i) for i in range(len(sources))]
        builds = [bk.copy_build(lab, src, scratch) for lab, src in zip(labels, sources)]
        tools = find_tools(args)
        ctx = Ctx(args, stack, scratch, builds, bk.portal_binary(args.portal), tools, base_environment(tools))
        log(f"fanout {', '.join(b.source for b in builds)}, {tools.cores} cores, aws {tools.aws}, parallel "
            f"{tools.parallel}, awsrun {tools.awsrun}, aws-sso-util {tools.sso_util}; load {load[0]:.2f}")
        moto_done = False
        for name in args.targets:
            if name in MOTO_TARGETS:
                if not moto_done:  # one moto and one portal for all three, their runs shared
                    sections += moto_tables(ctx, MOTO_TARGETS & set(args.targets))
                    moto_done = True
                continue
            log(f"target {name}")
            sections += TARGETS[name][1](ctx)
        took = time.monotonic() - started
        header = "\n".join([
            f"## Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
            f"(benches/driver.py {' '.join(args.targets)})",
            "",
            f"- command: `{bk.exact_command()}`",
            f"- machine: {bk.machine(tools.cores)}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            *[f"- {b.label}: {b.version()}" for b in builds],
            f"- worktree at git {bk.git_rev()}",
            f"- took {took:.0f} s; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        ])
    parts = [header, *sections]
    if len(ctx.builds) > 1 and ctx.compared:
        parts.append(comparison(ctx))
    parts.append("### Targets\n\n" + table(["target", "measured", "verdict"], ctx.targets))
    report = "\n\n".join(parts) + "\n"
    print(report)
    if args.doc:
        with (ROOT / "docs/benchmarks.md").open("a") as doc:
            doc.write("\n" + report)
        log("appended to docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
