//! The `http` step's transport (`hookbus::action::http::send`) against the
//! fake HTTP server of tests/httputil, over loopback.

mod httputil;

use httputil::{FakeHttp, Reply};
use std::io::{Read, Write};
use std::net::TcpStream;

/// The fake server logs a request byte-exactly and answers from its script.
#[test]
fn the_fake_server_logs_what_it_got_and_follows_its_script() {
    let server = FakeHttp::start();
    server.push(Reply::status(500));
    server.on_path("/p", Reply::status(201).header("Location", "/q/1"));
    let raw = |request: &str| {
        let mut stream = TcpStream::connect(&server.address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let first = raw("POST /p?a=%20b HTTP/1.1\r\nHost: x\r\nX-Thing: v 1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
    assert!(first.starts_with("HTTP/1.1 500"), "{first}");
    let second = raw("GET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(second.starts_with("HTTP/1.1 201"), "{second}");
    assert!(second.contains("Location: /q/1"), "{second}");
    let third = raw("GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(third.starts_with("HTTP/1.1 200"), "{third}");
    let got = server.wait_for(3);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].target, "/p?a=%20b");
    assert_eq!(got[0].header("x-thing"), Some("v 1"));
    assert_eq!(got[0].body_text(), "abc");
    assert_eq!(got[1].target, "/p");
    assert!(got[1].body.is_empty());
    assert_eq!(got[2].path(), "/other");
}

use hookbus::action::http::{send, HttpRequest, TAIL_BYTES};
use std::time::Duration;

fn get(url: String) -> HttpRequest {
    HttpRequest {
        method: "GET".to_string(),
        url,
        headers: Vec::new(),
        body: None,
        basic: None,
        timeout: Duration::from_secs(10),
        retries: 2,
    }
}

#[test]
fn a_200_is_ok_after_one_request_sent_as_given() {
    let server = FakeHttp::start();
    let mut request = get(server.url("/job/name%20containing%20spaces/build?token=T1"));
    request.method = "POST".to_string();
    request.headers = vec![
        ("X-Origin".to_string(), "hookbus host1".to_string()),
        (
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    request.body = Some(b"REPO=spog&NEWREV=abc".to_vec());
    let outcome = send(&request);
    assert!(outcome.ok(), "{outcome:?}");
    assert_eq!(
        (outcome.status, outcome.attempts, outcome.body_tail.as_str()),
        (Some(200), 1, "ok")
    );
    let got = server.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(
        got[0].target,
        "/job/name%20containing%20spaces/build?token=T1"
    );
    assert_eq!(got[0].header("x-origin"), Some("hookbus host1"));
    assert_eq!(got[0].body_text(), "REPO=spog&NEWREV=abc");
    assert!(got[0].header("user-agent").unwrap().starts_with("hookbus/"));
    assert_eq!(got[0].header("authorization"), None);
}

#[test]
fn a_500_then_200_is_ok_after_two_attempts() {
    let server = FakeHttp::start();
    server.push(Reply::status(500));
    let outcome = send(&get(server.url("/job/x/build")));
    assert!(outcome.ok(), "{outcome:?}");
    assert_eq!((outcome.status, outcome.attempts), (Some(200), 2));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_404_is_final_and_the_error_has_no_secret() {
    let server = FakeHttp::start();
    server.set_default(Reply::status(404).body("no such job"));
    let mut request = get(server.url("/job/x/build?token=s3cret"));
    request.basic = Some(("ci".to_string(), "hunter22".to_string()));
    let outcome = send(&request);
    assert!(!outcome.ok());
    assert_eq!((outcome.status, outcome.attempts), (Some(404), 1));
    assert_eq!(outcome.body_tail, "no such job");
    let error = outcome.error.unwrap();
    assert!(error.contains("HTTP 404"), "{error}");
    assert!(error.contains("/job/x/build?[redacted]"), "{error}");
    assert!(
        !error.contains("s3cret") && !error.contains("hunter22"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn basic_auth_is_sent_as_the_standard_header() {
    let server = FakeHttp::start();
    server.set_default(Reply::status(201).header("Location", "/queue/item/7/"));
    let mut request = get(server.url("/job/x/build"));
    request.headers = vec![("Authorization".to_string(), "Bearer other".to_string())];
    request.basic = Some(("ci".to_string(), "pw".to_string()));
    let outcome = send(&request);
    assert!(outcome.ok(), "Jenkins' 201 is a success: {outcome:?}");
    let got = server.requests();
    let auth: Vec<&str> = got[0]
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(auth, ["Basic Y2k6cHc="], "base64 of ci:pw, and only that");
}

#[test]
fn connection_refused_is_retried_then_reported() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let outcome = send(&get(format!(
        "http://127.0.0.1:{port}/job/x/build?token=s3cret"
    )));
    assert!(!outcome.ok());
    assert_eq!((outcome.status, outcome.attempts), (None, 3));
    let error = outcome.error.unwrap();
    assert!(error.contains("could not connect"), "{error}");
    assert!(error.contains("after 3 attempts"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}

#[test]
fn a_server_that_never_answers_is_given_up_after_the_timeout() {
    let server = FakeHttp::start();
    server.set_default(Reply::hang());
    let mut request = get(server.url("/job/x/build"));
    request.timeout = Duration::from_secs(1);
    let outcome = send(&request);
    assert!(!outcome.ok());
    assert_eq!(
        (outcome.status, outcome.attempts),
        (None, 1),
        "a sent request without answer is not sent again"
    );
    let error = outcome.error.unwrap();
    assert!(error.contains("no complete answer within 1s"), "{error}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn redirects_are_reported_not_followed() {
    let server = FakeHttp::start();
    server.on_path(
        "/job/x/build",
        Reply::status(302).header("Location", "https://elsewhere.example/login?from=%2Fjob"),
    );
    let outcome = send(&get(server.url("/job/x/build")));
    assert!(!outcome.ok());
    assert_eq!((outcome.status, outcome.attempts), (Some(302), 1));
    let error = outcome.error.unwrap();
    assert!(
        error.contains("redirect to https://elsewhere.example/login?[redacted] not followed"),
        "{error}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn only_the_end_of_a_long_body_is_kept() {
    let server = FakeHttp::start();
    let body = format!("{}THE END", "x".repeat(100_000));
    server.set_default(Reply::status(500).body(body));
    let mut request = get(server.url("/"));
    request.retries = 0;
    let outcome = send(&request);
    assert_eq!((outcome.status, outcome.attempts), (Some(500), 1));
    assert_eq!(outcome.body_tail.len(), TAIL_BYTES);
    assert!(outcome.body_tail.ends_with("xTHE END"));
}

#[test]
fn a_server_failing_every_time_gets_one_plus_retries_attempts() {
    let server = FakeHttp::start();
    server.set_default(Reply::status(503));
    let mut request = get(server.url("/"));
    request.retries = 1;
    let outcome = send(&request);
    assert_eq!((outcome.status, outcome.attempts), (Some(503), 2));
    assert!(outcome
        .error
        .unwrap()
        .ends_with("HTTP 503 (after 2 attempts)"));
    assert_eq!(server.requests().len(), 2);
}

/// A "server" that answers the TLS handshake with plain HTTP: rustls (with the
/// ring provider, no panic for a missing one) refuses it, and that is final.
#[test]
fn https_uses_rustls_and_a_failed_handshake_is_final() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let plain = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        // the listener closes here: a second attempt would be refused
    });
    let outcome = send(&get(format!("https://{address}/job/x/build?token=s3cret")));
    plain.join().unwrap();
    assert!(!outcome.ok());
    assert_eq!((outcome.status, outcome.attempts), (None, 1), "{outcome:?}");
    let error = outcome.error.unwrap();
    assert!(error.contains("TLS"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}

/// A 2xx whose body breaks off is still a success: the server took the request.
#[test]
fn a_2xx_whose_body_breaks_off_is_ok_with_what_arrived() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\npartial");
    });
    let outcome = send(&get(format!("http://{address}/job/x/build")));
    server.join().unwrap();
    assert!(outcome.ok(), "{outcome:?}");
    assert_eq!((outcome.status, outcome.attempts), (Some(201), 1));
    assert_eq!(outcome.body_tail, "partial");
}
