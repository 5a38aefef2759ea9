//! The citizen portal (`pc` terminal of the patent): the matters with what each needs, the
//! application form, and the applicant's own cases (a case's own page is `case.rs`). Every act
//! and every case read goes through the API as the signed-in applicant ([`Backend`]).

use super::layout::{local_time, page, status_words};
use super::{cross_site, see_other, session, Backend, Refused, Session};
use crate::auth::Grant;
use crate::domain::Channel;
use crate::settings::{MatterSettings, Settings};
use crate::systems::Systems;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde_json::json;

/// Mounts the portal's pages.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/apply/{matter}", web::get().to(apply_form))
        .route("/apply/{matter}", web::post().to(apply))
        .route("/my", web::get().to(own_cases));
}

/// The matters a citizen may apply for, with what each needs.
async fn home(req: HttpRequest, systems: web::Data<Systems>) -> HttpResponse {
    let session = session(&req).await;
    let settings = &systems.settings;
    let main = html! {
        p { "选择要办理的事项，查看所需材料、承诺时限和需要协同的部门，然后在线申请。" }
        ul.matters {
            @for matter in &settings.matters {
                li.card {
                    h2 { (matter.name) }
                    (matter_facts(settings, matter))
                    a.button href={ "/apply/" (matter.code) } { "在线申请" }
                }
            }
        }
    };
    page("办事指南", session.as_ref(), main)
}

/// What a matter needs and promises.
fn matter_facts(settings: &Settings, matter: &MatterSettings) -> Markup {
    html! {
        dl.facts {
            dt { "承办部门" }
            dd { (department_name(settings, matter.department.as_str())) }
            dt { "承诺时限" }
            dd { (matter.promised_days) " 个工作日" }
            dt { "所需材料" }
            dd { (matter.required_materials.join("、")) }
            dt { "协同部门" }
            dd {
                @if matter.collaborators.is_empty() {
                    "无"
                } @else {
                    @for (i, collaborator) in matter.collaborators.iter().enumerate() {
                        @if i > 0 { "、" }
                        (department_name(settings, collaborator.department.as_str()))
                        "（" (tier_words(&collaborator.tier.to_string())) "）"
                    }
                }
            }
        }
    }
}

/// A department's name, or its code when the city has no such department.
pub(super) fn department_name(settings: &Settings, code: &str) -> String {
    settings
        .departments
        .iter()
        .find(|d| d.code.as_str() == code)
        .map_or_else(|| code.to_owned(), |d| d.name.clone())
}

/// A tier in words.
fn tier_words(tier: &str) -> &'static str {
    match tier {
        "city" => "市级",
        "district" => "区级",
        "street" => "街道",
        _ => "",
    }
}

/// The matter of the path, if the city has it.
fn matter<'a>(settings: &'a Settings, code: &str) -> Option<&'a MatterSettings> {
    settings.matters.iter().find(|m| m.code.as_str() == code)
}

/// The signed-in applicant, or the sign-in page to go to first.
pub(super) async fn applicant(req: &HttpRequest) -> Result<Session, HttpResponse> {
    match session(req).await {
        Some(session) if session.principal.grant == Grant::Applicant => Ok(session),
        Some(_) => Err(page(
            "需要申请人身份",
            None,
            html! { p.problem role="alert" { "只有申请人可以在线申请和查看自己的办件。" a href="/signin" { "换个身份登录" } } },
        )),
        None => Err(see_other("/signin")),
    }
}

/// The application form of a matter.
async fn apply_form(
    req: HttpRequest,
    systems: web::Data<Systems>,
    path: web::Path<String>,
) -> HttpResponse {
    let session = match applicant(&req).await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    let settings = &systems.settings;
    let Some(matter) = matter(settings, &path) else {
        return unknown_matter(&session, &path);
    };
    let filled = Filled::default();
    let form = application_form(settings, matter, &filled, None);
    page(&format!("申请：{}", matter.name), Some(&session), form)
}

/// A matter the city does not have.
fn unknown_matter(session: &Session, code: &str) -> HttpResponse {
    let main = html! {
        p.problem role="alert" { "没有事项“" (code) "”。" a href="/" { "返回办事指南" } }
    };
    page("没有这个事项", Some(session), main)
}

/// What the applicant filled in, to show the form again after a refusal.
#[derive(Default)]
struct Filled {
    /// 姓名.
    name: String,
    /// 身份证号.
    id_number: String,
    /// 手机号.
    phone: String,
    /// `district|street`.
    region: String,
    /// The materials ticked.
    materials: Vec<String>,
    /// The key under which this form is sent, the same for a second click.
    key: String,
}

impl Filled {
    /// The posted form's fields.
    fn parse(body: &[u8]) -> Self {
        let mut filled = Filled::default();
        for (name, value) in form_urlencoded::parse(body) {
            let value = value.trim().to_owned();
            match name.as_ref() {
                "name" => filled.name = value,
                "id_number" => filled.id_number = value,
                "phone" => filled.phone = value,
                "region" => filled.region = value,
                "materials" => filled.materials.push(value),
                "key" => filled.key = value,
                _ => {}
            }
        }
        filled
    }
}

/// The form, filled as given, with the API's refusal above it when there was one.
fn application_form(
    settings: &Settings,
    matter: &MatterSettings,
    filled: &Filled,
    refused: Option<&Refused>,
) -> Markup {
    let key = if filled.key.is_empty() {
        uuid::Uuid::new_v4().simple().to_string()
    } else {
        filled.key.clone()
    };
    html! {
        (matter_facts(settings, matter))
        @if let Some(refused) = refused {
            div.problem role="alert" #problem {
                p { "申请未被受理：" (refused.message) }
                @if let Some(field) = &refused.field {
                    p { "请检查：" (field_words(field)) }
                }
            }
        }
        form.stack method="post" action={ "/apply/" (matter.code) } {
            input type="hidden" name="key" value=(key);
            fieldset {
                legend { "申请人" }
                label for="name" { "姓名" }
                input #name name="name" required autocomplete="name" value=(filled.name);
                label for="id_number" { "公民身份号码（18 位）" }
                input #id_number name="id_number" required inputmode="text" maxlength="18"
                    pattern="[0-9]{17}[0-9Xx]" value=(filled.id_number);
                label for="phone" { "手机号码" }
                input #phone name="phone" required inputmode="tel" maxlength="11"
                    pattern="1[0-9]{10}" autocomplete="tel" value=(filled.phone);
            }
            fieldset {
                legend { "办理地点" }
                label for="region" { "所在街道" }
                select #region name="region" required {
                    option value="" { "请选择" }
                    @for district in &settings.governance.districts {
                        optgroup label=(district.name) {
                            @for street in settings.governance.streets.iter().filter(|s| s.district == district.code) {
                                @let value = format!("{}|{}", district.code, street.code);
                                option value=(value) selected[filled.region == value] {
                                    (district.name) " " (street.name)
                                }
                            }
                        }
                    }
                }
            }
            fieldset {
                legend { "提交的材料" }
                @for (i, material) in matter.required_materials.iter().enumerate() {
                    div.check {
                        input type="checkbox" id={ "material-" (i) } name="materials" value=(material)
                            checked[filled.materials.contains(material)];
                        label for={ "material-" (i) } { (material) }
                    }
                }
            }
            button type="submit" { "提交申请" }
        }
    }
}

/// A field the API named, in words.
fn field_words(field: &str) -> String {
    let words = match field {
        "applicant.name" => "姓名",
        "applicant.id_number" => "公民身份号码",
        "applicant.phone" => "手机号码",
        "region" | "region.district" | "region.street" => "所在街道",
        "materials" => "提交的材料",
        other => other,
    };
    words.to_owned()
}

/// Submits the application through the API; the case page once taken, else the form again
/// with the refusal in words.
async fn apply(
    req: HttpRequest,
    systems: web::Data<Systems>,
    backend: web::Data<Backend>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(refused) = cross_site(&req) {
        return refused;
    }
    let session = match applicant(&req).await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    let settings = &systems.settings;
    let Some(matter) = matter(settings, &path) else {
        return unknown_matter(&session, &path);
    };
    let filled = Filled::parse(&body);
    let (district, street) = filled.region.split_once('|').unwrap_or_default();
    let application = json!({
        "matter_code": matter.code,
        "applicant": { "name": filled.name, "id_number": filled.id_number, "phone": filled.phone },
        "region": { "district": district, "street": street },
        "materials": filled.materials,
    });
    let Some(terminal) = portal_terminal(settings) else {
        let refused = Refused {
            message: "本市未配置网上办事大厅终端 (no terminal of channel pc)".to_owned(),
            field: None,
        };
        let form = application_form(settings, matter, &filled, Some(&refused));
        return page(&format!("申请：{}", matter.name), Some(&session), form);
    };
    let path = format!("/api/v1/terminals/{terminal}/applications");
    match backend
        .post(&session.token, &path, &application, &filled.key)
        .await
    {
        Ok(taken) => {
            let case_id = taken["case_id"].as_str().unwrap_or_default();
            see_other(&format!("/my/cases/{case_id}"))
        }
        Err(refused) => {
            let form = application_form(settings, matter, &filled, Some(&refused));
            page(&format!("申请：{}", matter.name), Some(&session), form)
        }
    }
}

/// The applicant's own cases, newest first.
async fn own_cases(req: HttpRequest, backend: web::Data<Backend>) -> HttpResponse {
    let session = match applicant(&req).await {
        Ok(session) => session,
        Err(elsewhere) => return elsewhere,
    };
    let main = match backend
        .get(&session.token, "/api/v1/applicants/me/cases")
        .await
    {
        Ok(list) => {
            let cases = list["cases"].as_array().cloned().unwrap_or_default();
            html! {
                @if cases.is_empty() {
                    p { "还没有办件。" a href="/" { "去办事" } }
                } @else {
                    table {
                        thead { tr { th scope="col" { "办件" } th scope="col" { "事项" } th scope="col" { "提交时间" } th scope="col" { "状态" } } }
                        tbody {
                            @for case in &cases {
                                @let id = case["case_id"].as_str().unwrap_or_default();
                                tr {
                                    td { a href={ "/my/cases/" (id) } { (id) } }
                                    td { (case["matter_code"].as_str().unwrap_or_default()) }
                                    td { (local_time(case["submitted_at"].as_str().unwrap_or_default())) }
                                    td { (status_words(case["status"].as_str().unwrap_or_default())) }
                                }
                            }
                        }
                    }
                }
            }
        }
        Err(refused) => html! { p.problem role="alert" { (refused.message) } },
    };
    page("我的办件", Some(&session), main)
}

/// The terminal the portal acts at: the city's first of channel `pc`.
pub(super) fn portal_terminal(settings: &Settings) -> Option<String> {
    settings
        .terminals
        .iter()
        .find(|t| t.channel == Channel::Pc)
        .map(|t| t.id.to_string())
}
