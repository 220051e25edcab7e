//! Parsing `#[job(...)]`: which keys were given, each value kept with its
//! span. What a value means is checked later, in `validate.rs`, so that every
//! mistake is reported at once instead of the first one aborting the parse.

use syn::parse::{Parse, ParseStream};
use syn::{Expr, Token};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(queue);
    syn::custom_keyword!(priority);
    syn::custom_keyword!(max_attempts);
    syn::custom_keyword!(backoff);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(unique);
    syn::custom_keyword!(key_limit);
}

/// One `key = value` of the attribute.
pub(crate) struct Setting {
    /// The key as written, for messages and spans.
    pub(crate) key: syn::Ident,
    /// The value, interpreted by `validate.rs`.
    pub(crate) value: Expr,
}

/// `unique` or `unique(by = [..], period = "..", held_after = [..])`, and
/// `key_limit` or `key_limit(by = [..], running = 2)`: the inner settings,
/// interpreted by `validate.rs`.
pub(crate) struct GroupedSetting {
    /// The word (`unique`, `key_limit`), for messages and spans.
    pub(crate) key: syn::Ident,
    /// The settings inside the parentheses, if any.
    pub(crate) settings: Vec<Setting>,
}

/// The parsed attribute: each key at most once.
#[derive(Default)]
pub(crate) struct Attrs {
    pub(crate) name: Option<Setting>,
    pub(crate) queue: Option<Setting>,
    pub(crate) priority: Option<Setting>,
    pub(crate) max_attempts: Option<Setting>,
    pub(crate) backoff: Option<Setting>,
    pub(crate) timeout: Option<Setting>,
    pub(crate) krate: Option<Setting>,
    pub(crate) unique: Option<GroupedSetting>,
    pub(crate) key_limit: Option<GroupedSetting>,
    /// Keys given twice; reported with the other mistakes.
    pub(crate) duplicates: Vec<syn::Error>,
}

/// Keys people reach for that are spelt differently here, with the fix.
fn hint(key: &str) -> Option<&'static str> {
    Some(match key {
        "retry" | "retries" | "max_retries" | "attempts" | "max_attempt" | "maxattempts" => {
            "; the number of runs is `max_attempts = 5`"
        }
        "kind" | "job_name" | "rename" => "; the stored name is `name = \"...\"`",
        "queue_name" | "queues" => "; the queue is `queue = \"...\"`",
        "delay" | "run_at" | "schedule_in" => {
            "; a delay belongs to one enqueue: `MyJob::new(..).delay(..).enqueue(&jobs)`"
        }
        "cron" | "schedule" | "every" => {
            "; recurring jobs are scheduled at runtime with `jobs.recurring().add_or_update(..)`"
        }
        "retry_backoff" | "backoff_policy" | "retry_delay" => {
            "; the retry delay is `backoff = exponential(\"10s\", \"1h\")` or `backoff = fixed(\"30s\")`"
        }
        "timeout_secs" | "time_limit" | "deadline" => "; the time limit is `timeout = \"30s\"`",
        "jobs" | "krate" | "path" => "; a re-exported `jobs` is named with `crate = \"path::to::jobs\"`",
        "unique_by" | "uniqueness" | "dedupe" | "deduplicate" | "singleton" => {
            "; a unique job is `unique` or `unique(by = [customer_id], period = \"1h\")`"
        }
        "concurrency" | "concurrency_key" | "limit" | "limit_by" | "mutex" | "one_at_a_time"
        | "partition" | "key" => {
            "; at most N running at once per argument value is `key_limit(by = [customer_id], running = 1)`"
        }
        _ => return None,
    })
}

impl Parse for Attrs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut attrs = Attrs::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            let slot = if lookahead.peek(kw::name) {
                &mut attrs.name
            } else if lookahead.peek(kw::queue) {
                &mut attrs.queue
            } else if lookahead.peek(kw::priority) {
                &mut attrs.priority
            } else if lookahead.peek(kw::max_attempts) {
                &mut attrs.max_attempts
            } else if lookahead.peek(kw::backoff) {
                &mut attrs.backoff
            } else if lookahead.peek(kw::timeout) {
                &mut attrs.timeout
            } else if lookahead.peek(kw::unique) || lookahead.peek(kw::key_limit) {
                let grouped = parse_grouped(input)?;
                let slot = if grouped.key == "unique" {
                    &mut attrs.unique
                } else {
                    &mut attrs.key_limit
                };
                if let Some(first) = slot {
                    let word = grouped.key.to_string();
                    let mut error = syn::Error::new(
                        grouped.key.span(),
                        format!("`{word}` is given twice in `#[job(...)]`; keep one"),
                    );
                    error.combine(syn::Error::new(
                        first.key.span(),
                        format!("first `{word}` here"),
                    ));
                    attrs.duplicates.push(error);
                } else {
                    *slot = Some(grouped);
                }
                if !next_setting(input)? {
                    break;
                }
                continue;
            } else if lookahead.peek(Token![crate]) {
                &mut attrs.krate
            } else {
                let error = lookahead.error();
                // Name the attribute and the unknown key, not just "expected".
                if let Ok(ident) = input.fork().call(syn::ext::IdentExt::parse_any) {
                    let ident: syn::Ident = ident;
                    let key = ident.to_string();
                    return Err(syn::Error::new(
                        ident.span(),
                        format!(
                            "unknown `#[job]` key `{key}`, {error}{}",
                            hint(&key).unwrap_or("")
                        ),
                    ));
                }
                return Err(syn::Error::new(
                    error.span(),
                    format!("`#[job(...)]` takes `key = value` settings, {error}"),
                ));
            };
            let key: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
            let eq: syn::Result<Token![=]> = input.parse();
            if eq.is_err() {
                return Err(syn::Error::new(
                    if input.is_empty() {
                        key.span()
                    } else {
                        input.span()
                    },
                    format!("expected `=` after `{key}`: write `{key} = ...`"),
                ));
            }
            let value: Expr = input.parse()?;
            if let Some(first) = slot {
                let mut error = syn::Error::new(
                    key.span(),
                    format!("`{key}` is given twice in `#[job(...)]`; keep one"),
                );
                error.combine(syn::Error::new(
                    first.key.span(),
                    format!("first `{key}` here"),
                ));
                attrs.duplicates.push(error);
            } else {
                *slot = Some(Setting { key, value });
            }
            if !next_setting(input)? {
                break;
            }
        }
        Ok(attrs)
    }
}

/// After a setting: `false` at the end, `true` past the comma before the next.
fn next_setting(input: ParseStream<'_>) -> syn::Result<bool> {
    if input.is_empty() {
        return Ok(false);
    }
    let comma: syn::Result<Token![,]> = input.parse();
    if comma.is_err() {
        return Err(syn::Error::new(
            input.span(),
            "expected `,` between `#[job(...)]` settings",
        ));
    }
    Ok(true)
}

/// `unique` or `key_limit`, alone or with `(key = value, ...)`.
fn parse_grouped(input: ParseStream<'_>) -> syn::Result<GroupedSetting> {
    let key: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
    let word = key.to_string();
    if input.peek(Token![=]) {
        let example = if word == "unique" {
            "`unique(by = [customer_id], period = \"1h\")`"
        } else {
            "`key_limit(by = [customer_id], running = 1)`"
        };
        return Err(syn::Error::new(
            input.span(),
            format!("`{word}` takes no `=`: write `{word}`, or {example}"),
        ));
    }
    let mut settings = Vec::new();
    if input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in input);
        while !content.is_empty() {
            let key: syn::Ident = content.call(syn::ext::IdentExt::parse_any)?;
            let eq: syn::Result<Token![=]> = content.parse();
            if eq.is_err() {
                return Err(syn::Error::new(
                    key.span(),
                    format!("expected `=` after `{key}` in `{word}(...)`: write `{key} = ...`"),
                ));
            }
            let value: Expr = content.parse()?;
            settings.push(Setting { key, value });
            if content.is_empty() {
                break;
            }
            let comma: syn::Result<Token![,]> = content.parse();
            if comma.is_err() {
                return Err(syn::Error::new(
                    content.span(),
                    format!("expected `,` between `{word}(...)` settings"),
                ));
            }
        }
    }
    Ok(GroupedSetting { key, settings })
}
