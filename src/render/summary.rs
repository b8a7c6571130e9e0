//! The `summary` format: one line for chat bots, e.g.
//! `[app] alice pushed 3 commits to master: Fix the login form`.

use super::{clip_field, Limits, Prepared};
use crate::model::{clip_line, Change, RefKind, UpdateShape};

/// Renders the one-line summary (ending in a newline).
pub fn render(prepared: &Prepared, limits: &Limits) -> String {
    let notification = prepared.notification;
    let update = &notification.update;
    let who = if notification.pusher.is_empty() {
        "someone"
    } else {
        &notification.pusher
    };
    let name = update.short_name();
    let what = match update.kind {
        RefKind::Branch => "branch",
        RefKind::LightweightTag | RefKind::AnnotatedTag => "tag",
        RefKind::Notes => "notes",
        RefKind::Other => "ref",
    };
    let short = |id: &str| id[..7.min(id.len())].to_string();
    let new = notification.new_commits.total;
    let counted = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let commits = |n: usize| counted(n, "commit");
    let headline = prepared
        .shown
        .first()
        .map(|commit| commit.subject().to_string())
        .or_else(|| prepared.not_shown.first().map(|c| c.subject.clone()))
        .or_else(|| {
            notification
                .tag
                .as_ref()
                .map(|tag| tag.message.lines().next().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    let mut line = match (update.change, update.shape) {
        (Change::Delete, _) => {
            let discarded = notification.discarded_commits.total;
            let mut line = format!("{who} deleted {what} {name}");
            if discarded > 0 {
                line += &format!(" ({} discarded)", commits(discarded));
            }
            line
        }
        (Change::Create, _) if update.kind == RefKind::Branch => {
            format!(
                "{who} created branch {name} with {}",
                counted(new, "new commit")
            )
        }
        (Change::Create, _) => format!("{who} created {what} {name} at {}", short(&update.newrev)),
        (Change::Update, Some(UpdateShape::Rewind)) => format!(
            "{who} rewound {what} {name} to {} ({} discarded)",
            short(&update.newrev),
            commits(notification.discarded_commits.total)
        ),
        (Change::Update, Some(UpdateShape::NonFastForward)) => format!(
            "{who} force-pushed {} to {what} {name} ({} discarded)",
            commits(new),
            commits(notification.discarded_commits.total)
        ),
        (Change::Update, _) if update.kind == RefKind::Branch => {
            format!("{who} pushed {} to {name}", commits(new))
        }
        (Change::Update, _) => format!("{who} moved {what} {name} to {}", short(&update.newrev)),
    };
    if !headline.is_empty() && update.change != Change::Delete {
        line += ": ";
        line += &headline;
    }
    format!(
        "[{}] {}\n",
        clip_field(&notification.repo, limits.field_bytes()),
        // Characters, at most four bytes each: the line stays under the byte cap.
        clip_line(&line, limits.field_bytes())
    )
}
