//! What a deploy host does with a published tree besides publishing it, as
//! gitopper does: [`sparse`] publishes only some paths, [`links`] makes local
//! paths point into the tree, [`onchange`] runs steps when the published
//! commit changes. All three need a published tree: modes `checkout` (the
//! target) and `in-place` (the clone's work tree). Their keys are checked
//! when the config is read ([`crate::config::provision`]).

pub mod links;
pub mod onchange;
pub mod sparse;
