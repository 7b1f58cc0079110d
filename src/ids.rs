//! Validated identifiers. An id that exists has passed its rule, so it can be put into a
//! DynamoDB key: none of them can hold `#`, the key separator, so no id can forge a key.

use std::fmt;

use crate::error::Error;

const MAX_ID_LEN: usize = 200;
const MAX_USER_ID_LEN: usize = 255;

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')
}

/// Checks the shared id rule; `field` names the input in the error message.
fn check_id(value: &str, field: &str) -> Result<(), Error> {
    if value.is_empty() || value.len() > MAX_ID_LEN || !value.chars().all(is_id_char) {
        return Err(Error::invalid(format!(
            "invalid {field}: must be 1 to {MAX_ID_LEN} characters from A-Z a-z 0-9 _ - . @"
        )));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An organization id: from the `x-zitadel-orgid` header or the caller's identity.
    OrgId
);
id_type!(
    /// A project id from the path.
    ProjectId
);
id_type!(
    /// An application id from the path.
    AppId
);
id_type!(
    /// The caller's user id (`sub`): 1 to 255 printable ASCII characters, no `#`, no space.
    UserId
);
id_type!(
    /// An OAuth client id (ZITADEL's look like `312909075212468632@billing`): 1 to 255
    /// printable ASCII characters, no `#`, no space. It names one app, through its lookup.
    ClientId
);

impl OrgId {
    /// `field` says where the value came from, for the error message.
    pub fn parse(value: &str, field: &str) -> Result<Self, Error> {
        check_id(value, field)?;
        Ok(Self(value.to_owned()))
    }
}

impl ProjectId {
    /// An empty project id is ZITADEL's `COMMAND-99i83`, anything else malformed is code 3.
    pub fn parse(value: &str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::IdMissing);
        }
        check_id(value, "projectId")?;
        Ok(Self(value.to_owned()))
    }
}

impl AppId {
    pub fn parse(value: &str) -> Result<Self, Error> {
        Self::parse_as(value, "appId")
    }

    /// The same rule, the error naming the field as the request spelled it (the v2
    /// messages call it `applicationId`).
    pub fn parse_as(value: &str, field: &str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::IdMissing);
        }
        check_id(value, field)?;
        Ok(Self(value.to_owned()))
    }
}

/// 1 to 255 printable ASCII characters without `#` or space.
fn check_printable(value: &str, field: &str) -> Result<(), Error> {
    let printable = value.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
    if value.is_empty() || value.len() > MAX_USER_ID_LEN || !printable {
        return Err(Error::invalid(format!(
            "invalid {field}: must be 1 to {MAX_USER_ID_LEN} printable ASCII characters without '#' or space"
        )));
    }
    Ok(())
}

impl UserId {
    pub fn parse(value: &str, field: &str) -> Result<Self, Error> {
        check_printable(value, field)?;
        Ok(Self(value.to_owned()))
    }
}

impl ClientId {
    pub fn parse(value: &str, field: &str) -> Result<Self, Error> {
        check_printable(value, field)?;
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_documented_alphabet() {
        assert!(ProjectId::parse("a-Z_0.9@x").is_ok());
        assert!(OrgId::parse(&"o".repeat(200), "x-zitadel-orgid").is_ok());
        assert!(UserId::parse("auth0|abc", "sub").is_ok());
        assert!(UserId::parse("6f1c2a0e-1b2c-4d5e-8f90-123456789abc", "sub").is_ok());
    }

    #[test]
    fn ids_refuse_separator_length_and_space() {
        for bad in ["a#b", "a b", "a/b", "é", &"p".repeat(201)] {
            let err = ProjectId::parse(bad).unwrap_err();
            assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("projectId")), "{bad}: {err:?}");
        }
        assert_eq!(AppId::parse("").unwrap_err(), Error::IdMissing);
        assert!(
            matches!(OrgId::parse("", "x-zitadel-orgid"), Err(Error::InvalidArgument(m)) if m.contains("x-zitadel-orgid"))
        );
        for bad in ["", "a#b", "a b", "tab\t", &"u".repeat(256)] {
            assert!(UserId::parse(bad, "sub").is_err(), "{bad}");
        }
    }
}
