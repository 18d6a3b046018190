//! Values from the portal, checked once where they enter: an account id names a
//! directory and a shard, a role name is a URL query value and a placeholder, a name is
//! printed and put in a child's environment. Whoever administers an account can rename
//! it, so none of this is trusted.

use crate::limits::MAX_NAME_BYTES;

/// Exactly 12 ASCII digits, as every AWS account id is.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// IAM's role name pattern: `[\w+=,.@-]{1,64}` (ASCII word characters).
pub fn is_role_name(name: &str) -> bool {
    (1..=MAX_ROLE_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// IAM's bound on a role name.
pub const MAX_ROLE_NAME: usize = 64;

/// What the portal-listing code puts in place of what the portal could not have meant:
/// invalid UTF-8 and a lone UTF-16 surrogate escape (`\ud800`) in a page become NUL
/// and one of these letters (see `portal/tolerant.rs`), so the account holding them is
/// refused by [`account_name_problem`], with the reason, instead of failing the page.
pub const MARK_INVALID_UTF8: &str = "\0U";
pub const MARK_LONE_SURROGATE: &str = "\0S";

/// Why a name (or email) cannot be used, if it cannot: it can hold anything printable
/// (the summary and prefixes escape control characters) but not NUL, which no
/// environment variable can carry, and at most [`MAX_NAME_BYTES`], so that one account
/// can neither flood a line nor make the inventory cache unreadable.
pub fn account_name_problem(name: &str) -> Option<String> {
    if name.contains(MARK_INVALID_UTF8) {
        Some("is not valid UTF-8".to_owned())
    } else if name.contains(MARK_LONE_SURROGATE) {
        Some("holds a lone UTF-16 surrogate escape (such as \\ud800), which is no character".to_owned())
    } else if name.contains('\0') {
        Some("holds a NUL byte".to_owned())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!("is {} bytes long, over the bound of {MAX_NAME_BYTES}", name.len()))
    } else {
        None
    }
}

/// A name [`account_name_problem`] finds nothing wrong with.
pub fn is_account_name(name: &str) -> bool {
    account_name_problem(name).is_none()
}

/// The longest region name accepted: a DNS label, as botocore's region check
/// (`validate_region_name`, a host label) bounds it.
pub const MAX_REGION: usize = 63;

/// A region as the children get it (`AWS_REGION`, and often argv): what botocore
/// accepts as a region, a DNS host label, narrowed to lowercase, and starting with a
/// letter, so that no region can read as an option (`-e`, `--help`, `-`) or a path, and
/// it is as safe as an id in any shell or interpreter context: a letter, then
/// lowercase letters, digits and `-`, not ending in `-`, at most [`MAX_REGION`] long.
pub fn is_region(region: &str) -> bool {
    let bytes = region.as_bytes();
    (1..=MAX_REGION).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.last() != Some(&b'-')
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
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

    #[test]
    fn a_region_cannot_read_as_an_option_and_is_bounded() {
        for good in ["us-east-1", "eu-isoe-west-1", "a", &"a".repeat(MAX_REGION)] {
            assert!(is_region(good), "{good}");
        }
        for bad in ["--help", "-e", "-exec", "-", "1us-east", "us-east-", "US-EAST-1", &"a".repeat(MAX_REGION + 1)] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn a_name_is_bounded_and_a_marked_one_says_what_was_wrong() {
        assert!(is_account_name(&"n".repeat(MAX_NAME_BYTES)));
        assert!(account_name_problem(&"n".repeat(MAX_NAME_BYTES + 1)).unwrap().contains("bytes long"));
        assert!(account_name_problem("a\0Ub").unwrap().contains("UTF-8"));
        assert!(account_name_problem("a\0Sb").unwrap().contains("surrogate"));
        assert!(account_name_problem("a\0b").unwrap().contains("NUL"));
    }
}
