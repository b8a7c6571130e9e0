//! The daemon's side of the control socket: the state directory's lock, the
//! socket, one short-lived thread per client (at most [`MAX_CLIENTS`]), every
//! read and write bounded by [`IO_TIMEOUT`], so a client that says nothing or
//! never reads only costs its own thread a while; nothing a client sends
//! stops the daemon.

use super::super::worker::{Pool, Request as Work};
use super::{socket_path, Job, Request, Response, Verdict, SOCKET, WORK_WAIT};
use crate::config::select::resolve;
use crate::listen::mirror::Mirror;
use crate::listen::ops::status::Board;
use crate::private_file::Access;
use anyhow::{bail, Context, Result};
use std::fs::TryLockError;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryIter};
use std::sync::Arc;
use std::time::Duration;

/// Bound on reading a request and on writing its answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at once; more are told to come back.
pub const MAX_CLIENTS: usize = 16;
/// Longest request read.
const MAX_REQUEST: u64 = 64 * 1024;
/// The lock that keeps two daemons off one state directory.
const LOCK: &str = "listen.lock";

/// Takes `state_dir` for this daemon: an exclusive lock on `listen.lock`,
/// held as long as the returned file is open (the kernel drops it when the
/// process dies, so a killed daemon leaves no lock behind).
pub fn lock_state_dir(state_dir: &Path) -> Result<File> {
    let path = state_dir.join(LOCK);
    // Never through a link: a planted one must not make root write elsewhere.
    let mut file = Access::private().open_lock(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "another hookbus listen (pid {}) uses the state directory {}: give each listener on this machine its own [listen] state_dir",
                holder.trim(),
                state_dir.display()
            );
        }
        Err(TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

/// The socket being served, and the commands it received for the loop.
pub struct Server {
    socket: PathBuf,
    jobs: Receiver<Job>,
    /// The state directory's lock, held as long as the daemon serves.
    _lock: File,
}

impl Server {
    /// Serves `control.sock` in `state_dir` (mode 0660, in group `group`
    /// when given) from a thread of its own: status from `board`, mirror
    /// commands kept for [`Server::jobs`]. A socket left by a killed daemon is
    /// replaced; `lock` (from [`lock_state_dir`]) says no live daemon's is.
    pub fn start(lock: File, state_dir: &Path, group: Option<u32>, board: Board) -> Result<Server> {
        let socket = socket_path(state_dir);
        let (jobs, received) = mpsc::channel();
        let listener = bind(state_dir, &socket, group)
            .with_context(|| format!("cannot serve the control socket {}", socket.display()))?;
        let clients = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                    clients.fetch_sub(1, Ordering::SeqCst);
                    let busy = Response {
                        verdict: Verdict::Failed,
                        message: "the listener serves too many clients: try again".into(),
                        mirrors: Vec::new(),
                    };
                    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
                    write_response(&stream, &busy);
                    continue;
                }
                let (board, jobs, clients) = (board.clone(), jobs.clone(), Arc::clone(&clients));
                std::thread::spawn(move || {
                    serve(&stream, &board, &jobs);
                    clients.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Server {
            socket,
            jobs: received,
            _lock: lock,
        })
    }

    /// The mirror commands received since the last call, for [`dispatch`].
    pub fn jobs(&self) -> TryIter<'_, Job> {
        self.jobs.try_iter()
    }

    /// Removes the socket, so that clients hear at once that no daemon runs.
    pub fn stop(self) {
        let _ = fs::remove_file(&self.socket);
    }
}

/// Binds under a temporary name, sets mode and group, then renames into
/// place: the socket is never reachable with other permissions.
fn bind(state_dir: &Path, socket: &Path, group: Option<u32>) -> Result<UnixListener> {
    let temporary = state_dir.join(format!(".{SOCKET}.{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    let listener = UnixListener::bind(&temporary).with_context(|| {
        format!(
            "cannot make a socket at {} (a socket path must be shorter than 108 bytes)",
            temporary.display()
        )
    })?;
    let made = fs::set_permissions(&temporary, fs::Permissions::from_mode(0o660))
        .context("cannot set its mode")
        .and_then(|()| match group {
            Some(gid) => std::os::unix::fs::lchown(&temporary, None, Some(gid)).with_context(|| {
                format!("cannot give it to group {gid} (control_group): the daemon's user must be root or in that group")
            }),
            None => Ok(()),
        })
        .and_then(|()| fs::rename(&temporary, socket).context("cannot move it into place"));
    if let Err(error) = made {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(listener)
}

/// One client: one request line read, one answer line written, both bounded.
fn serve(stream: &UnixStream, board: &Board, jobs: &Sender<Job>) {
    let bounded = stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)));
    if bounded.is_err() {
        return;
    }
    let mut line = Vec::new();
    if BufReader::new(stream.take(MAX_REQUEST))
        .read_until(b'\n', &mut line)
        .is_err()
    {
        return; // too slow or gone: nobody to answer
    }
    let response = match serde_json::from_slice::<Request>(&line) {
        Err(error) => Response::refused(format!(
            "not a control request ({error}); send one JSON object on one line, such as {{\"command\":\"status\"}}"
        )),
        Ok(Request::Status) => {
            let mirrors = board.snapshot();
            Response {
                verdict: Verdict::Ok,
                message: format!("{} mirror(s)", mirrors.len()),
                mirrors,
            }
        }
        Ok(request) => hand_over(request, jobs),
    };
    write_response(stream, &response);
}

/// Sends a mirror command to the daemon's loop and waits for its answer.
fn hand_over(request: Request, jobs: &Sender<Job>) -> Response {
    let failed = |message: String| Response {
        verdict: Verdict::Failed,
        message,
        mirrors: Vec::new(),
    };
    let (reply, answer) = mpsc::channel();
    if jobs.send(Job { request, reply }).is_err() {
        return failed("the listener is stopping".into());
    }
    match answer.recv_timeout(WORK_WAIT) {
        Ok(response) => response,
        Err(RecvTimeoutError::Timeout) => failed(format!(
            "still at work after {} s; it goes on: see `hookbus ctl status`",
            WORK_WAIT.as_secs()
        )),
        Err(RecvTimeoutError::Disconnected) => failed(
            "the listener dropped the command (it is stopping, or the mirror left the config)"
                .into(),
        ),
    }
}

fn write_response(mut stream: &UnixStream, response: &Response) {
    if let Ok(mut line) = serde_json::to_vec(response) {
        line.push(b'\n');
        let _ = stream.write_all(&line);
    }
}

/// The daemon loop's part: finds the mirror a job names (see
/// [`resolve`]) and queues the job with that mirror's work; an unknown or
/// ambiguous name is refused at once.
pub fn dispatch(job: Job, mirrors: &[Mirror], pool: &Pool) {
    let wanted = job.request.mirror().unwrap_or_default();
    match resolve(wanted, mirrors.iter().map(|mirror| &mirror.config)) {
        Ok(mirror) => pool.submit(
            &mirror.path,
            Work {
                control: Some(job),
                ..Work::default()
            },
        ),
        Err(why) => {
            let _ = job.reply.send(Response::refused(why));
        }
    }
}
