//! After a mirror's work: its on-change chain ([`OnChange`], the engine's)
//! as the status board sees it. The chain runs when the commit at the
//! published tree moved; a chain that fails leaves the mirror BROKEN with its
//! reason, and BROKEN it stays until the next change runs the chain again and
//! it succeeds.
//!
//! [`OnChange`]: crate::listen::mirror::provision::onchange::OnChange

use super::super::status::{Board, Change, MirrorState, MirrorStatus, Outcome};
use crate::listen::mirror::provision::onchange::Ran;
use crate::listen::mirror::Mirror;

/// How the board's `last_error` of a failed chain starts: a later update
/// that changes nothing keeps the mirror BROKEN while it says so.
const FAILED: &str = "on_change failed";

/// What [`follow`] came to.
#[derive(Debug, Default)]
pub struct Followed {
    /// How the chain went ([`Ran::describe`]), when the commit moved.
    pub on_change: Option<String>,
    /// Why the mirror is BROKEN by its chain (recorded on the board).
    pub failure: Option<String>,
    /// The state change of the whole piece of work.
    pub change: Option<Change>,
}

/// After work on `mirror` that left `now` published (`None`: nothing), with
/// `before` its status before the work, and `change` the work's change on
/// the board: runs the chain when the commit moved; a failure (or, when
/// nothing moved, the failure of the last chain) is recorded on the board,
/// and the state change is the work's as a whole.
pub fn follow(
    mirror: &Mirror,
    board: &Board,
    host: &str,
    before: Option<MirrorStatus>,
    now: Option<&str>,
    change: Option<Change>,
) -> Followed {
    let Some(on_change) = &mirror.on_change else {
        return Followed {
            change,
            ..Followed::default()
        };
    };
    let name = mirror.config.name();
    let commit = before.as_ref().and_then(|status| status.commit.clone());
    let (described, failure) = match now {
        Some(new) if commit.as_deref() != Some(new) => {
            let ran = on_change.run(mirror, host, commit.as_deref(), new);
            let failure = match &ran {
                Ran::Failed(why) => Some(format!("{FAILED} for {new}: {why}")),
                _ => None,
            };
            (Some(ran.describe()), failure)
        }
        _ => {
            let kept = before.filter(broken_by_chain);
            (None, kept.and_then(|status| status.last_error))
        }
    };
    let Some(failure) = failure else {
        return Followed {
            on_change: described,
            failure: None,
            change,
        };
    };
    let from = change.map(|change| change.from);
    let second = board.updated(&name, &Outcome::Failed(failure.clone()));
    let second = second.unwrap_or_else(|error| {
        eprintln!("hookbus: listen: mirror {name}: {error:#}");
        None
    });
    let state = board.get(&name).map(|status| status.state);
    let from = from.or(second.map(|change| change.from));
    let change = match (from, state) {
        (Some(from), Some(to)) if from != to => Some(Change { from, to }),
        _ => None,
    };
    Followed {
        on_change: described,
        failure: Some(failure),
        change,
    }
}

/// True when `status` is BROKEN by a failed chain.
fn broken_by_chain(status: &MirrorStatus) -> bool {
    status.state == MirrorState::Broken
        && (status.last_error.as_deref()).is_some_and(|error| error.starts_with(FAILED))
}
