"""Infisical's Python SDK (PyPI infisicalsdk) against Latchkey, unchanged:
list, get, create, update and delete, with a machine identity's access token,
with a service token, and after a Universal Auth login. Run by
tests/infisical/run.sh (make test).

    python python_sdk.py HOST PROJECT_ID IDENTITY_TOKEN SERVICE_TOKEN CLIENT_ID CLIENT_SECRET
"""
import sys

from infisical_sdk import InfisicalSDKClient
from infisical_sdk.infisical_requests import APIError

host, project, identity_token, service_token, client_id, client_secret = sys.argv[1:7]


def check(cond, what):
    if not cond:
        raise SystemExit(f"python infisicalsdk: {what}")



def universal_auth_client():
    """A client logged in with Universal Auth, as the SDK's docs show."""
    client = InfisicalSDKClient(host=host, cache_ttl=None)
    login = client.auth.universal_auth.login(client_id=client_id, client_secret=client_secret)
    check(login.tokenType == "Bearer" and login.expiresIn > 0 and login.accessTokenMaxTTL > 0,
          f"universal auth login {login}")
    check(login.accessToken.count(".") == 2, "the access token is a JWT")
    try:
        InfisicalSDKClient(host=host, cache_ttl=None).auth.universal_auth.login(
            client_id=client_id, client_secret="0" * 64)
        check(False, "a wrong client secret logged in")
    except APIError as e:
        check(e.status_code == 401, f"wrong client secret: {e.status_code} {e}")
    return client


for label, token, path in [
    ("identity token", identity_token, "/sdk/python/identity"),
    ("service token", service_token, "/sdk/python/service"),
    ("universal auth login", None, "/sdk/python/universal-auth"),
]:
    if token is None:
        client = universal_auth_client()
    else:
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
