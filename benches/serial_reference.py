#!/usr/bin/env python3
"""The article's algorithm, serial: what fanout is compared with.

    START_URL=https://corp.awsapps.com/start ROLE_NAME=ReadOnly OUTPUT_FILE=creds.json \\
        AWS_ENDPOINT_URL_SSO=http://127.0.0.1:PORT python3 benches/serial_reference.py

The seed article's step 5 and its ListBuckets loop, written again in the project so that
the benchmarks and tests/export.rs need nothing outside the repository. It does what the
article's script does, in the same order and one call at a time, with boto3's SSO client:

1. read the access token from the first file in ~/.aws/sso/cache whose startUrl is START_URL;
2. list every account (ListAccounts, boto3's paginator: the portal's default page);
3. list each account's roles (ListAccountRoles), one account after another;
4. fetch the credentials of ROLE_NAME in each account that has it (GetRoleCredentials),
   one account after another;
5. write the accounts to OUTPUT_FILE as the article's JSON: a list of
   {accountId, accountName, emailAddress, roles: {name: {} | roleCredentials}}, every account
   kept, a role without credentials as {}, ROLE_NAME's as GetRoleCredentials returned it
   (accessKeyId, secretAccessKey, sessionToken, expiration);
6. with RUN_LIST_BUCKETS=1, list each account's S3 buckets with its keys, serially, and
   print `account|bucket` a line.

Environment: START_URL (default https://corp.awsapps.com/start, what `fake-portal --home`
writes), ROLE_NAME (ReadOnly), OUTPUT_FILE (sso_role_credentials.json), RUN_LIST_BUCKETS.
Endpoints and region come from the environment as for any boto3 program
(AWS_ENDPOINT_URL_SSO, AWS_ENDPOINT_URL_S3, AWS_DEFAULT_REGION). Needs boto3.
"""

import json
import os
import sys
from pathlib import Path

import boto3

START_URL = os.environ.get("START_URL", "https://corp.awsapps.com/start")
ROLE_NAME = os.environ.get("ROLE_NAME", "ReadOnly")
OUTPUT_FILE = os.environ.get("OUTPUT_FILE", "sso_role_credentials.json")
RUN_LIST_BUCKETS = os.environ.get("RUN_LIST_BUCKETS") == "1"


def access_token(start_url: str) -> str:
    """The token `aws sso login` cached for start_url (the article scans the cache files)."""
    cache = Path.home() / ".aws/sso/cache"
    for path in sorted(p for p in cache.iterdir() if p.is_file()):
        with path.open(encoding="utf-8") as fp:
            cached = json.load(fp)
        if cached.get("startUrl") == start_url:
            return cached["accessToken"]
    raise SystemExit(f"serial_reference: no cached SSO token for {start_url} in {cache}")


def accounts_with_roles(sso, token: str) -> list[dict]:
    """Every account, then every account's roles, one call after another."""
    accounts = [account for page in sso.get_paginator("list_accounts").paginate(accessToken=token)
                for account in page["accountList"]]
    roles = sso.get_paginator("list_account_roles")
    for account in accounts:
        account["roles"] = {role["roleName"]: {}
                            for page in roles.paginate(accessToken=token, accountId=account["accountId"])
                            for role in page["roleList"]}
    return accounts


def fetch_credentials(sso, token: str, accounts: list[dict], role: str) -> None:
    """ROLE's credentials into each account that has it, one account after another."""
    for account in accounts:
        if role in account["roles"]:
            response = sso.get_role_credentials(roleName=role, accountId=account["accountId"], accessToken=token)
            account["roles"][role] = response["roleCredentials"]


def list_buckets(accounts: list[dict], role: str) -> None:
    """Each account's buckets with its own keys, serially, as `account|bucket` lines."""
    for account in accounts:
        if role in account["roles"]:
            creds = account["roles"][role]
            s3 = boto3.client("s3", aws_access_key_id=creds["accessKeyId"],
                              aws_secret_access_key=creds["secretAccessKey"],
                              aws_session_token=creds["sessionToken"])
            for bucket in s3.list_buckets()["Buckets"]:
                print(account["accountId"] + "|" + bucket["Name"])


def main() -> int:
    sso = boto3.client("sso")
    token = access_token(START_URL)
    accounts = accounts_with_roles(sso, token)
    fetch_credentials(sso, token, accounts, ROLE_NAME)
    with open(OUTPUT_FILE, "w", encoding="utf-8") as fp:
        json.dump(accounts, fp)
    if RUN_LIST_BUCKETS:
        list_buckets(accounts, ROLE_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
