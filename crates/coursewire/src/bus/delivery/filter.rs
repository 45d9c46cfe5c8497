//! Event-type filters: a subscription lists globs (`edu.canvas.enrollment.*`, `*.deleted`);
//! `*` matches any run of characters, everything else matches itself. No globs: every type.

/// Does `text` match `glob`?
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return glob == text;
    };
    if parts.len() == 1 {
        return glob == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Does a subscription with `globs` want events of `event_type`?
pub fn wants(globs: &[String], event_type: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| glob_matches(g, event_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_documented() {
        assert!(glob_matches(
            "edu.canvas.enrollment.*",
            "edu.canvas.enrollment.updated"
        ));
        assert!(!glob_matches(
            "edu.canvas.enrollment.*",
            "edu.canvas.course.updated"
        ));
        assert!(glob_matches("*.deleted", "edu.canvas.user.deleted"));
        assert!(glob_matches("edu.*.deleted", "edu.canvas.user.deleted"));
        assert!(!glob_matches("edu.*.deleted", "edu.canvas.user.updated"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*a", "aa"));
        assert!(!glob_matches("a*a", "a"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
    }

    #[test]
    fn no_globs_means_every_type() {
        assert!(wants(&[], "x"));
        assert!(wants(&["y".into(), "x".into()], "x"));
        assert!(!wants(&["y".into()], "x"));
    }
}
