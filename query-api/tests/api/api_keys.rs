//! `/me/api-keys/`: create (raw key once), list without raw keys, revoke.

use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn create_list_and_revoke() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let r = app
        .client
        .post(format!("{}/me/api-keys/", app.api))
        .bearer_auth(&acct.token)
        .json(&json!({"name": "production-ingest", "scopes": ["write"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let raw = created["key"].as_str().unwrap();
    assert!(raw.starts_with("av_") && raw.len() == 67, "{raw}");
    assert_eq!(created["name"], "production-ingest");
    assert_eq!(created["scopes"], json!(["write"]));
    assert_eq!(created["is_active"], true);
    assert_eq!(created["prefix"], &raw[..11]);
    assert_eq!(created["org_slug"], acct.org_slug.as_str());

    let (status, list) = app.get(&acct.token, "/me/api-keys/?page_size=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["count"], 2);
    assert_eq!(list["results"].as_array().unwrap().len(), 1);
    assert_eq!(list["results"][0]["id"], created["id"]);
    assert!(list["next"].is_string());
    assert!(
        !list.to_string().contains(raw),
        "the raw key must never be listed"
    );
    let (_, page2) = app
        .get(&acct.token, "/me/api-keys/?page=2&page_size=1")
        .await;
    assert_ne!(page2["results"][0]["id"], created["id"]);
    assert!(page2["next"].is_null());

    let id = created["id"].as_str().unwrap();
    let r = app
        .client
        .delete(format!("{}/me/api-keys/{id}/", app.api))
        .bearer_auth(&acct.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, list) = app.get(&acct.token, "/me/api-keys/").await;
    let revoked = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(revoked["is_active"], false);
}

#[tokio::test]
async fn invalid_creates_get_400() {
    let app = spawn_app().await;
    let acct = app.account().await;
    for (body, detail) in [
        (
            json!({"name": "x", "scopes": []}),
            "scopes: must contain at least one valid scope (read, write)",
        ),
        (
            json!({"name": "x"}),
            "scopes: must contain at least one valid scope (read, write)",
        ),
        (
            json!({"scopes": ["admin"]}),
            "scopes: unknown scope \"admin\", expected read or write",
        ),
    ] {
        let r = app
            .client
            .post(format!("{}/me/api-keys/", app.api))
            .bearer_auth(&acct.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.json::<Value>().await.unwrap()["detail"], detail);
    }
    // An organization the user does not belong to is not found.
    let other = app.account().await;
    let r = app
        .client
        .post(format!("{}/me/api-keys/", app.api))
        .bearer_auth(&acct.token)
        .json(&json!({"scopes": ["read"], "org_slug": other.org_slug}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_users_key_cannot_be_revoked() {
    let app = spawn_app().await;
    let a = app.account().await;
    let b = app.account().await;
    let (_, list) = app.get(&b.token, "/me/api-keys/").await;
    let b_key_id = list["results"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .client
        .delete(format!("{}/me/api-keys/{b_key_id}/", app.api))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (status, _) = app.get(&b.key, "/me/api-keys/ping/").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn last_used_at_is_never_written_after_revocation() {
    let app = spawn_app().await;
    let acct = app.account().await;
    let key = app.create_key(&acct.token, &["write"]).await;
    // Used on the ingestion path (the gateway records the use in memory and
    // writes it every 30 s), then revoked before that write.
    let (status, _) = app
        .post_batch(&key, &crate::helpers::batch("used-then-revoked", 1).1)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = app.get(&acct.token, "/me/api-keys/").await;
    let id = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| key.starts_with(k["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .delete(format!("{}/me/api-keys/{id}/", app.api))
        .bearer_auth(&acct.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.gateway.keys.flush_last_used().await;
    let (_, list) = app.get(&acct.token, "/me/api-keys/").await;
    let k = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert!(k["revoked_at"].is_string(), "{k}");
    // Not written after the revocation (RFC 3339 in UTC compares as text).
    if let Some(used) = k["last_used_at"].as_str() {
        assert!(used <= k["revoked_at"].as_str().unwrap(), "{k}");
    }
}
