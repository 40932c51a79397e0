"""Infisical's Python SDK (PyPI infisicalsdk) against Latchkey, unchanged:
list, get, create, update and delete, with a machine identity's access token
and with a service token. Run by tests/infisical/run.sh (make test).

    python python_sdk.py HOST PROJECT_ID IDENTITY_TOKEN SERVICE_TOKEN
"""
import sys

from infisical_sdk import InfisicalSDKClient
from infisical_sdk.infisical_requests import APIError

host, project, identity_token, service_token = sys.argv[1:5]


def check(cond, what):
    if not cond:
        raise SystemExit(f"python infisicalsdk: {what}")


for label, token, path in [
    ("identity token", identity_token, "/sdk/python/identity"),
    ("service token", service_token, "/sdk/python/service"),
]:
    client = InfisicalSDKClient(host=host, token=token, cache_ttl=None)
    secrets = client.secrets
    created = secrets.create_secret_by_name(
        secret_name="DB_URL", project_id=project, secret_path=path,
        environment_slug="dev", secret_value="postgres://one")
    check(created.secretKey == "DB_URL" and created.version == 1, f"{label}: create {created}")
    updated = secrets.update_secret_by_name(
        current_secret_name="DB_URL", project_id=project, secret_path=path,
        environment_slug="dev", secret_value="postgres://two")
    check(updated.version == 2, f"{label}: update {updated}")
    got = secrets.get_secret_by_name(
        secret_name="DB_URL", project_id=project, environment_slug="dev", secret_path=path)
    check(got.secretValue == "postgres://two", f"{label}: get {got}")
    listed = secrets.list_secrets(project_id=project, environment_slug="dev", secret_path=path)
    check([(s.secretKey, s.secretValue) for s in listed.secrets] == [("DB_URL", "postgres://two")],
          f"{label}: list {listed}")
    deleted = secrets.delete_secret_by_name(
        secret_name="DB_URL", project_id=project, environment_slug="dev", secret_path=path)
    check(deleted.secretKey == "DB_URL", f"{label}: delete {deleted}")
    try:
        secrets.get_secret_by_name(
            secret_name="DB_URL", project_id=project, environment_slug="dev", secret_path=path)
        check(False, f"{label}: a deleted secret was read")
    except APIError as e:
        check(e.status_code == 404, f"{label}: after delete {e.status_code} {e}")
    # A read outside the token's scopes is the SDK's APIError with a 403.
    try:
        secrets.list_secrets(project_id=project, environment_slug="prod", secret_path="/")
        check(False, f"{label}: a read outside the scopes was allowed")
    except APIError as e:
        check(e.status_code == 403 and "prod" in str(e), f"{label}: outside scopes {e.status_code} {e}")
    print(f"python infisicalsdk, {label}: create, update, get, list, delete, 404, 403 ok")
