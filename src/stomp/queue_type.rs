//! RabbitMQ's queue types, as a durable subscription meets them: which one to
//! ask for, and the broker's refusal when the queue already has the other.

use super::connection::StompError;

/// The type of queue RabbitMQ keeps a durable subscription in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated over the cluster's nodes: it survives the loss of one.
    #[default]
    Quorum,
    /// Lives on one node: while that node is down its messages are lost.
    Classic,
}

impl QueueType {
    /// The value of RabbitMQ's `x-queue-type` argument (and of the config key).
    pub fn name(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}

/// RabbitMQ's refusal of a durable subscription whose queue exists with
/// another `x-queue-type`, as its ERROR names it: `PRECONDITION_FAILED -
/// inequivalent arg 'x-queue-type' for queue 'Q' in vhost 'V': received 'A'
/// but current is 'B'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTypeConflict<'a> {
    /// The queue's name.
    pub queue: &'a str,
    /// Its virtual host.
    pub vhost: &'a str,
    /// The type it has.
    pub current: &'a str,
}

/// The conflict `error` reports, if it is one (fields the broker left out
/// are empty).
pub fn queue_type_conflict(error: &StompError) -> Option<QueueTypeConflict<'_>> {
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
    }
}
