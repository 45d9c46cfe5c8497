//! Everything that writes into the inbox besides Canvas's pushes (`ingest/`) and the
//! reconciler's repairs (`reconcile/`): the Panopto poller now, the SIS import next. Each writes
//! rows of its own `source`, which the processor reads with that source's decoder.

pub mod panopto;
