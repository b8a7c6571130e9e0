//! `hookbus listen` end to end: the real daemon, real brokers (ActiveMQ and
//! RabbitMQ from scripts/test), a real server repository whose post-receive
//! hook publishes, real mirrors on disk.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::Broker;
use listenutil::{
    listen_table, mirror_table, names, read, rev, wait_until, Listener, Server, FOLLOW_CAP,
};
use std::fs;
use std::path::Path;

/// One listener with a mirror of every mode on the same repository.
struct Everything {
    server: Server,
    listener: Listener,
    dir: tempfile::TempDir,
}

impl Everything {
    fn start(broker: &Broker) -> Everything {
        let server = Server::new(broker);
        server.push_files("master", "first", &[("site.txt", b"v0\n")]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let url = server.url();
        let config = format!(
            "{}{}{}{}{}{}",
            broker.config(),
            listen_table(d, &server.topic, ""),
            mirror_table("app", &d.join("fetch"), &url, "fetch", None),
            mirror_table(
                "app",
                &d.join("checkout"),
                &url,
                "checkout",
                Some(&d.join("www"))
            ),
            mirror_table("a?p", &d.join("inplace"), &url, "in-place", None),
            mirror_table(
                "*",
                &d.join("branches"),
                &url,
                "branches",
                Some(&d.join("envs"))
            ),
        );
        let listener = Listener::start(d, &config);
        listener.wait_log("connected to", 1);
        Everything {
            server,
            listener,
            dir,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Every mode shows `commit` with `site.txt` holding `content` on master.
    fn assert_follows(&self, commit: &str, content: &str) {
        let followed = wait_until(FOLLOW_CAP, || {
            rev(&self.path("fetch"), "refs/remotes/origin/master").as_deref() == Some(commit)
                && read(&self.path("www/site.txt")).as_deref() == Some(content)
                && rev(&self.path("inplace"), "HEAD").as_deref() == Some(commit)
                && read(&self.path("inplace/site.txt")).as_deref() == Some(content)
                && read(&self.path("envs/master/site.txt")).as_deref() == Some(content)
        });
        assert!(
            followed,
            "mirrors did not reach {commit}:\n{}",
            self.listener.log()
        );
    }
}

fn every_mode_follows_pushes(broker: &Broker) {
    let mut all = Everything::start(broker);
    let first = all.server.fixture.rev("HEAD");
    all.assert_follows(&first, "v0\n");
    let second = all
        .server
        .push_files("master", "second", &[("site.txt", b"v1\n")]);
    all.assert_follows(&second, "v1\n");
    assert_eq!(
        fs::read_link(all.path("www")).unwrap(),
        Path::new(".www.hookbus").join(&second),
        "checkout publishes through a symlink"
    );
    // branches: one appears with its own tree, then goes with its branch.
    all.server
        .push_files("feature", "feature", &[("site.txt", b"feature\n")]);
    let appeared = wait_until(FOLLOW_CAP, || {
        read(&all.path("envs/feature/site.txt")).as_deref() == Some("feature\n")
    });
    assert!(
        appeared,
        "branch feature not published:\n{}",
        all.listener.log()
    );
    all.server
        .fixture
        .git(&["push", "-q", "origin", ":refs/heads/feature"]);
    let gone = wait_until(FOLLOW_CAP, || !all.path("envs/feature").exists());
    assert!(gone, "branch feature not removed:\n{}", all.listener.log());
    assert_eq!(names(&all.path("envs")), [".hookbus", "master"]);
    assert_eq!(names(&all.path("envs/.hookbus")), ["master"]);
    let status = all.listener.terminate();
    assert!(status.success(), "{status:?}:\n{}", all.listener.log());
    assert!(all.listener.log().contains("listen: stopped"));
}

#[test]
fn every_mode_follows_pushes_through_activemq() {
    every_mode_follows_pushes(&brokers::activemq());
}

#[test]
fn every_mode_follows_pushes_through_rabbitmq() {
    every_mode_follows_pushes(&brokers::rabbitmq());
}
