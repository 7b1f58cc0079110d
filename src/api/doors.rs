//! ZITADEL's methods that give an app a new client secret (SPEC section 12), one small
//! declaration each over the one shared flow of [`super`]: the method's name under its
//! gRPC service, its REST route, and which app types it serves. A new door is a row here.

use crate::app::AppKind;

pub struct Door {
    /// The method under [`super::GRPC_SERVICE`], for gRPC-web and Connect.
    pub method: &'static str,
    /// The REST route, segment by segment; `{}` marks the project id, then the app id.
    pub route: [&'static str; 8],
    /// The same route as a REST API resource.
    pub resource: &'static str,
    pub apps: AppKind,
}

/// v1 `RegenerateOIDCClientSecret` (SPEC section 2).
pub const V1_OIDC: Door = Door {
    method: "RegenerateOIDCClientSecret",
    route: ["management", "v1", "projects", "{}", "apps", "{}", "oidc_config", "_generate_client_secret"],
    resource: "/management/v1/projects/{projectId}/apps/{appId}/oidc_config/_generate_client_secret",
    apps: AppKind::Oidc,
};

/// v1 `RegenerateAPIClientSecret`: the same messages, for API apps.
pub const V1_API: Door = Door {
    method: "RegenerateAPIClientSecret",
    route: ["management", "v1", "projects", "{}", "apps", "{}", "api_config", "_generate_client_secret"],
    resource: "/management/v1/projects/{projectId}/apps/{appId}/api_config/_generate_client_secret",
    apps: AppKind::Api,
};

pub const DOORS: [&Door; 2] = [&V1_OIDC, &V1_API];

/// The door of a gRPC method name.
pub fn by_method(method: &str) -> Option<&'static Door> {
    DOORS.into_iter().find(|door| door.method == method)
}
