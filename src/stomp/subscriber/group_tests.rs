//! How a member of a group subscribes, and tells the group's messages apart.

use super::*;
use crate::bus::{GroupSpec, QueueType};

/// Member web1 of group `ci` on `/topic/VirtualTopic.a`, subscribing for the
/// group only when `only`, with the control topic `control`.
fn member(only: bool, control: Option<&str>) -> SubscribeSpec {
    SubscribeSpec {
        destinations: vec!["/topic/VirtualTopic.a".into()],
        durable: Some("web1".into()),
        heartbeat: Duration::ZERO,
        queue_type: QueueType::Quorum,
        group: Some(GroupSpec {
            name: "ci".into(),
            prefetch: 1,
            only,
        }),
        control: control.map(String::from),
    }
}

/// A MESSAGE received on `subscription`, as the subscriber reads it among
/// the `shared` (group) subscriptions.
fn message_on(subscription: &str, shared: &[String]) -> Incoming {
    received(
        Frame::new("MESSAGE").header("subscription", subscription),
        shared,
    )
}

#[test]
fn a_member_subscribes_for_itself_and_the_group_or_for_the_group_only() {
    let mut spec = member(false, None);
    let destinations = |spec: &SubscribeSpec| {
        let server = Some("ActiveMQ/5.17.2");
        let (frames, shared) = subscribe_frames(spec, Product::ActiveMq, server).unwrap();
        let names: Vec<String> = (frames.iter())
            .map(|frame| frame.get("destination").unwrap().to_string())
            .collect();
        (names, shared)
    };
    let both = ["/topic/VirtualTopic.a", "/queue/Consumer.ci.VirtualTopic.a"];
    assert_eq!(
        destinations(&spec),
        (
            both.map(String::from).to_vec(),
            vec!["hookbus-group.ci".to_string()]
        )
    );
    spec.group.as_mut().unwrap().only = true;
    assert_eq!(destinations(&spec).0, [both[1]]);
    let message = |subscription: &str| message_on(subscription, &destinations(&spec).1).shared;
    assert!(message("hookbus-group.ci") && !message("web1"));
    let refused = subscribe_frames(&spec, Product::Other, Some("Other/1"));
    assert!(matches!(refused, Err(StompError::Unsupported(_))));
}

#[test]
fn the_control_topic_is_a_plain_subscription_of_every_member_even_a_group_only_one() {
    let spec = member(true, Some("/topic/fleet"));
    let server = Some("RabbitMQ/3.10.8");
    let (frames, shared) = subscribe_frames(&spec, Product::RabbitMq, server).unwrap();
    let control = (frames.iter())
        .find(|frame| frame.get("destination") == Some("/topic/fleet"))
        .expect("the control topic is subscribed");
    assert_eq!(control.get("id"), Some(CONTROL_ID));
    assert_eq!(control.get("durable"), None);
    assert_eq!(control.get("x-queue-type"), None);
    let came = |subscription: &str| {
        let incoming = message_on(subscription, &shared);
        (incoming.control, incoming.shared)
    };
    assert_eq!(came(CONTROL_ID), (true, false));
    assert_eq!(came("hookbus-group.ci"), (false, true));
}
