//! `[relay] metrics` facing hostile clients: the real relay beside real
//! concurrent pushes, raw-socket clients written here (real ones do not
//! misbehave on demand), and a metrics read that must still be answered.

mod accounts;
mod brokers;
mod gitutil;
mod listenutil;
mod pushutil;
mod relayutil;

use brokers::activemq;
use pushutil::{Layout, Server, CAP, IDLE, PUSHERS};
use relayutil::{delivered, metered_relay, scrape};

/// Clients that hold connections to the relay's metrics port (idle, a
/// request line never finished, a body declared a terabyte long, requests
/// pipelined and never read) stop neither its delivering nor its answers.
#[test]
fn hostile_clients_of_the_metrics_port_do_not_stop_the_relay() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let amq = activemq();
    let (server, relay, metrics) = metered_relay(&amq, Layout::BranchEach);
    let connect = || TcpStream::connect(&metrics).unwrap();
    let idle: Vec<TcpStream> = (0..20).map(|_| connect()).collect();
    let mut unfinished = connect();
    unfinished.write_all(b"GET /metr").unwrap();
    let mut huge = connect();
    huge.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
        .unwrap();
    let mut pipeliner = connect();
    let requests = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    pipeliner
        .set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let _ = pipeliner.write_all(&requests); // it stops reading: the write may block

    let subscription = amq.drain(&server.queue, PUSHERS, IDLE, CAP);
    let pushed = server.push_all();
    assert!(pushed.iter().all(|push| push.told().is_empty()));
    Server::assert_each_received_once(subscription);
    relay.wait_for("delivery of every push", |lines| {
        delivered(lines) == PUSHERS
    });
    let (samples, health) = scrape(&metrics);
    assert_eq!(health, 200);
    assert_eq!(
        samples["hookbus_relay_messages_delivered_total{}"],
        PUSHERS as f64
    );
    assert_eq!(
        samples["hookbus_relay_pushes_taken_total{}"],
        PUSHERS as f64
    );
    huge.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut answer = [0u8; 12];
    huge.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413", "a terabyte is refused unread");
    drop((idle, unfinished, pipeliner));
    let (status, lines) = relay.stop();
    assert!(status.success(), "relay exit {status:?}: {lines:#?}");
}
