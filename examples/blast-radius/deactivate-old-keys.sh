#!/usr/bin/env bash
# Deactivate IAM user access keys created before a date, in the account whose credentials
# fanout put in the environment (the article's second example). DRY_RUN=1 only prints.
#
#   fanout --role Admin --canary 2 --max-failures 3 -- ./deactivate-old-keys.sh 2024-01-01
set -euo pipefail
cutoff=${1:?usage: deactivate-old-keys.sh YYYY-MM-DD}
for user in $(aws iam list-users --query 'Users[].UserName' --output text); do
    aws iam list-access-keys --user-name "$user" \
        --query "AccessKeyMetadata[?Status=='Active' && CreateDate<'$cutoff'].AccessKeyId" --output text |
        tr '\t' '\n' | while read -r key; do
            [ -n "$key" ] || continue
            if [ "${DRY_RUN:-0}" = 1 ]; then
                echo "would deactivate $key of $user"
            else
                aws iam update-access-key --user-name "$user" --access-key-id "$key" --status Inactive
                echo "deactivated $key of $user"
            fi
        done
done
