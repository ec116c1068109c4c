//! Sessions: the sign-in (the printed link in local mode, the person's bearer token in
//! token mode), the session cookie, its end, and the Origin check every form passes.

use std::collections::VecDeque;
use std::sync::PoisonError;
use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::{
    Body, Current, Dashboard, MAX_SESSIONS, Session, SignIn, field, not_same_origin, read_form,
    redirect, refused, same, sign_in_refused,
};
use crate::dashboard::live::Cluster;

impl Dashboard {
    pub(super) fn sessions(&self) -> std::sync::MutexGuard<'_, VecDeque<Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request's session, if it has one that has not ended.
    pub(super) fn session<B>(&self, request: &Request<B>) -> Option<Current> {
        let id = request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                c.trim()
                    .strip_prefix(self.cookie.as_str())?
                    .strip_prefix('=')
            })?;
        let now = Instant::now();
        self.sessions()
            .iter()
            .find(|s| same(&s.id, id))
            .map(|s| s.current.clone())
            .filter(|c| c.expires.is_none_or(|at| now < at))
    }

    /// A new session of `user` for `cluster`, lasting `ttl` (for ever with `None`): the
    /// cookie set and a redirect to the queue.
    pub(super) fn open_session(
        &self,
        cluster: Cluster,
        ttl: Option<Duration>,
        user: Option<String>,
    ) -> Response<Body> {
        let (Some(id), Some(csrf)) = (crate::seal::random_token(), crate::seal::random_token())
        else {
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot sign in",
                "The system's random source failed; restart tollgate dashboard.",
            );
        };
        let now = Instant::now();
        let expires = ttl.and_then(|ttl| now.checked_add(ttl));
        let mut cookie = format!("{}={id}; {}", self.cookie, self.cookie_attributes);
        if let Some(ttl) = ttl {
            cookie.push_str(&format!("; Max-Age={}", ttl.as_secs()));
        }
        {
            let mut sessions = self.sessions();
            sessions.retain(|s| s.current.expires.is_none_or(|at| now < at));
            if sessions.len() >= MAX_SESSIONS {
                sessions.pop_front();
            }
            sessions.push_back(Session {
                id,
                current: Current {
                    csrf,
                    cluster,
                    expires,
                    user,
                },
            });
        }
        // Off the address with the token, so it stays out of the browser's history.
        let mut response = redirect("/");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        response
    }

    /// Ends the session `current` is of (its cookie then leads nowhere).
    pub(super) fn sign_out(&self, current: &Current) -> Response<Body> {
        self.sessions()
            .retain(|s| !same(&s.current.csrf, &current.csrf));
        match self.sign_in {
            SignIn::Token { .. } => redirect("/sign-in"),
            SignIn::Link { .. } => refused(
                StatusCode::OK,
                "Signed out",
                "Open the link tollgate dashboard printed to sign in again.",
            ),
        }
    }

    /// Whether the request comes from a page of this dashboard (its Origin).
    pub(super) fn same_origin<B>(&self, request: &Request<B>, host: &str) -> bool {
        request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|origin| origin == format!("{}://{host}", self.scheme))
    }

    /// Token mode: the bearer token in the sign-in form, checked by the API server with a
    /// SelfSubjectReview made with it; on success a session with its own client.
    pub(super) async fn sign_in_with_token<B>(
        &self,
        request: Request<B>,
        host: &str,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let SignIn::Token {
            config,
            namespaces,
            ttl,
        } = &self.sign_in
        else {
            return refused(StatusCode::NOT_FOUND, "Not found", "No such page.");
        };
        if !self.same_origin(&request, host) {
            return not_same_origin();
        }
        let form = match read_form(request).await {
            Ok(form) => form,
            Err(response) => return response,
        };
        let token = field(&form, "token").trim().to_owned();
        if token.is_empty() {
            return sign_in_refused(StatusCode::BAD_REQUEST, "No token was given.");
        }
        let mut config = (**config).clone();
        config.auth_info.token = Some(secrecy::SecretString::from(token));
        let client = match kube::Client::try_from(config) {
            Ok(client) => client,
            Err(e) => {
                return sign_in_refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot make a client for the API server: {e}"),
                );
            }
        };
        let review = Api::<SelfSubjectReview>::all(client.clone())
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await;
        match review {
            Ok(review) => {
                let user = review
                    .status
                    .and_then(|s| s.user_info)
                    .and_then(|u| u.username);
                self.open_session(Cluster::watch(client, namespaces.clone()), Some(*ttl), user)
            }
            Err(kube::Error::Api(status)) => sign_in_refused(
                StatusCode::from_u16(status.code).unwrap_or(StatusCode::UNAUTHORIZED),
                &status.message,
            ),
            Err(e) => sign_in_refused(
                StatusCode::BAD_GATEWAY,
                &format!("the API server could not be asked: {e}"),
            ),
        }
    }
}
