// Infisical's Node SDK (npm @infisical/sdk) against Latchkey, unchanged:
// list, get, create, update and delete with a machine identity's access
// token, with a service token, and after a Universal Auth login and renew.
// Run by tests/infisical/run.sh (make test).
//
//   node node_sdk.mjs HOST PROJECT_ID IDENTITY_TOKEN SERVICE_TOKEN CLIENT_ID CLIENT_SECRET
import { InfisicalSDK } from "@infisical/sdk";

const [host, projectId, identityToken, serviceToken, clientId, clientSecret] = process.argv.slice(2);

function check(cond, what) {
  if (!cond) {
    console.error(`node @infisical/sdk: ${what}`);
    process.exit(1);
  }
}

for (const [label, token, secretPath] of [
  ["identity token", identityToken, "/sdk/node/identity"],
  ["service token", serviceToken, "/sdk/node/service"],
  ["universal auth login", null, "/sdk/node/universal-auth"],
]) {
  const sdk = new InfisicalSDK({ siteUrl: host });
  if (token === null) {
    // As the SDK's docs show: log in, then renew the access token.
    await sdk.auth().universalAuth.login({ clientId, clientSecret });
    const first = sdk.auth().getAccessToken();
    check(first && first.split(".").length === 3, `${label}: login gave ${first}`);
    await sdk.auth().universalAuth.renew();
    check(sdk.auth().getAccessToken(), `${label}: renew kept no token`);
  } else {
    sdk.auth().accessToken(token);
  }
  const secrets = sdk.secrets();
  const where = { projectId, environment: "dev", secretPath };
  const created = await secrets.createSecret("API_KEY", { ...where, secretValue: "sk_1" });
  check(created.secret.secretKey === "API_KEY" && created.secret.version === 1, `${label}: create ${JSON.stringify(created)}`);
  const updated = await secrets.updateSecret("API_KEY", { ...where, secretValue: "sk_2" });
  check(updated.secret.version === 2, `${label}: update ${JSON.stringify(updated)}`);
  const got = await secrets.getSecret({ ...where, secretName: "API_KEY" });
  check(got.secretValue === "sk_2", `${label}: get ${JSON.stringify(got)}`);
  const listed = await secrets.listSecrets(where);
  check(listed.secrets.length === 1 && listed.secrets[0].secretValue === "sk_2", `${label}: list ${JSON.stringify(listed)}`);
  await secrets.deleteSecret("API_KEY", where);
  let status;
  try {
    await secrets.getSecret({ ...where, secretName: "API_KEY" });
  } catch (e) {
    status = String(e.message);
  }
  check(status && status.includes("[StatusCode=404]"), `${label}: after delete: ${status}`);
  console.log(`node @infisical/sdk, ${label}: create, update, get, list, delete, 404 ok`);
}
