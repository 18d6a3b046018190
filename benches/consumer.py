#!/usr/bin/env python3
"""List every account's S3 buckets from `fanout credentials --format jsonl` on stdin.

    fanout credentials --role ReadOnly --format jsonl | python3 benches/consumer.py

Each stdin line is one account, {accountId, accountName, emailAddress, roles: {ROLE:
{accessKeyId, secretAccessKey, sessionToken, expiration}}}, written as soon as fanout has its
credentials. A line is handed to a thread pool the moment it is read, so the first accounts
are being listed while fanout is still fetching the others: that overlap is the point of
jsonl over the article's one JSON file. Prints `account|bucket`, one bucket a line, like the
article's script; exits 1 if any account failed (each named on stderr, never its keys).

Needs boto3. The S3 endpoint and region come from the environment as usual
(AWS_ENDPOINT_URL_S3, AWS_DEFAULT_REGION), which is how the benchmark points it at moto.
"""

import argparse
import json
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import boto3

_session = boto3.session.Session()
_session_lock = threading.Lock()
_print_lock = threading.Lock()


def s3_client(creds: dict):
    """An S3 client for one account's keys, from one shared Session: it loads the S3
    model once (a Session per thread loads it per thread, and that CPU, under the GIL, was
    most of this consumer's time). A Session is not thread-safe to create clients from, so
    creating one is serialised; the clients themselves are thread-safe."""
    with _session_lock:
        return _session.client(
            "s3",
            aws_access_key_id=creds["accessKeyId"],
            aws_secret_access_key=creds["secretAccessKey"],
            aws_session_token=creds["sessionToken"],
        )


def list_buckets(account_id: str, creds: dict) -> None:
    names = [bucket["Name"] for bucket in s3_client(creds).list_buckets()["Buckets"]]
    text = "".join(f"{account_id}|{name}\n" for name in names)
    with _print_lock:  # one account's lines together, never interleaved with another's
        sys.stdout.write(text)
        sys.stdout.flush()


def role_credentials(record: dict, role: str | None) -> dict:
    """The credentials of --role, or of the only role the line holds."""
    roles = record["roles"]
    if role is None:
        if len(roles) != 1:
            raise ValueError(f"the line holds roles {sorted(roles)}; pick one with --role")
        return next(iter(roles.values()))
    return roles[role]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", help="the role whose credentials to use (default: the only one)")
    parser.add_argument("--workers", type=int, default=16, help="threads listing at once (default 16)")
    args = parser.parse_args()

    pending: list[tuple[str, Future]] = []
    failed = 0
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        # readline, not a buffered iterator: each line is acted on the moment it arrives.
        for line in iter(sys.stdin.readline, ""):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                account_id = record["accountId"]
                creds = role_credentials(record, args.role)
            except (ValueError, KeyError, TypeError) as exc:
                print(f"consumer: skipping a line that is not an account's credentials: {exc}",
                      file=sys.stderr)
                failed += 1
                continue
            pending.append((account_id, pool.submit(list_buckets, account_id, creds)))
        for account_id, future in pending:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001  (report every account, keep going)
                print(f"consumer: {account_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
