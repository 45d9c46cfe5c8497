//! Rule sets in the store: saving a new version (validated, and only when it changes
//! something), reading the current or an old one, and the effective rule of a course (its
//! department is its SIS course's `account_id`, from the catalog).

use serde::Serialize;

use super::{Effective, RuleSet, Scope, effective};
use crate::catalog::{EntityId, EntityKind, EntityRef};
use crate::store::{RuleVersion, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The rule set is not acceptable (the message names the key or field).
    #[error("{0}")]
    Invalid(String),
    #[error("no version {version} of {scope}")]
    NoVersion { scope: String, version: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored version, read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    pub scope: String,
    pub version: i64,
    pub rules: RuleSet,
    pub author: String,
    pub reason: Option<String>,
    pub created_at_ms: i64,
}

fn read(row: RuleVersion) -> Result<Version, RulesError> {
    let rules: RuleSet = serde_json::from_str(&row.body).map_err(|e| {
        RulesError::Invalid(format!(
            "stored rules of {} v{} unreadable: {e}",
            row.scope, row.version
        ))
    })?;
    Ok(Version {
        scope: row.scope,
        version: row.version,
        rules,
        author: row.author,
        reason: row.reason,
        created_at_ms: row.created_at_ms,
    })
}

/// Saves `set` as the next version of `scope` if it differs from the current one; returns the
/// version that holds it (the current one when nothing changed) and whether it is new.
pub async fn save(
    store: &Store,
    scope: &Scope,
    set: &RuleSet,
    author: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<(i64, bool), RulesError> {
    set.validate().map_err(RulesError::Invalid)?;
    let current = version(store, scope, None).await?;
    if let Some(c) = &current
        && c.rules == *set
    {
        return Ok((c.version, false));
    }
    if current.is_none() && *set == RuleSet::default() {
        return Ok((0, false));
    }
    let body = serde_json::to_string(set).map_err(|e| RulesError::Invalid(e.to_string()))?;
    let v = store
        .append_rule_version(&scope.key(), &body, author, reason, now_ms)
        .await?;
    Ok((v, true))
}

/// A version of `scope` (`None`: the current one); `None` when the scope never had rules.
pub async fn version(
    store: &Store,
    scope: &Scope,
    version: Option<i64>,
) -> Result<Option<Version>, RulesError> {
    match store.rule_version(&scope.key(), version).await? {
        Some(row) => Ok(Some(read(row)?)),
        None => match version {
            Some(v) => Err(RulesError::NoVersion {
                scope: scope.key(),
                version: v,
            }),
            None => Ok(None),
        },
    }
}

pub async fn history(store: &Store, scope: &Scope) -> Result<Vec<Version>, RulesError> {
    store
        .rule_history(&scope.key())
        .await?
        .into_iter()
        .map(read)
        .collect()
}

/// The current set of every scope that has one.
pub async fn all_current(store: &Store) -> Result<Vec<(Scope, RuleSet)>, RulesError> {
    let mut out = Vec::new();
    for row in store.current_rules().await? {
        let v = read(row)?;
        let scope = Scope::parse(&v.scope).map_err(RulesError::Invalid)?;
        out.push((scope, v.rules));
    }
    Ok(out)
}

/// The department of a course: its SIS course's `account_id`, if the catalog has it.
pub async fn department_of(store: &Store, course: &str) -> Result<Option<String>, RulesError> {
    let Ok(id) = EntityId::parse(course) else {
        return Ok(None);
    };
    let entity = store
        .catalog_entity(&EntityRef::new(EntityKind::SisCourse, id))
        .await?;
    Ok(entity.and_then(|e| {
        e.state
            .get("account_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }))
}

/// The scopes a rule comes from, in overlay order: root, then a department, then a course
/// (a course's department is given when known).
pub fn chain(scope: &Scope, department: Option<&str>) -> Vec<Scope> {
    let mut chain = vec![Scope::Root];
    match scope {
        Scope::Root => {}
        Scope::Department(_) => chain.push(scope.clone()),
        Scope::Course(_) => {
            if let Some(d) = department {
                chain.push(Scope::Department(d.to_owned()));
            }
            chain.push(scope.clone());
        }
    }
    chain
}

/// The effective rule of `chain` from the stored current versions of (some of) its scopes,
/// and the versions it came from as the audit names them (`root@2 department:BIO@1`;
/// `default` when no scope has rules).
pub fn effective_from(
    chain: &[Scope],
    current: Vec<RuleVersion>,
) -> Result<(Effective, String), RulesError> {
    let versions: Vec<Version> = current.into_iter().map(read).collect::<Result<_, _>>()?;
    let mut sets = Vec::new();
    let mut names = Vec::new();
    for scope in chain {
        if let Some(v) = versions.iter().find(|v| v.scope == scope.key()) {
            sets.push((scope.clone(), &v.rules));
            names.push(format!("{}@{}", v.scope, v.version));
        }
    }
    let label = if names.is_empty() {
        "default".to_owned()
    } else {
        names.join(" ")
    };
    Ok((effective(&sets), label))
}

/// The rule for `scope`: a course follows root, then its department, then itself; a
/// department root then itself.
pub async fn effective_for(store: &Store, scope: &Scope) -> Result<Effective, RulesError> {
    let department = match scope {
        Scope::Course(c) => department_of(store, c).await?,
        _ => None,
    };
    let chain = chain(scope, department.as_deref());
    let mut current = Vec::new();
    for s in &chain {
        current.extend(store.rule_version(&s.key(), None).await?);
    }
    Ok(effective_from(&chain, current)?.0)
}
