//! The default topic labels shoppers write about. Ids are stable (they are stored in curated
//! data and used by the API's `topic` filter); names are for people.

use crate::classify::Topic;

/// (id, name) of the default topics, in score order.
pub const DEFAULT_TOPICS: &[(&str, &str)] = &[
    ("product_quality", "Product quality"),
    ("value_for_money", "Value for money"),
    ("delivery_packaging", "Delivery and packaging"),
    ("customer_service", "Customer service"),
    ("ease_of_use", "Ease of use"),
    ("durability", "Durability"),
    ("off_topic", "Off-topic"),
];

/// The default topics as [`Topic`] values.
pub fn default_topics() -> Vec<Topic> {
    DEFAULT_TOPICS
        .iter()
        .map(|(id, name)| Topic {
            id: (*id).to_owned(),
            name: (*name).to_owned(),
        })
        .collect()
}

/// The id of the topic that means "nothing about the product".
pub const OFF_TOPIC: &str = "off_topic";
