//! The OpenAPI document against what the service does: the committed `docs/openapi.json` is
//! the one the code generates; the service answers it at `GET /api/v1/openapi.json` to a client
//! without a token; it is an OpenAPI 3.1 document whose references all resolve; every route it
//! lists is served, and every route the HTTP modules mount is in it.

use crate::helpers::{spawn_app, Caller};
use govfusion::http::openapi::{document_json, REGENERATE};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A route: method (upper case) and path template (`/api/v1/cases/{case_id}`).
type Route = (String, String);

/// The committed document, as text.
fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): write it with `{REGENERATE}`",
            path.display()
        )
    })
}

/// The document the code generates, as text.
fn generated() -> String {
    document_json().expect("the OpenAPI document serialises")
}

/// The document the code generates, as JSON.
fn generated_json() -> Value {
    serde_json::from_str(&generated()).expect("the OpenAPI document is JSON")
}

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    // Arrange
    let expected = generated();

    // Act
    let committed = committed();

    // Assert
    if committed != expected {
        let line = committed
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "their lengths differ".to_owned(),
                |n| format!("first difference at line {}", n + 1),
            );
        panic!("docs/openapi.json is stale ({line}): regenerate it with `{REGENERATE}`");
    }
}

#[actix_web::test]
async fn the_service_answers_the_document_to_a_client_without_a_token() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get_as(&Caller::Anonymous, "/api/v1/openapi.json").await;

    // Assert
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type}"
    );
    let cache = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(!cache.contains("no-store"), "the contract may be cached");
    let served = response.text().await.expect("a body");
    assert_eq!(served, generated());
    assert_eq!(served, committed(), "run `{REGENERATE}`");
}

#[test]
fn the_document_is_openapi_3_1_with_every_reference_resolved() {
    // Arrange
    let document = generated_json();

    // Act
    let mut references = Vec::new();
    collect_references(&document, &mut references);

    // Assert
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi is `{version}`");
    assert!(document["info"]["title"].is_string() && document["info"]["version"].is_string());
    let paths = document["paths"].as_object().expect("paths is an object");
    assert!(!paths.is_empty(), "the document lists no path");
    assert!(!references.is_empty(), "the document refers to no schema");
    for reference in &references {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("`{reference}` is not a reference within the document"));
        assert!(
            document.pointer(pointer).is_some(),
            "`{reference}` refers to nothing"
        );
    }
    let schemes = &document["components"]["securitySchemes"];
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item is an object") {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                operation_ids.insert(id.to_owned()),
                "operationId `{id}` twice"
            );
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} answers nothing"
            );
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for scheme in requirement
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    assert!(schemes[scheme].is_object(), "no security scheme `{scheme}`");
                }
            }
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(
                declared,
                template_names(path),
                "{method} {path}: path parameters declared against those of the template"
            );
        }
    }
}

#[actix_web::test]
async fn every_documented_route_is_served() {
    // Arrange
    let app = spawn_app().await;
    let routes = documented(&generated_json());

    for (method, path) in routes {
        // Act: as the client whose work it is, with a made-up id in every parameter
        let concrete = with_made_up_ids(&path);
        let response = match method.as_str() {
            "GET" => app.get(&concrete).await,
            "POST" => app.post_json(&concrete, &json!({})).await,
            other => panic!("{other} {path}: the probe knows GET and POST only"),
        };

        // Assert: a handler answered, whatever it answered (401, 404 `unknown_case`, …),
        // not the refusal of a path or method no endpoint serves
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path} is documented but not served");
        assert!(
            !(status == 404 && body["error"] == "not_found"),
            "{method} {path} is documented but not served: {body}"
        );
    }
}

#[test]
fn every_route_the_http_modules_mount_is_documented() {
    // Arrange
    let http = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");

    // Act
    let mounted = mounted_routes(&http);
    let documented = documented(&generated_json());

    // Assert
    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in the OpenAPI document: {undocumented:?}. Give each handler \
         #[utoipa::path], list it in src/http/openapi.rs and run `{REGENERATE}`"
    );
    let unmounted: Vec<_> = documented.difference(&mounted).collect();
    assert!(
        unmounted.is_empty(),
        "in the OpenAPI document but mounted by no `.route(…)` of src/http: {unmounted:?}"
    );
}

/// Every `$ref` of `value`, recursively.
fn collect_references(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => into.push(reference.clone()),
                    _ => collect_references(value, into),
                }
            }
        }
        Value::Array(values) => values.iter().for_each(|v| collect_references(v, into)),
        _ => {}
    }
}

/// The names of the `{parameters}` of a path template.
fn template_names(path: &str) -> BTreeSet<&str> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// `path` with every `{parameter}` replaced by an id no one has.
fn with_made_up_ids(path: &str) -> String {
    path.split('/')
        .map(|part| {
            if part.starts_with('{') {
                "openapi-probe"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The routes the document lists.
fn documented(document: &Value) -> BTreeSet<Route> {
    let paths = document["paths"].as_object().expect("paths is an object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item is an object")
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

// The routes the source mounts. actix-web cannot list the routes of a running service, so the
// test reads them where they are written: each module's `configure` mounts its routes with
// `.route("<path>", web::<method>()…)`, and `src/http/mod.rs` configures each module, inside
// `web::scope("/api/v1")` or outside it. A mount written any other way fails the test rather
// than being missed.

/// The routes mounted by the modules of the HTTP directory `http`, with their scope.
fn mounted_routes(http: &Path) -> BTreeSet<Route> {
    let mod_rs = read(&http.join("mod.rs"));
    let scope = api_scope(&mod_rs);
    let mut routes = BTreeSet::new();
    for file in rust_files(http) {
        let text = served_code(read(&file));
        refuse_unread_mounts(&file, &text);
        let prefix = if file == http.join("mod.rs") {
            None
        } else {
            let module = module_name(http, &file);
            Some(module_prefix(&mod_rs, &scope, &module))
        };
        for (at, method, path) in routes_in(&text) {
            let prefix = match &prefix {
                Some(Some(prefix)) => prefix.as_str(),
                Some(None) => panic!(
                    "{} mounts {method} {path}, but src/http/mod.rs configures no `{}::configure`",
                    file.display(),
                    module_name(http, &file)
                ),
                None if scope.contains(&at) => "/api/v1",
                None => "",
            };
            routes.insert((method, format!("{prefix}{path}")));
        }
    }
    routes
}

/// The text of `file`.
fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
}

/// `text` without its unit tests (a `#[cfg(test)]` module at the end of the file), whose
/// routes are mounted in test apps only.
fn served_code(mut text: String) -> String {
    if let Some(tests) = text.find("\n#[cfg(test)]") {
        text.truncate(tests);
    }
    text
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The module a file under `http` is part of, as `mod.rs` names it (`cases`, `idempotency`).
fn module_name(http: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(http).expect("a file under src/http");
    let first = relative
        .components()
        .next()
        .expect("a file has a name")
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The byte range of `mod.rs`'s `.service(web::scope("/api/v1") …)`, from the scope to its
/// closing parenthesis.
fn api_scope(mod_rs: &str) -> std::ops::Range<usize> {
    let start = mod_rs
        .find("web::scope(\"/api/v1\")")
        .expect("src/http/mod.rs mounts web::scope(\"/api/v1\")");
    let service = mod_rs[..start]
        .rfind(".service(")
        .expect("the /api/v1 scope is mounted with .service(");
    let open = service + ".service".len();
    let mut depth = 0;
    for (offset, c) in mod_rs[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return start..open + offset;
                }
            }
            _ => {}
        }
    }
    panic!("the /api/v1 scope of src/http/mod.rs does not close")
}

/// The prefix of the routes of `module`: `/api/v1` when `mod.rs` configures it inside the
/// scope, nothing outside it; none when it configures it nowhere.
fn module_prefix(mod_rs: &str, scope: &std::ops::Range<usize>, module: &str) -> Option<String> {
    let call = format!(".configure({module}::configure)");
    let at = mod_rs.find(&call)?;
    Some(if scope.contains(&at) { "/api/v1" } else { "" }.to_owned())
}

/// The `.route("<path>", web::<method>()` mounts of `text`: where each is, its method (upper
/// case) and its path.
fn routes_in(text: &str) -> Vec<(usize, String, String)> {
    let mut routes = Vec::new();
    for (at, _) in text.match_indices(".route(") {
        let rest = text[at + ".route(".len()..].trim_start();
        let path = rest
            .strip_prefix('"')
            .and_then(|r| r.split_once('"'))
            .map(|(path, _)| path)
            .unwrap_or_else(|| {
                panic!("a `.route(` whose path is not a string literal: {rest:.60}")
            });
        let after = rest[path.len() + 2..].trim_start();
        let method = after
            .strip_prefix(',')
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix("web::"))
            .and_then(|r| r.split_once("()"))
            .map(|(method, _)| method)
            .unwrap_or_else(|| panic!("`.route(\"{path}\"` is not followed by `web::<method>()`"));
        routes.push((at, method.to_uppercase(), path.to_owned()));
    }
    routes
}

/// Fails on a mount that [`routes_in`] does not read: a resource, a scope other than
/// `/api/v1`, an attribute route, a route made with `web::route()` or `web::method(…)`, or a
/// method route (`web::get()`, …) outside a `.route("…", …)`.
fn refuse_unread_mounts(file: &Path, text: &str) {
    let forms = [
        "web::resource(",
        "web::route()",
        "web::method(",
        "#[get(",
        "#[post(",
        "#[put(",
        "#[delete(",
        "#[patch(",
        "#[route(",
        "web::service(",
    ];
    for form in forms {
        assert!(
            !text.contains(form),
            "{} mounts a route with `{form}`, which the route scan of this test does not read: \
             mount it with `.route(\"<path>\", web::<method>().to(…))` or teach the scan",
            file.display()
        );
    }
    let scopes = text.matches("web::scope(").count();
    let api_scopes = text.matches("web::scope(\"/api/v1\")").count();
    assert_eq!(
        scopes,
        api_scopes,
        "{} mounts a scope other than /api/v1, which the route scan does not read",
        file.display()
    );
    let methods = ["get", "post", "put", "delete", "patch", "head"]
        .iter()
        .map(|m| text.matches(&format!("web::{m}()")).count())
        .sum::<usize>();
    assert_eq!(
        methods,
        routes_in(text).len(),
        "{} uses a method route outside `.route(\"<path>\", web::<method>()…)`, which the \
         route scan does not read",
        file.display()
    );
}
