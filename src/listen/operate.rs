//! A mirror's work as its state on the [`Board`] allows: a held mirror
//! (FROZEN, ROLLED-BACK) only fetches, every update is recorded on the board.
//! Run by the worker pool, so it is serialised with the mirror's other work.

use super::config::Mode;
use super::mirror::{Done, Mirror};
use super::status::{Board, Change, MirrorState, Outcome};
use anyhow::Result;

/// What the board says after a piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The mirror's state now.
    pub state: MirrorState,
    /// The change the work made, if any.
    pub change: Option<Change>,
}

/// Updates `mirror` (fetch only while it is held) and records the result.
pub fn update(mirror: &Mirror, board: &Board) -> (Result<Done>, Recorded) {
    let name = mirror.config.name();
    let held = board
        .get(&name)
        .is_some_and(|status| status.state.is_held());
    let result = if held {
        mirror.fetch().map(|()| Done::default())
    } else {
        mirror.update()
    };
    let outcome = match &result {
        Ok(_) if mirror.config.mode == Mode::Fetch => {
            Outcome::Done(mirror.remote_branch(&mirror.config.branch).ok())
        }
        Ok(done) => Outcome::Done(done.head.clone()),
        Err(error) => Outcome::Failed(format!("{error:#}")),
    };
    let change = board.updated(&name, &outcome).unwrap_or_else(|error| {
        eprintln!("hookbus: listen: mirror {name}: {error:#}");
        None
    });
    (result, recorded(board, &name, change))
}

/// The board's word on `name` after `change`.
fn recorded(board: &Board, name: &str, change: Option<Change>) -> Recorded {
    let state = board
        .get(name)
        .map_or(MirrorState::Ok, |status| status.state);
    Recorded { state, change }
}
