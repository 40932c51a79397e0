//! The request sequences of Infisical's Go CLI (three eras) and Kubernetes
//! operator, which cannot be installed here, replayed from
//! `tests/infisical/replays.json` (derived from their sources, see
//! `INFISICAL-COMPAT.md`), with each answer checked as their Go structs
//! decode it: `Content-Type: application/json` (resty decodes nothing
//! else), integer `version`, `tags` as objects, RFC 3339 times, the `ETag`
//! and `304` the operator polls with.

use std::collections::HashMap;

use base64::Engine as _;
use latchkey_domain::crypto::{Sealed, WireKey};
use latchkey_test_support::{Backend, Stack};
use serde_json::Value;

use crate::http_api::{Reply, http_to};

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
}

/// One raw secret as the CLI's `GetSecretsV4Response` / go-sdk decode it.
fn check_go_secret(s: &Value, context: &str) {
    for field in [
        "_id",
        "workspace",
        "type",
        "environment",
        "secretKey",
        "secretValue",
        "secretComment",
        "secretPath",
    ] {
        assert!(s[field].is_string(), "{context}: {field} in {s}");
    }
    assert!(s["version"].is_u64(), "{context}: integer version in {s}");
    assert!(s["skipMultilineEncoding"].is_boolean(), "{context}: {s}");
    let tags = s["tags"].as_array().unwrap();
    assert!(
        tags.iter().all(Value::is_object),
        "{context}: tags as objects"
    );
}

fn json_of(reply: &Reply, context: &str) -> Value {
    assert_eq!(
        reply.status,
        200,
        "{context}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{context}: resty decodes only JSON content types"
    );
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infisical_cli_and_operator_request_sequences_replay_against_latchkey() {
    let fixtures: Value = serde_json::from_str(include_str!("../infisical/replays.json")).unwrap();
    let stack = Stack::start(Backend::Sqlite).await.unwrap();
    let project = stack.create_project(false).await;
    let service = stack
        .create_service_token(Stack::token_request(&project, &["dev:/**"], &["read"]))
        .await;
    let (_, identity) = stack.identity_in_project(&project, "developer", 0).await;
    let mut want = HashMap::new();
    for (name, value) in [("DB_URL", "postgres://replay"), ("API_KEY", "sk_replay")] {
        let body = serde_json::json!({"workspaceId": project, "environment": "dev", "secretPath": "/app", "secretValue": value});
        let reply = http_to(
            &stack.http_addr,
            "POST",
            &format!("/api/v3/secrets/raw/{name}"),
            Some(&identity),
            &[],
            Some(body),
        )
        .await;
        assert_eq!(reply.status, 200);
        want.insert(name.to_owned(), value.to_owned());
    }
    let access = latchkey_domain::token::access_token_part(&service).to_owned();
    let holder = latchkey_domain::token::ServiceTokenSecret::parse(&service).unwrap();
    let (client_id, client_secret) = universal_auth(&stack, &project).await;
    let (k8s_identity, k8s_jwt) = kubernetes_auth(&stack, &project).await;

    for client in fixtures["clients"].as_array().unwrap() {
        let name = client["name"].as_str().unwrap();
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("project", project.clone()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.clone()),
            ("k8s_identity", k8s_identity.clone()),
            ("k8s_jwt", k8s_jwt.clone()),
        ]);
        let mut project_key: Option<WireKey> = None;
        for (i, step) in client["steps"].as_array().unwrap().iter().enumerate() {
            let context = format!("{name}, step {}", i + 1);
            let mut path = step["path"].as_str().unwrap().to_owned();
            for (k, v) in &vars {
                path = path.replace(&format!("{{{k}}}"), v);
            }
            let login = vars.get("login").cloned().unwrap_or_default();
            let bearer = match step["bearer"].as_str().unwrap() {
                "access" => Some(access.as_str()),
                "full" => Some(service.as_str()),
                "login" => Some(login.as_str()),
                "none" => None,
                _ => Some(identity.as_str()),
            };
            let body = step.get("body").map(|b| {
                let mut text = b.to_string();
                for (k, v) in &vars {
                    text = text.replace(&format!("{{{k}}}"), v);
                }
                serde_json::from_str::<Value>(&text).unwrap()
            });
            let headers: Vec<(String, String)> = step["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .map(|(k, v)| {
                            let mut v = v.as_str().unwrap().to_owned();
                            for (name, value) in &vars {
                                v = v.replace(&format!("{{{name}}}"), value);
                            }
                            (k.clone(), v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let method = step["method"].as_str().unwrap();
            let reply = http_to(&stack.http_addr, method, &path, bearer, &headers, body).await;
            match step["check"].as_str().unwrap() {
                "service_token" => {
                    let body = json_of(&reply, &context);
                    assert_eq!(body["workspace"], project.as_str(), "{context}");
                    assert!(
                        body["_id"].is_string() && is_time(&body["createdAt"]),
                        "{context}"
                    );
                    assert!(body["expiresAt"].is_null() || is_time(&body["expiresAt"]));
                    assert!(body["scopes"].as_array().is_some_and(|s| !s.is_empty()));
                    let sealed = Sealed {
                        ciphertext: b64(&body["encryptedKey"]),
                        iv: b64(&body["iv"]),
                        tag: b64(&body["tag"]),
                    };
                    let text = holder.key().open(&sealed, &[]).unwrap();
                    project_key =
                        Some(WireKey::parse(std::str::from_utf8(&text).unwrap()).unwrap());
                    vars.insert("workspace", body["workspace"].as_str().unwrap().to_owned());
                }
                "go_raw_list" => {
                    let body = json_of(&reply, &context);
                    let etag = reply.header("etag").expect("an ETag").to_owned();
                    vars.insert("etag", etag);
                    assert!(body["imports"].is_array(), "{context}");
                    let mut got = HashMap::new();
                    for s in body["secrets"].as_array().unwrap() {
                        check_go_secret(s, &context);
                        got.insert(
                            s["secretKey"].as_str().unwrap().to_owned(),
                            s["secretValue"].as_str().unwrap().to_owned(),
                        );
                    }
                    assert_eq!(got, want, "{context}");
                }
                "go_raw_one" => {
                    let body = json_of(&reply, &context);
                    check_go_secret(&body["secret"], &context);
                    assert_eq!(body["secret"]["secretValue"], want["DB_URL"].as_str());
                }
                "e2ee_list" => {
                    let body = json_of(&reply, &context);
                    assert!(body["imports"].is_array(), "{context}: imports is required");
                    let key = project_key
                        .as_ref()
                        .expect("the service-token step came first");
                    let open = |s: &Value, field: &str| {
                        let sealed = Sealed {
                            ciphertext: b64(&s[format!("{field}Ciphertext")]),
                            iv: b64(&s[format!("{field}IV")]),
                            tag: b64(&s[format!("{field}Tag")]),
                        };
                        assert_eq!(sealed.iv.len(), 16, "{context}: Infisical's 16-byte IVs");
                        String::from_utf8(key.open(&sealed, &[]).unwrap()).unwrap()
                    };
                    let mut got = HashMap::new();
                    for s in body["secrets"].as_array().unwrap() {
                        assert!(
                            s["version"].is_u64() && s["folderId"].is_string(),
                            "{context}"
                        );
                        // The old CLI fails the whole read if a comment does not decrypt.
                        assert_eq!(open(s, "secretComment"), "");
                        got.insert(open(s, "secretKey"), open(s, "secretValue"));
                    }
                    assert_eq!(got, want, "{context}");
                }
                "login" => {
                    // go-sdk's and the CLI's structs: numbers as JSON numbers.
                    let body = json_of(&reply, &context);
                    assert!(
                        body["expiresIn"].as_i64().is_some_and(|s| s > 0)
                            && body["accessTokenMaxTTL"].is_i64()
                            && body["tokenType"] == "Bearer",
                        "{context}: {body}"
                    );
                    let token = body["accessToken"].as_str().unwrap();
                    assert_eq!(token.split('.').count(), 3, "{context}: a JWT");
                    vars.insert("login", token.to_owned());
                }
                "not_modified" => {
                    assert_eq!(reply.status, 304, "{context}");
                    assert!(reply.body.is_empty());
                }
                other => panic!("unknown check {other}"),
            }
        }
    }
}

/// Universal Auth on a developer in `project` and one client secret:
/// (client ID, client secret), as the Go clients are configured with them.
async fn universal_auth(stack: &Stack, project: &str) -> (String, String) {
    use latchkey_proto::auth::v1 as auth_pb;
    use latchkey_test_support::with_token;
    let (identity, _) = stack.identity_in_project(project, "developer", 0).await;
    let mut auth = stack.auth_client().await;
    let client_id = auth
        .attach_universal_auth(with_token(
            auth_pb::AttachUniversalAuthRequest {
                identity_id: identity.clone(),
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap()
        .client_id;
    let client_secret = auth
        .create_universal_auth_client_secret(with_token(
            auth_pb::CreateUniversalAuthClientSecretRequest {
                identity_id: identity,
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .client_secret;
    (client_id, client_secret)
}

/// Kubernetes Auth on a developer in `project`, trusting the domain's
/// throwaway test issuer key, and a projected token it signed, as a
/// TokenRequest with the operator's audience returns it: (identity, JWT).
async fn kubernetes_auth(stack: &Stack, project: &str) -> (String, String) {
    use latchkey_domain::ports::Clock as _;
    use latchkey_proto::auth::v1 as auth_pb;
    use latchkey_test_support::with_token;
    const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
    let (identity, _) = stack.identity_in_project(project, "developer", 0).await;
    stack
        .auth_client()
        .await
        .attach_kubernetes_auth(with_token(
            auth_pb::AttachKubernetesAuthRequest {
                identity_id: identity.clone(),
                issuer: Some(ISSUER.into()),
                keys: Some(
                    include_str!(
                        "../../crates/domain/src/identity/kubernetes_auth/testdata/rsa-public.pem"
                    )
                    .into(),
                ),
                allowed_audiences: Some("infisical".into()),
                ..Default::default()
            },
            &stack.admin_token,
        ))
        .await
        .unwrap();
    let now = stack.clock.now().timestamp();
    let claims = serde_json::json!({
        "aud": ["infisical"], "iss": ISSUER, "iat": now, "nbf": now, "exp": now + 600,
        "sub": "system:serviceaccount:apps:operator",
        "kubernetes.io": {"namespace": "apps", "serviceaccount": {"name": "operator"}}
    });
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(
            include_str!(
                "../../crates/domain/src/identity/kubernetes_auth/testdata/rsa-private.pem"
            )
            .as_bytes(),
        )
        .unwrap(),
    )
    .unwrap();
    (identity, jwt)
}
