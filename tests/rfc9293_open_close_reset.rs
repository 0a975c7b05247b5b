mod common;

#[test]
fn placeholder_builds() {
    let _ = common::Harness::plain();
}
