//! The screens' sign-in at an identity provider (issue 17, item 4): the OpenID Connect
//! authorization code flow with PKCE, against a provider played by this test — it checks the
//! code verifier against the challenge like a real one, and signs the access token with the
//! tests' key, which the service trusts.

use crate::common::app::{test_settings, TestApp};
use crate::common::callers::key;
use actix_web::{web, App, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use govfusion::auth::{RoleClaims, RoleName};
use govfusion::clock::SystemClock;
use govfusion::settings::{BusKind, OidcSettings};
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The codes the provider gave, with the challenge each was asked with.
type Issued = Arc<Mutex<HashMap<String, String>>>;

/// What the provider's authorization endpoint is asked.
#[derive(Deserialize)]
struct Authorize {
    redirect_uri: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    client_id: String,
}

/// What its token endpoint is sent.
#[derive(Deserialize)]
struct TokenRequest {
    grant_type: String,
    code: String,
    code_verifier: String,
}

/// Signs the person in at once: a code for the challenge, back to the client.
async fn authorize(issued: web::Data<Issued>, query: web::Query<Authorize>) -> HttpResponse {
    if query.code_challenge_method != "S256" || query.client_id != "govfusion-screens" {
        return HttpResponse::BadRequest().body("unsupported request");
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    let mut codes = issued.lock().unwrap_or_else(|e| e.into_inner());
    codes.insert(code.clone(), query.code_challenge.clone());
    let back = format!("{}?code={code}&state={}", query.redirect_uri, query.state);
    HttpResponse::Found()
        .insert_header(("location", back))
        .finish()
}

/// An access token for a code whose verifier matches its challenge; `invalid_grant` otherwise.
async fn token(issued: web::Data<Issued>, form: web::Form<TokenRequest>) -> HttpResponse {
    let challenge = issued
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&form.code);
    let verified = challenge.is_some_and(|challenge| {
        URL_SAFE_NO_PAD.encode(Sha256::digest(form.code_verifier.as_bytes())) == challenge
    });
    if form.grant_type != "authorization_code" || !verified {
        return HttpResponse::BadRequest().json(serde_json::json!({ "error": "invalid_grant" }));
    }
    let claims = RoleClaims {
        sub: "oidc-citizen".into(),
        name: Some("统一认证用户".into()),
        role: RoleName::Applicant,
        terminal: None,
        department: None,
        centre: None,
    };
    let settings = test_settings();
    let access = key()
        .mint(
            &settings.auth.issuer,
            &settings.auth.audience,
            claims,
            Duration::from_secs(600),
        )
        .expect("a token");
    HttpResponse::Ok().json(serde_json::json!({ "access_token": access, "token_type": "Bearer" }))
}

/// Starts the provider on a free port; its base URL.
fn start_provider() -> String {
    let issued: Issued = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address");
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(issued.clone()))
            .route("/authorize", web::get().to(authorize))
            .route("/token", web::post().to(token))
    })
    .workers(1)
    .listen(listener)
    .expect("the provider listens")
    .run();
    actix_web::rt::spawn(server);
    format!("http://{address}")
}

/// The service, its screens signing in at `provider`.
async fn spawn_app(provider: &str) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut settings = test_settings();
    settings.bus.kind = BusKind::Memory;
    settings.http.bind = format!("127.0.0.1:{port}");
    settings.auth.oidc = OidcSettings {
        authorization_url: format!("{provider}/authorize"),
        token_url: format!("{provider}/token"),
        client_id: "govfusion-screens".into(),
        client_secret_file: String::new(),
        redirect_url: format!("http://127.0.0.1:{port}/signin/callback"),
        scopes: "openid".into(),
    };
    TestApp::start(settings, Arc::new(SystemClock), crate::POLL_FOR).await
}

/// The `name=value` of the cookie called `name` that `response` sets.
fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no cookie {name}"))
        .to_owned()
}

/// A client that shows redirects instead of following them, as the tests follow them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("a client")
}

/// A sign-in taken to the provider and back to the callback's URL, not yet followed.
struct Trip {
    /// What `/signin/oidc` answered: its status.
    started: reqwest::StatusCode,
    /// The flow cookie it set (`name=value`).
    flow: String,
    /// Where it sent the browser.
    to_provider: String,
    /// What the provider answered: its status.
    at_provider: reqwest::StatusCode,
    /// Where the provider sends the browser back.
    back: String,
}

/// The `Location` of `response`.
fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION]
        .to_str()
        .unwrap_or_default()
        .to_owned()
}

/// Starts a sign-in at `app` and goes to the provider, as a browser goes.
async fn to_provider_and_back(client: &reqwest::Client, app: &TestApp) -> Trip {
    let started = client
        .get(format!("{}/signin/oidc", app.address))
        .send()
        .await
        .expect("an answer");
    let to_provider = location(&started);
    let at_provider = client.get(&to_provider).send().await.expect("an answer");
    Trip {
        started: started.status(),
        flow: cookie(&started, "govfusion_oidc"),
        to_provider,
        at_provider: at_provider.status(),
        back: location(&at_provider),
    }
}

#[actix_web::test]
async fn a_person_signs_in_at_the_identity_provider_with_pkce_and_a_forged_return_is_refused() {
    // Arrange
    let provider = start_provider();
    let app = spawn_app(&provider).await;
    let client = client();

    // Act: to the provider and back, as a browser goes; the return forged, then as it came.
    let Trip {
        started,
        flow,
        to_provider,
        at_provider,
        back,
    } = to_provider_and_back(&client, &app).await;
    let forged = client
        .get(back.replace("state=", "state=forged"))
        .header("cookie", &flow)
        .send()
        .await
        .expect("an answer");
    let signed_in = client
        .get(&back)
        .header("cookie", &flow)
        .send()
        .await
        .expect("an answer");

    // Assert: the provider was asked with an S256 challenge and this service's callback; the
    // forged return is refused; the real one keeps the session, with which the pages know the
    // person.
    assert_eq!(started, 303);
    assert!(
        to_provider.starts_with(&format!("{provider}/authorize?")),
        "{to_provider}"
    );
    assert!(
        to_provider.contains("code_challenge_method=S256"),
        "{to_provider}"
    );
    assert!(to_provider.contains("response_type=code"), "{to_provider}");
    assert_eq!(at_provider, 302);
    let forged = forged.text().await.expect("a page");
    assert!(forged.contains("登录信息不一致"), "{forged}");
    assert_eq!(signed_in.status(), 200);
    let session = cookie(&signed_in, "govfusion_session");
    let header = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("govfusion_session="))
        .unwrap_or_default()
        .to_owned();
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    let home = client
        .get(format!("{}/", app.address))
        .header("cookie", &session)
        .send()
        .await
        .expect("an answer");
    let home = home.text().await.expect("a page");
    assert!(home.contains("统一认证用户（申请人）"), "{home}");
}

#[actix_web::test]
async fn a_return_whose_code_verifier_does_not_match_gets_no_session() {
    // Arrange: the flow cookie's verifier replaced, as a stolen code would come with.
    let provider = start_provider();
    let app = spawn_app(&provider).await;
    let client = client();
    let trip = to_provider_and_back(&client, &app).await;
    let (state, _) = trip.flow.split_once('.').expect("state and verifier");
    let other = format!("{state}.{}", URL_SAFE_NO_PAD.encode([7u8; 32]));

    // Act
    let returned = client
        .get(&trip.back)
        .header("cookie", &other)
        .send()
        .await
        .expect("an answer");

    // Assert
    assert!(returned.headers().get(SET_COOKIE).is_none_or(|c| !c
        .to_str()
        .unwrap_or_default()
        .starts_with("govfusion_session=")));
    let page = returned.text().await.expect("a page");
    assert!(page.contains("未能发放令牌"), "{page}");
}
