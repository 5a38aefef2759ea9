//! The supervision figures computed by SQL from the case repository equal, to the last bit,
//! those the supervision system computes from its own records: on one scenario with decisions
//! on time and late, a return and re-routing, an escalation, suspensions (one ended, one not)
//! and ratings, over several periods. On SQLite in a plain `cargo test`; on PostgreSQL with
//! `GOVFUSION_TEST_POSTGRES` (a database of its own), a test that fails when it is not set.

use crate::helpers::{
    assert_status, at, event_view, json_body, make_manual, spawn_app_at, Caller, TestApp, TERMINAL,
};
use crate::supervision::{case_in_inbox, permit_waiting, rate, MANUAL, MARKET, SIMPLE};
use chrono::NaiveDate;
use govfusion::actors::supervisor::{
    stored_centre_figures, stored_department_figures, GetCentreFigures, GetDepartmentFigures,
    Period,
};
use govfusion::settings::Settings;
use serde_json::{json, Value};

/// Runs the scenario on a service whose settings `tweak` changes; returns the service once
/// supervision has read every record of every case and its rows are written.
async fn scenario(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    // Tuesday 1 December, 09:00: market (by hand) gets A, B, C, S, T; housing permits P, Q, R.
    let (app, clock) = spawn_app_at("2026-12-01T09:00:00+08:00", |settings| {
        make_manual(settings, MARKET);
        // The supervisor's own figures are the reference: they must cover every case.
        settings.store.supervision_keeps_closed = true;
        tweak(settings);
    })
    .await;
    let a = case_in_inbox(&app, SIMPLE, MARKET).await;
    let b = case_in_inbox(&app, SIMPLE, MARKET).await;
    let c = case_in_inbox(&app, SIMPLE, MARKET).await;
    let s = case_in_inbox(&app, SIMPLE, MARKET).await;
    let t = case_in_inbox(&app, SIMPLE, MARKET).await;
    let (p, p_event) = permit_waiting(&app).await;
    let (q, q_event) = permit_waiting(&app).await;
    let (r, _) = permit_waiting(&app).await;

    // Tuesday 13:00: A approved; Q's event returned and re-routed to the street office.
    clock.set(at("2026-12-01T13:00:00+08:00"));
    app.decide_ok(MARKET, &a, "approve").await;
    let returned = app
        .event_action(&q_event, "return", &json!({ "reason": "属街道职责" }))
        .await;
    assert_status(returned, 200).await;
    app.wait_until_completed(&a).await;
    app.wait_until_completed(&q).await;

    // Wednesday 10:00: S and T suspended for a supplement.
    clock.set(at("2026-12-02T10:00:00+08:00"));
    for case_id in [&s, &t] {
        ask_supplement(&app, case_id).await;
    }

    // Thursday 11:00: B approved; P answered and approved.
    clock.set(at("2026-12-03T11:00:00+08:00"));
    app.decide_ok(MARKET, &b, "approve").await;
    let answered = app
        .event_action(&p_event, "result", &json!({ "outcome": "agree" }))
        .await;
    assert_status(answered, 200).await;
    app.wait_until_completed(&b).await;
    app.wait_until_completed(&p).await;

    // Monday 7, 10:00: S supplied; C rejected, late; E submitted; A and B rated.
    clock.set(at("2026-12-07T10:00:00+08:00"));
    supply(&app, &s).await;
    app.decide_ok(MARKET, &c, "reject").await;
    app.wait_until_completed(&c).await;
    let e = case_in_inbox(&app, SIMPLE, MARKET).await;
    for (case_id, score) in [(&a, 5), (&b, 3)] {
        let rated = rate(&app, TERMINAL, case_id, &json!({ "score": score })).await;
        assert_status(rated, 201).await;
    }

    // Tuesday 8, 15:00: S approved after its suspension.
    clock.set(at("2026-12-08T15:00:00+08:00"));
    app.decide_ok(MARKET, &s, "approve").await;
    app.wait_until_completed(&s).await;

    // Wednesday 9, 10:00: R's event is overdue and escalated.
    clock.set(at("2026-12-09T10:00:00+08:00"));
    app.wait_for_case(&r, "R's event escalated", |case| {
        !event_view(case, &format!("{r}-{MANUAL}"))["escalated_to"].is_null()
    })
    .await;
    for case_id in [&a, &b, &c, &s, &t, &e, &p, &q, &r] {
        app.wait_until_supervision_has_read(case_id).await;
    }
    // What the supervisor handed on is in the repository before anything is compared.
    app.systems.rows_written().await;
    app
}

/// Market asks the applicant of `case_id` for a supplement: the case is suspended.
async fn ask_supplement(app: &TestApp, case_id: &str) {
    let response = app
        .post_json(
            &format!("/api/v1/departments/{MARKET}/cases/{case_id}/supplement-request"),
            &json!({ "materials": ["id_card"], "reason": "身份证复印件缺页" }),
        )
        .await;
    assert_status(response, 200).await;
    app.wait_for_status(case_id, "suspended").await;
}

/// The applicant supplies what was asked: the case resumes.
async fn supply(app: &TestApp, case_id: &str) {
    let response = app
        .post_json(
            &format!("/api/v1/terminals/{}/cases/{case_id}/supplements", TERMINAL),
            &json!({ "materials": ["id_card"] }),
        )
        .await;
    assert_status(response, 202).await;
    app.wait_for_case(case_id, "resumed", |c| c["status"] == "accepted")
        .await;
}

/// A period of local dates, `YYYY-MM-DD`.
fn period(from: Option<&str>, to: Option<&str>) -> Period {
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("a test date");
    Period {
        from: from.map(day),
        to: to.map(day),
    }
}

/// The periods compared: everything, single days, open-ended, and one with nothing in it.
fn periods() -> Vec<Period> {
    vec![
        period(None, None),
        period(Some("2026-12-01"), Some("2026-12-01")),
        period(Some("2026-12-07"), Some("2026-12-07")),
        period(Some("2026-12-02"), None),
        period(None, Some("2026-12-01")),
        period(Some("2026-12-20"), Some("2026-12-31")),
    ]
}

/// The query string of `period`.
fn query(period: &Period) -> String {
    let from = period
        .from
        .map(|d| format!("from={d}&"))
        .unwrap_or_default();
    let to = period.to.map(|d| format!("to={d}")).unwrap_or_default();
    format!("?{from}{to}")
}

/// The JSON a figures endpoint answers, read as the test reads any answer.
async fn answered(app: &TestApp, path: &str) -> Value {
    json_body(app.get_as(&Caller::Supervisor, path).await).await
}

/// `figures` as the endpoint would write them, read back as [`answered`] reads them.
fn as_answered<T: serde::Serialize>(figures: &T) -> Value {
    let text = serde_json::to_string(figures).expect("figures serialise");
    serde_json::from_str(&text).expect("figures read back")
}

/// Asserts that for every period the figures by SQL equal the supervisor's own, and that the
/// endpoints answer the figures by SQL.
async fn assert_sql_equals_memory(app: &TestApp) {
    let systems = &app.systems;
    let repository = systems
        .repository
        .as_ref()
        .expect("the test service keeps a case repository");
    for period in periods() {
        let own = systems
            .desks
            .supervision
            .departments
            .send(GetDepartmentFigures(period))
            .await
            .expect("the supervisor answers");
        let by_sql = stored_department_figures(repository, &systems.catalog, period)
            .await
            .expect("the repository answers");
        assert_eq!(by_sql, own, "department figures for {period:?}");
        let path = format!("/api/v1/supervision/departments{}", query(&period));
        assert_eq!(answered(app, &path).await, as_answered(&by_sql), "{path}");

        let own = systems
            .desks
            .supervision
            .centres
            .send(GetCentreFigures(period))
            .await
            .expect("the supervisor answers");
        let by_sql = stored_centre_figures(repository, &systems.catalog, period)
            .await
            .expect("the repository answers");
        assert_eq!(by_sql, own, "centre figures for {period:?}");
        let path = format!("/api/v1/supervision/centers{}", query(&period));
        assert_eq!(answered(app, &path).await, as_answered(&by_sql), "{path}");
    }
}

/// Asserts that the scenario reached the figures it is meant to compare: without them the
/// comparison would say little.
async fn assert_scenario_covers_everything(app: &TestApp) {
    let systems = &app.systems;
    let repository = systems.repository.as_ref().expect("a case repository");
    let all = period(None, None);
    let departments = stored_department_figures(repository, &systems.catalog, all)
        .await
        .expect("the repository answers");
    let market = departments
        .iter()
        .find(|d| d.department.as_str() == MARKET)
        .expect("market's figures");
    assert_eq!(market.cases.received, 6, "{market:?}");
    assert_eq!(market.cases.completed, 4, "{market:?}");
    assert_eq!(market.cases.completed_on_time, 3, "{market:?}");
    assert_eq!(market.ratings.count, 2, "{market:?}");
    let manual = departments
        .iter()
        .find(|d| d.department.as_str() == MANUAL)
        .expect("urban_management's figures");
    assert_eq!((manual.returns, manual.escalations), (1, 1), "{manual:?}");
    let centres = stored_centre_figures(repository, &systems.catalog, all)
        .await
        .expect("the repository answers");
    assert_eq!(centres.iter().map(|c| c.escalations).sum::<usize>(), 1);
    assert_eq!(centres.iter().map(|c| c.returns).sum::<usize>(), 1);
}

#[actix_web::test]
async fn the_figures_by_sql_equal_the_supervisors_own_on_sqlite() {
    // Arrange
    let app = scenario(|_| {}).await;

    // Act & Assert
    assert_scenario_covers_everything(&app).await;
    assert_sql_equals_memory(&app).await;
    app.stop().await;
}

#[actix_web::test]
#[ignore = "needs GOVFUSION_TEST_POSTGRES (a postgres:// URL)"]
async fn the_figures_by_sql_equal_the_supervisors_own_on_postgres() {
    // Arrange: a database of this test's own on the server.
    let admin_url = crate::common::env::require(crate::common::env::POSTGRES_ENV);
    let database = format!("govfusion_figures_{}", uuid::Uuid::new_v4().simple());
    admin(&admin_url, &format!("CREATE DATABASE {database}")).await;
    let url = with_database(&admin_url, &database);
    let app = scenario(|settings| settings.store.url = url).await;

    // Act & Assert
    assert_scenario_covers_everything(&app).await;
    assert_sql_equals_memory(&app).await;
    app.stop().await;
    admin(
        &admin_url,
        &format!("DROP DATABASE {database} WITH (FORCE)"),
    )
    .await;
}

/// Runs `sql` on the server's administrative database.
async fn admin(admin_url: &str, sql: &str) {
    let pool = sqlx::postgres::PgPool::connect(admin_url)
        .await
        .expect("Failed to connect to GOVFUSION_TEST_POSTGRES");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("`{sql}` failed: {e}"));
    pool.close().await;
}

/// `url` with its database (the path) replaced by `database`, its query kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_at = base.find("://").map_or(0, |at| at + 3);
    let server = base[authority_at..]
        .find('/')
        .map_or(base, |at| &base[..authority_at + at]);
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}
