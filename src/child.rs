//! Child processes with a bound: whoever starts one waits no longer than it
//! allows, so a hung git or hook can never hold a daemon or a flush.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How often a bounded wait looks at the child; short, since a fetch that
/// answers a webhook is waited for on the request's path.
const POLL: Duration = Duration::from_millis(5);

/// Waits for `child` at most `bound`; past it the child is killed and reaped
/// and the answer is `None`.
pub fn wait_bounded(child: &mut Child, bound: Duration) -> std::io::Result<Option<ExitStatus>> {
    let until = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_child_past_its_bound_is_killed() {
        let mut quick = Command::new("true").spawn().unwrap();
        let status = wait_bounded(&mut quick, Duration::from_secs(10)).unwrap();
        assert!(status.unwrap().success());
        let mut slow = Command::new("sleep").arg("10").spawn().unwrap();
        assert!(wait_bounded(&mut slow, Duration::from_millis(50))
            .unwrap()
            .is_none());
    }
}
