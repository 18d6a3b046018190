"""Builds an organization in moto's Organizations, for tests/org_role.rs.

    python3 tests/moto_org.py ENDPOINT

Root/Workloads/Prod/Eu nested OUs, a Dev OU and a Sandbox OU, four tagged member
accounts (one of them closed, which moto shows as SUSPENDED) and the management account
itself at the root. Prints the ids as one JSON object: {"root": ..., "management": ...,
"ous": {name: id}, "accounts": {name: id}}.
"""

import json
import sys

import boto3


def main(endpoint):
    org = boto3.client(
        "organizations",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    management = org.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
    root = org.list_roots()["Roots"][0]["Id"]

    def ou(name, parent):
        return org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]

    ous = {"Workloads": ou("Workloads", root)}
    ous["Prod"] = ou("Prod", ous["Workloads"])
    ous["Eu"] = ou("Eu", ous["Prod"])
    ous["Dev"] = ou("Dev", ous["Workloads"])
    ous["Sandbox"] = ou("Sandbox", root)

    accounts = {}
    for name, parent, tags in [
        ("pay-prod", "Prod", {"env": "prod", "team": "payments"}),
        ("search-prod-eu", "Eu", {"env": "prod-eu", "team": "search"}),
        ("pay-dev", "Dev", {"env": "dev", "team": "payments"}),
        ("old-prod", "Prod", {"env": "prod"}),
    ]:
        status = org.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        account = status["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ous[parent])
        org.tag_resource(ResourceId=account, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        accounts[name] = account
    org.close_account(AccountId=accounts["old-prod"])
    print(json.dumps({"root": root, "management": management, "ous": ous, "accounts": accounts}))


if __name__ == "__main__":
    main(sys.argv[1])
