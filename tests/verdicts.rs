//! Which ERROR is a verdict on a message, and what a refusal costs the other
//! messages: fake brokers (tests/fake_broker) for ERRORs real brokers do not
//! send on demand, RabbitMQ itself for its refusal of a missing exchange.
//! A receipted message is never sent again; an ERROR that answers no SEND
//! dead-letters nothing; broker words are clipped; garbage and resets only
//! delay delivery.

mod brokers;
mod fake_broker;
mod gitutil;
mod hostile;

use fake_broker::{receipt_for, FakeBroker, Peer, RawFrame};
use hostile::{
    assert_bounded, clipped, route, send_queued_in_time, Setup, SevenRefs, HANG_BOUND, REFS,
    SHOWN_BYTES,
};
use std::io;
use std::time::Duration;

/// The refname of the message a fake broker refuses.
const REFUSED: &str = "refs/heads/b3";

fn fake_setup(broker: &FakeBroker, destination: &str) -> Setup {
    let setup = Setup::new(&format!("stomp://{}", broker.address), "");
    setup.write(
        &format!("stomp://{}", broker.address),
        "",
        &route(destination),
    );
    setup
}

fn refname(frame: &RawFrame) -> &str {
    frame.get("refname").unwrap_or("-")
}

#[test]
fn an_error_right_after_connected_is_a_broker_problem_not_a_refusal() {
    let broker = FakeBroker::start(|peer| {
        peer.frame()?;
        peer.send(b"CONNECTED\nversion:1.2\n\n\0ERROR\nmessage:shutting down\n\n\0")?;
        // Log whatever the client still sends.
        while peer.frame_within(Duration::from_millis(300))?.is_some() {}
        Ok(())
    });
    let setup = Setup::new(&format!("stomp://{}", broker.address), "");
    let sent = send_queued_in_time(&setup, &broker);
    assert!(sent.stderr.contains("shutting down"), "{}", sent.stderr);
    let (pending, dead, listing) = setup.listing();
    assert_eq!((pending, dead), (1, 0), "{listing}\n{:#?}", broker.log());
}

/// RabbitMQ's way with a refused message: the ERROR (naming no receipt)
/// comes first, then the receipts of the messages before it, then the
/// connection closes; SENDs after it are dropped. Receipts are due when the
/// client pauses, as RabbitMQ confirms in the background.
fn rabbitmq_like(peer: &mut Peer) -> io::Result<()> {
    peer.connected()?;
    let mut due: Vec<Vec<u8>> = Vec::new();
    loop {
        let Some(frame) = peer.frame_within(Duration::from_millis(100))? else {
            if peer.eof || !peer.alive() {
                return Ok(());
            }
            // The client paused: confirm what came in.
            for receipt in due.drain(..) {
                peer.send(&receipt)?;
            }
            continue;
        };
        match frame.command.as_str() {
            "SEND" if refname(&frame) == REFUSED => {
                peer.send(b"ERROR\nmessage:not_found\n\nno exchange\0")?;
                for receipt in due.drain(..) {
                    peer.send(&receipt)?;
                }
                // Read what else came (dropped, but logged), then close.
                while peer.frame_within(Duration::from_millis(100))?.is_some() {}
                peer.note("refused, closing");
                return Ok(());
            }
            "SEND" => {
                peer.note(&format!("accepted {}", refname(&frame)));
                due.push(receipt_for(&frame));
            }
            "ABORT" | "DISCONNECT" => due.push(receipt_for(&frame)),
            _ => {}
        }
    }
}

#[test]
fn an_error_before_earlier_receipts_resends_nothing_the_broker_receipted() {
    let broker = FakeBroker::start(rabbitmq_like);
    let setup = fake_setup(&broker, "/queue/hostile");
    let refs = SevenRefs::new();
    let hook = refs.hook(&setup);
    assert_bounded("post-receive", &hook, HANG_BOUND, &broker.log());
    assert!(
        hook.stderr
            .contains("1 message(s) refused by the broker for good"),
        "{}\n{:#?}",
        hook.stderr,
        broker.log()
    );
    for index in (0..REFS).filter(|&index| index != 3) {
        let accepted = broker.count(&format!("accepted refs/heads/b{index}"));
        assert_eq!(accepted, 1, "b{index}: {:#?}", broker.log());
    }
    let (pending, dead, listing) = setup.listing();
    assert_eq!((pending, dead), (0, 1), "{listing}");
    assert!(listing.contains("not_found"), "{listing}");
}

#[test]
fn a_message_rabbitmq_refuses_costs_the_others_at_most_one_resend() {
    // The publisher pipelines; RabbitMQ answers a SEND to a missing exchange
    // with an ERROR naming no receipt and closes, losing the receipts of the
    // messages before it. Those must go out again (at-least-once), once.
    let rabbit = brokers::rabbitmq();
    let queue = brokers::unique("queue", "refused-batch");
    let missing = brokers::unique("exchange", "missing") + "/key";
    let setup = Setup::new(&format!("stomp://{}", rabbit.address), "");
    let refused_route =
        format!("[[route]]\ndestination = {missing:?}\nformat = \"json\"\nrefs = [{REFUSED:?}]\n");
    setup.write_table(
        &rabbit.config(),
        &format!("{}{refused_route}", route(&queue)),
    );
    let mut subscription = rabbit.drain(
        &queue,
        REFS,
        Duration::from_secs(2),
        Duration::from_secs(20),
    );
    let refs = SevenRefs::new();
    let hook = refs.hook(&setup);
    assert_bounded("post-receive", &hook, HANG_BOUND, &[]);
    let received = subscription.received();
    let mut arrivals = vec![0; REFS];
    for message in &received {
        let name = message.header("refname");
        let index: usize = name.trim_start_matches("refs/heads/b").parse().unwrap();
        arrivals[index] += 1;
    }
    eprintln!("arrivals per branch b0..b6: {arrivals:?}");
    assert!(
        arrivals.iter().all(|&count| (1..=2).contains(&count)),
        "arrivals per branch {arrivals:?}; {}",
        hook.stderr
    );
    let (pending, dead, listing) = setup.listing();
    assert_eq!((pending, dead), (0, 1), "{listing}");
    assert!(
        listing.contains("NOT_FOUND") || listing.contains("not_found"),
        "{listing}"
    );
}

#[test]
fn a_connection_reset_in_the_middle_of_a_batch_resends_only_what_was_not_receipted() {
    let broker = FakeBroker::start(|peer| {
        peer.connected()?;
        let reset = peer.number == 0;
        let mut answered = 0;
        while let Some(frame) = peer.frame()? {
            if frame.command == "SEND" && reset && answered == 3 {
                // Unread bytes left behind: closing now sends a reset.
                peer.note("reset");
                return Ok(());
            }
            if frame.get("receipt").is_some() {
                if frame.command == "SEND" {
                    peer.note(&format!("accepted {}", refname(&frame)));
                }
                peer.send(&receipt_for(&frame))?;
                answered += 1;
            }
        }
        Ok(())
    });
    let setup = fake_setup(&broker, "/queue/hostile");
    let refs = SevenRefs::new();
    let hook = refs.hook(&setup);
    assert_bounded("post-receive", &hook, HANG_BOUND, &broker.log());
    assert_eq!(hook.stderr, "", "{:#?}", broker.log());
    for index in 0..REFS {
        let sent = broker.count(&format!("refname:refs/heads/b{index} "));
        let most = if index < 3 { 1 } else { 2 };
        assert!(
            sent <= most,
            "b{index} sent {sent} times: {:#?}",
            broker.log()
        );
        let accepted = broker.count(&format!("accepted refs/heads/b{index}"));
        assert_eq!(accepted, 1, "b{index}: {:#?}", broker.log());
    }
    assert_eq!(setup.listing().0, 0);
}

#[test]
fn a_five_megabyte_error_is_clipped_on_the_terminal_and_in_the_listing() {
    let huge = "x".repeat(5 * 1024 * 1024);
    let words = huge.clone();
    let at_login = FakeBroker::start(move |peer| {
        peer.frame()?;
        peer.send(format!("ERROR\nmessage:{words}\n\n\0").as_bytes())
    });
    let setup = Setup::new(&format!("stomp://{}", at_login.address), "");
    let sent = setup.send(b"hello");
    assert!(
        sent.stderr.contains("refused the connection"),
        "{}",
        clipped(&sent.stderr)
    );
    assert!(
        sent.stderr.len() < SHOWN_BYTES,
        "{} bytes on stderr",
        sent.stderr.len()
    );

    let at_send = FakeBroker::start(move |peer| {
        peer.connected()?;
        while let Some(frame) = peer.frame()? {
            if let Some(receipt) = frame.get("receipt") {
                let answer = format!("ERROR\nreceipt-id:{receipt}\nmessage:{huge}\n\n\0");
                peer.send(answer.as_bytes())?;
            }
        }
        Ok(())
    });
    let setup = Setup::new(&format!("stomp://{}", at_send.address), "");
    let sent = setup.send(b"hello");
    assert!(
        sent.stderr.contains("refused by the broker"),
        "{}",
        clipped(&sent.stderr)
    );
    let (pending, dead, listing) = setup.listing();
    assert_eq!((pending, dead), (0, 1));
    assert!(
        listing.len() < SHOWN_BYTES,
        "{} bytes listed",
        listing.len()
    );
}

#[test]
fn garbage_from_the_broker_keeps_the_message_and_the_deadline() {
    let garbage: [&[u8]; 3] = [
        b"\x16\x03\x01 not stomp at all\n\n\0",
        b"CONNECTED\nversion:1.2\n\n\0RECEIPT\nno colon here\n\n\0",
        b"CONNECTED\nversion:1.2\n\n\0RECEIPT\ncontent-length:99999999999\n\n\0",
    ];
    for bytes in garbage {
        let broker = FakeBroker::start(move |peer| {
            peer.frame()?;
            peer.send(bytes)?;
            let endless = vec![b'z'; 1024 * 1024];
            while peer.alive() && peer.send(&endless).is_ok() {}
            Ok(())
        });
        let setup = Setup::new(&format!("stomp://{}", broker.address), "");
        let sent = send_queued_in_time(&setup, &broker);
        assert!(sent.stderr.len() < SHOWN_BYTES, "{}", clipped(&sent.stderr));
        let (pending, dead, _) = setup.listing();
        assert_eq!((pending, dead), (1, 0), "{bytes:?}");
    }
}

#[test]
fn a_backlog_of_files_goes_out_in_one_pipeline_and_a_refusal_costs_only_itself() {
    // Five pushes while the broker was away left five outbox files. A flush
    // sends them together, without waiting for one file's receipts before
    // the next file's SENDs (this broker answers nothing until it has all
    // five), and the one message it refuses becomes a dead letter while the
    // others are delivered once.
    const FILES: usize = 5;
    let broker = FakeBroker::start(|peer| {
        peer.connected()?;
        let mut sends = Vec::new();
        while sends.len() < FILES {
            match peer.frame_within(Duration::from_secs(3))? {
                Some(frame) if frame.command == "SEND" => sends.push(frame),
                Some(_) => {}
                None => {
                    peer.note(&format!("only {} SENDs before any receipt", sends.len()));
                    break;
                }
            }
        }
        for frame in &sends {
            if frame.body == b"refuse me" {
                let receipt = frame.get("receipt").unwrap_or_default();
                peer.send(
                    format!("ERROR\nreceipt-id:{receipt}\nmessage:not this one\n\n\0").as_bytes(),
                )?;
            } else {
                peer.note(&format!(
                    "accepted {}",
                    String::from_utf8_lossy(&frame.body)
                ));
                peer.send(&receipt_for(frame))?;
            }
        }
        while let Some(frame) = peer.frame()? {
            if frame.get("receipt").is_some() {
                peer.send(&receipt_for(&frame))?;
            }
        }
        Ok(())
    });
    let setup = Setup::new(&format!("stomp://{}", brokers::dead_address()), "");
    let bodies = ["one", "two", "refuse me", "four", "five"];
    for body in bodies {
        let sent = setup.send(body.as_bytes());
        assert!(sent.stderr.contains("queued"), "{}", sent.stderr);
    }
    assert_eq!(setup.listing().0, FILES);
    setup.write(&format!("stomp://{}", broker.address), "", "");
    let flush = setup.hookbus(&["flush"], b"");
    assert_bounded("flush", &flush, HANG_BOUND, &broker.log());
    assert_eq!(
        broker.count("SENDs before any receipt"),
        0,
        "{:#?}",
        broker.log()
    );
    for body in bodies.iter().filter(|&&body| body != "refuse me") {
        assert_eq!(
            broker.count(&format!("accepted {body}")),
            1,
            "{:#?}",
            broker.log()
        );
    }
    assert_eq!(broker.count("got SEND"), FILES, "{:#?}", broker.log());
    let (pending, dead, listing) = setup.listing();
    assert_eq!((pending, dead), (0, 1), "{listing}");
    assert!(listing.contains("not this one"), "{listing}");
}
