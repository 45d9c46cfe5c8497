//! Everything that writes into the inbox besides Canvas's pushes (`ingest/`) and the
//! reconciler's repairs (`reconcile/`): the Panopto poller (`panopto`) and the SIS and
//! timetable import (`sis`). Each writes rows of its own `source` in the one format of
//! [`event`], which the processor reads with that source's decoder.

pub mod event;
pub mod panopto;
pub mod sis;
