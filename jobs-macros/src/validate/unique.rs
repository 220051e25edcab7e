//! Checks of `unique(...)` and `key_limit(...)`: `by` names stored
//! arguments of the function, `period` is a duration, `held_after` lists
//! finished states, `running` is a count of at least 1.

use syn::{Expr, Ident};

use super::values::duration;
use super::{Ctxt, KeyLimit, Param, Unique};
use crate::parse::GroupedSetting;

const KEYS: &str =
    "`by = [arg, ...]`, `period = \"1h\"` and `held_after = [succeeded, failed, cancelled]`";

pub(super) fn unique(
    cx: &mut Ctxt,
    setting: &GroupedSetting,
    params: &[Param],
    fn_name: &str,
) -> Option<Unique> {
    let mut unique = Unique {
        by: None,
        period: None,
        held_after: None,
    };
    let mut ok = true;
    let mut seen: Vec<&Ident> = Vec::new();
    for inner in &setting.settings {
        let key = inner.key.to_string();
        if !first_time(cx, &mut seen, &inner.key, "unique") {
            ok = false;
            continue;
        }
        match key.as_str() {
            "by" => match by(cx, &inner.value, params, fn_name, "the unique key") {
                Some(args) => unique.by = Some(args),
                None => ok = false,
            },
            "period" => match duration(cx, &inner.value, "period") {
                Some(period) if period.is_zero() => {
                    cx.error_spanned_by(
                        &inner.value,
                        "`period` must be longer than zero; leave it out to be unique while unfinished",
                    );
                    ok = false;
                }
                Some(period) => unique.period = Some(period),
                None => ok = false,
            },
            "held_after" => match held_after(cx, &inner.value) {
                Some(states) => unique.held_after = Some(states),
                None => ok = false,
            },
            _ => {
                cx.error_at(
                    inner.key.span(),
                    format!("unknown `unique(...)` key `{key}`; the keys are {KEYS}"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(unique)
}

/// Whether `key` is seen for the first time in `group(...)`; reports it,
/// with where it first was, when it is not.
fn first_time<'a>(cx: &mut Ctxt, seen: &mut Vec<&'a Ident>, key: &'a Ident, group: &str) -> bool {
    if let Some(first) = seen.iter().find(|k| **k == key) {
        let mut error = syn::Error::new(
            key.span(),
            format!("`{key}` is given twice in `{group}(...)`; keep one"),
        );
        error.combine(syn::Error::new(first.span(), format!("first `{key}` here")));
        cx.push(error);
        return false;
    }
    seen.push(key);
    true
}

/// The elements of `[a, b]` as plain names, each reported where it is not one.
fn names<'a>(cx: &mut Ctxt, value: &'a Expr, what: &str, example: &str) -> Option<Vec<&'a Ident>> {
    let Expr::Array(array) = value else {
        cx.error_spanned_by(value, format!("{what} is a list in brackets: `{example}`"));
        return None;
    };
    let mut names = Vec::new();
    let mut ok = true;
    for elem in &array.elems {
        match elem {
            Expr::Path(path) if path.qself.is_none() && path.path.get_ident().is_some() => {
                names.push(path.path.get_ident().expect("checked"));
            }
            other => {
                cx.error_spanned_by(other, format!("expected a plain name: `{example}`"));
                ok = false;
            }
        }
    }
    ok.then_some(names)
}

const KEY_LIMIT_KEYS: &str = "`by = [arg, ...]` and `running = 1`";

pub(super) fn key_limit(
    cx: &mut Ctxt,
    setting: &GroupedSetting,
    params: &[Param],
    fn_name: &str,
) -> Option<KeyLimit> {
    let mut limit = KeyLimit {
        by: None,
        running: 1,
    };
    let mut ok = true;
    let mut seen: Vec<&Ident> = Vec::new();
    for inner in &setting.settings {
        let key = inner.key.to_string();
        if !first_time(cx, &mut seen, &inner.key, "key_limit") {
            ok = false;
            continue;
        }
        match key.as_str() {
            "by" => match by(cx, &inner.value, params, fn_name, "the key limit's key") {
                Some(args) => limit.by = Some(args),
                None => ok = false,
            },
            "running" => match running(cx, &inner.value) {
                Some(n) => limit.running = n,
                None => ok = false,
            },
            _ => {
                cx.error_at(
                    inner.key.span(),
                    format!("unknown `key_limit(...)` key `{key}`; the keys are {KEY_LIMIT_KEYS}"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(limit)
}

/// `running = N`, N from 1 to `u32::MAX`.
fn running(cx: &mut Ctxt, value: &Expr) -> Option<u32> {
    let message =
        "`running` is how many jobs with the same key may run at once, at least 1: `running = 1`";
    let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Int(lit),
        ..
    }) = value
    else {
        cx.error_spanned_by(value, message);
        return None;
    };
    match lit.base10_parse::<u32>() {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            cx.error_spanned_by(value, message);
            None
        }
    }
}

fn by(
    cx: &mut Ctxt,
    value: &Expr,
    params: &[Param],
    fn_name: &str,
    what_key: &str,
) -> Option<Vec<String>> {
    let idents = names(cx, value, "`by`", "by = [customer_id]")?;
    let stored: Vec<String> = params
        .iter()
        .filter_map(|param| match param {
            Param::Arg { ident, .. } => Some(unraw(ident)),
            Param::Inject { .. } => None,
        })
        .collect();
    if idents.is_empty() {
        cx.error_spanned_by(
            value,
            "`by` names at least one argument; leave it out to make the key of every argument",
        );
        return None;
    }
    let mut by = Vec::new();
    let mut ok = true;
    for ident in idents {
        let name = unraw(ident);
        if stored.contains(&name) {
            by.push(name);
        } else {
            let known = if stored.is_empty() {
                "it has no stored arguments".to_owned()
            } else {
                format!(
                    "its stored arguments are {}",
                    stored
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            cx.error_spanned_by(
                ident,
                format!(
                    "`{name}` is not a stored argument of `{fn_name}`, so it cannot be part of {what_key}; {known}"
                ),
            );
            ok = false;
        }
    }
    ok.then_some(by)
}

fn held_after(cx: &mut Ctxt, value: &Expr) -> Option<[bool; 3]> {
    let example = "held_after = [succeeded]";
    let idents = names(cx, value, "`held_after`", example)?;
    let mut held = [false; 3];
    let mut ok = true;
    for ident in idents {
        match ident.to_string().as_str() {
            "succeeded" => held[0] = true,
            "failed" => held[1] = true,
            "cancelled" => held[2] = true,
            other => {
                let why = match other {
                    "scheduled" | "enqueued" | "processing" => {
                        "unfinished jobs always hold their key"
                    }
                    "deleted" => "a deleted job never holds its key",
                    _ => "the finished states are `succeeded`, `failed` and `cancelled`",
                };
                cx.error_spanned_by(
                    ident,
                    format!("`{other}` cannot be listed in `held_after`: {why}"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(held)
}

fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").unwrap_or(&s).to_owned()
}
