//! The OpenAPI document, generated from the handlers and wire types.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::wire::types::*;

/// The native API's description.
#[derive(OpenApi)]
#[openapi(
    info(title = "runbox", description = "Compile and run untrusted code, isolated and measured."),
    paths(
        super::execute,
        super::submit,
        super::submit_batch,
        super::get_submission,
        super::list_submissions,
        super::languages,
        super::health,
        super::ready,
        super::metrics_text,
        super::workers,
        super::audit_log,
        crate::session::native::sessions,
        document,
    ),
    components(schemas(
        Encoding, Data, EncodedData, FileInput, LimitsInput, TestInput, CheckerInput, ProgramInput, HarnessInput, TimingBody,
        ExecuteRequest, StageBody, HelperStageBody, OutputFileBody, AnalysisInput, TestBody, ResultBody, SubmissionCreated, SubmissionBody,
        WebhookBody, SubmissionPage, BatchRequest, BatchCreated, LanguageBody, HealthBody,
        ReadyBody, WorkerBody, ErrorBody, ErrorDetail,
    )),
    modifiers(&Security),
    tags(
        (name = "runs", description = "Synchronous runs, and interactive sessions over WebSocket (GET /api/v1/sessions, docs/sessions.md)"),
        (name = "submissions", description = "Queued runs, history, batches"),
        (name = "meta", description = "Languages, health, metrics, audit"),
        (name = "fleet", description = "Worker nodes"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "The OpenAPI 3.1 document")), tag = "meta")]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
