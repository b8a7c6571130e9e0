//! A fake STOMP broker on loopback, for misbehaviour real brokers do not show
//! on demand (trickling bytes, reading slowly, odd ERRORs, garbage). Each
//! connection runs a behaviour written by the test; every frame received and
//! every misdeed is logged, and the log is what the tests assert on. Every
//! loop is bounded: a connection stops at LIFETIME, and dropping the broker
//! stops and joins its threads.

#![allow(dead_code)] // each test binary uses a different part of the helper

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// No fake connection lives longer than this, whatever its behaviour.
pub const LIFETIME: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(20);

type Behaviour = dyn Fn(&mut Peer) -> io::Result<()> + Send + Sync;

/// A listening fake broker; stops when dropped.
pub struct FakeBroker {
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The port alone (for `localhost:PORT` URLs).
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    accepting: Option<JoinHandle<()>>,
}

impl FakeBroker {
    /// Starts a broker running `behaviour` on every connection.
    pub fn start(
        behaviour: impl Fn(&mut Peer) -> io::Result<()> + Send + Sync + 'static,
    ) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let local = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        let accepting = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::spawn(move || accept(listener, behaviour, log, stop))
        };
        FakeBroker {
            address: local.to_string(),
            port: local.port(),
            log,
            stop,
            accepting: Some(accepting),
        }
    }

    /// Everything logged so far, one line per frame or event.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Logged lines containing `text`.
    pub fn count(&self, text: &str) -> usize {
        self.log().iter().filter(|line| line.contains(text)).count()
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

fn accept(
    listener: TcpListener,
    behaviour: Arc<Behaviour>,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let started = Instant::now();
    let connections = AtomicUsize::new(0);
    let mut peers = Vec::new();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < LIFETIME {
        match listener.accept() {
            Ok((tcp, _)) => {
                tcp.set_nonblocking(false).unwrap();
                let mut peer = Peer {
                    tcp,
                    buffer: Vec::new(),
                    number: connections.fetch_add(1, Ordering::Relaxed),
                    log: Arc::clone(&log),
                    stop: Arc::clone(&stop),
                    born: Instant::now(),
                    eof: false,
                };
                let behaviour = Arc::clone(&behaviour);
                peers.push(std::thread::spawn(move || {
                    let result = behaviour(&mut peer);
                    peer.note(&format!("closed ({result:?})"));
                }));
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(err) => panic!("fake broker accept: {err}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for peer in peers {
        let _ = peer.join();
    }
}

/// A frame as the fake broker read it (headers left escaped).
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawFrame {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// One client connection of the fake broker.
pub struct Peer {
    pub tcp: TcpStream,
    buffer: Vec<u8>,
    /// 0 for the first connection the broker accepted, and so on.
    pub number: usize,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    born: Instant,
    /// The client closed its side.
    pub eof: bool,
}

impl Peer {
    /// Adds a line to the broker's log, naming this connection.
    pub fn note(&self, line: &str) {
        let line = format!("#{} {line}", self.number);
        self.log.lock().unwrap().push(line);
    }

    /// False once the broker is stopping or this connection is too old.
    pub fn alive(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.born.elapsed() < LIFETIME
    }

    /// The next frame, logged as `got COMMAND key:value … (N body bytes)`;
    /// `None` at EOF, when stopping, or after `patience` without one.
    pub fn frame_within(&mut self, patience: Duration) -> io::Result<Option<RawFrame>> {
        let until = Instant::now() + patience;
        loop {
            if let Some(frame) = self.decode() {
                let headers: Vec<String> = frame
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                self.note(&format!(
                    "got {} {} ({} body bytes)",
                    frame.command,
                    headers.join(" "),
                    frame.body.len()
                ));
                return Ok(Some(frame));
            }
            if !self.alive() || Instant::now() >= until {
                return Ok(None);
            }
            self.tcp.set_read_timeout(Some(POLL))?;
            let mut chunk = [0u8; 64 * 1024];
            match self.tcp.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(None);
                }
                Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// The next frame, waiting as long as the connection lives.
    pub fn frame(&mut self) -> io::Result<Option<RawFrame>> {
        self.frame_within(LIFETIME)
    }

    /// Reads CONNECT and answers CONNECTED (STOMP 1.2).
    pub fn connected(&mut self) -> io::Result<()> {
        self.frame()?;
        self.send(b"CONNECTED\nversion:1.2\nserver:fake\n\n\0")
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tcp.write_all(bytes)
    }

    /// Sends `bytes` one at a time, `every` apart, while the client listens.
    pub fn trickle(&mut self, bytes: &[u8], every: Duration) -> io::Result<()> {
        for byte in bytes {
            if !self.alive() {
                break;
            }
            self.tcp.write_all(std::slice::from_ref(byte))?;
            std::thread::sleep(every);
        }
        self.note(&format!("trickled for {:?}", self.born.elapsed()));
        Ok(())
    }

    fn decode(&mut self) -> Option<RawFrame> {
        let skip = self.buffer.iter().take_while(|&&b| b == b'\n').count();
        self.buffer.drain(..skip);
        let head_end = self.buffer.windows(2).position(|w| w == b"\n\n")?;
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let mut lines = head.lines();
        let command = lines.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let start = head_end + 2;
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let end = match length {
            Some(length) if self.buffer.len() > start + length => start + length,
            Some(_) => return None,
            None => start + self.buffer[start..].iter().position(|&b| b == 0)?,
        };
        let body = self.buffer[start..end].to_vec();
        self.buffer.drain(..=end);
        Some(RawFrame {
            command,
            headers,
            body,
        })
    }
}

/// The RECEIPT answering `frame` (which must ask for one).
pub fn receipt_for(frame: &RawFrame) -> Vec<u8> {
    format!(
        "RECEIPT\nreceipt-id:{}\n\n\0",
        frame.get("receipt").unwrap()
    )
    .into_bytes()
}
