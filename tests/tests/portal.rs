//! The portal over HTTP, where its pages' statements are concerned: prepared once
//! per user and kept, they must follow the user (the page's rows are the user's
//! rows now, not when the statement was prepared). The pages themselves are tested
//! through Chromium and Python in `clients/python/tests/test_portal*.py`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use amar_tests::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One browser: its cookies, one request per connection (HTTP/1.0, so the body is
/// sent whole and the connection closed after it).
struct Visitor {
    addr: SocketAddr,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    body: String,
}

impl Visitor {
    fn new(addr: SocketAddr) -> Self {
        Visitor {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    async fn request(&mut self, method: &str, path: &str, form: Option<String>) -> Page {
        let mut head = format!("{method} {path} HTTP/1.0\r\nHost: amar\r\n");
        if !self.cookies.is_empty() {
            let cookies: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        let body = form.unwrap_or_default();
        if method == "POST" {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).expect("pages are UTF-8");
        let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("set-cookie") {
                let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
                let (k, v) = pair.split_once('=').unwrap();
                if attributes.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
        Page {
            status,
            body: body.to_string(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.request("GET", path, None).await
    }

    async fn sign_in(&mut self, user: &str) {
        let form = self.get("/signin").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = form
            .body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the sign-in form carries its token")
            .to_string();
        let signed = self
            .request(
                "POST",
                "/signin",
                Some(format!("csrf={token}&user={user}&password={user}&next=%2F")),
            )
            .await;
        assert_eq!(signed.status, 303, "{}", signed.body);
        assert!(self.cookies.contains_key("amar_session"));
    }
}

/// A staff member's pages are planned once and then kept; when the user's row
/// filter changes (their province in the users file), the pages show the new
/// province's rows within seconds, in the session already open as in a new one,
/// never the old province's from a kept plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_page_statements_follow_the_users_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::demo_in(dir.path(), 0.05).unwrap();
    let mut tehran = Visitor::new(server.portal_addr);
    tehran.sign_in("tehran").await;
    // Twice: the second view (a new URL, so not from the page cache) runs the
    // statements the first one prepared.
    for n in 0..2 {
        assert_eq!(tehran.get(&format!("/units/23?n={n}")).await.status, 200);
        assert_eq!(tehran.get(&format!("/units/1?n={n}")).await.status, 404);
    }
    let units = tehran.get("/units?n=0").await.body;
    assert_eq!(units.matches("<th scope=\"row\">").count(), 1, "{units}");
    assert!(units.contains("/units/23"), "{units}");

    // Tehran's reader moves to Gilan (1).
    let users = dir.path().join("users.toml");
    let text = std::fs::read_to_string(&users).unwrap();
    let moved = text.replace("province_code = \"23\"", "province_code = \"1\"");
    assert_ne!(moved, text, "{text}");
    std::fs::write(&users, format!("{moved}\n")).unwrap();

    // The open session follows: its kept statements are planned again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 2;
    while tehran.get(&format!("/units/1?n={n}")).await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "the open session still reads province 23"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        n += 1;
    }
    let mut again = Visitor::new(server.portal_addr);
    again.sign_in("tehran").await;
    for visitor in [&mut tehran, &mut again] {
        for n in 100..102 {
            assert_eq!(visitor.get(&format!("/units/1?n={n}")).await.status, 200);
            assert_eq!(visitor.get(&format!("/units/23?n={n}")).await.status, 404);
        }
        let units = visitor.get("/units?n=100").await.body;
        assert_eq!(units.matches("<th scope=\"row\">").count(), 1, "{units}");
        assert!(
            units.contains("/units/1\"") && !units.contains("/units/23"),
            "{units}"
        );
    }
    server.stop();
}
