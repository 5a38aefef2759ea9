//! `Idempotency-Key` on every POST (after the IETF httpapi draft "The Idempotency-Key HTTP Header
//! Field"), so that a client that retries after a timeout or a reset never creates a second case
//! or acts twice:
//!
//! * no key: the request is handled as it would be without this module;
//! * a key that is empty, longer than [`MAX_KEY_LEN`] or not visible ASCII: 400
//!   `invalid_idempotency_key`;
//! * the first request with a key is handled, and its answer (status, headers, body) kept against
//!   (method, path, key) with the SHA-256 of the body;
//! * the same key and body again: the kept answer, not handled again, marked
//!   `Idempotent-Replayed: true`;
//! * the same key with another body: 422 `idempotency_key_reused`;
//! * the same key while the first is still being handled: 409 `idempotency_key_in_use`;
//! * a new key while the store already holds its most keys and every one is still being
//!   handled: 503 `idempotency_keys_exhausted`, nothing done, the key not taken.
//!
//! Once a request with a new key is handed on, it is handled to the end and its answer kept,
//! whatever its client does: the handling runs in a task of its own ([`actix_web::rt::spawn`]),
//! which the request only waits for. A client that goes away (actix-web may then drop the
//! request, or run it on) abandons only the wait, and its retry gets 409 until the answer is
//! kept, then the answer: never a second case.
//!
//! A server error (5xx) is not kept, and frees the key: the client may try again and be handled
//! afresh. Answers are kept in the process ([`store`]): a restart forgets every key.

pub mod store;

use crate::auth::Principal;
use crate::http::error::ApiError;
use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{FromRequest as _, HttpMessage as _, HttpResponse, ResponseError};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};
use std::sync::Arc;
use std::time::Instant;
use store::{Begin, Key, Store, Stored, Ticket};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The header on an answer sent again.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key taken, in bytes: room for a UUID or a hash with a prefix, and a bound on
/// what the store keeps per key.
pub const MAX_KEY_LEN: usize = 255;

/// What the middleware needs: the shared store and the body limit.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The answers kept, shared by every worker.
    pub store: Arc<Store>,
    /// The largest body read (`http.max_body_bytes`); a larger one gets 413, as without a key.
    pub max_body_bytes: usize,
}

/// The middleware (see the module doc); wrap it with `actix_web::middleware::from_fn`.
pub async fn guard(
    config: Idempotency,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    // A request that is not authenticated does nothing: the handler refuses it, and there is
    // nothing to answer again.
    let Ok(caller) = Principal::from_request(req.request(), &mut Payload::None).await else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let refused =
        |req: ServiceRequest, error: ApiError| Ok(req.into_response(error.error_response()));
    let key = match client_key(&req, &caller) {
        Ok(key) => key,
        Err(error) => return refused(req, error),
    };
    let body = match read_body(&mut req, config.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => return refused(req, error),
    };
    let fingerprint: store::Fingerprint = Sha256::digest(&body).into();
    let ticket = match config.store.begin(&key, fingerprint, Instant::now()) {
        Begin::Started(ticket) => ticket,
        Begin::Replay(stored) => {
            tracing::info!(key = %key.key, path = %key.path, "idempotent retry answered again");
            return Ok(req.into_response(replay(&stored)));
        }
        Begin::InFlight => return refused(req, in_use(&key)),
        Begin::Mismatch => return refused(req, reused(&key)),
        Begin::Full => return refused(req, exhausted()),
    };
    let pending = Pending {
        store: Arc::clone(&config.store),
        key,
        ticket: Some(ticket),
    };
    // The whole body was read above, so the handler never reads from the client's connection
    // and can run to the end without it.
    req.set_payload(Payload::from(body));
    let handling = next.call(req);
    // Spawned, not awaited in place: if the client goes away, actix-web may drop this future,
    // and the handling (a case perhaps already created) must still end and keep its answer.
    // Dropping the handle only stops the wait. The futures stay on this worker's thread.
    let handled = actix_web::rt::spawn(async move {
        match handling.await {
            Ok(response) => {
                let (req, response) = response.into_parts();
                Ok(ServiceResponse::new(req, pending.keep(response).await))
            }
            // The client gets the error's own answer, so that is what a retry gets too.
            Err(error) => {
                pending.keep(error.error_response()).await;
                Err(error)
            }
        }
    });
    match handled.await {
        Ok(answer) => answer,
        // The handler panicked; `Pending`'s drop has freed the key.
        Err(error) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the request failed ({error}); try again"),
        )
        .into()),
    }
}

/// The key of `caller`'s request, checked.
fn client_key(req: &ServiceRequest, caller: &Principal) -> Result<Key, ApiError> {
    let invalid = |what: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!(
                "the Idempotency-Key header {what}; send a unique string of 1 to {MAX_KEY_LEN} \
                 visible ASCII characters (e.g. a UUID), the same on every retry of one request"
            ),
        )
    };
    let value = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| invalid("is not visible ASCII"))?;
    // The draft writes the key as a structured-field string, `"…"`; a bare token is taken too.
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if value.is_empty() {
        return Err(invalid("is empty"));
    }
    if value.len() > MAX_KEY_LEN {
        return Err(invalid(&format!("is {} characters long", value.len())));
    }
    Ok(Key {
        client: format!("{:?}:{}", caller.grant, caller.subject),
        method: req.method().to_string(),
        path: req.path().to_owned(),
        key: value.to_owned(),
    })
}

/// The whole body, up to `limit` bytes (its fingerprint needs all of it before the handler
/// runs). A body that stops arriving ends in an error here; `body_deadline`, outside, turns
/// that into 408.
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A stored answer, sent again.
fn replay(stored: &Stored) -> HttpResponse {
    let mut response = HttpResponse::with_body(stored.status, BoxBody::new(stored.body.clone()));
    for (name, value) in &*stored.headers {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// 409: the first request with the key has no answer yet.
fn in_use(key: &Key) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        format!(
            "a request with Idempotency-Key `{}` is still being handled; retry once it has \
             been answered to get its answer",
            key.key
        ),
    )
}

/// 503: the store holds its most keys, each still being handled, so a new one cannot be kept.
/// Refused rather than handled unkept: the client sent a key to be sure a retry does nothing
/// twice, and that would be broken without a word.
fn exhausted() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "idempotency_keys_exhausted",
        "too many requests with an Idempotency-Key are being handled at once to keep another \
         key; nothing was done: retry shortly with the same key",
    )
}

/// 422: the key was used for another request.
fn reused(key: &Key) -> ApiError {
    ApiError::invalid(
        "idempotency_key_reused",
        format!(
            "Idempotency-Key `{}` was already used for {} {} with another body; use a new key \
             for a new request",
            key.key, key.method, key.path
        ),
    )
}

/// A key taken by a request being handled. Dropping it unkept frees the key: that happens only
/// for a server error, or when the handling task panics or is stopped with its worker.
struct Pending {
    /// Where the key is kept.
    store: Arc<Store>,
    /// The key.
    key: Key,
    /// The use of the key; `None` once finished.
    ticket: Option<Ticket>,
}

impl Pending {
    /// Keeps the answer against the key (unless it is a server error) and gives it back to be
    /// sent, its body read.
    async fn keep(mut self, response: HttpResponse<impl MessageBody + 'static>) -> HttpResponse {
        let status = response.status();
        if status.is_server_error() {
            // Dropping `self` frees the key: the client may retry a server error.
            return response.map_into_boxed_body();
        }
        let (head, body) = response.into_parts();
        let Ok(body) = body::to_bytes(body).await else {
            let error = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the answer could not be read; try again",
            );
            return error.error_response();
        };
        if let Some(ticket) = self.ticket.take() {
            let stored = Stored::of(status, head.headers(), &body);
            self.store
                .finish(&self.key, ticket, Some(stored), Instant::now());
        }
        head.set_body(BoxBody::new(body))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.store.finish(&self.key, ticket, None, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::development::DevelopmentKey;
    use crate::auth::Authenticator;
    use actix_web::dev::ServiceFactory;
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, Route};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;
    use tokio::sync::Notify;

    fn config() -> Idempotency {
        Idempotency {
            store: Arc::new(Store::new(Duration::from_secs(60), 10)),
            max_body_bytes: 1024,
        }
    }

    /// An app serving `route` at `POST /act` behind the guard, with a store of ten keys.
    fn guarded(
        route: Route,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    > {
        let config = config();
        App::new()
            .app_data(web::Data::new(authenticator()))
            .wrap(from_fn(move |req, next| guard(config.clone(), req, next)))
            .route("/act", route)
    }

    /// The key every test token is signed with.
    fn signing_key() -> &'static DevelopmentKey {
        static KEY: std::sync::OnceLock<DevelopmentKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| DevelopmentKey::generate().expect("a new key"))
    }

    /// An authenticator trusting [`signing_key`].
    fn authenticator() -> Authenticator {
        let jwk = signing_key().public_jwk().expect("a public key");
        let set = jsonwebtoken::jwk::JwkSet { keys: vec![jwk] };
        Authenticator::trusting(&set, "test", "govfusion").expect("a usable key")
    }

    /// A token of an officer of `market` named `sub`.
    fn token(sub: &str) -> String {
        let claims = crate::auth::RoleClaims {
            sub: sub.into(),
            name: None,
            role: crate::auth::RoleName::Officer,
            terminal: None,
            department: Some("market".into()),
            centre: None,
        };
        signing_key()
            .mint("test", "govfusion", claims, Duration::from_secs(60))
            .expect("a token")
    }

    fn post(path: &str, key: &str) -> test::TestRequest {
        test::TestRequest::post()
            .uri(path)
            .insert_header(("authorization", format!("Bearer {}", token("li"))))
            .insert_header((HEADER, key))
            .set_payload("{}")
    }

    /// A handler that counts its calls, says when it is running, and answers `201 case N` only
    /// once released: a request held in the middle of its handling.
    #[derive(Clone, Default)]
    struct Held {
        /// Told when a call has started.
        entered: Arc<Notify>,
        /// Lets a waiting call answer.
        release: Arc<Notify>,
        /// How many calls began.
        calls: Arc<AtomicU32>,
    }

    impl Held {
        /// The route, behind the guard, at `POST /act`.
        fn route(&self) -> Route {
            let held = self.clone();
            web::post().to(move || {
                let held = held.clone();
                let n = held.calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    held.entered.notify_one();
                    held.release.notified().await;
                    HttpResponse::Created().body(format!("case {n}"))
                }
            })
        }
    }

    #[actix_web::test]
    async fn a_retry_while_the_first_is_handled_is_409_then_gets_the_answer() {
        // Arrange
        let held = Held::default();
        let app = test::init_service(guarded(held.route())).await;

        // Act: the first is polled until it waits in the handler, then the retry is sent.
        let first = test::call_service(&app, post("/act", "k").to_request());
        let retry = async {
            held.entered.notified().await;
            let answer = test::call_service(&app, post("/act", "k").to_request()).await;
            held.release.notify_one();
            answer
        };
        let (first, retry) = futures::join!(first, retry);

        // Assert
        assert_eq!(first.status(), StatusCode::CREATED);
        assert_eq!(retry.status(), StatusCode::CONFLICT);
        let body: serde_json::Value = test::read_body_json(retry).await;
        assert_eq!(body["error"], "idempotency_key_in_use", "{body}");
        let after = test::call_service(&app, post("/act", "k").to_request()).await;
        assert_eq!(after.status(), StatusCode::CREATED);
        assert_eq!(test::read_body(after).await, "case 0");
    }

    #[actix_web::test]
    async fn a_request_dropped_mid_handling_still_keeps_its_answer() {
        // Arrange
        let held = Held::default();
        let app = test::init_service(guarded(held.route())).await;

        // Act: the first request is dropped (its client went away) while its handler waits,
        // then the handler is released.
        let mut first = Box::pin(test::call_service(&app, post("/act", "k").to_request()));
        tokio::select! {
            _ = &mut first => panic!("answered before the handler was released"),
            () = held.entered.notified() => {}
        }
        drop(first); // the future itself, boxed: the request is gone
        held.release.notify_one();

        // Assert: the retry waits (409) until the answer is kept, then gets it, handled once.
        let mut retry = test::call_service(&app, post("/act", "k").to_request()).await;
        for _ in 0..100 {
            if retry.status() != StatusCode::CONFLICT {
                break;
            }
            tokio::task::yield_now().await;
            retry = test::call_service(&app, post("/act", "k").to_request()).await;
        }
        assert_eq!(
            held.calls.load(Ordering::SeqCst),
            1,
            "handled once, not twice"
        );
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.headers().get(REPLAYED).unwrap(), "true");
        assert_eq!(test::read_body(retry).await, "case 0");
    }

    #[actix_web::test]
    async fn a_server_error_is_not_kept_and_the_retry_is_handled() {
        // Arrange: the first call fails with 503, the next succeed.
        let calls = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&calls);
        let app = test::init_service(guarded(web::post().to(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    HttpResponse::ServiceUnavailable().finish()
                } else {
                    HttpResponse::Accepted().body(format!("call {n}"))
                }
            }
        })))
        .await;

        // Act
        let failed = test::call_service(&app, post("/act", "k").to_request()).await;
        let retried = test::call_service(&app, post("/act", "k").to_request()).await;
        let replayed = test::call_service(&app, post("/act", "k").to_request()).await;

        // Assert
        assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(test::read_body(retried).await, "call 1");
        assert_eq!(test::read_body(replayed).await, "call 1");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "handled twice, not three times"
        );
    }
}
