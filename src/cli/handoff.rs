//! A hook handing its push to `hookbus relay`, and the relay taking it
//! (protocol: [`hookbus::deliver::relay::handoff`]). The relay runs the
//! hook's work in its warm process, so a push costs a small process that
//! reads its config and waits, not one that opens the repository, renders
//! and stores. Whenever the relay cannot do exactly what the hook would (no
//! relay, another config or version of it, a git environment the request
//! does not carry, messages it can neither deliver nor save), the hook does
//! the work itself: at worst a message goes twice, with one hookbus-id.

use super::args::PostReceiveArgs;
use super::git;
use super::report::{Reporter, Status};
use hookbus::config::{default_outbox_dir, Config};
use hookbus::deliver::relay::board::Board;
use hookbus::deliver::relay::handoff::{
    self, Answer, FileId, Request, MAX_INPUT, READ_BOUND, SOCKET,
};
use hookbus::deliver::relay::metrics::RelayMetrics;
use hookbus::git::HookEnv;
use hookbus::saved::HookCall;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Variables that change what a hook reads (namespaces, quarantine, other
/// object stores) or mark a replayed kept push: a hook run with any of them
/// does its own work.
const OWN_WORK: [&str; 6] = [
    "GIT_NAMESPACE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_QUARANTINE_PATH",
    "GIT_COMMON_DIR",
    "HOOKBUS_KEPT_PUSH",
];
/// How long past `deadline_ms` a hook waits for the relay's answer
/// (rendering a big push does not count against the deadline).
const ANSWER_SLACK: Duration = Duration::from_secs(30);
/// Pushes the relay works on at once; more connections are closed at once
/// (their hooks do their own work).
const MAX_AT_ONCE: usize = 64;

/// Hands the push to the relay holding the outbox, if there is one that
/// takes it; true when it did, its answer said and its status recorded.
pub fn to_relay(
    args: &PostReceiveArgs,
    config: &Config,
    input: &[u8],
    reporter: &mut Reporter,
) -> bool {
    let Some(broker) = config.broker.as_ref().filter(|broker| !broker.background) else {
        return false;
    };
    let Some(source) = &config.source else {
        return false;
    };
    if args.dry_run
        || input.len() > MAX_INPUT
        || OWN_WORK.iter().any(|name| std::env::var_os(name).is_some())
    {
        return false;
    }
    let Ok(mut stream) = UnixStream::connect(config.outbox_dir().join(SOCKET)) else {
        return false; // no relay (or one killed: its socket is left)
    };
    let HookCall::PostReceive { repo } = HookCall::post_receive(args.repo.as_deref()) else {
        return false;
    };
    let (Ok(config_id), Some(binary)) = (FileId::of(source), own_binary()) else {
        return false;
    };
    let request = Request {
        config: source.clone(),
        config_id,
        binary,
        default_outbox: default_outbox_dir(),
        repo,
        env: HookEnv::from_process(),
        input_len: input.len(),
    };
    let wait = Duration::from_millis(broker.deadline_ms) + ANSWER_SLACK;
    let asked = stream.set_write_timeout(Some(READ_BOUND)).is_ok()
        && stream.set_read_timeout(Some(wait)).is_ok()
        && handoff::send_request(&mut stream, &request, input).is_ok();
    match asked.then(|| handoff::read_answer(&stream)) {
        Some(Ok(Answer::Done { status, said })) => {
            reporter.pass_on(&said);
            reporter.record(Status::from_code(status));
            true
        }
        _ => false,
    }
}

/// The relay's side: [`SOCKET`] in the outbox it holds, answered on threads
/// of their own. Closed (and the socket removed) when dropped.
pub struct Desk {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accepting: Option<JoinHandle<()>>,
}

/// What every answer needs.
struct Shared {
    config: Config,
    source: PathBuf,
    source_id: FileId,
    binary: FileId,
    default_outbox: PathBuf,
    counted: RelayMetrics,
    /// What the relay's delivery tells the pushes run here.
    board: Arc<Board>,
    working: AtomicUsize,
}

impl Desk {
    /// Opens the desk for hooks that read the config the relay read
    /// (`config`, from a file: hooks without one have no broker to relay
    /// to); `None` without a config file.
    pub fn open(
        config: &Config,
        counted: RelayMetrics,
        board: Arc<Board>,
    ) -> anyhow::Result<Option<Desk>> {
        let Some(source) = config.source.clone() else {
            return Ok(None);
        };
        let Some(binary) = own_binary() else {
            return Ok(None);
        };
        let shared = Arc::new(Shared {
            source_id: FileId::of(&source)?,
            binary,
            config: config.clone(),
            source,
            default_outbox: default_outbox_dir(),
            counted,
            board,
            working: AtomicUsize::new(0),
        });
        let path = config.outbox_dir().join(SOCKET);
        let _ = std::fs::remove_file(&path); // a killed relay's
        let listener = UnixListener::bind(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let accepting = std::thread::spawn(move || accept(&listener, &shared, &stopping));
        Ok(Some(Desk {
            path,
            stop,
            accepting: Some(accepting),
        }))
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path); // wakes the accepting thread
        if let Some(thread) = self.accepting.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept(listener: &UnixListener, shared: &Arc<Shared>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            std::thread::sleep(Duration::from_millis(10)); // out of files: back off
            continue;
        };
        if shared.working.fetch_add(1, Ordering::SeqCst) >= MAX_AT_ONCE || !same_user(&stream) {
            shared.working.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: the hook does its own work
        }
        let shared = Arc::clone(shared);
        std::thread::spawn(move || {
            serve(&shared, stream);
            shared.working.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// The identity of the running binary (`None` when it was replaced or
/// removed since it started).
fn own_binary() -> Option<FileId> {
    FileId::of(&std::env::current_exe().ok()?).ok()
}

/// Whether the process at the other end runs as this one's user: only the
/// relay's own account may have its pushes run by it.
fn same_user(stream: &UnixStream) -> bool {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut size = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `size` bytes into `credentials`.
    let read = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut size,
        )
    };
    // SAFETY: geteuid cannot fail.
    read == 0 && credentials.uid == unsafe { libc::geteuid() }
}

fn serve(shared: &Shared, mut stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(READ_BOUND));
    let until = Instant::now() + READ_BOUND;
    let Ok((request, input)) = handoff::read_request(Bounded {
        stream: &stream,
        until,
    }) else {
        return; // not a hook, or a broken or slow one: nothing to answer
    };
    let answer = answer(shared, request, &input);
    let _ = handoff::send_answer(&mut stream, &answer);
}

fn answer(shared: &Shared, request: Request, input: &[u8]) -> Answer {
    let declined = |why: &str| Answer::Declined { why: why.into() };
    if request.config != shared.source || request.config_id != shared.source_id {
        return declined("the hook read another config, or another version of it");
    }
    if request.binary != shared.binary {
        return declined(
            "the hook runs another hookbus binary (restart the relay after an upgrade)",
        );
    }
    if request.default_outbox != shared.default_outbox {
        return declined("the hook keeps pushes in another place");
    }
    let args = PostReceiveArgs {
        dry_run: false,
        repo: Some(request.repo),
    };
    let said = Said::default();
    let mut reporter = Reporter::new(Box::new(said.clone()), false, false);
    let env = request.env;
    let result = git::post_receive_as(
        &args,
        &shared.config,
        &env,
        input,
        Some(&shared.board),
        &mut std::io::sink(),
        &mut reporter,
    );
    if matches!(&result, Err(failure) if failure.status == Status::Delivery) {
        // Neither delivered nor saved: the hook keeps the push, as its own.
        return declined("the messages could be neither delivered nor saved");
    }
    let status = reporter.finish(result);
    shared.counted.took_push();
    Answer::Done {
        status: status as u8,
        said: said.text(),
    }
}

/// A request's bytes, all of them by `until` (a client trickling bytes
/// cannot hold a worker longer).
struct Bounded<'a> {
    stream: &'a UnixStream,
    until: Instant,
}

impl std::io::Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf)
    }
}

/// What a push run in the relay says, for its hook to say.
#[derive(Clone, Default)]
struct Said(Arc<Mutex<Vec<u8>>>);

impl Said {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Said {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut said = self.0.lock().unwrap_or_else(|e| e.into_inner());
        said.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
