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
