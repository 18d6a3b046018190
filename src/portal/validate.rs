//! Values from the portal, checked once where they enter: an account id names a
//! directory and a shard, a role name is a URL query value and a placeholder, a name is
//! printed and put in a child's environment. Whoever administers an account can rename
//! it, so none of this is trusted.

/// Exactly 12 ASCII digits, as every AWS account id is.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// IAM's role name pattern: `[\w+=,.@-]{1,64}` (ASCII word characters).
pub fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// A name can hold anything printable (the summary and prefixes escape control
/// characters), but not NUL, which no environment variable can carry.
pub fn is_account_name(name: &str) -> bool {
    !name.contains('\0')
}

/// A region as the children get it (`AWS_REGION`): lowercase letters, digits and `-`,
/// so it is as safe as an id in any shell or interpreter context.
pub fn is_region(region: &str) -> bool {
    (1..=32).contains(&region.len())
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(is_account_id("123456789012"));
        for bad in ["12345678901", "1234567890123", "12345678901a", "../../../etc", "１２３４５６７８９０１２", ""]
        {
            assert!(!is_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn role_names_follow_iam() {
        for good in ["ReadOnly", "AWSReservedSSO_Admin_0123", "a+b=c,d.e@f-g", &"r".repeat(64)] {
            assert!(is_role_name(good), "{good}");
        }
        for bad in ["", "a b", "a/b", "a$(x)", "a'b", &"r".repeat(65), "é"] {
            assert!(!is_role_name(bad), "{bad}");
        }
    }

    #[test]
    fn names_and_regions() {
        assert!(is_account_name("q$(touch /tmp/p)\x1b[31m\n"));
        assert!(!is_account_name("a\0b"));
        assert!(is_region("eu-west-1") && is_region("us-gov-west-1"));
        assert!(!is_region("eu-west-1; rm") && !is_region("") && !is_region("EU"));
    }
}
