//! Which decoder reads an inbox row: chosen by the row's `source`, never guessed from its body.
//! `canvas` (pushed Live Events) and `reconcile` (repairs the reconciler synthesized in Live
//! Events' own format) are read by the Canvas decoder; `panopto` (the poller's observations)
//! and `sis` (the import's rows) by one reader of `sources::event`, each accepting its own
//! entity kinds only. A row of a source without a decoder is quarantined with the reason,
//! kept and replayable once a decoder exists: it is never read as Canvas.
//!
//! A decoder turns a body into steps the processor applies the same way whatever the source: a
//! catalog observation (merged, maybe a change event, an audit row), or an event the catalog
//! does not keep (an audit row only).

use super::body::decode_inbox_body;
use crate::catalog::{self, Observation};
use crate::sources::event::SourceEvent;
use crate::sources::{panopto, sis};
use crate::store::{InboxRow, Lane};
use crate::workflow;

/// One event of a row, as the processor will treat it.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Catalog(Observation),
    /// Not a catalog event: processed with an audit row and nothing else. Its subject is the
    /// entity it is about, or, when it names none (a login without a user), the inbox row's
    /// own lane `inbox/<id>`: every step has one, so the audit can always be found by subject.
    Passed {
        event_name: String,
        subject: String,
        cause_id: String,
    },
    /// A recording workflow's input: a command's result or an operator's action.
    Workflow(workflow::apply::Message),
}

/// The sources that write into the inbox today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Canvas Live Events, pushed to `/hooks/canvas`.
    Canvas,
    /// The reconciler's repairs (`crate::reconcile::SOURCE`).
    Reconcile,
    /// The Panopto poller's observations.
    Panopto,
    /// `coursewire import`: SIS and timetable rows.
    Sis,
    /// The recording workflow's command results and operator actions.
    Workflow,
}

impl Source {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "canvas" => Some(Self::Canvas),
            crate::reconcile::SOURCE => Some(Self::Reconcile),
            panopto::SOURCE => Some(Self::Panopto),
            sis::SOURCE => Some(Self::Sis),
            workflow::apply::SOURCE => Some(Self::Workflow),
            _ => None,
        }
    }
}

/// The steps of a row, or why it cannot be applied (it is then quarantined with this reason).
pub fn decode(row: &InboxRow) -> Result<Vec<Step>, String> {
    match Source::parse(&row.source) {
        Some(Source::Canvas | Source::Reconcile) => canvas_steps(row),
        Some(Source::Panopto) => observed_steps(row, panopto::writes),
        Some(Source::Sis) => observed_steps(row, sis::writes),
        Some(Source::Workflow) => serde_json::from_slice(&row.body)
            .map(|m| vec![Step::Workflow(m)])
            .map_err(|e| format!("not a workflow input: {e}")),
        None => Err(format!(
            "no decoder for source {:?}: kept, to be replayed once one exists",
            row.source
        )),
    }
}

/// A row of a source that writes whole entities ([`SourceEvent`]), of the kinds it may write.
fn observed_steps(
    row: &InboxRow,
    writes: fn(catalog::EntityKind) -> bool,
) -> Result<Vec<Step>, String> {
    let event: SourceEvent = serde_json::from_slice(&row.body)
        .map_err(|e| format!("not an observation of {}: {e}", row.source))?;
    Ok(vec![Step::Catalog(event.observation(writes)?)])
}

fn canvas_steps(row: &InboxRow) -> Result<Vec<Step>, String> {
    decode_inbox_body(&row.body)?
        .iter()
        .map(|event| match catalog::observe(event, row.received_at_ms) {
            Ok(Some(observed)) => Ok(Step::Catalog(observed)),
            Ok(None) => Ok(Step::Passed {
                event_name: event.event_name.clone(),
                subject: Lane::of(event.cloud.subject.as_deref(), row.id).key(),
                cause_id: event.cloud.id.clone(),
            }),
            Err(err) => Err(err.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InboxStatus;

    fn row(source: &str) -> InboxRow {
        InboxRow {
            id: 1,
            source: source.into(),
            dedup_key: "k".into(),
            received_at_ms: 1_790_000_000_000,
            event_name: Some("course_updated".into()),
            event_time_ms: None,
            subject: Some("course/565".into()),
            body: serde_json::json!({
                "metadata": {"event_name": "course_updated", "event_time": "2026-09-01T10:00:00Z"},
                "body": {"course_id": "565", "name": "Biology"}
            })
            .to_string()
            .into_bytes(),
            headers: "{}".into(),
            verification: "unsigned-allowed".into(),
            status: InboxStatus::Pending,
            status_reason: None,
        }
    }

    #[test]
    fn canvas_and_reconcile_rows_are_read_by_the_canvas_decoder() {
        for source in ["canvas", "reconcile"] {
            let steps = decode(&row(source)).expect(source);
            assert!(matches!(&steps[..], [Step::Catalog(o)] if o.entity.subject() == "course/565"));
        }
    }

    #[test]
    fn the_body_decides_and_every_step_has_a_subject() {
        let mut slip = row("canvas");
        slip.body = serde_json::json!({
            "metadata": {"event_name": "course_updated", "event_time": "2026-09-01T10:00:00Z"},
            "body": {"course_section_id": "4811", "course_id": "565", "name": "Lab A"}
        })
        .to_string()
        .into_bytes();
        let steps = decode(&slip).expect("decodes");
        assert!(
            matches!(&steps[..], [Step::Catalog(o)]
                if o.entity.subject() == "section/4811" && o.sent_as.as_deref() == Some("course_updated")),
            "{steps:?}"
        );
        let mut login = row("canvas");
        login.id = 77;
        login.body = serde_json::json!({"metadata": {"event_name": "logged_in"}, "body": {}})
            .to_string()
            .into_bytes();
        let steps = decode(&login).expect("decodes");
        assert!(
            matches!(&steps[..], [Step::Passed { subject, .. }] if subject == "inbox/77"),
            "{steps:?}"
        );
    }

    #[test]
    fn a_row_of_an_unknown_source_is_not_read_as_canvas() {
        let reason = decode(&row("moodle")).unwrap_err();
        // A Canvas body under the Panopto source is refused, not guessed at.
        for source in ["panopto", "sis"] {
            let reason = decode(&row(source)).unwrap_err();
            assert!(
                reason.contains(&format!("not an observation of {source}")),
                "{reason}"
            );
        }
        assert!(
            reason.contains("no decoder for source \"moodle\""),
            "{reason}"
        );
    }
}
