//! The supervision system's memory on a bus that ends with the process (the default in-memory
//! bus): it keeps the cases whose supervision is open, and reads a case that left memory back
//! from the case repository when a late message (a rating) comes for it.

use crate::helpers::{assert_status, poll, spawn_app, TERMINAL};
use crate::supervision::{rate, MANUAL, MARKET};
use crate::supervision_restart::{figures, of, two_completed_and_one_open, wait_until_holding};
use serde_json::json;

#[actix_web::test]
async fn without_a_restart_supervision_holds_only_open_cases_and_still_counts_a_late_rating() {
    // Arrange: two registrations approved at once; an outdoor advertising case waits for
    // urban_management's decision; supervision holds only that one.
    let app = spawn_app().await;
    let (done, open) = two_completed_and_one_open(&app).await;

    // Act: a completed case, no longer in memory, is rated.
    let rated = rate(&app, TERMINAL, &done[0], &json!({ "score": 4 })).await;
    assert_status(rated, 201).await;

    // Assert: the rating counts beside both completed cases, and the case read back for it
    // leaves memory again.
    poll("supervision to count the rating", || async {
        let (departments, _) = figures(&app).await;
        let market = of(&departments, MARKET);
        match (&market["cases"]["completed"], &market["ratings"]["count"]) {
            (completed, count) if completed == 2 && count == 1 => Ok(()),
            _ => Err(format!("market: {market}")),
        }
    })
    .await;
    wait_until_holding(&app, 1).await;
    app.decide_ok(MANUAL, &open, "approve").await;
    app.wait_until_completed(&open).await;
    let held = wait_until_holding(&app, 0).await;
    assert_eq!(held.events, 0, "{held:?}");
}
