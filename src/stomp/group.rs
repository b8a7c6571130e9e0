//! Shared subscriptions: several subscribers (a group's members, on several
//! hosts) that each get a share of a topic's messages, so each message goes
//! to one of them (competing consumers). STOMP has no word for it; each broker
//! has its own way, and we use that, no election of our own:
//!
//! - ActiveMQ (5.x, default config): virtual topics. What is published to
//!   `/topic/VirtualTopic.X` is also put on every queue
//!   `Consumer.GROUP.VirtualTopic.X`; members subscribe to that queue.
//! - RabbitMQ: a durable subscription to `/topic/X` names its queue after the
//!   destination and the subscription `id` (not the connection), so members
//!   subscribing with the same `id` consume one durable queue.
//!
//! Either way the queue outlives its members, and a message a member had not
//! acknowledged when it went away is given to another.

use super::frame::Frame;
use super::product::Product;
use crate::bus::GroupSpec;

/// The prefix ActiveMQ's default config forwards to consumer queues.
const VIRTUAL_TOPIC: &str = "VirtualTopic.";

/// The subscription id of the group's destination number `index`: the same
/// on every member (RabbitMQ names the shared queue after it).
pub fn id(group: &GroupSpec, index: usize) -> String {
    match index {
        0 => format!("hookbus-group.{}", group.name),
        _ => format!("hookbus-group.{}.{index}", group.name),
    }
}

/// The SUBSCRIBE frame that makes this member one of the group's consumers
/// of `topic` (number `index` of the listener's destinations), on a broker
/// of `product` (whose CONNECTED said `server`).
pub fn subscribe_frame(
    group: &GroupSpec,
    product: Product,
    server: Option<&str>,
    index: usize,
    topic: &str,
) -> Result<Frame, String> {
    let Some(name) = topic.strip_prefix("/topic/") else {
        return Err(format!(
            "[listen] group shares topics only: {topic:?} is not /topic/NAME"
        ));
    };
    let frame = match product {
        Product::ActiveMq => {
            if !name.starts_with(VIRTUAL_TOPIC) {
                return Err(format!(
                    "[listen] group on ActiveMQ needs a virtual topic: publish to and subscribe /topic/{VIRTUAL_TOPIC}{name} instead of {topic}"
                ));
            }
            Frame::new("SUBSCRIBE")
                .header(
                    "destination",
                    &format!("/queue/Consumer.{}.{name}", group.name),
                )
                .header("activemq.prefetchSize", &group.prefetch.to_string())
        }
        Product::RabbitMq => Frame::new("SUBSCRIBE")
            .header("destination", topic)
            .header("durable", "true")
            .header("auto-delete", "false")
            .header("prefetch-count", &group.prefetch.to_string()),
        Product::Other => {
            let server = server.unwrap_or("");
            return Err(format!(
                "[listen] group needs ActiveMQ (virtual topics) or RabbitMQ (a shared durable queue), and this broker says it is {server:?}: remove group, or run one listener with actions"
            ));
        }
    };
    Ok(frame
        .header("id", &id(group, index))
        .header("ack", "client-individual"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe(server: &str, index: usize, topic: &str) -> Result<Frame, String> {
        let group = GroupSpec {
            name: "builders".into(),
            prefetch: 2,
            only: false,
        };
        subscribe_frame(
            &group,
            Product::of(Some(server)),
            Some(server),
            index,
            topic,
        )
    }

    #[test]
    fn activemq_members_consume_the_virtual_topics_queue() {
        let frame = subscribe("ActiveMQ/5.17.2", 0, "/topic/VirtualTopic.git").unwrap();
        assert_eq!(
            frame.get("destination"),
            Some("/queue/Consumer.builders.VirtualTopic.git")
        );
        assert_eq!(frame.get("id"), Some("hookbus-group.builders"));
        assert_eq!(frame.get("ack"), Some("client-individual"));
        assert_eq!(frame.get("activemq.prefetchSize"), Some("2"));
        let plain = subscribe("ActiveMQ/5.17.2", 0, "/topic/git");
        assert!(plain.unwrap_err().contains("/topic/VirtualTopic.git"));
    }

    #[test]
    fn rabbitmq_members_share_one_durable_subscription_id() {
        let frame = subscribe("RabbitMQ/3.10.8", 1, "/topic/git").unwrap();
        assert_eq!(frame.get("destination"), Some("/topic/git"));
        assert_eq!(frame.get("id"), Some("hookbus-group.builders.1"));
        assert_eq!(frame.get("durable"), Some("true"));
        assert_eq!(frame.get("auto-delete"), Some("false"));
        assert_eq!(frame.get("prefetch-count"), Some("2"));
    }

    #[test]
    fn other_brokers_and_queues_are_refused_with_the_fix() {
        let error = subscribe("Artemis", 0, "/topic/git");
        assert!(error.unwrap_err().contains("remove group"));
        let error = subscribe("RabbitMQ/3.10.8", 0, "/queue/git");
        assert!(error.unwrap_err().contains("/topic/NAME"));
    }
}
