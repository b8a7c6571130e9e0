//! `hookbus listen` run as production runs it: as root, running mirrors and
//! exec steps as real accounts (made for each test with useradd, removed at
//! its end), its passcode from the environment, a state directory another
//! user must not be able to hijack, and restarts after a SIGKILL. Real
//! daemon, real broker, real pushes; loops bounded, processes by pid.

mod accounts;
mod brokers;
mod gitutil;
mod listenutil;

use accounts::{open_to_all, TestAccount};
use brokers::unique;
use listenutil::{
    listen_table, mirror_table, names, published, read, state_of, wait_until, Listener, Server,
    FOLLOW_CAP,
};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn mirrors_and_exec_steps_run_as_their_account_with_its_groups() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    open_to_all(&server.fixture.root);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    open_to_all(d);
    let account = TestAccount::new(d);
    let ids = d.join("ids");
    fs::create_dir(&ids).unwrap();
    account.give(&ids);
    // The account's git reads its own ~/.gitconfig: there it trusts the
    // server's repository, which belongs to root, and a filter on a.txt
    // says who exports it.
    let gitconfig = account.home.join(".gitconfig");
    let attributes = account.home.join("attributes");
    fs::write(
        &gitconfig,
        format!(
            "[safe]\n\tdirectory = {}\n[core]\n\tattributesFile = {}\n[filter \"ids\"]\n\tsmudge = \"{{ id -u; id -g; id -G; echo $HOME; }} > {}/git.txt; cat\"\n",
            server.url(),
            attributes.display(),
            ids.display()
        ),
    )
    .unwrap();
    fs::write(&attributes, "a.txt filter=ids\n").unwrap();
    account.give(&gitconfig);
    let script = d.join("ids.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ id -u; id -g; id -G; echo \"$HOME $USER $LOGNAME\"; }} > {}/exec.txt\n",
            ids.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let (clone, www, root_clone) = (d.join("clone"), d.join("www"), d.join("root-clone"));
    let config = format!(
        "{}{}{}user = \"{user}\"\n[[mirror.on_change]]\nkind = \"exec\"\nargv = [\"/bin/sh\", \"-c\", \"id -u > {}/on_change.txt\"]\n{}[[action]]\nname = \"ids\"\n[action.match]\nrepo = [\"app\"]\n[[action.step]]\nkind = \"exec\"\nargv = [\"{}\"]\nuser = \"{user}\"\n",
        broker.config(),
        listen_table(d, &server.topic, ""),
        mirror_table("app", &clone, &server.url(), "checkout", Some(&www)),
        ids.display(),
        mirror_table("app", &root_clone, &server.url(), "fetch", None),
        script.display(),
        user = account.name,
    );
    let listener = Listener::start(d, &config);
    listener.wait_log("connected to", 1);
    let commit = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let done = wait_until(FOLLOW_CAP, || {
        published(&www).as_deref() == Some(commit.as_str())
            && read(&ids.join("exec.txt")).is_some_and(|text| text.lines().count() == 4)
    });
    assert!(
        done,
        "not published as {}:\n{}",
        account.name,
        listener.log()
    );

    // The exec step and the mirror's git ran with the account's uid, gid,
    // groups and environment.
    let home = account.home.display();
    for (file, environment) in [
        ("exec.txt", format!("{home} {0} {0}", account.name)),
        ("git.txt", home.to_string()),
    ] {
        let said = read(&ids.join(file)).unwrap();
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(lines[0], account.uid.to_string(), "{file}: {said}");
        assert_eq!(lines[1], account.gid.to_string(), "{file}: {said}");
        let mut groups: Vec<u32> = lines[2].split(' ').map(|g| g.parse().unwrap()).collect();
        groups.sort();
        let mut expected = vec![account.gid, account.extra_gid];
        expected.sort();
        assert_eq!(groups, expected, "{file}: {said}");
        assert_eq!(lines[3], environment, "{file}");
    }
    // The mirror's on_change step (no user of its own) ran as its user. The
    // shell creates the file before `id` writes its line: wait for the line.
    let on_change = wait_until(FOLLOW_CAP, || {
        read(&ids.join("on_change.txt")).is_some_and(|text| text.ends_with('\n'))
    });
    assert!(on_change, "{}", listener.log());
    let said = read(&ids.join("on_change.txt")).unwrap();
    assert_eq!(said.trim(), account.uid.to_string());

    // The mirror's git wrote as the account: the clone and the published tree.
    let owner = |path: &Path| {
        let meta = fs::symlink_metadata(path).unwrap();
        (meta.uid(), meta.gid())
    };
    let mine = (account.uid, account.gid);
    for path in [
        clone.clone(),
        clone.join(".git/HEAD"),
        clone.join(".git/objects"),
        d.join(".www.hookbus").join(&commit),
        www.join("a.txt"),
        www.clone(),
    ] {
        assert_eq!(owner(&path), mine, "{}", path.display());
    }
    assert_eq!(read(&www.join("a.txt")).as_deref(), Some("1\n"));

    // The mirror without a user: the warning says so, and it is true.
    let warning = format!(
        "mirror {} runs git as root (it has no user)",
        root_clone.display()
    );
    assert!(listener.log().contains(&warning), "{}", listener.log());
    assert!(wait_until(FOLLOW_CAP, || root_clone
        .join(".git/FETCH_HEAD")
        .exists()));
    assert_eq!(owner(&root_clone.join(".git/HEAD")), (0, 0));
}

#[test]
fn the_passcode_variable_wins_over_the_file_import_legacy_names() {
    let broker = brokers::activemq();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let topic = unique("topic", "production.passcode");
    let seed = d.join("stomp-git.yaml");
    fs::write(
        &seed,
        format!(
            "rserver: stomp://{}:seedpass@{}\nlisten-topic: {}\n",
            brokers::LOGIN,
            broker.address,
            topic.trim_start_matches("/topic/")
        ),
    )
    .unwrap();
    let out = Command::new(gitutil::HOOKBUS)
        .args(["config", "import-legacy"])
        .arg(&seed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let imported = String::from_utf8(out.stdout).unwrap();
    assert!(
        imported.contains("or set HOOKBUS_PASSCODE.\npasscode_file = \"/etc/hookbus/passcode\"\n"),
        "{imported}"
    );
    assert!(!Path::new("/etc/hookbus/passcode").exists());
    // Only where the daemon keeps its state and where it logs are added.
    let config = imported.replace(
        "[listen]\n",
        &format!("[listen]\nstate_dir = \"{}\"\n", d.join("state").display()),
    ) + "[log]\nsyslog = \"\"\n";
    let passcode = [("HOOKBUS_PASSCODE", brokers::PASSCODE)];

    let config_file = d.join("hookbus.toml");
    fs::write(&config_file, &config).unwrap();
    fs::set_permissions(&config_file, fs::Permissions::from_mode(0o600)).unwrap();
    let check = Command::new(gitutil::HOOKBUS)
        .arg("--config")
        .arg(&config_file)
        .arg("check")
        .envs(passcode)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && report.contains("authenticated"),
        "{report}{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let mut listener = Listener::start_with_env(d, &config, &passcode);
    listener.wait_log("connected to", 1);
    broker.publish_independently(&topic, &[(vec![], "not a push")]);
    listener.wait_log("ignored a message", 1);
    assert!(listener.terminate().success(), "{}", listener.log());
    assert!(
        listener.log().contains("stopped (1 received"),
        "{}",
        listener.log()
    );
}

#[test]
fn a_state_dir_others_could_tamper_with_is_refused_and_no_link_in_it_followed() {
    let broker = brokers::activemq();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    open_to_all(d);
    let account = TestAccount::new(d);
    // A file only root may read or write, and the other user's link to it
    // where the daemon keeps its lock.
    let secret = d.join("secret");
    fs::write(&secret, "precious\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let state = d.join("state");
    fs::create_dir(&state).unwrap();
    open_to_all(&state);
    account.give(&state);
    std::os::unix::fs::symlink(&secret, state.join("listen.lock")).unwrap();
    std::os::unix::fs::lchown(state.join("listen.lock"), Some(account.uid), None).unwrap();
    let topic = unique("topic", "production.state");
    let config = format!("{}{}", broker.config(), listen_table(d, &topic, ""));

    let mut listener = Listener::start(d, &config);
    assert!(!listener.wait_exit().success(), "{}", listener.log());
    let refusal = format!(
        "{} belongs to user id {}, not to the user running hookbus (id 0): chown it to the user the listener runs as, or set [listen] state_dir",
        state.display(),
        account.uid
    );
    assert!(listener.log().contains(&refusal), "{}", listener.log());
    assert_eq!(read(&secret).as_deref(), Some("precious\n"));

    // Written to by everybody: refused too.
    std::os::unix::fs::chown(&state, Some(0), Some(0)).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    listener.restart();
    assert!(!listener.wait_exit().success());
    assert!(
        listener
            .log()
            .contains("may be written by every user (mode 777)"),
        "{}",
        listener.log()
    );

    // Root's again, the link planted while it was not is never followed.
    open_to_all(&state);
    listener.restart();
    assert!(!listener.wait_exit().success());
    assert!(
        listener.log().contains("cannot open lock file"),
        "{}",
        listener.log()
    );
    assert_eq!(read(&secret).as_deref(), Some("precious\n"));
    assert_eq!(fs::metadata(&secret).unwrap().mode() & 0o777, 0o600);

    // The link gone, the daemon starts.
    fs::remove_file(state.join("listen.lock")).unwrap();
    listener.restart();
    listener.wait_log("connected to", 1);
    assert!(listener.terminate().success(), "{}", listener.log());
}

/// The releases directory of target `www` in `d`, and what is in it whose
/// name starts with a dot (a temporary of a publish).
fn temporaries(d: &Path) -> Vec<String> {
    let releases = d.join(".www.hookbus");
    names(&releases)
        .into_iter()
        .filter(|name| name.starts_with('.'))
        .collect()
}

/// A checkout mirror of `server` publishing at `d/www`, named web, no polls.
fn checkout_config(broker: &brokers::Broker, d: &Path, server: &Server) -> String {
    let (clone, www) = (d.join("clone"), d.join("www"));
    let mirror = mirror_table("app", &clone, &server.url(), "checkout", Some(&www));
    let listen = listen_table(d, &server.topic, "");
    format!("{}{listen}{mirror}name = \"web\"\n", broker.config())
}

/// A listener with a checkout mirror (named web, no polls) of a new server
/// whose first commit it published; its directory.
fn publishing_first(broker: &brokers::Broker) -> (Server, tempfile::TempDir, Listener) {
    let server = Server::new(broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let listener = Listener::start(dir.path(), &checkout_config(broker, dir.path(), &server));
    assert_published(&listener, dir.path(), &first);
    (server, dir, listener)
}

/// Restarts the daemon: no message comes and nothing polls, so the start
/// alone must publish `commit` (`file` holding `content`), leaving no
/// temporaries.
fn restart_publishes(listener: &mut Listener, d: &Path, commit: &str, file: (&str, &str)) {
    listener.restart();
    assert_published(listener, d, commit);
    assert_eq!(read(&d.join("www").join(file.0)).as_deref(), Some(file.1));
    assert_eq!(temporaries(d), Vec::<String>::new());
}

/// Waits for `www` to publish `commit` with the mirror OK.
fn assert_published(listener: &Listener, d: &Path, commit: &str) {
    let done = wait_until(FOLLOW_CAP, || {
        published(&d.join("www")).as_deref() == Some(commit)
    });
    assert!(done, "{commit} never published:\n{}", listener.log());
    listener.wait_control();
    assert_eq!(state_of(listener, "web"), "OK", "{}", listener.log());
}

#[test]
fn what_a_killed_publish_left_is_cleared_at_start() {
    let (server, dir, mut listener) = publishing_first(&brokers::activemq());
    let d = dir.path();
    assert!(listener.terminate().success());
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);

    // What a publish of `second` killed half-way leaves, as it names it: a
    // half-exported tree, its private index and git's lock beside it, the
    // link not yet swapped in.
    let releases = d.join(".www.hookbus");
    let staging = releases.join(format!(".{second}.tmp"));
    fs::create_dir_all(staging.join("sub")).unwrap();
    fs::write(staging.join("sub/half.txt"), "half").unwrap();
    for leftover in ["index", "index.lock"] {
        fs::write(releases.join(format!(".{second}.{leftover}")), "DIRC").unwrap();
    }
    std::os::unix::fs::symlink(&second, releases.join(format!(".{second}.link"))).unwrap();

    restart_publishes(&mut listener, d, &second, ("a.txt", "2\n"));
}

#[test]
fn a_publish_killed_with_the_daemon_stops_writing_and_the_restart_publishes() {
    let (server, dir, mut listener) = publishing_first(&brokers::activemq());
    let d = dir.path();
    // Exports of the clone go slowly from now on: a filter that takes a
    // while for each file stands for a large tree.
    let clone = d.join("clone");
    fs::write(clone.join(".git/info/attributes"), "f*.txt filter=slow\n").unwrap();
    listenutil::git_ok(&clone, &["config", "filter.slow.smudge", "sleep 0.05; cat"]);
    let files: Vec<(String, Vec<u8>)> = (0..100)
        .map(|n| (format!("f{n:03}.txt"), format!("{n}\n").into_bytes()))
        .collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), &c[..])).collect();
    let second = server.push_files("master", "many", &files);
    let staging = d.join(format!(".www.hookbus/.{second}.tmp"));
    let started = wait_until(FOLLOW_CAP, || names(&staging).len() >= 3);
    assert!(started, "the export never started:\n{}", listener.log());
    listener.kill();

    // Nothing the daemon started goes on writing once it is dead.
    std::thread::sleep(Duration::from_millis(300));
    let after_kill = names(&staging).len();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        names(&staging).len(),
        after_kill,
        "a git of the killed daemon still writes into {}",
        staging.display()
    );

    restart_publishes(&mut listener, d, &second, ("f099.txt", "99\n"));
}

#[test]
fn git_locks_a_killed_git_left_in_the_clone_are_removed_at_start() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clone = d.join("clone");
    let config = format!(
        "{}{}{}name = \"web\"\n",
        broker.config(),
        listen_table(d, &server.topic, ""),
        mirror_table("app", &clone, &server.url(), "in-place", None),
    );
    let mut listener = Listener::start(d, &config);
    let checked_out = |commit: &str| {
        wait_until(FOLLOW_CAP, || {
            listenutil::rev(&clone, "HEAD").as_deref() == Some(commit)
        })
    };
    assert!(checked_out(&first), "{}", listener.log());
    assert!(listener.terminate().success());
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);

    // What a checkout and a fetch killed with the daemon leave.
    let locks = [
        clone.join(".git/index.lock"),
        clone.join(".git/refs/remotes/origin/master.lock"),
    ];
    for lock in &locks {
        fs::write(lock, "").unwrap();
    }
    listener.restart();
    assert!(checked_out(&second), "{}", listener.log());
    listener.wait_control();
    assert_eq!(state_of(&listener, "web"), "OK", "{}", listener.log());
    assert_eq!(read(&clone.join("a.txt")).as_deref(), Some("2\n"));
    let log = listener.log();
    let said = log
        .lines()
        .find(|line| line.contains("mirror web: removed what a killed git left: "))
        .unwrap_or_else(|| panic!("{log}"));
    for lock in &locks {
        assert!(
            !lock.exists() && said.contains(&lock.display().to_string()),
            "{said}"
        );
    }
}
