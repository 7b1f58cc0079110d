//! The key formats of the single table, written once: the adapter, the seeding code and
//! the tests all build keys here.
//!
//! | item               | pk           | sk                                            |
//! |--------------------|--------------|-----------------------------------------------|
//! | app                | `ORG#<org>`  | `APP#<project>#<app>`                         |
//! | org membership     | `ORG#<org>`  | `MEMBER#<user>`                               |
//! | project membership | `ORG#<org>`  | `PROJECT#<project>#MEMBER#<user>`             |
//! | event              | `ORG#<org>`  | `EVENT#<project>#<app>#<sequence, 20 digits>` |
//! | client lookup      | `CLIENT#<client id>` | `CLIENT`                              |
//! | project lookup     | `PROJECT#<project>`  | `PROJECT`                             |
//!
//! Ids cannot contain `#` (see `ids`), so no id can forge another item's key; a lookup's
//! partition never starts with `ORG#`, so the functions' policies (writes under `ORG#`
//! only) can't touch one.

use crate::app::AppKey;
use crate::ids::{AppId, ClientId, OrgId, ProjectId, UserId};

pub fn org_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

pub fn app_sk(project: &ProjectId, app: &AppId) -> String {
    format!("APP#{project}#{app}")
}

/// What every org membership's sort key starts with.
pub const ORG_MEMBER_PREFIX: &str = "MEMBER#";

pub fn org_member_sk(user: &UserId) -> String {
    format!("{ORG_MEMBER_PREFIX}{user}")
}

/// What every project membership's sort key starts with.
pub const PROJECT_MEMBER_PREFIX: &str = "PROJECT#";

pub fn project_member_sk(project: &ProjectId, user: &UserId) -> String {
    format!("{PROJECT_MEMBER_PREFIX}{project}#MEMBER#{user}")
}

/// The client lookup: the one app a client id names.
pub fn client_lookup_key(client: &ClientId) -> (String, String) {
    (format!("CLIENT#{client}"), "CLIENT".to_owned())
}

/// The project lookup: the one org that owns a project id.
pub fn project_lookup_key(project: &ProjectId) -> (String, String) {
    (format!("PROJECT#{project}"), "PROJECT".to_owned())
}

/// What the sort keys of one app's events start with.
pub fn events_prefix(key: &AppKey) -> String {
    format!("EVENT#{}#{}#", key.project, key.app)
}

/// The event's sort key: the sequence in 20 digits, so events sort in order.
pub fn event_sk(key: &AppKey, sequence: u64) -> String {
    format!("{}{sequence:020}", events_prefix(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_sort_by_sequence() {
        let key = AppKey {
            org: OrgId::parse("o", "org").unwrap(),
            project: ProjectId::parse("p").unwrap(),
            app: AppId::parse("a").unwrap(),
        };
        assert_eq!(event_sk(&key, 7), "EVENT#p#a#00000000000000000007");
        assert_eq!(event_sk(&key, u64::MAX), "EVENT#p#a#18446744073709551615");
        assert!(event_sk(&key, 9) < event_sk(&key, 10));
    }
}
