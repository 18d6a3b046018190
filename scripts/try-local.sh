#!/usr/bin/env bash
# Try fanout with no AWS account: start the project's emulated IAM Identity Center
# portal on 127.0.0.1, lay out a throwaway HOME that is "logged in" to it, and run
# fanout there. Nothing outside the temporary directory is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
fanout=${FANOUT:-fanout}
command -v "$fanout" >/dev/null || { echo "fanout is not on PATH; run: cargo install --locked --path ." >&2; exit 1; }
cargo build --quiet --locked -p fake-portal
scratch=$(mktemp -d)
trap 'kill "$portal_pid" 2>/dev/null || true; rm -rf "$scratch"' EXIT
./target/debug/fake-portal --accounts 24 --latency-ms 20 --home "$scratch/home" >"$scratch/portal.out" &
portal_pid=$!
until grep -q '^PORT' "$scratch/portal.out" 2>/dev/null; do sleep 0.1; done
export HOME="$scratch/home" AWS_CONFIG_FILE="$scratch/home/.aws/config"

run() { printf '\n$ %s\n' "$*"; "$@"; }
# The profile `corp` names a [services] block that points the SSO portal at loopback.
run "$fanout" --profile corp accounts --match '*-dev'
run "$fanout" --profile corp --role ReadOnly --match '*-dev' --dry-run -- aws s3api list-buckets --region '{region}'
# --yes: on a terminal, a run in more than 10 accounts would ask first (--confirm-above).
# The fake portal's access key ids are ASIA followed by the account id, so they all begin
# ASIA1000: the last 8 characters are the part that differs, and the rest names the account.
run "$fanout" --profile corp --role ReadOnly,AdministratorAccess --yes -- \
    sh -c 'k=$AWS_ACCESS_KEY_ID; echo "hello from $FANOUT_ACCOUNT_NAME as $FANOUT_ROLE, key …${k#"${k%????????}"} (encodes account ${k#ASIA})"'
