//! `[application.trigger.redis]` and `[[trigger.redis]]`, as Spin reads them:
//! each trigger subscribes to `channel` on its own `address` or the
//! application's, and both may be built from variables.

use std::path::Path;

use indexmap::IndexMap;
use toml::Spanned;

use super::raw::RawManifest;
use super::template::{self, Part};
use super::validate::{TriggerSite, check_templates, check_trigger_id, trigger_component};
use super::{Component, ManifestError, RedisTrigger, Variable};
use crate::config_file::Locator;

/// URL schemes the Redis client connects with.
const SCHEMES: [&str; 4] = ["redis", "rediss", "redis+unix", "unix"];

/// An example address for error messages.
const EXAMPLE: &str = "address = \"redis://localhost:6379\"";

/// Validates the Redis triggers, adding their inline components to
/// `components`.
pub(super) fn redis_triggers(
    loc: &Locator<'_>,
    root: &Path,
    raw: &RawManifest,
    components: &mut IndexMap<String, Component>,
    variables: &IndexMap<String, Variable>,
) -> Result<Vec<RedisTrigger>, ManifestError> {
    let default_address = match &raw.application.trigger.redis {
        Some(global) => {
            let field = "application.trigger.redis.address";
            let Some(address) = &global.address else {
                return Err(loc.error(
                    offset_of_table(loc, "application.trigger.redis"),
                    field,
                    format!("missing: give the Redis server the triggers subscribe on ({EXAMPLE})"),
                ));
            };
            check_address(loc, address, field, variables)?;
            Some(address.get_ref().clone())
        }
        None => None,
    };

    let mut triggers = Vec::new();
    for (index, trigger) in raw.trigger.redis.iter().enumerate() {
        let at = trigger.span().start;
        let trigger = trigger.get_ref();
        let field = format!("trigger.redis[{index}]");
        if let Some(id) = &trigger.id {
            check_trigger_id(loc, &field, id)?;
        }
        let channel = &trigger.channel;
        if channel.get_ref().trim().is_empty() {
            return Err(loc.error(
                channel.span().start,
                format!("{field}.channel"),
                "must not be empty (name the channel to subscribe to, e.g. channel = \"messages\")",
            ));
        }
        check_templates(
            loc,
            channel.span().start,
            &format!("{field}.channel"),
            channel.get_ref(),
            variables,
        )?;
        let address = match (&trigger.address, &default_address) {
            (Some(own), _) => {
                check_address(loc, own, &format!("{field}.address"), variables)?;
                own.get_ref().clone()
            }
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(loc.error(
                    at,
                    format!("{field}.address"),
                    format!(
                        "missing: a Redis trigger needs a server; add [application.trigger.redis] with {EXAMPLE} (or give this trigger an `address`)"
                    ),
                ));
            }
        };
        let component_id = trigger_component(
            loc,
            root,
            TriggerSite {
                field: &field,
                at,
                default_id: format!("inline-redis-component-{}", index + 1),
                id: trigger.id.as_ref(),
            },
            &trigger.component,
            components,
            variables,
        )?;
        triggers.push(RedisTrigger {
            channel: channel.get_ref().clone(),
            address,
            component: component_id,
        });
    }
    Ok(triggers)
}

/// Checks an address's templates and, when its scheme is written out rather
/// than built from a variable, that it is one the Redis client speaks. The
/// address itself is never quoted back: it may hold a password.
fn check_address(
    loc: &Locator<'_>,
    address: &Spanned<String>,
    field: &str,
    variables: &IndexMap<String, Variable>,
) -> Result<(), ManifestError> {
    let at = address.span().start;
    let text = address.get_ref();
    check_templates(loc, at, field, text, variables)?;
    if text.trim().is_empty() {
        return Err(loc.error(at, field, format!("must not be empty (e.g. {EXAMPLE})")));
    }
    // Only the literal text before the first template can be checked now;
    // the rest is checked once variables are resolved.
    let literal = match template::parts(text).next() {
        Some(Ok(Part::Literal(lit))) => lit,
        _ => return Ok(()),
    };
    match literal.split_once("://") {
        Some((scheme, _)) if SCHEMES.contains(&scheme) => Ok(()),
        Some((scheme, _)) => Err(loc.error(
            at,
            field,
            format!(
                "scheme `{scheme}` is not a Redis scheme: use redis:// (or rediss:// for TLS), e.g. {EXAMPLE}"
            ),
        )),
        None if literal.len() == text.len() => Err(loc.error(
            at,
            field,
            format!("is not a Redis URL: write it with its scheme, e.g. {EXAMPLE}"),
        )),
        // `redis{{ suffix }}...`: the scheme is partly a variable.
        None => Ok(()),
    }
}

/// The byte offset of the `[table]` header, for errors about a key that is
/// missing from it.
fn offset_of_table(loc: &Locator<'_>, table: &str) -> usize {
    let header = format!("[{table}]");
    loc.text().find(&header).map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(text: &str) -> Result<super::super::App, super::ManifestError> {
        super::super::parse(Path::new("/app/spin.toml"), text)
    }

    const HEAD: &str = "spin_manifest_version = 2\n[application]\nname = \"a\"\n";

    #[test]
    fn triggers_take_the_app_address_unless_they_name_their_own() {
        let app = parse(&format!(
            "{HEAD}[application.trigger.redis]\naddress = \"redis://{{{{ host }}}}:6379\"\n\
             [variables]\nhost = {{ default = \"localhost\" }}\n\
             [[trigger.redis]]\nchannel = \"one\"\ncomponent = \"w\"\n\
             [[trigger.redis]]\nchannel = \"two\"\ncomponent = {{ source = \"x.wasm\" }}\naddress = \"rediss://other:6380\"\n\
             [component.w]\nsource = \"w.wasm\"\n"
        ))
        .expect("valid");
        assert!(
            app.http_triggers.is_empty(),
            "an app of Redis triggers only"
        );
        assert_eq!(
            app.redis_triggers,
            [
                super::RedisTrigger {
                    channel: "one".into(),
                    address: "redis://{{ host }}:6379".into(),
                    component: "w".into(),
                },
                super::RedisTrigger {
                    channel: "two".into(),
                    address: "rediss://other:6380".into(),
                    component: "inline-redis-component-2".into(),
                },
            ]
        );
        assert!(app.component("inline-redis-component-2").is_some());
    }

    #[test]
    fn a_bad_address_is_refused_without_showing_it() {
        let err = parse(&format!(
            "{HEAD}[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"w\"\naddress = \"localhost:secret@6379\"\n\
             [component.w]\nsource = \"w.wasm\"\n"
        ))
        .expect_err("no scheme")
        .to_string();
        assert!(err.contains("trigger.redis[0].address"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = parse(&format!(
            "{HEAD}[[trigger.redis]]\nchannel = \"{{{{ nope }}}}\"\ncomponent = \"w\"\naddress = \"redis://h\"\n\
             [component.w]\nsource = \"w.wasm\"\n"
        ))
        .expect_err("undefined variable")
        .to_string();
        assert!(err.contains("trigger.redis[0].channel"), "{err}");
    }
}
