//! Fleet commands (issue 27) on a listener run as production runs it: as
//! root under the packaged unit's NoNewPrivileges and LimitNOFILE, its mirror's git running as a real account (made for each test,
//! removed at its end), so a remote rollback and unfreeze must write as that
//! account; and hostile messages on the control topic (larger than the link
//! holds, garbage, signed garbage) that must cost one refusal each and not
//! the link. Real broker, real pushes, `hookbus fleet` signed with a key made
//! by `hookbus keygen`, the independent client publishing the rest.

mod accounts;
mod brokers;
mod gitutil;
mod listenutil;

use accounts::{open_to_all, TestAccount};
use brokers::{unique, Broker};
use hookbus::sign::Signer;
use listenutil::{
    hookbus, keygen, mirror_status, published, rev, wait_until, write_config, Listener, Server,
    FOLLOW_CAP,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// How long the daemon must stay quiet before "nothing more happens" holds.
const QUIET: Duration = Duration::from_millis(1500);

/// Over the 16 MiB the listener holds (as tests/listen_link.rs sends).
const BIG: usize = 20_000_000;

/// A root listener on host web1 taking fleet commands, its mirror `website`
/// (repo app) run as a real account, and the operator's signing config.
///
/// Fields drop in order: the daemon stops before its account and files go.
struct Deploy {
    listener: Listener,
    account: TestAccount,
    dir: tempfile::TempDir,
    server: Server,
    broker: Broker,
    /// The operator's config: the listener's, and `[sign] key_file`.
    operator: PathBuf,
    key: PathBuf,
    control: String,
}

impl Deploy {
    /// Pushes `commits` (a.txt's contents, in order) before the listener
    /// starts, starts it and waits until it published the last; those
    /// commits.
    fn start(commits: &[&str]) -> (Deploy, Vec<String>) {
        let broker = brokers::activemq();
        let server = Server::new(&broker);
        open_to_all(&server.fixture.root);
        let pushed: Vec<String> = (commits.iter())
            .map(|content| server.push_files("master", content, &[("a.txt", content.as_bytes())]))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        open_to_all(d);
        let account = TestAccount::new(d);
        account.trust_repository(&server.url());
        let (key, public) = keygen(d, "operator");
        let control = unique("topic", "fleet.control");
        // As the README's deploy host writes it, with what a test needs:
        // its own host name, no polls, state and logs of its own.
        let config = format!(
            r#"{broker}[log]
syslog = ""

[listen]
subscribe = ["{topic}"]
host = "web1"
poll_s = 0
state_dir = "{state}"
control_topic = "{control}"
report = "{report}"
trust = ["{public}"]
metrics = "127.0.0.1:0"

[[mirror]]
name = "website"
repo = "app"
path = "{clone}"
url = "{url}"
user = "{user}"
mode = "checkout"
target = "{www}"
branch = "master"
"#,
            broker = broker.config(),
            topic = server.topic,
            state = d.join("state").display(),
            report = unique("topic", "fleet.reports"),
            clone = d.join("clone").display(),
            url = server.url(),
            user = account.name,
            www = d.join("www").display(),
        );
        let listener = Listener::start_as_packaged(d, &config);
        listener.wait_log(&format!("taking fleet commands on {control}"), 1);
        let operator = d.join("operator.toml");
        write_config(
            &operator,
            &format!("{config}[sign]\nkey_file = \"{}\"\n", key.display()),
        );
        let deploy = Deploy {
            listener,
            account,
            dir,
            server,
            broker,
            operator,
            key,
            control,
        };
        deploy.wait_at(pushed.last().unwrap());
        deploy.listener.wait_quiet(QUIET);
        (deploy, pushed)
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    fn published(&self) -> Option<String> {
        published(&self.d().join("www"))
    }

    fn wait_at(&self, commit: &str) {
        let reached = wait_until(FOLLOW_CAP, || self.published().as_deref() == Some(commit));
        assert!(reached, "not at {commit}:\n{}", self.listener.log());
    }

    /// `hookbus fleet ARGS` with the operator's key, asserted to have sent
    /// its command; the command's id.
    fn fleet(&self, args: &[&str]) -> String {
        let mut all = vec!["--config", self.operator.to_str().unwrap(), "fleet"];
        all.extend(args);
        let sent: Output = hookbus(&all);
        assert!(sent.status.success(), "{sent:?}");
        let stdout = String::from_utf8_lossy(&sent.stdout).to_string();
        stdout.split_whitespace().nth(2).unwrap().to_string()
    }

    /// Waits for the listener's line saying fleet command `id` (`shown`, as
    /// `rollback website REV`) was taken; asserts it went well.
    fn wait_applied(&self, id: &str, shown: &str) {
        let taken = format!("fleet command {id} ({shown} for hosts web1, key ");
        self.listener.wait_log(&taken, 1);
        let log = self.listener.log();
        let line = log.lines().find(|line| line.contains(&taken)).unwrap();
        assert!(line.contains(") ok: "), "{log}");
    }

    /// Mirror website's state and commit, as `hookbus ctl status` says.
    fn status(&self) -> (String, String) {
        let mirror = mirror_status(&self.listener, None, "website");
        let text = |key: &str| mirror[key].as_str().unwrap_or_default().to_string();
        (text("state"), text("commit"))
    }

    /// Asserts that the clone, the target's link and the tree published
    /// for `commit` all belong to the account (its uid and gid).
    fn assert_owned(&self, commit: &str) {
        let d = self.d();
        let release = d.join(".www.hookbus").join(commit);
        assert!(release.join("a.txt").exists(), "{}", self.listener.log());
        for root in [d.join("clone"), release, d.join("www")] {
            let others = self.account.not_owning(&root);
            assert_eq!(others, Vec::<PathBuf>::new(), "not {}'s", self.account.name);
        }
    }
}

#[test]
fn a_remote_rollback_and_unfreeze_write_as_the_mirrors_account_and_hold_until_unfrozen() {
    let (deploy, pushed) = Deploy::start(&["1\n", "2\n"]);
    let [first, second] = &pushed[..] else {
        unreachable!()
    };
    let www = deploy.d().join("www");
    assert_eq!(deploy.status(), ("OK".to_string(), second.clone()));

    // The rollback publishes a tree never exported before: as the account.
    let id = deploy.fleet(&["rollback", "--hosts", "web1", "website", first]);
    deploy.wait_applied(&id, &format!("rollback website {first}"));
    deploy.wait_at(first);
    assert_eq!(deploy.status(), ("ROLLED-BACK".to_string(), first.clone()));
    assert_eq!(fs::read_to_string(www.join("a.txt")).unwrap(), "1\n");
    deploy.assert_owned(first);

    // A push is fetched (as the account), and the target stays.
    let third = deploy
        .server
        .push_files("master", "third", &[("a.txt", b"3\n")]);
    let clone = deploy.d().join("clone");
    let fetched = wait_until(FOLLOW_CAP, || {
        rev(&clone, "origin/master").as_deref() == Some(third.as_str())
    });
    assert!(fetched, "{}", deploy.listener.log());
    deploy.listener.wait_quiet(QUIET);
    assert_eq!(deploy.published().as_deref(), Some(first.as_str()));
    assert_eq!(deploy.status(), ("ROLLED-BACK".to_string(), first.clone()));

    // Unfrozen, it catches up, still as the account.
    let id = deploy.fleet(&["unfreeze", "--hosts", "web1", "website"]);
    deploy.wait_applied(&id, "unfreeze website");
    deploy.wait_at(&third);
    assert_eq!(deploy.status(), ("OK".to_string(), third.clone()));
    assert_eq!(fs::read_to_string(www.join("a.txt")).unwrap(), "3\n");
    deploy.assert_owned(&third);
    let mut listener = deploy.listener;
    assert!(listener.terminate().success(), "{}", listener.log());
}

#[test]
fn a_huge_and_garbage_messages_on_the_control_topic_are_refused_once_each_and_cost_no_link() {
    let (deploy, _) = Deploy::start(&["1\n"]);
    let control = deploy.control.as_str();
    let big = "x".repeat(BIG);
    // Garbage signed by the trusted key: the signature holds, the body is
    // no command.
    let garbage = "\u{1}{\"id\": [\u{7f}";
    let mut signed = vec![
        ("destination".to_string(), control.to_string()),
        ("hookbus-id".to_string(), "garbage-signed".to_string()),
    ];
    let signer = Signer::load(&deploy.key).unwrap();
    signer.sign(&mut signed, garbage.as_bytes(), hookbus::sign::unix_now());
    let signed: Vec<(&str, &str)> = (signed.iter())
        .filter(|(name, _)| name != "destination")
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    deploy.broker.publish_independently(
        control,
        &[
            (vec![("hookbus-id", "huge")], big.as_str()),
            (vec![("hookbus-id", "garbage")], garbage),
            (signed, garbage),
        ],
    );
    let refusals = [
        format!("dropped a message of {BIG} bytes (more than "),
        "(hookbus-id garbage) refused: unsigned".to_string(),
        "(hookbus-id garbage-signed) refused: not a fleet command: ".to_string(),
    ];
    for refusal in &refusals {
        deploy.listener.wait_log(refusal, 1);
    }

    // Right after, a signed freeze is taken on the same link.
    let id = deploy.fleet(&["freeze", "--hosts", "web1", "website"]);
    deploy.wait_applied(&id, "freeze website");
    assert_eq!(deploy.status().0, "FROZEN");
    deploy.listener.wait_quiet(QUIET);
    let log = deploy.listener.log();
    for refusal in &refusals {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(refusal)).collect();
        assert_eq!(lines.len(), 1, "{refusal}:\n{log}");
        assert!(lines[0].contains(control), "{}", lines[0]);
    }
    assert_eq!(log.matches(" refused: ").count(), 2, "{log}");
    assert_eq!(log.matches("connected to").count(), 1, "{log}");
    assert_eq!(
        deploy.listener.metric("hookbus_broker_reconnects_total{}"),
        Some(0.0),
        "{log}"
    );
    let mut listener = deploy.listener;
    assert!(listener.terminate().success(), "{}", listener.log());
}
