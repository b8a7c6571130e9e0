//! RabbitMQ's queue types, as a durable subscription meets them: the
//! broker's refusal when the queue already has the other type, and what an
//! operator can do about it.

use super::connection::StompError;
use crate::bus::{BusError, QueueType, Trouble};

/// RabbitMQ's refusal of a durable subscription whose queue exists with
/// another `x-queue-type`, as its ERROR names it: `PRECONDITION_FAILED -
/// inequivalent arg 'x-queue-type' for queue 'Q' in vhost 'V': received 'A'
/// but current is 'B'`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueTypeConflict<'a> {
    /// The queue's name.
    queue: &'a str,
    /// Its virtual host.
    vhost: &'a str,
    /// The type it has.
    current: &'a str,
}

/// The conflict `error` reports, if it is one (fields the broker left out
/// are empty).
fn queue_type_conflict(error: &StompError) -> Option<QueueTypeConflict<'_>> {
    let StompError::Broker(text) = error else {
        return None;
    };
    if !text.contains("inequivalent arg 'x-queue-type'") {
        return None;
    }
    let quoted = |after: &str| {
        let rest = text.split(after).nth(1).unwrap_or("");
        rest.split('\'').next().unwrap_or("")
    };
    Some(QueueTypeConflict {
        queue: quoted("for queue '"),
        vhost: quoted("in vhost '"),
        current: quoted("current is '"),
    })
}

/// When `error` is the refusal of a queue of the other type than `wanted`:
/// what was found and how to migrate, as a failure only an operator can end.
pub(super) fn standoff(error: &StompError, wanted: QueueType) -> Option<BusError> {
    let QueueTypeConflict {
        queue,
        vhost,
        current,
    } = queue_type_conflict(error)?;
    let wanted = wanted.name();
    Some(BusError::new(
        Trouble::NeedsOperator,
        format!(
            "the durable subscription's queue {queue:?} (vhost {vhost:?}) is a {current} queue, and [listen] queue_type is {wanted:?}, so the broker refuses it; to keep it, set queue_type = {current:?}; to have it made again as {wanted}, let it drain (with queue_type = {current:?}), stop the listener and delete it: rabbitmqctl delete_queue -p {vhost} {queue}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_of_the_other_type_is_recognised_and_named() {
        let refused = StompError::Broker(
            "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'stomp-subscription-X1' in vhost '/': received 'quorum' but current is 'classic'".into(),
        );
        assert_eq!(
            queue_type_conflict(&refused),
            Some(QueueTypeConflict {
                queue: "stomp-subscription-X1",
                vhost: "/",
                current: "classic"
            })
        );
        let other = StompError::Broker("NOT_FOUND - no queue".into());
        assert_eq!(queue_type_conflict(&other), None);
        let standoff = standoff(&refused, QueueType::Quorum).unwrap();
        assert_eq!(standoff.trouble(), Trouble::NeedsOperator);
        assert!(standoff
            .to_string()
            .contains("rabbitmqctl delete_queue -p / stomp-subscription-X1"));
    }
}
