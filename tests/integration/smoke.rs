//! The bundled example validates as shipped.
use crate::util::TestDir;

#[test]
fn bundled_example_validates_and_emits_payloads() {
    let t = TestDir::new();
    t.copy_from_repo("examples/billing");
    let out = t.run(&["validate", "--emit", "emit"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("3 documents, 0 invalid"),
        "{}",
        out.stdout
    );
    let inv = t.read_json("emit/sales_invoice-INV-2026-0001.json");
    assert_eq!(inv["total"], "1249.00");
    assert_eq!(inv["customer"], "CUST-0001");
    assert_eq!(inv["lines"].as_array().unwrap().len(), 2);
    // validate moves nothing
    assert_eq!(t.ls("drop/inbox"), vec!["INV_2026-11-20.csv"]);
}
