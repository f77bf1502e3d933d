//! `[component.ID.tool.trib]`: how trib scales a component. Spin's schema
//! keeps `tool` tables for other tools and ignores them, so these settings
//! live in `spin.toml` without making it invalid for Spin, and Spin's
//! runtime config stays Spin's.
//!
//! ```toml
//! [component.ingest.tool.trib]
//! max_concurrency = 8          # requests in flight at once; more wait in the queue
//! min_warm = 1                 # keep loaded and linked: never lazy, never scaled to zero
//! idle_timeout = "5m"          # unload after this long without requests ("never": keep)
//! max_requests_per_instance = 1        # >1 reuses WASIp3 instances
//! max_concurrent_requests_per_instance = 1
//! spare_instances = 0          # fresh instances made ahead of demand (opt-in)
//! ```

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config_file::{ConfigFileError, Locator};
use crate::duration::parse_duration;

/// How one component scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingPolicy {
    /// Requests in flight at once (`None`: bounded only by the pool).
    pub max_concurrency: Option<usize>,
    /// Keep this component loaded and linked from startup on (any value > 0).
    pub min_warm: usize,
    /// Unload after this long without requests (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Requests one instance serves over its life (1: fresh instance per request).
    pub max_requests_per_instance: usize,
    /// Requests one instance serves at the same time (WASIp3 only).
    pub max_concurrent_requests_per_instance: usize,
    /// Instances made ahead of demand while the component is busy, so a
    /// request does not wait for its instance to be made (0: on demand).
    pub spare_instances: usize,
}

/// Spares a busy component keeps ready unless configured otherwise.
pub const DEFAULT_SPARE_INSTANCES: usize = 0;

/// Components nobody calls for this long are unloaded unless configured
/// otherwise; reloading from the compile cache takes milliseconds.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

impl Default for ScalingPolicy {
    fn default() -> Self {
        Self {
            max_concurrency: None,
            min_warm: 0,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_requests_per_instance: 1,
            max_concurrent_requests_per_instance: 1,
            spare_instances: DEFAULT_SPARE_INSTANCES,
        }
    }
}

/// `[component.ID.tool]`: trib's table; other tools' tables are theirs
/// (unknown fields are ignored here, and only here).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawTools {
    #[serde(default)]
    trib: Option<RawScaling>,
}

/// `[component.ID.tool.trib]` as written; a typo is an error, so it cannot
/// silently leave a component unlimited.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScaling {
    max_concurrency: Option<Spanned<usize>>,
    #[serde(default)]
    min_warm: usize,
    idle_timeout: Option<Spanned<String>>,
    max_requests_per_instance: Option<Spanned<usize>>,
    max_concurrent_requests_per_instance: Option<Spanned<usize>>,
    spare_instances: Option<usize>,
}

/// The policy `[component.ID.tool.trib]` sets, if the component has one.
pub(super) fn policy(
    loc: &Locator<'_>,
    id: &str,
    tools: Option<&RawTools>,
) -> Result<Option<ScalingPolicy>, ConfigFileError> {
    let Some(raw) = tools.and_then(|t| t.trib.as_ref()) else {
        return Ok(None);
    };
    let field = |f: &str| format!("component.{id}.tool.trib.{f}");
    let positive =
        |v: &Option<Spanned<usize>>, name: &str| -> Result<Option<usize>, ConfigFileError> {
            match v {
                Some(n) if *n.get_ref() == 0 => {
                    Err(loc.error(n.span().start, field(name), "must be at least 1"))
                }
                Some(n) => Ok(Some(*n.get_ref())),
                None => Ok(None),
            }
        };
    let idle_timeout = match &raw.idle_timeout {
        None => Some(DEFAULT_IDLE_TIMEOUT),
        Some(s) if s.get_ref() == "never" => None,
        Some(s) => Some(parse_duration(s.get_ref()).map_err(|e| {
            loc.error(
                s.span().start,
                field("idle_timeout"),
                format!("{e} (or \"never\")"),
            )
        })?),
    };
    Ok(Some(ScalingPolicy {
        max_concurrency: positive(&raw.max_concurrency, "max_concurrency")?,
        min_warm: raw.min_warm,
        idle_timeout: if raw.min_warm > 0 { None } else { idle_timeout },
        max_requests_per_instance: positive(
            &raw.max_requests_per_instance,
            "max_requests_per_instance",
        )?
        .unwrap_or(1),
        max_concurrent_requests_per_instance: positive(
            &raw.max_concurrent_requests_per_instance,
            "max_concurrent_requests_per_instance",
        )?
        .unwrap_or(1),
        spare_instances: raw.spare_instances.unwrap_or(DEFAULT_SPARE_INSTANCES),
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(tool: &str) -> Result<Option<ScalingPolicy>, String> {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"a\"\n[component.api]\nsource = \"a.wasm\"\n{tool}"
        );
        crate::manifest::parse(Path::new("spin.toml"), &text)
            .map(|app| app.components["api"].scaling.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn policies_parse_and_default() {
        assert_eq!(parse(""), Ok(None));
        let p = parse("[component.api.tool.trib]\nmax_concurrency = 2\nidle_timeout = \"1s\"\n")
            .expect("test input")
            .expect("test input");
        assert_eq!(p.max_concurrency, Some(2));
        assert_eq!(p.idle_timeout, Some(Duration::from_secs(1)));
        assert_eq!(p.max_requests_per_instance, 1);
        // Other tools' tables are theirs.
        assert_eq!(
            parse("[component.api.tool.other]\nanything = 1\n"),
            Ok(None)
        );
    }

    #[test]
    fn min_warm_disables_scale_to_zero() {
        let p = parse("[component.api.tool.trib]\nmin_warm = 1\nidle_timeout = \"1s\"\n")
            .expect("test input")
            .expect("test input");
        assert_eq!(p.idle_timeout, None);
    }

    #[test]
    fn mistakes_are_located_errors() {
        for (tool, expected) in [
            (
                "[component.api.tool.trib]\nmax_concurency = 2\n",
                "spin.toml:7:1: component.api.tool.trib.max_concurency: unknown field `max_concurency`",
            ),
            (
                "[component.api.tool.trib]\nmax_concurrency = 0\n",
                "spin.toml:7:19: component.api.tool.trib.max_concurrency: must be at least 1",
            ),
            (
                "[component.api.tool.trib]\nidle_timeout = \"soon\"\n",
                "spin.toml:7:16: component.api.tool.trib.idle_timeout: \"soon\" is not a duration",
            ),
        ] {
            let err = parse(tool).expect_err("must fail");
            assert!(err.starts_with(expected), "{err}\nexpected: {expected}");
        }
    }
}
