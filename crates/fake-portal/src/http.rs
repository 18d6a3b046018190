//! The HTTP/1.1 side: accept connections, decode the query, encode replies.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::State;

/// Serves `state` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // Headers and body leave in separate writes: without this a client's delayed ACK
        // adds 40 ms to every call and the latency figures lie.
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(Arc::clone(&state), request));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn respond(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let reply = if (request.method().as_str(), path.as_str()) == ("POST", "/token") {
        // SSO OIDC's only operation here, the one with a body.
        let body = request.into_body().collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
        state.create_token(&body).await
    } else if path == "/listRegions" {
        // The Account API, signed with minted role credentials (account_api.rs).
        let authorization = request.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = request.into_body().collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
        state.list_regions(authorization.as_deref(), &body)
    } else {
        let query = request.uri().query().map(parse_query).unwrap_or_default();
        let token = request.headers().get("x-amz-sso_bearer_token").and_then(|v| v.to_str().ok());
        state.handle(request.method().as_str(), request.uri().path(), &query, token).await
    };
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", reply.body.content_type())
        .header("x-amzn-requestid", "fake-portal-request");
    if let Some(error_type) = reply.error_type {
        response = response.header("x-amzn-ErrorType", error_type);
    }
    Ok(response.body(Full::new(Bytes::from(reply.body.into_bytes()))).expect("valid response"))
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("a%2Bb%3D"), "a+b=");
        assert_eq!(percent_decode("50%"), "50%");
    }
}
