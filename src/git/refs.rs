//! Reading a repository's refs. Names are bytes: git allows any byte but a
//! few in a refname, and a name that is not UTF-8 is still a ref.

use anyhow::Result;
use git2::{Oid, Repository};

/// One ref and the commit it peels to (tags peeled; `None` for a ref to a
/// tree or blob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTip {
    pub name: Vec<u8>,
    pub commit: Option<Oid>,
}

/// Every ref under `refs/` with the commit it peels to.
pub fn list(repo: &Repository) -> Result<Vec<RefTip>> {
    let mut tips = Vec::new();
    for reference in repo.references()? {
        let reference = reference?;
        tips.push(RefTip {
            name: reference.name_bytes().to_vec(),
            commit: reference.peel_to_commit().ok().map(|commit| commit.id()),
        });
    }
    Ok(tips)
}
