//! `hookbus ctl`: one request to a running listener's control socket, its
//! answer printed as a table or a line (or as JSON with `--json`), and an
//! exit status that says how it went.

use super::args::CtlArgs;
use super::report::{Failure, Status};
use hookbus::config::Config;
use hookbus::listen::ops::control::{self, CallError, Request, Response, Verdict};
use hookbus::listen::ops::status::MirrorStatus;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The listener answers a command within [`control::WORK_WAIT`]; a little
/// more covers the conversation itself.
const WAIT: Duration = Duration::from_secs(control::WORK_WAIT.as_secs() + 30);
/// Longest error shown in the table (`--json` has them whole).
const ERROR_SHOWN: usize = 100;

/// Runs one `hookbus ctl` command.
pub fn ctl(args: &CtlArgs, config: &Config, out: &mut dyn Write) -> Result<(), Failure> {
    let socket = socket(args, config)?;
    let request = args.action.request();
    let response = control::call(&socket, &request, WAIT).map_err(|error| match error {
        CallError::NotRunning { .. } => Failure::new(
            Status::Unreachable,
            format!(
                "{error}; start it with `systemctl start hookbus-listen` (or `hookbus --config FILE listen`), or point --config/--socket at the right one"
            ),
        ),
        CallError::Other(error) => Failure {
            status: Status::Unreachable,
            error,
        },
    })?;
    let printed = if args.json {
        serde_json::to_writer(&mut *out, &response)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        print(&request, &response, out)
    };
    printed.map_err(|error| Failure::new(Status::Failed, format!("cannot print: {error}")))?;
    match response.verdict {
        Verdict::Ok => Ok(()),
        Verdict::Refused => Err(Failure::new(Status::Refused, response.message)),
        Verdict::Failed => Err(Failure::new(Status::Failed, response.message)),
    }
}

/// `--socket`, else the config's `[listen] state_dir/control.sock`.
fn socket(args: &CtlArgs, config: &Config) -> Result<PathBuf, Failure> {
    if let Some(socket) = &args.socket {
        return Ok(socket.clone());
    }
    match &config.listen {
        Some(listen) => Ok(control::socket_path(&listen.state_dir)),
        None => Err(Failure::new(
            Status::Config,
            "the config has no [listen] table, so the listener's socket is unknown: give the listener's --config, or --socket PATH",
        )),
    }
}

/// The table for `status`; for a command, its message and the mirror's row.
fn print(request: &Request, response: &Response, out: &mut dyn Write) -> std::io::Result<()> {
    if let (Some(mirror), Verdict::Ok) = (request.mirror(), response.verdict) {
        writeln!(out, "{mirror}: {}", response.message)?;
    }
    if response.verdict == Verdict::Ok && !response.mirrors.is_empty() {
        table(&response.mirrors, out)?;
    }
    Ok(())
}

fn table(mirrors: &[MirrorStatus], out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows = vec![[
        "MIRROR".to_string(),
        "MODE".into(),
        "STATE".into(),
        "COMMIT".into(),
        "CHANGED".into(),
        "LAST ERROR".into(),
    ]];
    for status in mirrors {
        let changed = chrono::DateTime::<chrono::Local>::from(status.changed_at);
        rows.push([
            status.name.clone(),
            status.mode.clone(),
            status.state.as_str().into(),
            status
                .commit
                .as_deref()
                .map_or("-", |c| &c[..c.len().min(12)])
                .into(),
            changed.format("%Y-%m-%d %H:%M:%S").to_string(),
            status.last_error.as_deref().map_or("-".into(), shorten),
        ]);
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    out.write_all(hookbus::text::aligned(&rows).as_bytes())
}

/// An error on one table line.
fn shorten(error: &str) -> String {
    let line = error.replace('\n', " ");
    match line.char_indices().nth(ERROR_SHOWN) {
        Some((end, _)) => format!("{}…", line[..end].trim_end()),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbus::listen::ops::status::MirrorState;

    #[test]
    fn the_status_table_lines_up_and_keeps_errors_short() {
        let status = |name: &str, state, error: Option<String>| MirrorStatus {
            name: name.into(),
            repo: "app".into(),
            mode: "checkout".into(),
            branch: Some("master".into()),
            state,
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            changed_at: std::time::UNIX_EPOCH,
            last_error: error,
        };
        let mirrors = [
            status("web", MirrorState::RolledBack, None),
            status(
                "/srv/long/path",
                MirrorState::Broken,
                Some("x\n".repeat(200)),
            ),
        ];
        let mut out = Vec::new();
        table(&mirrors, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("MIRROR          MODE      STATE  "),
            "{text}"
        );
        assert!(lines[1].starts_with("web             checkout  ROLLED-BACK  0123456789ab  "));
        assert!(lines[1].ends_with("  -"), "{text}");
        let columns = |line: &str| line.find("checkout");
        assert_eq!(columns(lines[1]), columns(lines[2]));
        assert!(lines[2].ends_with(" x…") && lines[2].len() < 200, "{text}");
    }
}
