//! `runbox keys`: create, list and revoke API keys.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use runbox_server::auth::{generate_key, generate_key_id, key_hash, webhook_secret};
use runbox_store::{AuditEvent, NewApiKey, Scope, now_ms};

use super::serve::StoreArgs;

/// Flags of `runbox keys`.
#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; prints the key alone on stdout (it is not stored, only its hash).
    Create {
        /// A unique name for the key.
        #[arg(long)]
        name: String,
        /// What it may do: execute (run code, read its own submissions) or admin.
        #[arg(long, default_value = "execute", value_parser = ["execute", "admin"])]
        scope: String,
        /// Requests it may make: N/s, N/m or N/h (default: the server's).
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        rate: Option<f64>,
        /// Requests above the rate it may make at once (default: the server's).
        #[arg(long, value_name = "N")]
        burst: Option<u32>,
        /// Jobs it may have running or queued at once (default: the server's).
        #[arg(long, value_name = "N")]
        max_concurrent: Option<u32>,
    },
    /// List keys (never the keys themselves).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id or name; it stops working at once.
    Revoke {
        /// The key's id or name.
        key: String,
    },
}

/// `10/s`, `600/m`, `36000/h` or a bare number (per second).
fn parse_rate(text: &str) -> Result<f64, String> {
    let (number, per) = match text.split_once('/') {
        Some((n, unit)) => (n, unit),
        None => (text, "s"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a rate: write N/s, N/m or N/h"))?;
    let seconds = match per.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        other => return Err(format!("unknown rate unit '{other}': use s, m or h")),
    };
    if !(n > 0.0 && n.is_finite()) {
        return Err("a rate must be a positive number".into());
    }
    Ok(n / seconds)
}

/// Runs the subcommand against the configured store.
pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.load()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let store = runbox_server::open_store(&config).await?;
        match args.command {
            KeysCommand::Create {
                name,
                scope,
                rate,
                burst,
                max_concurrent,
            } => {
                if name.trim().is_empty() {
                    bail!("--name must not be empty");
                }
                let key = generate_key();
                let record = store
                    .create_key(&NewApiKey {
                        id: generate_key_id(),
                        name: name.clone(),
                        hash: key_hash(&key),
                        scope: Scope::parse(&scope).unwrap_or(Scope::Execute),
                        rate_per_second: rate,
                        rate_burst: burst,
                        max_concurrent,
                        webhook_secret: webhook_secret(&key),
                        created_ms: now_ms(),
                    })
                    .await?;
                store
                    .audit(&AuditEvent {
                        at_ms: now_ms(),
                        kind: "key_created".into(),
                        key_id: Some(record.id.clone()),
                        client_addr: None,
                        detail: serde_json::json!({"name": name, "scope": scope, "by": "cli"}),
                    })
                    .await?;
                eprintln!(
                    "created key {} ({name}, scope {scope}); it is shown once:",
                    record.id
                );
                outln!("{key}");
            }
            KeysCommand::List { json } => {
                let keys = store.list_keys().await?;
                if json {
                    outln!("{}", serde_json::to_string_pretty(&keys)?);
                } else {
                    outln!(
                        "{:<18} {:<20} {:<8} {:<10} {:<8} STATE",
                        "ID",
                        "NAME",
                        "SCOPE",
                        "RATE/S",
                        "MAX"
                    );
                    for k in keys {
                        outln!(
                            "{:<18} {:<20} {:<8} {:<10} {:<8} {}",
                            k.id,
                            k.name,
                            k.scope.as_str(),
                            k.rate_per_second
                                .map_or("default".into(), |r| format!("{r:.3}")),
                            k.max_concurrent.map_or("default".into(), |m| m.to_string()),
                            if k.revoked_ms.is_some() {
                                "revoked"
                            } else {
                                "active"
                            }
                        );
                    }
                }
            }
            KeysCommand::Revoke { key } => {
                let Some(record) = store.revoke_key(&key).await? else {
                    bail!("no key has the id or name '{key}' (`runbox keys list` shows them)");
                };
                store
                    .audit(&AuditEvent {
                        at_ms: now_ms(),
                        kind: "key_revoked".into(),
                        key_id: Some(record.id.clone()),
                        client_addr: None,
                        detail: serde_json::json!({"name": record.name, "by": "cli"}),
                    })
                    .await?;
                eprintln!("revoked key {} ({})", record.id, record.name);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_per_second_minute_or_hour() {
        assert_eq!(parse_rate("10/s").unwrap(), 10.0);
        assert_eq!(parse_rate("60/m").unwrap(), 1.0);
        assert_eq!(parse_rate("5").unwrap(), 5.0);
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("3/week").is_err());
    }
}
