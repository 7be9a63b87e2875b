//! The statistics portal: web pages for managers, provinces and the public, served
//! by `amar serve` on its own listener (`[portal] listen`, `--portal-listen`), apart
//! from the operations port, so that an internet-facing address never serves the
//! metrics.
//!
//! The portal is a front end like pgwire and Flight SQL: every page runs its SQL in
//! the visitor's engine session ([`query::run`], the one statement path), so the
//! policy, row filters, masks, disclosure control and the audit hold for pages and
//! downloads exactly as for SQL. Each page view and download also writes one audit
//! entry of its own (`GET /path`, front end `portal`), served from the cache or not.
//!
//! Pages are rendered on the server and read without JavaScript; every asset is in
//! the binary ([`assets`]), and a Content-Security-Policy of `'self'` keeps the
//! browser from asking any other host for anything. Persian first; `?lang=en` for
//! English on every page.
//!
//! Pages and downloads are cached per (user, data generation, language, URL): the
//! generation changes when the policy is reloaded or a release is published, and a
//! cached page of live figures is kept at most `[portal] cache_ttl`.

pub mod assets;
pub mod chart;
pub mod download;
pub mod https;
pub mod page;
mod pages;
pub mod query;
pub mod signin;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use amar_policies::enforce::Report;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::PortalConfig;
use crate::display::Lang;
use crate::engine::{Engine, Session, SqlError, code};
use https::Client;
use page::{Frame, t};
use signin::{Attempts, CSRF_COOKIE, Found, SESSION_COOKIE, Sessions, SignedIn};

/// The Content-Security-Policy of every response: nothing from any other host, no
/// inline script or style, no framing.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Pages and downloads kept at most.
const CACHE_ENTRIES: usize = 2048;

/// What the handlers share.
pub struct Portal {
    engine: Arc<Engine>,
    config: PortalConfig,
    sessions: Sessions,
    attempts: Attempts,
    /// Served over HTTPS: cookies are `Secure`.
    tls: bool,
    cache: Mutex<HashMap<CacheKey, (Instant, Arc<Rendered>)>>,
    /// The pages being made now: a request for a page another request is already
    /// making waits for it instead of making it again (when a popular page expires,
    /// one visitor's request runs its queries, not every visitor's at once).
    making: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
    /// The pages' statements, prepared once per user.
    pub(crate) statements: query::Statements,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    user: String,
    generation: u64,
    lang: Lang,
    uri: String,
    /// The scheme and host the page's permalinks name: a visitor who sends another
    /// `Host` gets a page of their own, never one for everyone.
    origin: String,
}

/// What a page handler made: a page's main content or a file.
#[derive(Debug, Clone)]
pub enum Rendered {
    Page {
        title: String,
        body: String,
        /// Rows of figures the page shows (for its audit entry).
        rows: u64,
    },
    File {
        name: String,
        content_type: &'static str,
        bytes: Bytes,
        rows: u64,
    },
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// No such page, or nothing the visitor may see there: the same answer for both.
    NotFound,
    /// The visitor may not see this page (signed in without the rights).
    Forbidden,
    /// Only signed-in staff see this page.
    SignIn,
    /// A query failed.
    Failed(SqlError),
}

impl From<SqlError> for PageError {
    fn from(e: SqlError) -> Self {
        match e.code {
            code::INSUFFICIENT_PRIVILEGE => PageError::Forbidden,
            _ => PageError::Failed(e),
        }
    }
}

/// A page's request, as the page handlers see it.
pub struct Request<'a> {
    pub session: &'a Session,
    pub lang: Lang,
    /// Signed in and not in the public role.
    pub staff: bool,
    /// The query string's pairs (without `lang`).
    pub query: &'a [(String, String)],
    pub portal: &'a Portal,
    /// The scheme and host the visitor used, for permalinks.
    pub origin: String,
}

impl Request<'_> {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The organisation's name in the request's language.
    pub fn name(&self) -> &str {
        match self.lang {
            Lang::Fa => &self.portal.config.name_fa,
            Lang::En => &self.portal.config.name_en,
        }
    }
}

/// Which page a GET asks for.
#[derive(Debug, Clone)]
pub enum Target {
    Home,
    Indicator(String),
    Download(String, String),
    Units,
    Unit(String),
    Office,
    Glossary,
}

/// Serves the portal until `shutdown` is cancelled: over HTTPS when `tls` is given
/// (the server's certificate), over HTTP otherwise.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: PortalConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let mut portal = Portal::new(engine, config);
    portal.tls = tls.is_some();
    let app = router(Arc::new(portal)).into_make_service_with_connect_info::<Client>();
    let stop = shutdown.clone();
    let result = match tls {
        Some(acceptor) => match https::TlsListener::new(listener, acceptor, shutdown.clone()) {
            Ok(listener) => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            }
            Err(e) => Err(e),
        },
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }
    };
    if let Err(e) = result {
        tracing::error!("the portal stopped: {e}");
    }
}

impl Portal {
    pub fn new(engine: Arc<Engine>, config: PortalConfig) -> Self {
        Portal {
            sessions: Sessions::new(engine.clone(), config.idle_timeout),
            engine,
            config,
            attempts: Attempts::default(),
            tls: false,
            cache: Mutex::new(HashMap::new()),
            making: Mutex::new(HashMap::new()),
            statements: query::Statements::default(),
        }
    }
}

fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/", page_at(Target::Home))
        .route("/indicators", page_at(Target::Home))
        .route("/indicators/{id}", get(indicator))
        .route("/indicators/{id}/{file}", get(indicator_file))
        .route("/units", page_at(Target::Units))
        .route("/units/{code}", get(unit))
        .route("/office", page_at(Target::Office))
        .route("/glossary", page_at(Target::Glossary))
        .route("/signin", get(signin_form).post(signin_post))
        .route("/signout", post(signout))
        .route("/assets/{name}", get(asset))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(portal)
}

/// Headers every response carries.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-cache"));
    response
}

type Shared = State<Arc<Portal>>;
type Peer_ = ConnectInfo<Client>;

/// The GET of a page whose path names nothing to read.
fn page_at(target: Target) -> axum::routing::MethodRouter<Arc<Portal>> {
    get(
        move |State(p): Shared, ConnectInfo(Client(a)): Peer_, uri: Uri, h: HeaderMap| async move {
            p.get(a, &uri, &h, target).await
        },
    )
}

async fn indicator(
    State(p): Shared,
    ConnectInfo(Client(a)): Peer_,
    Path(id): Path<String>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    p.get(a, &uri, &h, Target::Indicator(id)).await
}

async fn indicator_file(
    State(p): Shared,
    ConnectInfo(Client(a)): Peer_,
    Path((id, file)): Path<(String, String)>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    p.get(a, &uri, &h, Target::Download(id, file)).await
}

async fn unit(
    State(p): Shared,
    ConnectInfo(Client(a)): Peer_,
    Path(code): Path<String>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    p.get(a, &uri, &h, Target::Unit(code)).await
}

async fn not_found(
    State(p): Shared,
    ConnectInfo(Client(a)): Peer_,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    let visitor = p.visitor(a, &h);
    let frame = p.frame(&uri, &visitor);
    let response = p.error_page(&frame, PageError::NotFound);
    if let Some(session) = visitor.session() {
        audit_view(session, &uri, StatusCode::NOT_FOUND, 0, false);
    }
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::find(&name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

/// Who is asking.
pub(crate) struct Visitor {
    signed: Option<(String, Arc<SignedIn>)>,
    /// The anonymous visitor's session, when there is an anonymous user.
    anonymous: Option<Arc<Session>>,
    /// A session cookie came with the request and its session has ended.
    ended: bool,
    /// Whether the request came over TLS (at a proxy in front).
    secure: bool,
}

impl Visitor {
    fn session(&self) -> Option<&Session> {
        match &self.signed {
            Some((_, s)) => Some(&s.session),
            None => self.anonymous.as_deref(),
        }
    }

    fn staff(&self) -> bool {
        self.signed
            .as_ref()
            .is_some_and(|(_, s)| !s.session.user.is_public())
    }
}

/// The query string's pairs, without `lang`, and the language.
fn query_of(uri: &Uri) -> (Lang, Vec<(String, String)>) {
    let mut lang = Lang::Fa;
    let mut pairs = vec![];
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if k == "lang" {
            if v == "en" {
                lang = Lang::En;
            }
        } else {
            pairs.push((k.into_owned(), v.into_owned()));
        }
    }
    (lang, pairs)
}

impl Portal {
    fn visitor(&self, addr: SocketAddr, headers: &HeaderMap) -> Visitor {
        let token = signin::cookie(headers, SESSION_COOKIE);
        let (signed, ended) = match self.sessions.find(token) {
            Found::Active(s) => (token.map(|t| (t.to_string(), s)), false),
            Found::Ended => (None, true),
            Found::None => (None, false),
        };
        let anonymous = if signed.is_none() {
            self.config
                .anonymous_user
                .as_deref()
                .and_then(|name| self.engine.users().lookup(name))
                .filter(|u| !u.disabled && u.is_public())
                .map(|user| signin::session(&self.engine, user, addr))
        } else {
            None
        };
        let secure = self.tls
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        Visitor {
            signed,
            anonymous,
            ended,
            secure,
        }
    }

    fn frame(&self, uri: &Uri, visitor: &Visitor) -> Frame {
        let (lang, query) = query_of(uri);
        Frame {
            lang,
            path: uri.path().to_string(),
            query,
            user: visitor
                .signed
                .as_ref()
                .map(|(_, s)| s.session.user.name.clone()),
            staff: visitor.staff(),
            csrf: visitor.signed.as_ref().map(|(_, s)| s.csrf.clone()),
            notice: visitor.ended.then(|| {
                t(
                    lang,
                    "نشست شما پایان یافته است (زمان بی‌کاری یا تغییر حساب)؛ برای دیدن صفحه‌های کارکنان دوباره وارد شوید.",
                    "Your session has ended (idle too long, or your account changed); sign in again to see staff pages.",
                )
                .to_string()
            }),
            name: (self.config.name_fa.clone(), self.config.name_en.clone()),
        }
    }

    /// A GET of a page or a download: from the cache, or made in the visitor's session.
    async fn get(
        &self,
        addr: SocketAddr,
        uri: &Uri,
        headers: &HeaderMap,
        target: Target,
    ) -> Response {
        let visitor = self.visitor(addr, headers);
        let mut frame = self.frame(uri, &visitor);
        let Some(session) = visitor.session() else {
            // No anonymous user: everything needs a sign-in.
            let next: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("next", uri.path())
                .finish();
            let mut response = redirect(&frame.link(&format!("/signin?{next}")));
            if visitor.ended {
                clear_session(&mut response, visitor.secure);
            }
            return response;
        };
        let started = (Utc::now(), Instant::now());
        let origin = origin(headers, visitor.secure);
        let key = CacheKey {
            user: session.user.name.clone(),
            generation: self.engine.generation(),
            lang: frame.lang,
            uri: uri.to_string(),
            origin: origin.clone(),
        };
        let mut cached = self.cached(&key);
        // One request makes a page; others asking for it meanwhile wait for it.
        let mut turn = None;
        if cached.is_none() {
            let gate = self
                .making
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.clone())
                .or_default()
                .clone();
            turn = Some(gate.lock_owned().await);
            cached = self.cached(&key);
        }
        let from_cache = cached.is_some();
        let rendered = match cached {
            Some(r) => Ok(r),
            None => {
                let request = Request {
                    session,
                    lang: frame.lang,
                    staff: visitor.staff(),
                    query: &frame.query,
                    portal: self,
                    origin,
                };
                match pages::render(&request, &target).await {
                    Ok(r) => {
                        let r = Arc::new(r);
                        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                        if cache.len() >= CACHE_ENTRIES {
                            let ttl = self.config.cache_ttl;
                            cache.retain(|_, (at, _)| at.elapsed() < ttl);
                            if cache.len() >= CACHE_ENTRIES {
                                cache.clear();
                            }
                        }
                        cache.insert(key.clone(), (Instant::now(), r.clone()));
                        Ok(r)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if turn.take().is_some() {
            self.making
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
        let mut response = match rendered {
            Ok(r) => {
                let rows = match r.as_ref() {
                    Rendered::Page { rows, .. } | Rendered::File { rows, .. } => *rows,
                };
                write_view(session, uri, started, "allowed", rows, None, from_cache);
                match r.as_ref() {
                    Rendered::Page { title, body, .. } => {
                        html(StatusCode::OK, frame.render(title, body))
                    }
                    Rendered::File {
                        name,
                        content_type,
                        bytes,
                        ..
                    } => file(name, content_type, bytes.clone()),
                }
            }
            Err(e) => {
                let (status, error) = status_of(&e);
                write_view(session, uri, started, "denied", 0, Some(&error), false);
                if matches!(e, PageError::SignIn) && visitor.signed.is_none() {
                    let next: String = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", uri.path())
                        .finish();
                    redirect(&frame.link(&format!("/signin?{next}")))
                } else {
                    if status == StatusCode::INTERNAL_SERVER_ERROR {
                        tracing::warn!(uri = %uri, "a portal page failed: {}", error.message);
                    }
                    frame.notice = frame.notice.take();
                    self.error_page(&frame, e)
                }
            }
        };
        if visitor.ended {
            clear_session(&mut response, visitor.secure);
        }
        response
    }

    /// A page in the cache and still fresh.
    fn cached(&self, key: &CacheKey) -> Option<Arc<Rendered>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.config.cache_ttl)
            .map(|(_, r)| r.clone())
    }

    fn error_page(&self, frame: &Frame, e: PageError) -> Response {
        let lang = frame.lang;
        let (status, title, text) = match &e {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                t(lang, "صفحه پیدا نشد", "Page not found"),
                t(
                    lang,
                    "چنین صفحه‌ای نیست، یا چیزی در آن نیست که شما اجازه‌ی دیدنش را داشته باشید. نشانی را بررسی کنید یا از فهرست شاخص‌ها شروع کنید.",
                    "There is no such page, or nothing on it you may see. Check the address, or start from the list of indicators.",
                )
                .to_string(),
            ),
            PageError::Forbidden | PageError::SignIn => (
                StatusCode::FORBIDDEN,
                t(lang, "دسترسی ندارید", "Access denied"),
                t(
                    lang,
                    "حساب شما اجازه‌ی دیدن این صفحه را ندارد. اگر فکر می‌کنید باید داشته باشد، با گروه حفاظت اطلاعات تماس بگیرید.",
                    "Your account may not see this page. If you think it should, ask the information-protection group.",
                )
                .to_string(),
            ),
            PageError::Failed(err) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                t(lang, "خواندن ارقام ممکن نشد", "The figures could not be read"),
                format!(
                    "{} (SQLSTATE {})",
                    t(
                        lang,
                        "خطایی پیش آمد و ثبت شد؛ کمی بعد دوباره بکوشید.",
                        "Something failed and it was recorded; try again shortly.",
                    ),
                    err.code
                ),
            ),
        };
        let status = match &e {
            PageError::Failed(err) if err.code == code::QUERY_CANCELED => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => status,
        };
        let body = format!(
            "<h1>{}</h1>\n<p class=\"notice error\">{}</p>\n<p><a href=\"{}\">{}</a></p>\n",
            title,
            crate::display::escape(&text),
            frame.link("/"),
            t(lang, "فهرست شاخص‌ها", "All indicators")
        );
        html(status, frame.render(title, &body))
    }
}

/// The status and audit error of a page that could not be shown.
fn status_of(e: &PageError) -> (StatusCode, SqlError) {
    match e {
        PageError::NotFound => (
            StatusCode::NOT_FOUND,
            SqlError::new(code::UNDEFINED_OBJECT, "no such page"),
        ),
        PageError::Forbidden | PageError::SignIn => (
            StatusCode::FORBIDDEN,
            SqlError::new(
                code::INSUFFICIENT_PRIVILEGE,
                "permission denied for the page",
            ),
        ),
        PageError::Failed(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.clone()),
    }
}

/// The audit entry of one page view or download.
fn write_view(
    session: &Session,
    uri: &Uri,
    started: (chrono::DateTime<Utc>, Instant),
    decision: &str,
    rows: u64,
    error: Option<&SqlError>,
    cached: bool,
) {
    let text = if cached {
        format!("GET {uri} (cached)")
    } else {
        format!("GET {uri}")
    };
    session.audit(&text, started, &Report::default(), decision, rows, 0, error);
}

fn audit_view(session: &Session, uri: &Uri, status: StatusCode, rows: u64, cached: bool) {
    let error =
        (status != StatusCode::OK).then(|| SqlError::new(code::UNDEFINED_OBJECT, "no such page"));
    write_view(
        session,
        uri,
        (Utc::now(), Instant::now()),
        if error.is_some() { "denied" } else { "allowed" },
        rows,
        error.as_ref(),
        cached,
    );
}

/// `https://host` or `http://host` as the visitor addressed the portal.
fn origin(headers: &HeaderMap, secure: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    format!("{}://{host}", if secure { "https" } else { "http" })
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn file(name: &str, content_type: &'static str, bytes: Bytes) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn cookie_header(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        text.push_str("; Secure");
    }
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_session(response: &mut Response, secure: bool) {
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, "", secure, Some(0)),
    );
}

// ------------------------------------------------------------------ sign-in, sign-out

/// The `next` a sign-in returns to: a path on this site only.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

async fn signin_form(
    State(p): Shared,
    ConnectInfo(Client(a)): Peer_,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    let visitor = p.visitor(a, &h);
    let frame = p.frame(&uri, &visitor);
    let next = local_path(
        frame
            .query
            .iter()
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.as_str()),
    );
    // The form's token: the visitor's cookie's, or a new one set now.
    let existing = signin::cookie(&h, CSRF_COOKIE)
        .filter(|t| t.len() == 43)
        .map(str::to_string);
    let token = existing.clone().unwrap_or_else(signin::token);
    let mut response = html(
        StatusCode::OK,
        pages::signin_page(&frame, &next, &token, None, ""),
    );
    if existing.is_none() {
        response.headers_mut().append(
            header::SET_COOKIE,
            cookie_header(CSRF_COOKIE, &token, visitor.secure, None),
        );
    }
    if visitor.ended {
        clear_session(&mut response, visitor.secure);
    }
    response
}

async fn signin_post(
    State(p): Shared,
    ConnectInfo(Client(addr)): Peer_,
    uri: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let visitor = p.visitor(addr, &h);
    let frame = p.frame(&uri, &visitor);
    let lang = frame.lang;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let next = local_path(form.get("next").map(String::as_str));
    let cookie_token = signin::cookie(&h, CSRF_COOKIE).unwrap_or("");
    let token = if cookie_token.len() == 43 {
        cookie_token.to_string()
    } else {
        signin::token()
    };
    let user = field("user").trim().to_string();
    let again = |status: StatusCode, message: &str| {
        let mut response = html(
            status,
            pages::signin_page(&frame, &next, &token, Some(message), &user),
        );
        if cookie_token != token {
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie_header(CSRF_COOKIE, &token, visitor.secure, None),
            );
        }
        response
    };
    if cookie_token.is_empty() || !signin::same(cookie_token, field("csrf")) {
        return again(
            StatusCode::FORBIDDEN,
            t(
                lang,
                "این فرم منقضی شده یا از جای دیگری فرستاده شده است؛ دوباره بفرستید.",
                "This form has expired or was sent from elsewhere; please send it again.",
            ),
        );
    }
    if user.is_empty() || user.len() > 256 || field("password").len() > 1024 {
        return again(
            StatusCode::BAD_REQUEST,
            t(
                lang,
                "نام کاربری و گذرواژه را بنویسید.",
                "Enter your user name and password.",
            ),
        );
    }
    if let Some(wait) = p.attempts.refused(&user, addr.ip()) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        tracing::warn!(user, client = %addr, "portal sign-in refused: too many failures");
        let message = match lang {
            Lang::Fa => format!(
                "تلاش‌های ناموفق بسیاری برای این کاربر از نشانی شما شده است؛ {} دقیقه‌ی دیگر دوباره بکوشید.",
                page::digits(&minutes.to_string(), lang)
            ),
            Lang::En => format!(
                "Too many failed sign-ins for this user from your address; try again in {minutes} minutes."
            ),
        };
        let mut response = again(StatusCode::TOO_MANY_REQUESTS, &message);
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let engine = p.engine.clone();
    let (name, password) = (user.clone(), field("password").to_string());
    let checked = tokio::task::spawn_blocking(move || engine.verify_password(&name, &password))
        .await
        .ok()
        .flatten();
    let Some(account) = checked else {
        p.attempts.failed(&user, addr.ip());
        tracing::warn!(user, client = %addr, "portal sign-in failed");
        return again(
            StatusCode::UNAUTHORIZED,
            t(
                lang,
                "نام کاربری یا گذرواژه درست نیست.",
                "The user name or password is wrong.",
            ),
        );
    };
    p.attempts.succeeded(&user, addr.ip());
    let (session_token, signed) = p.sessions.open(account, addr);
    signed.session.audit(
        "portal sign-in",
        (Utc::now(), Instant::now()),
        &Report::default(),
        "allowed",
        0,
        0,
        None,
    );
    tracing::info!(user, client = %addr, "portal sign-in");
    let mut response = redirect(&frame.link(&next));
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, &session_token, visitor.secure, None),
    );
    response
}

async fn signout(
    State(p): Shared,
    ConnectInfo(Client(a)): Peer_,
    uri: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let visitor = p.visitor(a, &h);
    let frame = p.frame(&uri, &visitor);
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let given = form.get("csrf").map(String::as_str).unwrap_or("");
    match &visitor.signed {
        Some((token, signed)) if signin::same(&signed.csrf, given) => {
            signed.session.audit(
                "portal sign-out",
                (Utc::now(), Instant::now()),
                &Report::default(),
                "allowed",
                0,
                0,
                None,
            );
            p.sessions.close(token);
            let mut response = redirect(&frame.link("/"));
            clear_session(&mut response, visitor.secure);
            response
        }
        Some(_) => {
            let lang = frame.lang;
            let body = format!(
                "<h1>{}</h1><p class=\"notice error\">{}</p>",
                t(lang, "درخواست پذیرفته نشد", "Request refused"),
                t(
                    lang,
                    "این فرم از این صفحه فرستاده نشده است؛ صفحه را دوباره بار کنید و دوباره بکوشید.",
                    "This form did not come from this page; reload the page and try again.",
                )
            );
            html(
                StatusCode::FORBIDDEN,
                frame.render(t(lang, "درخواست پذیرفته نشد", "Request refused"), &body),
            )
        }
        None => {
            let mut response = redirect(&frame.link("/"));
            clear_session(&mut response, visitor.secure);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_returns_only_to_this_site() {
        assert_eq!(local_path(Some("/units")), "/units");
        assert_eq!(local_path(Some("//evil.example/x")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn the_language_comes_from_the_query_and_is_kept_apart() {
        let uri: Uri = "/units?sort=rank&lang=en".parse().unwrap();
        let (lang, rest) = query_of(&uri);
        assert_eq!(lang, Lang::En);
        assert_eq!(rest, vec![("sort".to_string(), "rank".to_string())]);
        let (lang, _) = query_of(&"/?lang=xx".parse().unwrap());
        assert_eq!(lang, Lang::Fa);
    }
}
