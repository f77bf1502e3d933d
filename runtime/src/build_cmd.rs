//! `trib build`: runs each component's `[component.X.build]` commands.

use std::process::Stdio;

use crate::manifest::App;

/// A build that did not succeed, naming the component and command.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The command could not be started at all.
    #[error("component {component:?}: cannot run `{command}` in {workdir}: {source}")]
    Spawn {
        /// The component ID.
        component: String,
        /// The command line.
        command: String,
        /// Its working directory.
        workdir: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("component {component:?}: build command `{command}` failed with {status}")]
    Failed {
        /// The component ID.
        component: String,
        /// The command line.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
    },
    /// `--component` named something the manifest does not define.
    #[error("no component named {0:?} in the manifest")]
    UnknownComponent(String),
}

/// Runs the build commands of `only` (or of every component with a build
/// section), in manifest order, streaming their output; stops at the first
/// failure.
pub fn build(app: &App, only: &[String]) -> Result<usize, BuildError> {
    for id in only {
        if app.component(id).is_none() {
            return Err(BuildError::UnknownComponent(id.clone()));
        }
    }
    let mut built = 0;
    for component in app.components.values() {
        if !only.is_empty() && !only.contains(&component.id) {
            continue;
        }
        let Some(build) = &component.build else {
            if !only.is_empty() {
                eprintln!(
                    "component {:?} has no build section; skipping",
                    component.id
                );
            }
            continue;
        };
        for command in &build.commands {
            eprintln!(
                "Building component {} with `{command}` in {}",
                component.id,
                build.workdir.display()
            );
            // Inherited stdio streams the build's output as it happens.
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&build.workdir)
                .envs(&build.environment)
                .stdin(Stdio::null())
                .status()
                .map_err(|source| BuildError::Spawn {
                    component: component.id.clone(),
                    command: command.clone(),
                    workdir: build.workdir.display().to_string(),
                    source,
                })?;
            if !status.success() {
                return Err(BuildError::Failed {
                    component: component.id.clone(),
                    command: command.clone(),
                    status,
                });
            }
        }
        built += 1;
    }
    Ok(built)
}
