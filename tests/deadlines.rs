//! One deadline bounds every publish, whatever the broker does: fake brokers
//! (tests/fake_broker) that trickle a TLS handshake or TLS records a byte at
//! a time, or read a big message slowly, against the real binary's `send`,
//! `check`, `flush` and post-receive hook with `deadline_ms = 2000`.

mod brokers;
mod fake_broker;
mod gitutil;
mod hostile;

use fake_broker::{FakeBroker, Peer};
use hostile::{
    assert_bounded, route, send_queued_in_time, Setup, SevenRefs, FLUSH_HANG_BOUND, HANG_BOUND,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const TRICKLE: Duration = Duration::from_millis(500);

fn tls_setup(broker: &FakeBroker) -> Setup {
    let url = format!("stomp+ssl://localhost:{}", broker.port);
    Setup::new(&url, &format!("ca_file = {:?}", brokers::test_ca()))
}

#[test]
fn a_tls_handshake_trickled_a_byte_at_a_time_cannot_hold_send_check_flush_or_a_hook() {
    let broker = FakeBroker::start(|peer| {
        let mut hello = [0u8; 4096];
        let read = peer.tcp.read(&mut hello)?;
        peer.note(&format!("got {read} bytes of ClientHello"));
        // A handshake record announcing 16 KB, sent a byte at a time.
        let mut record = vec![0x16, 0x03, 0x03, 0x40, 0x00];
        record.resize(0x4005, 0x02);
        peer.trickle(&record, TRICKLE)
    });
    let setup = tls_setup(&broker);
    let sent = send_queued_in_time(&setup, &broker);
    assert!(sent.stderr.contains("timed out"), "{}", sent.stderr);

    let checked = setup.hookbus(&["check"], b"");
    assert_bounded("check", &checked, HANG_BOUND, &broker.log());
    assert_eq!(checked.status, Some(6), "{}", checked.stdout);

    let flushed = setup.hookbus(&["flush"], b"");
    assert_bounded("flush", &flushed, FLUSH_HANG_BOUND, &broker.log());
    assert!(flushed.stderr.contains("1 left"), "{}", flushed.stderr);

    let refs = SevenRefs::new();
    setup.write(
        &format!("stomp+ssl://localhost:{}", broker.port),
        &format!("ca_file = {:?}", brokers::test_ca()),
        &route("/queue/hostile"),
    );
    let hook = refs.hook(&setup);
    assert_bounded("post-receive", &hook, HANG_BOUND, &broker.log());
    assert_eq!(setup.listing().0, 1 + hostile::REFS, "all kept");
    assert!(broker.count("ClientHello") >= 4, "{:#?}", broker.log());
}

/// A TLS server with the test broker's certificate (scripts/brokers makes it
/// beside the test CA).
fn tls_server() -> Arc<rustls::ServerConfig> {
    let ca = brokers::test_ca();
    let dir = Path::new(&ca).parent().unwrap();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("broker.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("broker.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

/// Reads plaintext until `frames` NUL-terminated frames came in all.
fn read_frames(
    tls: &mut rustls::ServerConnection,
    peer: &mut Peer,
    frames: usize,
) -> io::Result<Vec<u8>> {
    let mut plain = Vec::new();
    while plain.iter().filter(|&&b| b == 0).count() < frames && peer.alive() {
        let mut chunk = [0u8; 16 * 1024];
        match tls.reader().read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => plain.extend_from_slice(&chunk[..read]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                if tls.read_tls(&mut peer.tcp)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                tls.process_new_packets().map_err(io::Error::other)?;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(plain)
}

#[test]
fn tls_records_trickled_a_byte_at_a_time_cannot_hold_send_past_its_deadline() {
    let config = tls_server();
    let broker = FakeBroker::start(move |peer| {
        peer.tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut tls =
            rustls::ServerConnection::new(Arc::clone(&config)).map_err(io::Error::other)?;
        while tls.is_handshaking() {
            tls.complete_io(&mut peer.tcp)?;
        }
        let connect = read_frames(&mut tls, peer, 1)?;
        peer.note(&format!("got {} bytes: CONNECT", connect.len()));
        tls.writer().write_all(b"CONNECTED\nversion:1.2\n\n\0")?;
        tls.complete_io(&mut peer.tcp)?;
        let send = read_frames(&mut tls, peer, 1)?;
        peer.note(&format!("got {} bytes: SEND", send.len()));
        // The receipt, encrypted, its record sent a byte at a time.
        tls.writer()
            .write_all(b"RECEIPT\nreceipt-id:hookbus-0\n\n\0")?;
        let mut cipher = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut cipher)?;
        }
        peer.trickle(&cipher, TRICKLE)
    });
    let setup = tls_setup(&broker);
    send_queued_in_time(&setup, &broker);
    assert!(broker.count("SEND") >= 1, "{:#?}", broker.log());
}

#[test]
fn a_broker_reading_slowly_cannot_stretch_the_deadline() {
    const BODY_BYTES: usize = 16 * 1024 * 1024;
    let broker = FakeBroker::start(|peer| {
        peer.connected()?;
        peer.tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut chunk = vec![0u8; 16 * 1024];
        let mut total = 0;
        while peer.alive() {
            match peer.tcp.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(read) => total += read,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        peer.note(&format!("read {total} bytes slowly"));
        Ok(())
    });
    let setup = Setup::new(&format!("stomp://{}", broker.address), "");
    let sent = setup.send(&vec![b'x'; BODY_BYTES]);
    assert_bounded("send", &sent, HANG_BOUND, &broker.log());
    assert!(sent.stderr.contains("timed out sending"), "{}", sent.stderr);
    assert_eq!(setup.listing().0, 1, "the message is kept");
}
