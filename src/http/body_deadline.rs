//! A bound on the time to read a request's body. actix-web bounds the head
//! (`client_request_timeout`) but not the body: a client that sends its headers and then
//! trickles or withholds the body would hold the connection until the keep-alive gives up. Here
//! the payload stream gets a deadline, counted from the end of the head; past it the stream ends
//! in an error, whoever reads it (an extractor, the idempotency middleware) gives up, and the
//! request is answered `408 {"error":"request_timeout"}` with `Connection: close`, so that the
//! connection, whose body is half-read, is not reused.
//!
//! A handler that never reads the body is not held by it, so the deadline never fires there;
//! a request that has no body at all is passed on untouched.

use crate::http::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError};
use bytes::Bytes;
use futures::Stream;
use std::cell::Cell;
use std::future::Future as _;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The middleware (see the module doc); wrap it with `actix_web::middleware::from_fn`.
pub async fn guard(
    timeout: Duration,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let inner = req.take_payload();
    // A request without a body (a GET, a POST with `Content-Length: 0`) has nothing to wait
    // for: no stream to wrap, no timer to arm.
    if matches!(inner, Payload::None) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    // `Rc`, not `Arc`: a request and its payload stay on one worker thread.
    let expired = Rc::new(Cell::new(false));
    let payload = Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(timeout)),
        expired: Rc::clone(&expired),
        ended: false,
    };
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(payload);
    req.set_payload(Payload::from(boxed));
    let answer = next.call(req).await;
    if !expired.get() {
        return answer.map(ServiceResponse::map_into_boxed_body);
    }
    let request = match answer {
        Ok(response) => response.into_parts().0,
        Err(error) => {
            // The inner service failed without a request to answer with: let actix answer.
            tracing::info!(%error, "request body timed out");
            return Err(error);
        }
    };
    tracing::info!(path = %request.path(), "request body did not arrive in time");
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive within {} ms of its headers; send the whole body \
             at once, then try again",
            timeout.as_millis()
        ),
    )
    .error_response();
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(request, response))
}

/// A payload stream that ends in an error once its deadline passes.
struct Deadline {
    /// The client's payload.
    inner: Payload,
    /// Fires at the deadline.
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// Set when the deadline passed before the body ended; read by [`guard`].
    expired: Rc<Cell<bool>>,
    /// Whether the stream has ended (the body in full, or the deadline's error given).
    ended: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            self.ended = item.is_none();
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.ended = true;
        self.expired.set(true);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive in time",
        )))))
    }
}
