//! The deployment files, read as an operator's tools would: what an image
//! build may send to the builder, and where the dashboard is served.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn no_secret_or_build_output_enters_an_image_build_context() {
    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // The local stack holds secrets.env and credentials.json; target/ is
    // gigabytes; .git holds history.
    for must in [
        ".stack/",
        "target/",
        ".git/",
        "**/node_modules/",
        "**/*.env",
    ] {
        assert!(rules.contains(&must), ".dockerignore lacks {must}");
    }
    assert!(
        !rules.iter().any(|r| r.starts_with('!')),
        "no exception may re-include an ignored path"
    );
}

#[test]
fn the_query_api_image_serves_the_dashboard() {
    let dockerfile = read("deploy/Dockerfile");
    let stage = dockerfile
        .split("FROM ")
        .find(|s| s.starts_with("runtime AS query-api"))
        .expect("a query-api stage");
    assert!(stage.contains("COPY --from=web /src/web/dist /usr/share/agentvista/web"));
    assert!(stage.contains("AV_WEB_DIR=/usr/share/agentvista/web"));
    // The routers send everything that is not ingestion to the query API.
    for conf in ["deploy/nginx.compose.conf", "deploy/nginx.conf.template"] {
        assert!(
            read(conf).contains("location / { proxy_pass http://query; }"),
            "{conf}"
        );
    }
    assert!(read("deploy/k8s/agentvista.yaml").contains(
        "{ path: /, pathType: Prefix, backend: { service: { name: query-api, port: { number: 8082 } } } }"
    ));
}

#[test]
fn the_manifests_name_the_versioned_images_and_a_secret_per_service() {
    let version = env!("CARGO_PKG_VERSION");
    let k8s = read("deploy/k8s/agentvista.yaml");
    assert!(!k8s.contains(":latest"), "no floating tags");
    for (service, secret) in [
        ("ingest-gateway", "agentvista-gateway"),
        ("writer", "agentvista-writer"),
        ("query-api", "agentvista-query"),
    ] {
        let deployment = k8s
            .split("---")
            .find(|d| d.contains("kind: Deployment") && d.contains(&format!("name: {service} }}")))
            .unwrap_or_else(|| panic!("a Deployment of {service}"));
        assert!(
            deployment.contains(&format!("image: agentvista/{service}:{version}")),
            "{service} runs the image scripts/images tags"
        );
        // Only its own Secret.
        let secrets: Vec<&str> = deployment
            .match_indices("secretRef: { name: ")
            .map(|(i, m)| deployment[i + m.len()..].split(' ').next().unwrap())
            .collect();
        assert!(
            !secrets.is_empty() && secrets.iter().all(|s| *s == secret),
            "{service}: {secrets:?}"
        );
    }
    // The query API's health and metrics on the internal port, which the
    // Ingress (routing / to 8082) never reaches.
    assert!(k8s.contains("AV_QUERY_INTERNAL_LISTEN: 0.0.0.0:9082"));
    assert!(k8s.contains("readinessProbe: { httpGet: { path: /readyz, port: 9082 }"));
    // HTTPS with a class; the session cookie follows.
    assert!(k8s.contains("ingressClassName: nginx"));
    assert!(k8s.contains("secretName: agentvista-tls"));
    assert!(k8s.contains("AV_COOKIE_SECURE: \"true\""));
}

#[test]
fn the_routers_set_the_query_apis_security_headers() {
    for conf in ["deploy/nginx.compose.conf", "deploy/nginx.conf.template"] {
        let text = read(conf);
        for (name, value) in query_api::security::HEADERS
            .iter()
            .filter(|(n, _)| *n != "permissions-policy")
        {
            let line = format!("{name}: {value}").to_lowercase();
            assert!(
                text.lines().any(|l| {
                    let l = l.trim().to_lowercase();
                    l.starts_with("add_header")
                        && line
                            == format!("{}: {}", l.split_whitespace().nth(1).unwrap(), {
                                let v = &l[l.find('"').unwrap() + 1..];
                                &v[..v.find('"').unwrap()]
                            })
                        && l.ends_with("always;")
                }),
                "{conf} lacks {name}: {value}"
            );
        }
        // The port stays in Host (the CSRF rule compares Origin with it).
        assert!(text.contains("proxy_set_header Host $http_host;"), "{conf}");
    }
}
