//! The shop's in-memory state: deterministic seed data, the effects (cancel, refund,
//! delete), and the `Idempotency-Key` replay store. Every function here runs under the
//! state's one lock, so a replay check and the effect it guards cannot interleave with
//! another request.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Value, json};

/// A product in the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub price_cents: u64,
    pub in_stock: bool,
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Processing,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

/// One line of an order.
#[derive(Debug, Clone, Serialize)]
pub struct OrderItem {
    pub product_id: String,
    pub quantity: u32,
    pub price_cents: u64,
}

/// An order.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub order_id: String,
    pub customer_email: String,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total_cents: u64,
    /// Why it was refunded, when it was and a reason was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
}

/// A refused request: HTTP status, stable code, words for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ShopError {
    fn not_found(what: &str, id: &str) -> ShopError {
        ShopError {
            status: 404,
            code: "not_found",
            message: format!("no {what} {id}"),
        }
    }

    /// The JSON error body: `{"error":{"code":…,"message":…}}`.
    pub fn body(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }
}

/// An answer as stored for replays: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl From<Result<Value, ShopError>> for Reply {
    fn from(result: Result<Value, ShopError>) -> Reply {
        match result {
            Ok(body) => Reply { status: 200, body },
            Err(error) => Reply {
                status: error.status,
                body: error.body(),
            },
        }
    }
}

/// The whole shop.
#[derive(Debug)]
pub struct Shop {
    products: Vec<Product>,
    orders: BTreeMap<String, Order>,
    /// Answers already given, by (method, path, Idempotency-Key). Never evicted: the
    /// demo's state lives as long as the process.
    replays: HashMap<(String, String, String), Reply>,
}

const PRODUCTS: [(&str, u64, bool); 5] = [
    ("Trail running shoes", 12_900, true),
    ("Rain jacket", 8_950, true),
    ("Insulated water bottle", 2_499, true),
    ("Headlamp", 3_450, false),
    ("Merino wool socks", 1_800, true),
];

const CUSTOMERS: [&str; 4] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
];

const STATUSES: [OrderStatus; 5] = [
    OrderStatus::Processing,
    OrderStatus::Shipped,
    OrderStatus::Delivered,
    OrderStatus::Cancelled,
    OrderStatus::Refunded,
];

impl Shop {
    /// The seed data: PRD-1..PRD-5 and ORD-1001..ORD-1012, the same on every start.
    pub fn seeded() -> Shop {
        let products: Vec<Product> = PRODUCTS
            .iter()
            .enumerate()
            .map(|(i, (name, price_cents, in_stock))| Product {
                product_id: format!("PRD-{}", i + 1),
                name: (*name).to_owned(),
                price_cents: *price_cents,
                in_stock: *in_stock,
            })
            .collect();
        let mut orders = BTreeMap::new();
        for i in 0..12usize {
            let first = &products[i % 5];
            let mut items = vec![OrderItem {
                product_id: first.product_id.clone(),
                quantity: (i % 3) as u32 + 1,
                price_cents: first.price_cents,
            }];
            // Every other order has a second line, so totals are not just one price.
            if i % 2 == 1 {
                let second = &products[(i + 2) % 5];
                items.push(OrderItem {
                    product_id: second.product_id.clone(),
                    quantity: 1,
                    price_cents: second.price_cents,
                });
            }
            let total_cents = items
                .iter()
                .map(|item| item.price_cents * u64::from(item.quantity))
                .sum();
            let order_id = format!("ORD-{}", 1001 + i);
            orders.insert(
                order_id.clone(),
                Order {
                    order_id,
                    customer_email: CUSTOMERS[i % 4].to_owned(),
                    status: STATUSES[i % 5],
                    items,
                    total_cents,
                    refund_reason: None,
                },
            );
        }
        Shop {
            products,
            orders,
            replays: HashMap::new(),
        }
    }

    pub fn products(&self) -> Value {
        json!({ "products": self.products })
    }

    pub fn product(&self, product_id: &str) -> Result<Value, ShopError> {
        self.products
            .iter()
            .find(|p| p.product_id == product_id)
            .map(|p| json!(p))
            .ok_or_else(|| ShopError::not_found("product", product_id))
    }

    pub fn order(&self, order_id: &str) -> Result<Value, ShopError> {
        self.orders
            .get(order_id)
            .map(|o| json!(o))
            .ok_or_else(|| ShopError::not_found("order", order_id))
    }

    /// Cancels an order that is still `processing`.
    pub fn cancel(&mut self, order_id: &str) -> Result<Value, ShopError> {
        let order = self
            .orders
            .get_mut(order_id)
            .ok_or_else(|| ShopError::not_found("order", order_id))?;
        if order.status != OrderStatus::Processing {
            return Err(ShopError {
                status: 409,
                code: "not_cancellable",
                message: format!(
                    "order {order_id} is {}; only processing orders can be cancelled",
                    status_word(order.status)
                ),
            });
        }
        order.status = OrderStatus::Cancelled;
        Ok(json!(order))
    }

    /// Refunds an order that was `shipped` or `delivered`.
    pub fn refund(&mut self, order_id: &str, reason: Option<String>) -> Result<Value, ShopError> {
        let order = self
            .orders
            .get_mut(order_id)
            .ok_or_else(|| ShopError::not_found("order", order_id))?;
        if !matches!(order.status, OrderStatus::Shipped | OrderStatus::Delivered) {
            return Err(ShopError {
                status: 409,
                code: "not_refundable",
                message: format!(
                    "order {order_id} is {}; only shipped or delivered orders can be refunded",
                    status_word(order.status)
                ),
            });
        }
        order.status = OrderStatus::Refunded;
        order.refund_reason = reason;
        Ok(json!(order))
    }

    /// Removes an order for good.
    pub fn delete(&mut self, order_id: &str) -> Result<Value, ShopError> {
        self.orders
            .remove(order_id)
            .map(|_| json!({ "deleted": order_id }))
            .ok_or_else(|| ShopError::not_found("order", order_id))
    }

    /// Runs `effect` once per `(method, path, key)`: a repeat gets the stored reply and
    /// `true` (replayed) without running it. Without a key every request runs.
    pub fn idempotent(
        &mut self,
        key: Option<&str>,
        method: &str,
        path: &str,
        effect: impl FnOnce(&mut Shop) -> Reply,
    ) -> (Reply, bool) {
        let Some(key) = key else {
            return (effect(self), false);
        };
        let slot = (method.to_owned(), path.to_owned(), key.to_owned());
        if let Some(reply) = self.replays.get(&slot) {
            return (reply.clone(), true);
        }
        let reply = effect(self);
        self.replays.insert(slot, reply.clone());
        (reply, false)
    }
}

fn status_word(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Processing => "processing",
        OrderStatus::Shipped => "shipped",
        OrderStatus::Delivered => "delivered",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Refunded => "refunded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_has_five_products_and_twelve_orders_in_every_status() {
        let shop = Shop::seeded();
        assert_eq!(shop.products.len(), 5);
        assert_eq!(shop.orders.len(), 12);
        for status in STATUSES {
            assert!(shop.orders.values().any(|o| o.status == status));
        }
        assert_eq!(shop.order("ORD-1001").unwrap()["status"], "processing");
        assert_eq!(shop.order("ORD-1003").unwrap()["status"], "delivered");
    }

    #[test]
    fn only_a_processing_order_can_be_cancelled() {
        let mut shop = Shop::seeded();
        assert_eq!(shop.cancel("ORD-1001").unwrap()["status"], "cancelled");
        assert_eq!(shop.cancel("ORD-1001").unwrap_err().code, "not_cancellable");
    }

    #[test]
    fn a_shipped_or_delivered_order_can_be_refunded_with_a_reason() {
        let mut shop = Shop::seeded();
        let refunded = shop.refund("ORD-1002", Some("too small".into())).unwrap();
        assert_eq!(refunded["status"], "refunded");
        assert_eq!(refunded["refund_reason"], "too small");
        assert_eq!(shop.refund("ORD-1003", None).unwrap()["status"], "refunded");
    }

    #[test]
    fn a_repeated_key_replays_without_running_the_effect_again() {
        let mut shop = Shop::seeded();
        let mut runs = 0;
        for _ in 0..2 {
            shop.idempotent(Some("k"), "POST", "/x", |_| {
                runs += 1;
                Reply {
                    status: 200,
                    body: Value::Null,
                }
            });
        }
        assert_eq!(runs, 1);
    }
}
