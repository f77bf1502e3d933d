//! `[[trigger.cron]]`, as Spin's cron trigger plugin reads it: a component
//! and a `cron_expression` of six fields (seconds first) or seven (years
//! last). A five-field Unix expression is refused with the seconds field to
//! add, since silently shifting it by a field would run it at the wrong
//! times.

use std::path::Path;
use std::str::FromStr as _;

use indexmap::IndexMap;

use super::raw::RawManifest;
use super::validate::{TriggerSite, check_trigger_id, trigger_component};
use super::{Component, CronTrigger, ManifestError, Variable};
use crate::config_file::Locator;

/// An example for error messages.
const EXAMPLE: &str = "cron_expression = \"0 */5 * * * *\" (sec min hour day month weekday)";

/// Validates the cron triggers, adding their inline components to
/// `components`.
pub(super) fn cron_triggers(
    loc: &Locator<'_>,
    root: &Path,
    raw: &RawManifest,
    components: &mut IndexMap<String, Component>,
    variables: &IndexMap<String, Variable>,
) -> Result<Vec<CronTrigger>, ManifestError> {
    let mut triggers = Vec::new();
    for (index, trigger) in raw.trigger.cron.iter().enumerate() {
        let at = trigger.span().start;
        let trigger = trigger.get_ref();
        let field = format!("trigger.cron[{index}]");
        if let Some(id) = &trigger.id {
            check_trigger_id(loc, &field, id)?;
        }
        let expression = trigger.cron_expression.get_ref().trim().to_owned();
        let schedule = parse(&expression).map_err(|message| {
            loc.error(
                trigger.cron_expression.span().start,
                format!("{field}.cron_expression"),
                message,
            )
        })?;
        let component = trigger_component(
            loc,
            root,
            TriggerSite {
                field: &field,
                at,
                default_id: format!("inline-cron-component-{}", index + 1),
                id: trigger.id.as_ref(),
            },
            &trigger.component,
            components,
            variables,
        )?;
        triggers.push(CronTrigger {
            component,
            expression,
            schedule,
        });
    }
    Ok(triggers)
}

/// Parses a schedule, saying how to fix a wrong one.
pub(super) fn parse(expression: &str) -> Result<cron::Schedule, String> {
    let fields = expression.split_whitespace().count();
    if fields == 5 {
        return Err(format!(
            "{expression:?} has five fields; Spin's cron trigger wants seconds first: \"0 {expression}\" runs at second 0 of the same minutes ({EXAMPLE})"
        ));
    }
    if !(6..=7).contains(&fields) {
        return Err(format!(
            "{expression:?} has {fields} fields; give six (seconds first) or seven (years last): {EXAMPLE}"
        ));
    }
    cron::Schedule::from_str(expression)
        .map_err(|e| format!("{expression:?} is not a cron schedule ({e}); {EXAMPLE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_and_seven_fields_parse_and_five_get_the_seconds_hint() {
        assert!(parse("*/1 * * * * *").is_ok());
        assert!(parse("0 30 9 * * Mon-Fri 2030").is_ok());
        let e = parse("*/5 * * * *").expect_err("five fields");
        assert!(e.contains("\"0 */5 * * * *\""), "{e}");
        let e = parse("* *").expect_err("two fields");
        assert!(e.contains("six"), "{e}");
        let e = parse("61 * * * * *").expect_err("second 61");
        assert!(e.contains("not a cron schedule"), "{e}");
    }
}
