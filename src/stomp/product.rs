//! Which broker a connection reached, from the `server` header of its
//! CONNECTED frame (`ActiveMQ/5.17.2`, `RabbitMQ/3.10.8`), and what differs
//! between brokers beyond STOMP: the destinations each refuses, and
//! RabbitMQ's queue types.

use super::frame::Frame;
use crate::bus::QueueType;

/// A broker product hookbus knows the ways of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// Apache ActiveMQ (5.x, "classic").
    ActiveMq,
    /// RabbitMQ with its STOMP plugin.
    RabbitMq,
    /// Any other, or one that did not say: judged by STOMP alone.
    Other,
}

impl Product {
    /// The product a CONNECTED frame's `server` header names.
    pub fn of(server: Option<&str>) -> Product {
        let name = server.unwrap_or("").split('/').next().unwrap_or("");
        if name.eq_ignore_ascii_case("ActiveMQ") {
            Product::ActiveMq
        } else if name.eq_ignore_ascii_case("RabbitMQ") {
            Product::RabbitMq
        } else {
            Product::Other
        }
    }

    /// A SUBSCRIBE that makes the broker keep a queue (durable, or a group's
    /// shared one), with the queue's type on the one product that has types.
    pub fn with_queue_type(self, frame: Frame, queue_type: QueueType) -> Frame {
        match self {
            Product::RabbitMq => frame.header("x-queue-type", queue_type.name()),
            Product::ActiveMq | Product::Other => frame,
        }
    }

    /// Why this broker would refuse `destination`, if it would. Other
    /// brokers are not judged.
    pub fn refusal(self, destination: &str) -> Option<String> {
        let segments: Vec<&str> = destination.split('/').collect();
        match self {
            // ActiveMQ closes the connection on an empty topic or queue name.
            Product::ActiveMq => {
                let empty_name = matches!(segments.as_slice(), ["", "topic" | "queue", ""]);
                empty_name.then(|| {
                    "ActiveMQ closes the connection on an empty topic or queue name".to_string()
                })
            }
            Product::RabbitMq if destination.starts_with('/') => {
                let one_name = |name: &[&str]| matches!(name, [single] if !single.is_empty());
                let accepted = match segments.as_slice() {
                    ["", "topic" | "queue", name @ ..] => one_name(name),
                    ["", "amq", "queue", name @ ..] => one_name(name),
                    ["", "exchange", exchange, key @ ..] => {
                        !exchange.is_empty() && (key.is_empty() || one_name(key))
                    }
                    _ => false,
                };
                (!accepted).then(|| {
                    "RabbitMQ takes /topic/KEY, /queue/NAME, /amq/queue/NAME or /exchange/NAME[/KEY], each without a further '/'".to_string()
                })
            }
            Product::RabbitMq | Product::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_product_is_the_server_headers_first_word() {
        assert_eq!(Product::of(Some("ActiveMQ/5.17.2")), Product::ActiveMq);
        assert_eq!(Product::of(Some("RabbitMQ/3.10.8")), Product::RabbitMq);
        assert_eq!(Product::of(Some("rabbitmq")), Product::RabbitMq);
        assert_eq!(Product::of(Some("Artemis/2.31")), Product::Other);
        assert_eq!(Product::of(None), Product::Other);
    }

    #[test]
    fn what_each_broker_would_refuse() {
        let (activemq, rabbitmq) = (Product::ActiveMq, Product::RabbitMq);
        assert_eq!(rabbitmq.refusal("/topic/git.x"), None);
        assert_eq!(activemq.refusal("/topic/x"), None);
        assert!(activemq.refusal("/topic/").is_some());
        assert!(rabbitmq.refusal("/queue/").is_some());
        assert!(rabbitmq.refusal("/topic/git/x").is_some());
        assert_eq!(activemq.refusal("/topic/git/x"), None);
        assert!(rabbitmq.refusal("/foo/bar").is_some());
        assert_eq!(rabbitmq.refusal("/exchange/amq.topic/x"), None);
        assert_eq!(rabbitmq.refusal("/exchange/amq.topic"), None);
        assert_eq!(rabbitmq.refusal("/amq/queue/x"), None);
        assert_eq!(rabbitmq.refusal("plain"), None);
        assert_eq!(Product::Other.refusal("/anything/a/b"), None);
    }

    #[test]
    fn only_rabbitmq_is_told_the_queue_type() {
        let frame = || Frame::new("SUBSCRIBE");
        let typed = Product::RabbitMq.with_queue_type(frame(), QueueType::Classic);
        assert_eq!(typed.get("x-queue-type"), Some("classic"));
        let untyped = Product::ActiveMq.with_queue_type(frame(), QueueType::Classic);
        assert_eq!(untyped.get("x-queue-type"), None);
    }
}
