use super::*;
use crate::private_file::Access;
use crate::sign::keys::{generate, Signer};

fn freeze(mirror: &str) -> Request {
    Request::Freeze {
        mirror: mirror.into(),
    }
}

#[test]
fn a_command_reads_back_as_written_and_only_ctl_commands_for_mirrors_are_commands() {
    let command = Command::new("web*", freeze("site")).unwrap();
    assert_eq!(command.id.len(), 32);
    assert_ne!(command.id, Command::new("web*", freeze("site")).unwrap().id);
    let message = command.message("/topic/fleet").unwrap();
    assert_eq!(message.header("hookbus-id"), Some(command.id.as_str()));
    assert_eq!(Command::read(&message.body), Ok(command));
    assert!(Command::new("web*", Request::Status).is_err());
    let sync = Request::Sync {
        mirror: "site".into(),
    };
    assert!(Command::new("*", sync).is_err());
    assert!(Command::new("web[", freeze("site")).is_err());
    assert!(Command::new("web 1", freeze("site")).is_err());
    assert!(Command::new("web*", freeze("site\nhookbus: forged")).is_err());
    let rollback = Request::Rollback {
        mirror: "site".into(),
        rev: "abc".into(),
        branch: Some("main\r".into()),
    };
    assert!(Command::new("web*", rollback).is_err());
    for bad in [
        r#"{"id":"a b","hosts":"*","request":{"command":"freeze","mirror":"m"}}"#,
        r#"{"id":"a","hosts":"*","request":{"command":"status"}}"#,
        r#"{"id":"a","hosts":"*","request":{"command":"freeze","mirror":"m"},"at":1}"#,
        "freeze everything",
    ] {
        assert!(Command::read(bad.as_bytes()).is_err(), "{bad}");
    }
}

/// A message as the control topic delivers `command`, signed by `signer` at `at`.
fn delivered(command: &Command, signer: Option<&Signer>, at: u64) -> Incoming {
    let message = command.message("/topic/fleet").unwrap();
    let mut headers = message.headers.clone();
    headers.insert(0, ("destination".into(), "/topic/fleet".into()));
    if let Some(signer) = signer {
        signer.sign(&mut headers, &message.body, at);
    }
    Incoming {
        headers,
        body: message.body,
        dropped_body: None,
        ack: crate::bus::AckToken::new(Vec::new()),
        shared: false,
        control: true,
    }
}

fn refusal(taken: Taken) -> String {
    match taken {
        Taken::Refused(report) => report.message,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn only_a_fresh_trusted_command_for_this_host_is_taken_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let signer = |name: &str| {
        generate(&dir.path().join(name), false).unwrap();
        Signer::load(&dir.path().join(name)).unwrap()
    };
    let (operator, stranger) = (signer("operator"), signer("stranger"));
    let trust = Trust::new(vec![operator.public().clone()], 600);
    let hour = std::time::Duration::from_secs(3600);
    let remembered = Remembered::open(dir.path().join("r"), hour, Access::private()).unwrap();
    let taking = |host| Taking {
        trust: &trust,
        host,
        remembered: &remembered,
    };
    let mut remote = Remote::default();
    let now = crate::sign::unix_now();
    let command = Command::new("web*", freeze("site")).unwrap();

    let unsigned = delivered(&command, None, now);
    assert_eq!(refusal(remote.take(&unsigned, &taking("web1"))), "unsigned");
    let untrusted = delivered(&command, Some(&stranger), now);
    let why = refusal(remote.take(&untrusted, &taking("web1")));
    assert!(why.starts_with("unknown key"), "{why}");
    let old = delivered(&command, Some(&operator), now - 601);
    let why = refusal(remote.take(&old, &taking("web1")));
    assert!(why.starts_with("too old"), "{why}");
    let none = Trust::default();
    let trusting_none = Taking {
        trust: &none,
        ..taking("web1")
    };
    let signed = delivered(&command, Some(&operator), now);
    let why = refusal(remote.take(&signed, &trusting_none));
    assert!(why.starts_with("no [listen] trust key"), "{why}");

    assert!(matches!(
        remote.take(&signed, &taking("db1")),
        Taken::Elsewhere
    ));
    let Taken::Job(job) = remote.take(&signed, &taking("web1")) else {
        panic!("not taken")
    };
    assert_eq!(job.request, freeze("site"));
    let why = refusal(remote.take(&signed, &taking("web1")));
    assert!(why.starts_with("replayed"), "{why}");

    assert!(remote.answered().is_empty(), "no answer yet");
    job.reply.send(Response::refused("no mirror site")).unwrap();
    let answered = remote.answered();
    assert_eq!(answered.len(), 1);
    let report = &answered[0];
    assert_eq!(
        (report.result, report.message.as_str()),
        (Verdict::Refused, "no mirror site")
    );
    assert_eq!(report.key.as_deref(), Some(operator.public().id()));
    let line = report.log_line();
    assert!(
        line.contains(&format!(
            "fleet command {} (freeze site for hosts web*",
            command.id
        )),
        "{line}"
    );
    assert!(remote.answered().is_empty(), "answered once");
}
