//! Checks of the attribute's values: strings, integers in range, durations
//! with a unit, the backoff policy and the `crate = "..."` path. Each keeps
//! the span of what the user wrote, for the error.

use std::time::Duration;

use syn::{Expr, Ident, Lit};

use super::{Backoff, Ctxt};
use crate::parse::Setting;

fn string_value<'a>(cx: &mut Ctxt, setting: &'a Setting, example: &str) -> Option<&'a syn::LitStr> {
    if let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(lit), ..
    }) = &setting.value
    {
        return Some(lit);
    }
    cx.error_spanned_by(
        &setting.value,
        format!("`{}` takes a string literal: `{example}`", setting.key),
    );
    None
}

pub(super) fn non_empty_string(
    cx: &mut Ctxt,
    setting: &Setting,
    what: &str,
    example: &str,
) -> Option<String> {
    let lit = string_value(cx, setting, example)?;
    let value = lit.value();
    if value.trim().is_empty() {
        cx.error_spanned_by(lit, format!("{what} cannot be empty: `{example}`"));
        return None;
    }
    if value.trim() != value {
        cx.error_spanned_by(lit, format!("{what} cannot start or end with whitespace"));
        return None;
    }
    Some(value)
}

/// An integer literal, maybe negated; `None` after reporting if it is not one.
fn integer(cx: &mut Ctxt, setting: &Setting, example: &str) -> Option<i128> {
    let (negative, lit) = match &setting.value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) => (false, lit),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(lit), ..
            }) => (true, lit),
            _ => {
                cx.error_spanned_by(
                    &setting.value,
                    format!("`{}` takes an integer literal: `{example}`", setting.key),
                );
                return None;
            }
        },
        _ => {
            cx.error_spanned_by(
                &setting.value,
                format!("`{}` takes an integer literal: `{example}`", setting.key),
            );
            return None;
        }
    };
    if !lit.suffix().is_empty() {
        cx.error_spanned_by(
            lit,
            format!("write `{}` without a type suffix: `{example}`", setting.key),
        );
        return None;
    }
    match lit.base10_parse::<i128>() {
        Ok(value) => Some(if negative { -value } else { value }),
        Err(_) => {
            cx.error_spanned_by(&setting.value, format!("`{}` is out of range", setting.key));
            None
        }
    }
}

pub(super) fn priority(cx: &mut Ctxt, setting: &Setting) -> Option<i16> {
    let value = integer(cx, setting, "priority = 10")?;
    match i16::try_from(value) {
        Ok(priority) => Some(priority),
        Err(_) => {
            cx.error_spanned_by(
                &setting.value,
                format!(
                    "`priority` must fit in an `i16` ({} to {}); higher runs first",
                    i16::MIN,
                    i16::MAX
                ),
            );
            None
        }
    }
}

pub(super) fn max_attempts(cx: &mut Ctxt, setting: &Setting) -> Option<i32> {
    let value = integer(cx, setting, "max_attempts = 5")?;
    if value < 1 {
        cx.error_spanned_by(
            &setting.value,
            "`max_attempts` must be at least 1: it counts every run, the first one included",
        );
        return None;
    }
    match i32::try_from(value) {
        Ok(attempts) => Some(attempts),
        Err(_) => {
            cx.error_spanned_by(
                &setting.value,
                format!("`max_attempts` must be at most {}", i32::MAX),
            );
            None
        }
    }
}

const DURATION_HELP: &str =
    "write a number and a unit, such as \"500ms\", \"30s\", \"5m\", \"1h30m\" or \"2d\"";

pub(super) fn timeout(cx: &mut Ctxt, setting: &Setting) -> Option<Duration> {
    let timeout = duration(cx, &setting.value, "timeout")?;
    if timeout.is_zero() {
        cx.error_spanned_by(
            &setting.value,
            "`timeout` must be longer than zero; leave it out for no timeout",
        );
        return None;
    }
    Some(timeout)
}

/// A duration written as a string literal.
pub(super) fn duration(cx: &mut Ctxt, value: &Expr, key: &str) -> Option<Duration> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => match parse_duration(&lit.value()) {
            Ok(duration) => Some(duration),
            Err(reason) => {
                cx.error_spanned_by(
                    lit,
                    format!("invalid duration for `{key}`: {reason}; {DURATION_HELP}"),
                );
                None
            }
        },
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) => {
            let help = if lit.suffix().is_empty() {
                format!(
                    "give the unit in a string: `{key} = \"{}s\"`",
                    lit.base10_digits()
                )
            } else {
                format!("write durations as strings: `{key} = \"{lit}\"`")
            };
            cx.error_spanned_by(lit, format!("`{key}` takes a duration string; {help}"));
            None
        }
        _ => {
            cx.error_spanned_by(
                value,
                format!("`{key}` takes a duration string; {DURATION_HELP}"),
            );
            None
        }
    }
}

/// Parses `"500ms"`, `"30s"`, `"1h30m"`, `"2d"`; spaces between parts are allowed.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u128 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large".to_owned())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let millis_per = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "`{}` has no unit",
                    &text[..text.len() - rest.len()].trim()
                ))
            }
            other => return Err(format!("unknown unit `{other}` (units: ms, s, m, h, d)")),
        };
        total = number
            .checked_mul(millis_per)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| "it is too long".to_owned())?;
        rest = rest[unit_len..].trim_start();
    }
    let millis = u64::try_from(total).map_err(|_| "it is too long".to_owned())?;
    Ok(Duration::from_millis(millis))
}

const BACKOFF_HELP: &str = "write `backoff = exponential(\"10s\", \"1h\")` (first delay, longest delay) or `backoff = fixed(\"30s\")`";

pub(super) fn backoff(cx: &mut Ctxt, setting: &Setting) -> Option<Backoff> {
    let Expr::Call(call) = &setting.value else {
        cx.error_spanned_by(&setting.value, format!("invalid `backoff`: {BACKOFF_HELP}"));
        return None;
    };
    let kind = match &*call.func {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident().map(Ident::to_string),
        _ => None,
    };
    let args: Vec<&Expr> = call.args.iter().collect();
    match kind.as_deref() {
        Some("fixed") => {
            if args.len() != 1 {
                cx.error_at(
                    call.paren_token.span.join(),
                    "`fixed` takes one delay: `backoff = fixed(\"30s\")`",
                );
                return None;
            }
            Some(Backoff::Fixed(duration(cx, args[0], "backoff")?))
        }
        Some("exponential") => {
            if args.len() != 2 {
                cx.error_at(
                    call.paren_token.span.join(),
                    "`exponential` takes the first delay and the longest delay: `backoff = exponential(\"10s\", \"1h\")`",
                );
                return None;
            }
            let base = duration(cx, args[0], "backoff");
            let max = duration(cx, args[1], "backoff");
            let (base, max) = (base?, max?);
            if base.is_zero() {
                cx.error_spanned_by(
                    args[0],
                    "the first delay of `exponential` must be longer than zero",
                );
                return None;
            }
            if max < base {
                cx.error_spanned_by(
                    args[1],
                    "the longest delay of `exponential` must not be shorter than the first delay",
                );
                return None;
            }
            Some(Backoff::Exponential { base, max })
        }
        _ => {
            cx.error_spanned_by(
                &call.func,
                format!("unknown backoff, expected `exponential` or `fixed`; {BACKOFF_HELP}"),
            );
            None
        }
    }
}

pub(super) fn crate_path(cx: &mut Ctxt, setting: &Setting) -> Option<syn::Path> {
    let lit = string_value(cx, setting, "crate = \"my_crate::jobs\"")?;
    match lit.parse_with(syn::Path::parse_mod_style) {
        Ok(path) => Some(path),
        Err(_) => {
            cx.error_spanned_by(lit, "`crate` takes the path `jobs` is re-exported at, such as `crate = \"my_crate::jobs\"`");
            None
        }
    }
}
