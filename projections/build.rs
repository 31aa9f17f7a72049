// `sqlx::migrate!` embeds migrations/ at compile time: rebuild when a migration is added,
// renamed or changed, not only when this crate's code changes (a stale build ran without
// the newest migration).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
