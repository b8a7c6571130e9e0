//! `[listen] group` end to end on both brokers: two real `hookbus listen`
//! members of one group, each with a mirror of its own, real pushes through
//! the installed hook, and an exec step that records which member ran which
//! push. Each push's action runs exactly once across the group; a member
//! killed (SIGKILL) while it holds an unacknowledged message leaves that push
//! to the other member; each member's mirror still follows every push.

mod brokers;
mod gitutil;
mod listenutil;

use brokers::{unique, Broker};
use listenutil::{listen_table, mirror_table, rev, wait_until, Listener, Server, FOLLOW_CAP};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pushes in the stream.
const PUSHES: usize = 12;
/// The push (1-based) that goes to branch `hold`: its first run blocks until
/// its member is killed.
const HOLD_AT: usize = 4;
/// How long nothing more may happen before the counts are taken, so that a
/// duplicate run would show.
const QUIET: Duration = Duration::from_millis(2000);

/// The build: records "start|done MEMBER NEWREV" in runs.log. The first run
/// for refs/heads/hold says who holds it and then blocks in the shell itself
/// (opening a FIFO nobody writes), so it dies with its daemon, unacknowledged.
const BUILD: &str = r#"member=$1 rev=$2 ref=$3 dir=$4
echo "start $member $rev" >> "$dir/runs.log"
if [ "$ref" = refs/heads/hold ] && mkdir "$dir/held" 2>/dev/null; then
  echo "$member" > "$dir/held/by"
  read _ < "$dir/hold.fifo"
fi
echo "done $member $rev" >> "$dir/runs.log"
"#;

/// One member: its daemon and its mirror.
struct Member {
    listener: Listener,
    mirror: PathBuf,
}

/// Starts member `name` of `group` and waits until it has subscribed.
fn member(broker: &Broker, server: &Server, scratch: &Path, name: &str, group: &str) -> Member {
    let dir = scratch.join(name);
    fs::create_dir_all(&dir).unwrap();
    let mirror = dir.join("mirror");
    let extra = format!("group = \"{group}\"\naction_workers = 1\nhost = \"{name}\"");
    let config = format!(
        r#"{}{}{}
[[action]]
name = "build"
[action.match]
repo = ["app"]
[[action.step]]
kind = "exec"
argv = ["{}", "{name}", "{{newrev}}", "{{refname}}", "{}"]
timeout_s = 300
"#,
        broker.config(),
        listen_table(&dir, &server.topic, &extra),
        mirror_table("app", &mirror, &server.url(), "fetch", None),
        scratch.join("build").display(),
        scratch.display(),
    );
    let listener = Listener::start(&dir, &config);
    listener.wait_log(&format!("sharing it with group {group}"), 1);
    Member { listener, mirror }
}

/// Who ran what: for each newrev, the members that started and that finished
/// its build.
fn runs(scratch: &Path) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let text = fs::read_to_string(scratch.join("runs.log")).unwrap_or_default();
    let mut runs: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for line in text.lines() {
        let [what, member, rev] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad line {line:?} in runs.log");
        };
        let entry = runs.entry(rev.to_string()).or_default();
        match what {
            "start" => entry.0.push(member.to_string()),
            _ => entry.1.push(member.to_string()),
        }
    }
    runs
}

fn group_runs_each_push_once_even_when_a_member_is_killed(broker: Broker) {
    // ActiveMQ shares only virtual topics (its default config); RabbitMQ any.
    let topic = unique("topic", "group").replace("/topic/", "/topic/VirtualTopic.");
    let server = Server::on_topic(&broker, topic);
    let scratch = tempfile::tempdir().unwrap();
    let scratch = scratch.path();
    fs::write(scratch.join("build"), format!("#!/bin/sh\n{BUILD}")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(scratch.join("build"), fs::Permissions::from_mode(0o755)).unwrap();
    let fifo = std::ffi::CString::new(scratch.join("hold.fifo").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let group = unique("g", "ci")
        .rsplit('/')
        .next()
        .unwrap()
        .replace('.', "-");
    let mut members: BTreeMap<&str, Member> = ["member-a", "member-b"]
        .into_iter()
        .map(|name| (name, member(&broker, &server, scratch, name, &group)))
        .collect();

    let mut revs = Vec::new();
    let mut killed = String::new();
    for index in 1..=PUSHES {
        let branch = if index == HOLD_AT { "hold" } else { "master" };
        let content = format!("{index}\n");
        let message = format!("push {index}");
        revs.push(server.push_files(branch, &message, &[("a.txt", content.as_bytes())]));
        if index == HOLD_AT {
            let by = scratch.join("held/by");
            let held = wait_until(FOLLOW_CAP, || {
                fs::read_to_string(&by).is_ok_and(|s| s.ends_with('\n'))
            });
            assert!(held, "no member took push {HOLD_AT}: {:?}", runs(scratch));
            killed = fs::read_to_string(&by).unwrap().trim().to_string();
            members.get_mut(killed.as_str()).unwrap().listener.kill();
        }
    }
    let survivor = members
        .keys()
        .find(|name| **name != killed)
        .unwrap()
        .to_string();

    let all_done = wait_until(FOLLOW_CAP * 2, || {
        let runs = runs(scratch);
        revs.iter()
            .all(|rev| runs.get(rev).is_some_and(|r| !r.1.is_empty()))
    });
    std::thread::sleep(QUIET);
    let runs = runs(scratch);
    let done = |rev: &String| runs.get(rev).map_or(0, |r| r.1.len());
    let builds: usize = revs.iter().map(done).sum();
    let duplicates: usize = revs.iter().map(|rev| done(rev).saturating_sub(1)).sum();
    let lost = revs.iter().filter(|rev| done(rev) == 0).count();
    let by = |name: &str| -> usize {
        (runs.values())
            .map(|r| r.1.iter().filter(|m| *m == name).count())
            .sum()
    };
    println!(
        "group ({}): pushes={PUSHES} builds={builds} duplicates={duplicates} lost={lost} ({}: {}, {}: {}; {killed} killed holding push {HOLD_AT})",
        broker.name,
        killed,
        by(&killed),
        survivor,
        by(&survivor),
    );
    assert!(all_done, "not every push was built: {runs:#?}");
    assert_eq!((builds, duplicates, lost), (PUSHES, 0, 0), "{runs:#?}");
    let held = &runs[&revs[HOLD_AT - 1]];
    assert_eq!(
        held,
        &(
            vec![killed.clone(), survivor.clone()],
            vec![survivor.clone()]
        )
    );

    // The survivor's own subscription kept its mirror up to date meanwhile.
    let last = revs.last().unwrap();
    let member = members.get_mut(survivor.as_str()).unwrap();
    let followed = wait_until(FOLLOW_CAP, || {
        rev(&member.mirror, "refs/remotes/origin/master").as_ref() == Some(last)
    });
    assert!(followed, "{}", member.listener.log());
    assert!(
        member.listener.terminate().success(),
        "{}",
        member.listener.log()
    );
}

#[test]
fn activemq_group_runs_each_push_once_even_when_a_member_is_killed() {
    group_runs_each_push_once_even_when_a_member_is_killed(brokers::activemq());
}

#[test]
fn rabbitmq_group_runs_each_push_once_even_when_a_member_is_killed() {
    group_runs_each_push_once_even_when_a_member_is_killed(brokers::rabbitmq());
}

#[test]
fn a_group_on_an_activemq_topic_that_is_not_virtual_is_refused_naming_the_fix() {
    let broker = brokers::activemq();
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("topic", "group.plain");
    let config = format!(
        "{}{}[[action]]\nname = \"build\"\n[[action.step]]\nkind = \"exec\"\nargv = [\"/bin/true\"]\n",
        broker.config(),
        listen_table(dir.path(), &topic, "group = \"ci\""),
    );
    let mut listener = Listener::start(dir.path(), &config);
    let name = topic.strip_prefix("/topic/").unwrap();
    listener.wait_log(
        &format!("publish to and subscribe /topic/VirtualTopic.{name}"),
        1,
    );
    assert!(!listener.log().contains("sharing it with group"));
    assert!(listener.terminate().success(), "{}", listener.log());
}
