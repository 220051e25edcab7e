//! Checking the function and the attribute, collecting every problem (serde's
//! `Ctxt`), and producing a [`JobDef`]: everything `expand.rs` needs, with no
//! raw tokens left to reinterpret.
//!
//! Only what the macro can see is checked here: the shape of the function and
//! the attribute's values. Whether an argument type can be stored, or whether
//! the error type converts into a boxed error, only the compiler knows; those
//! checks are emitted by `expand.rs` and pinned to the user's types.

mod signature;
mod unique;
mod values;

use std::fmt::Display;
use std::time::Duration;

use proc_macro2::Span;
use quote::ToTokens;
use syn::{Attribute, Ident, Type, Visibility};

use crate::parse::Attrs;
use signature::{check_params, check_return, check_signature};
#[cfg(test)]
use values::parse_duration;
use values::{backoff, crate_path, max_attempts, non_empty_string, priority, timeout};

/// Collects errors so the user sees all of them at once.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    /// Records an error under the tokens of `tokens`.
    pub(crate) fn error_spanned_by(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span`.
    pub(crate) fn error_at(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records a ready error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// All the errors, combined into one, if there were any.
    pub(crate) fn check(self) -> Result<(), syn::Error> {
        let mut errors = self.errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}

/// A job, ready to expand.
pub(crate) struct JobDef {
    /// The path of the `jobs` facade (`::jobs` unless `crate = "..."`).
    pub(crate) krate: syn::Path,
    /// The user's function name.
    pub(crate) fn_ident: Ident,
    /// The generated type's name.
    pub(crate) type_ident: Ident,
    /// The function's visibility, given to the type and its methods.
    pub(crate) vis: Visibility,
    /// The user's doc comment.
    pub(crate) docs: Vec<Attribute>,
    /// `#[cfg]`s of the function, repeated on everything generated.
    pub(crate) cfgs: Vec<Attribute>,
    /// The stored name.
    pub(crate) name: String,
    /// Attribute defaults.
    pub(crate) options: Options,
    /// Parameters in order.
    pub(crate) params: Vec<Param>,
    /// The return type, `None` for `()`.
    pub(crate) ret: Option<Type>,
}

/// The attribute's settings, validated.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) queue: Option<String>,
    pub(crate) priority: Option<i16>,
    pub(crate) max_attempts: Option<i32>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) unique: Option<Unique>,
    pub(crate) key_limit: Option<KeyLimit>,
}

/// `key_limit(...)`, validated: the argument keys that make the key
/// (`None`: all), and how many with it may run at once.
pub(crate) struct KeyLimit {
    pub(crate) by: Option<Vec<String>>,
    pub(crate) running: u32,
}

/// `unique(...)`, validated: the argument keys that make the key (`None`:
/// all), the period, and which finished states hold it, if given.
pub(crate) struct Unique {
    pub(crate) by: Option<Vec<String>>,
    pub(crate) period: Option<Duration>,
    /// Succeeded, failed, cancelled.
    pub(crate) held_after: Option<[bool; 3]>,
}

/// A retry policy from `backoff = ...`.
pub(crate) enum Backoff {
    Fixed(Duration),
    Exponential { base: Duration, max: Duration },
}

/// One parameter of the function.
pub(crate) enum Param {
    /// Stored: a field of the generated type.
    Arg { ident: Ident, ty: Type },
    /// Provided by the server: `State<T>` or `JobContext`.
    Inject { ty: Type },
}

/// Checks the whole function and attribute.
pub(crate) fn validate(
    attrs: syn::Result<Attrs>,
    item: &syn::ItemFn,
) -> Result<JobDef, syn::Error> {
    let mut cx = Ctxt::default();
    let attrs = match attrs {
        Ok(attrs) => attrs,
        Err(error) => {
            cx.push(error);
            Attrs::default()
        }
    };
    for error in attrs.duplicates.iter().cloned() {
        cx.push(error);
    }

    let sig = &item.sig;
    check_signature(&mut cx, sig);
    let params = check_params(&mut cx, sig);
    let ret = check_return(&mut cx, &sig.output);

    let fn_name = sig.ident.unraw().to_string();
    let name = attrs
        .name
        .as_ref()
        .and_then(|s| non_empty_string(&mut cx, s, "the stored name", "name = \"send_mail\""))
        .unwrap_or_else(|| fn_name.clone());
    let options = Options {
        queue: attrs
            .queue
            .as_ref()
            .and_then(|s| non_empty_string(&mut cx, s, "the queue", "queue = \"mail\"")),
        priority: attrs.priority.as_ref().and_then(|s| priority(&mut cx, s)),
        max_attempts: attrs
            .max_attempts
            .as_ref()
            .and_then(|s| max_attempts(&mut cx, s)),
        backoff: attrs.backoff.as_ref().and_then(|s| backoff(&mut cx, s)),
        timeout: attrs.timeout.as_ref().and_then(|s| timeout(&mut cx, s)),
        unique: attrs
            .unique
            .as_ref()
            .and_then(|u| unique::unique(&mut cx, u, &params, &fn_name)),
        key_limit: attrs
            .key_limit
            .as_ref()
            .and_then(|k| unique::key_limit(&mut cx, k, &params, &fn_name)),
    };
    let krate = attrs
        .krate
        .as_ref()
        .and_then(|s| crate_path(&mut cx, s))
        .unwrap_or_else(|| syn::parse_quote!(::jobs));

    cx.check()?;

    let type_ident = Ident::new(&pascal_case(&fn_name), sig.ident.span());
    Ok(JobDef {
        krate,
        fn_ident: sig.ident.clone(),
        type_ident,
        vis: item.vis.clone(),
        docs: item
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect(),
        cfgs: item
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"))
            .cloned()
            .collect(),
        name,
        options,
        params,
        ret,
    })
}

trait Unraw {
    fn unraw(&self) -> Ident;
}

impl Unraw for Ident {
    fn unraw(&self) -> Ident {
        let s = self.to_string();
        match s.strip_prefix("r#") {
            Some(rest) => Ident::new(rest, self.span()),
            None => self.clone(),
        }
    }
}

/// `send_account_confirmation_email` -> `SendAccountConfirmationEmail`.
pub(crate) fn pascal_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    for part in snake.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() {
        out.push_str("Job");
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_durations() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("30 seconds")
            .unwrap_err()
            .contains("unknown unit `seconds`"));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999999999d").is_err());
    }

    #[test]
    fn pascal_cases_function_names() {
        assert_eq!(
            pascal_case("send_account_confirmation_email"),
            "SendAccountConfirmationEmail"
        );
        assert_eq!(pascal_case("_private_job"), "PrivateJob");
        assert_eq!(pascal_case("sync2db"), "Sync2db");
    }
}
