//! End to end through real gitolite (Debian `gitolite3`) with no sshd: gitolite is
//! set up under a scratch HOME, and git pushes through `gitolite-shell` via a
//! fake ssh command, the way sshd's forced command would run it. hookbus is
//! gitolite's common post-receive hook, per-repository settings come from
//! `config hookbus.* = …` lines in gitolite.conf, and messages land in the outbox.

mod gitutil;

use gitutil::{run_ok, HOOKBUS};
use hookbus::deliver::outbox::Outbox;
use hookbus::deliver::Message;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const GITOLITE_SHELL: &str = "/usr/share/gitolite3/gitolite-shell";

/// A gitolite server under a scratch directory and a client that pushes to it.
struct Server {
    _tmp: tempfile::TempDir,
    srv_home: PathBuf,
    cli_home: PathBuf,
    fake_ssh: PathBuf,
    outbox: Outbox,
}

impl Server {
    fn start() -> Server {
        assert!(
            Path::new(GITOLITE_SHELL).exists(),
            "gitolite3 is not installed: run scripts/install-test-deps (as root) or apt-get install gitolite3"
        );
        let tmp = tempfile::tempdir().unwrap();
        let srv_home = tmp.path().join("srv");
        let cli_home = tmp.path().join("cli");
        fs::create_dir_all(&srv_home).unwrap();
        fs::create_dir_all(&cli_home).unwrap();
        let outbox_dir = tmp.path().join("outbox");
        let config = tmp.path().join("hookbus.toml");
        fs::write(
            &config,
            format!(
                "[outbox]\ndir = {:?}\n\n[[route]]\ndestination = \"/topic/git.{{repo}}\"\nformat = \"json\"\n",
                outbox_dir
            ),
        )
        .unwrap();

        gitolite(&srv_home, &["setup", "-a", "admin"]);
        let rc = srv_home.join(".gitolite.rc");
        let text = fs::read_to_string(&rc).unwrap();
        let text = text
            .replacen(
                "GIT_CONFIG_KEYS                 =>  '',",
                r"GIT_CONFIG_KEYS                 =>  'hookbus\..*',",
                1,
            )
            .replacen(
                "# LOCAL_CODE                =>  \"$ENV{HOME}/local\",",
                "LOCAL_CODE                =>  \"$ENV{HOME}/local\",",
                1,
            );
        assert!(text.contains(r"'hookbus\..*'") && text.contains("\n        LOCAL_CODE"));
        fs::write(&rc, text).unwrap();
        let common = srv_home.join("local/hooks/common");
        fs::create_dir_all(&common).unwrap();
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/post-receive"),
            common.join("post-receive"),
        )
        .unwrap();
        gitolite(&srv_home, &["setup", "--hooks-only"]);

        // What sshd plus gitolite's authorized_keys forced command would do: a clean
        // environment, SSH_ORIGINAL_COMMAND, and gitolite-shell with the user name.
        let fake_ssh = tmp.path().join("fake-ssh");
        fs::write(
            &fake_ssh,
            format!(
                "#!/bin/sh\nwhile [ $# -gt 2 ]; do shift; done\n\
                 exec env -i HOME='{srv}' PATH=/usr/local/bin:/usr/bin:/bin \
                 HOOKBUS='{bin}' HOOKBUS_CONFIG='{config}' \
                 SSH_ORIGINAL_COMMAND=\"$2\" SSH_CONNECTION='127.0.0.1 50000 127.0.0.1 22' \
                 {GITOLITE_SHELL} \"${{FAKE_GL_USER:-admin}}\"\n",
                srv = srv_home.display(),
                bin = HOOKBUS,
                config = config.display(),
            ),
        )
        .unwrap();
        let mut chmod = Command::new("chmod");
        chmod.arg("+x").arg(&fake_ssh);
        run_ok(chmod);
        Server {
            _tmp: tmp,
            srv_home,
            cli_home,
            fake_ssh,
            outbox: Outbox::new(outbox_dir),
        }
    }

    /// A git command on the client side, as gitolite user `user`.
    fn git(&self, user: &str, dir: &Path, args: &[&str]) -> String {
        let out = gitutil::git(dir, args)
            .env("HOME", &self.cli_home)
            .env("GIT_SSH_COMMAND", &self.fake_ssh)
            .env("GIT_SSH_VARIANT", "simple")
            .env("FAKE_GL_USER", user)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?} as {user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Every message in the outbox, which is emptied.
    fn take_messages(&self) -> Vec<Message> {
        let entries = self.outbox.list().unwrap();
        let messages = entries
            .iter()
            .flat_map(|entry| self.outbox.read(entry).unwrap())
            .collect();
        for entry in &entries {
            self.outbox.remove(entry).unwrap();
        }
        messages
    }
}

/// Runs gitolite as the hosting user whose HOME is `srv_home`.
fn gitolite(srv_home: &Path, args: &[&str]) {
    let mut command = Command::new("gitolite");
    command
        .args(args)
        .env("HOME", srv_home)
        .current_dir(srv_home);
    run_ok(command);
}

fn json(message: &Message) -> serde_json::Value {
    serde_json::from_slice(&message.body).unwrap()
}

#[test]
fn gitolite_pushes_name_the_pusher_and_repo_and_honour_config_lines() {
    let server = Server::start();
    let admin = server.cli_home.join("gitolite-admin");
    server.git(
        "admin",
        &server.cli_home,
        &[
            "clone",
            "-q",
            "git@gitolite:gitolite-admin",
            "gitolite-admin",
        ],
    );
    let conf = admin.join("conf/gitolite.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str(
        "\nrepo team/app\n    RW+ = alice\n\
         \nrepo legacy\n    RW+ = alice\n    config hookbus.name = team/legacy-app\n\
         \nrepo quiet\n    RW+ = alice\n    config hookbus.enabled = false\n",
    );
    fs::write(&conf, text).unwrap();
    server.git("admin", &admin, &["commit", "-qam", "add repositories"]);
    let admin_push = server.git("admin", &admin, &["push", "-q", "origin", "master"]);
    assert!(
        server.take_messages().is_empty(),
        "a gitolite-admin push must send nothing; hook said: {admin_push}"
    );
    let legacy_config = fs::read_to_string(server.srv_home.join("repositories/legacy.git/config"));
    assert!(
        legacy_config.unwrap().contains("team/legacy-app"),
        "gitolite did not write the config line into the repository"
    );

    let work = server.cli_home.join("work");
    fs::create_dir_all(&work).unwrap();
    server.git("alice", &work, &["init", "-q", "-b", "master"]);
    fs::write(work.join("a.txt"), "one\n").unwrap();
    server.git("alice", &work, &["add", "a.txt"]);
    server.git("alice", &work, &["commit", "-qm", "first commit"]);

    for (repo, name) in [("team/app", "team/app"), ("legacy", "team/legacy-app")] {
        server.git(
            "alice",
            &work,
            &["push", "-q", &format!("git@gitolite:{repo}"), "master"],
        );
        let messages = server.take_messages();
        assert_eq!(messages.len(), 1, "one message for the push to {repo}");
        let body = json(&messages[0]);
        assert_eq!(body["repo"], name);
        assert_eq!(body["pusher"], "alice");
        assert_eq!(body["refname"], "refs/heads/master");
        // A '/' in a value is encoded: one topic name on every broker.
        let encoded = name.replace('/', "~2F");
        assert_eq!(messages[0].destination, format!("/topic/git.{encoded}"));
        assert_eq!(body["commits"][0]["message"], "first commit\n");
    }

    server.git(
        "alice",
        &work,
        &["push", "-q", "git@gitolite:quiet", "master"],
    );
    assert!(
        server.take_messages().is_empty(),
        "config hookbus.enabled = false must silence the repository"
    );
}
