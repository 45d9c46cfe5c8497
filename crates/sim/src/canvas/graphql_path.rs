//! The `path` graphql-ruby (Canvas) gives a validation error: where in the document the
//! offending field sits, from the operation (`"query"`, `"query Name"`, `"mutation …"`, or
//! `"fragment Name"`) through each enclosing field's response key (`["query", "course",
//! "nme"]`); inline fragments add `"... on Type"`, as graphql-ruby writes them.

use apollo_compiler::ast::{Definition, Document, Selection};
use apollo_compiler::parser::SourceMap;

/// The path of the field that starts at `line`:`column` (1-based), if one does.
pub fn path_at(query: &str, line: usize, column: usize) -> Option<Vec<String>> {
    let doc = match Document::parse(query, "query.graphql") {
        Ok(doc) => doc,
        Err(with_errors) => with_errors.partial,
    };
    for def in &doc.definitions {
        let (root, selections) = match def {
            Definition::OperationDefinition(op) => {
                let kind = op.operation_type.to_string();
                let root = match &op.name {
                    Some(name) => format!("{kind} {name}"),
                    None => kind,
                };
                (root, &op.selection_set)
            }
            Definition::FragmentDefinition(f) => (format!("fragment {}", f.name), &f.selection_set),
            _ => continue,
        };
        let mut path = vec![root];
        if find(selections, &doc.sources, (line, column), &mut path) {
            return Some(path);
        }
    }
    None
}

fn find(
    selections: &[Selection],
    sources: &SourceMap,
    at: (usize, usize),
    path: &mut Vec<String>,
) -> bool {
    for s in selections {
        match s {
            Selection::Field(f) => {
                let key = f.alias.as_ref().unwrap_or(&f.name).to_string();
                path.push(key);
                let starts_here = f
                    .line_column_range(sources)
                    .is_some_and(|r| (r.start.line, r.start.column) == at);
                if starts_here || find(&f.selection_set, sources, at, path) {
                    return true;
                }
                path.pop();
            }
            Selection::InlineFragment(i) => {
                let label = match &i.type_condition {
                    Some(t) => format!("... on {t}"),
                    None => "...".to_owned(),
                };
                path.push(label);
                if find(&i.selection_set, sources, at, path) {
                    return true;
                }
                path.pop();
            }
            Selection::FragmentSpread(_) => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_found_with_its_ancestors_keys() {
        let q = "query Roster {\n  course(id: \"1\") {\n    who: nme\n  }\n}";
        assert_eq!(
            path_at(q, 3, 5),
            Some(vec!["query Roster".into(), "course".into(), "who".into()])
        );
        let q = "{ course(id: \"1\") { ... on Course { nme } } }";
        assert_eq!(
            path_at(q, 1, 37),
            Some(vec![
                "query".into(),
                "course".into(),
                "... on Course".into(),
                "nme".into()
            ])
        );
        assert_eq!(path_at(q, 9, 9), None);
    }
}
