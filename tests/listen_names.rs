//! Mirror names and one config for a fleet, against the real `hookbus listen`:
//! a mirror imported from a stomp-git YAML is controlled by its repo name and
//! keeps a freeze recorded under its old path-name; three hosts (each its own
//! host name and files, as separate machines have) share one config file and
//! each runs only its mirrors and actions, the canary following its branch.
//! Real broker, real pushes, `hookbus ctl` on the control socket.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::unique;
use gitutil::run_ok;
use listenutil::{
    hookbus, listen_table, published, rev, site_mirror, state_of, wait_until, write_config, Host,
    Listener, Server, FOLLOW_CAP,
};
use std::fs;
use std::time::Duration;

/// `hookbus ARGS` (no config from the environment); its stdout, asserted to
/// succeed.
fn hookbus_ok(args: &[&str]) -> String {
    let out = hookbus(args);
    assert!(out.status.success(), "hookbus {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_imported_mirror_answers_to_its_repo_name_and_keeps_a_freeze_made_under_its_path() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let first = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (clone, www) = (d.join("clone"), d.join("www"));
    // stomp-git mirrors name no url: the clone is there already.
    run_ok(gitutil::git(
        d,
        &["clone", "-q", "--no-checkout", &server.url(), "clone"],
    ));
    let seed = d.join("stomp-git.yaml");
    fs::write(
        &seed,
        format!(
            "listen-topic: {}\nrepo-list:\n  app:\n    repo: {}\n    target: {}\n    mode: trusting\n",
            server.topic.trim_start_matches("/topic/"),
            clone.display(),
            www.display()
        ),
    )
    .unwrap();
    let imported = hookbus_ok(&["config", "import-legacy", seed.to_str().unwrap()]);
    assert!(
        imported.contains("name = \"app\"\nrepo = \"app\"\n"),
        "{imported}"
    );
    let tables = imported.split_once("[[mirror]]").unwrap().1;
    let config = |mirror: &str| {
        format!(
            "{}{}[[mirror]]{mirror}",
            broker.config(),
            listen_table(d, &server.topic, ""),
        )
    };

    // Before the upgrade the mirror was known by its clone path: frozen so.
    let path = clone.display().to_string();
    let before = tables.replace("name = \"app\"", &format!("name = \"{path}\""));
    let mut listener = Listener::start(d, &config(&before));
    listener.wait_control();
    assert!(wait_until(FOLLOW_CAP, || published(&www).as_deref()
        == Some(first.as_str())));
    listener.ctl_ok(&["freeze", &path]);
    assert!(listener.terminate().success(), "{}", listener.log());

    // Imported as is: named after the repo; the freeze is kept.
    fs::write(&listener.config, config(tables)).unwrap();
    listener.restart();
    listener.wait_control();
    assert_eq!(state_of(&listener, "app"), "FROZEN", "{}", listener.log());
    let second = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    listener.ctl_ok(&["sync", "app"]);
    assert_eq!(
        rev(&clone, "origin/master").as_deref(),
        Some(second.as_str())
    );
    assert_eq!(published(&www).as_deref(), Some(first.as_str()));
    listener.ctl_ok(&["unfreeze", "app"]);
    assert_eq!(state_of(&listener, "app"), "OK");
    assert_eq!(published(&www).as_deref(), Some(second.as_str()));

    // Named otherwise, it still answers to its repo (and to its path).
    fs::write(
        &listener.config,
        config(&tables.replace("name = \"app\"", "name = \"website\"")),
    )
    .unwrap();
    listener.signal(libc::SIGHUP);
    listener.wait_log("config reloaded", 1);
    let said = listener.ctl_ok(&["freeze", "app"]);
    assert!(said.contains("FROZEN"), "{said}");
    assert_eq!(state_of(&listener, "website"), "FROZEN");
    listener.ctl_ok(&["unfreeze", &path]);
    assert_eq!(state_of(&listener, "website"), "OK");
    assert!(listener.terminate().success(), "{}", listener.log());
}

#[test]
fn hosts_sharing_one_config_run_only_their_mirrors_and_the_canary_its_branch() {
    let broker = brokers::activemq();
    let server = Server::new(&broker);
    let master = server.push_files("master", "first", &[("a.txt", b"1\n")]);
    let next = server.push_files("next", "canary", &[("a.txt", b"next\n")]);
    // Every host sees its own files here (a mount of its own), as machines do.
    let shared = tempfile::tempdir().unwrap();
    let at = |name: &str| shared.path().join(name).display().to_string();
    let seen = unique("queue", "names.canary");
    let url = server.url();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("hookbus.toml");
    let tools_and_action = format!(
        r#"[[mirror]]
name = "tools"
repo = "app"
path = "{tools}"
url = "{url}"
hosts = ["web2"]

[[action]]
name = "canary-saw"
hosts = ["canary*"]
[action.match]
repo = ["app"]
[[action.step]]
kind = "publish"
destination = "{seen}"
body = "{{host}} {{refname}} {{newrev}}"
"#,
        tools = at("tools"),
    );
    let text = format!(
        "{}{}{}{}{tools_and_action}",
        broker.config(),
        listen_table(shared.path(), &server.topic, ""),
        site_mirror(shared.path(), &url, "hosts = [\"web*\"]\n"),
        site_mirror(
            shared.path(),
            &url,
            "branch = \"next\"\nhosts = [\"canary*\"]\n"
        ),
    );
    write_config(&config, &text);

    // What each host would run, from the one file.
    let check = |host: &str| {
        let config = config.to_str().unwrap();
        hookbus_ok(&["--config", config, "listen", "--check", "--host", host])
    };
    let web2 = check("web2");
    assert!(
        web2.contains("\nhost web2 runs 2 mirror(s) and 0 action(s)\n"),
        "{web2}"
    );
    let site = at("site");
    assert!(
        web2.contains(&format!(
            "mirror {site}: repo app mode checkout branch master at {site}\n"
        )),
        "{web2}"
    );
    assert!(
        web2.contains("mirror tools: repo app mode fetch at "),
        "{web2}"
    );
    let canary = check("canary1");
    assert!(
        canary.contains("\nhost canary1 runs 1 mirror(s) and 1 action(s)\n"),
        "{canary}"
    );
    assert!(
        canary.contains("mirror app: repo app mode checkout branch next"),
        "{canary}"
    );
    assert!(canary.contains("action canary-saw\n"), "{canary}");
    assert!(check("db1").contains("\nhost db1 runs 0 mirror(s) and 0 action(s)\n"));

    let hosts: Vec<Host> = ["web1", "web2", "canary1"]
        .iter()
        .map(|name| Host::start(&config, name, shared.path()))
        .collect();
    let [web1, web2, canary] = &hosts[..] else {
        unreachable!()
    };
    web1.wait_at(&master);
    web2.wait_at(&master);
    canary.wait_at(&next);
    let tools = |host: &Host| rev(&host.local.path().join("tools"), "origin/master");
    assert!(wait_until(FOLLOW_CAP, || tools(web2).as_deref()
        == Some(master.as_str())));
    assert_eq!(tools(web1), None, "web1 runs no tools mirror");
    assert_eq!(tools(canary), None, "canary1 runs no tools mirror");

    // A push to master moves the web hosts; one to next moves the canary.
    let master2 = server.push_files("master", "second", &[("a.txt", b"2\n")]);
    web1.wait_at(&master2);
    web2.wait_at(&master2);
    let next2 = server.push_files("next", "canary 2", &[("a.txt", b"next 2\n")]);
    canary.wait_at(&next2);
    assert_eq!(web1.published().as_deref(), Some(master2.as_str()));
    assert_eq!(web2.published().as_deref(), Some(master2.as_str()));
    // The canary's action ran on the canary only, once per push.
    let bodies: Vec<String> = broker
        .drain(&seen, 2, Duration::from_secs(2), FOLLOW_CAP)
        .received()
        .iter()
        .map(|message| String::from_utf8_lossy(&message.body).into_owned())
        .collect();
    assert_eq!(
        bodies,
        [
            format!("canary1 refs/heads/master {master2}"),
            format!("canary1 refs/heads/next {next2}")
        ],
        "{}",
        canary.listener.log()
    );
    for mut host in hosts {
        assert!(
            host.listener.terminate().success(),
            "{}",
            host.listener.log()
        );
    }
}
