//! Scheduled reports, in two parts of one component:
//!
//! - on Spin's cron trigger (`[[trigger.cron]]`, the `fermyon:spin-cron`
//!   world of `fermyon/spin-trigger-cron`), each tick summarises the last
//!   week of every source a read token can read (daily volumes, top
//!   events, the funnel in `report_funnel`, rejected messages, the change
//!   on the week before) through the query API, chained in process
//!   (`http://query.spin.internal`), stores the report in the key-value
//!   store and, when `report_webhook_url` is set, posts a chat message
//!   (`{"text": …}`) there (its host must be in `allowed_outbound_hosts`);
//! - over HTTP, `GET /api/reports` (and `/api/v1/reports`) answers the
//!   token's source's reports, newest first, as JSON or, with
//!   `?format=csv` or `Accept: text/csv`, as CSV.
//!
//! The cron export is synchronous (the plugin's world), so this component
//! is built on spin-sdk 5's synchronous APIs.

pub mod summary;

#[cfg(target_arch = "wasm32")]
mod guest;
