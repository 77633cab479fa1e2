//! Helpers over generated OpenAPI documents (the services generate theirs
//! with utoipa; this crate only reads them).

/// (METHOD, path) of every operation of a document, in document order: the
/// route list each service derives from its own document.
pub fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, String)> {
    let doc = serde_json::to_value(doc).expect("documents serialize");
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            for method in ops.as_object().into_iter().flat_map(|o| o.keys()) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}
