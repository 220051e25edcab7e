//! Checking the function and the attribute, collecting every problem (serde's
//! `Ctxt`), and producing a [`JobDef`]: everything `expand.rs` needs, with no
//! raw tokens left to reinterpret.
//!
//! Only what the macro can see is checked here: the shape of the function and
//! the attribute's values. Whether an argument type can be stored, or whether
//! the error type converts into a boxed error, only the compiler knows; those
//! checks are emitted by `expand.rs` and pinned to the user's types.

use std::fmt::Display;
use std::time::Duration;

use proc_macro2::Span;
use quote::ToTokens;
use syn::visit::Visit;
use syn::{Attribute, Expr, FnArg, Ident, Lit, Pat, ReturnType, Type, Visibility};

use crate::parse::{Attrs, Setting};

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

/// What kind of injected parameter a type is, by its last path segment.
enum Injected {
    State,
    Context,
}

fn injected_kind(ty: &Type) -> Option<Injected> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    match (last.ident.to_string().as_str(), &last.arguments) {
        ("State", syn::PathArguments::AngleBracketed(_)) => Some(Injected::State),
        ("JobContext", syn::PathArguments::None) => Some(Injected::Context),
        _ => None,
    }
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

fn check_signature(cx: &mut Ctxt, sig: &syn::Signature) {
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(
            constness,
            "`#[job]` functions cannot be `const`; write `async fn`",
        );
    }
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "`#[job]` functions must be `async fn`; add `async` before `fn`",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(
            unsafety,
            "`#[job]` functions cannot be `unsafe`: the server calls them with nobody to uphold their safety contract",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            "`#[job]` functions cannot have an `extern` ABI; remove it",
        );
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &sig.generics,
            "`#[job]` does not support generic functions: the server reads the arguments back from the store, so their types must be known; use concrete types",
        );
    } else if let Some(where_clause) = &sig.generics.where_clause {
        cx.error_spanned_by(
            where_clause,
            "`#[job]` functions cannot have a `where` clause; use concrete types",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "`#[job]` functions cannot be variadic");
    }
}

fn check_params(cx: &mut Ctxt, sig: &syn::Signature) -> Vec<Param> {
    let mut params = Vec::new();
    let mut context_seen = false;
    let mut states_seen: Vec<String> = Vec::new();
    for input in &sig.inputs {
        let pat_type = match input {
            FnArg::Receiver(receiver) => {
                cx.error_spanned_by(
                    receiver,
                    "`#[job]` functions cannot take `self`: a job is a free function; move it out of the `impl` block and take what it needs as arguments or as `State<T>`",
                );
                continue;
            }
            FnArg::Typed(pat_type) => pat_type,
        };
        let ty = &*pat_type.ty;
        match injected_kind(ty) {
            Some(Injected::Context) => {
                if context_seen {
                    cx.error_spanned_by(
                        ty,
                        "`#[job]` functions take at most one `JobContext`; remove this one and use the other",
                    );
                }
                context_seen = true;
                params.push(Param::Inject { ty: ty.clone() });
            }
            Some(Injected::State) => {
                let key = ty.to_token_stream().to_string();
                if states_seen.contains(&key) {
                    cx.error_spanned_by(
                        ty,
                        format!(
                            "`{}` is asked for twice: both would be the same resource; remove this one, or give distinct resources distinct types",
                            key.replace(" < ", "<").replace(" >", ">").replace(" :: ", "::")
                        ),
                    );
                }
                states_seen.push(key);
                params.push(Param::Inject { ty: ty.clone() });
            }
            None => {
                let ident = arg_ident(cx, &pat_type.pat);
                check_storable_syntax(cx, ty);
                if let Some(ident) = ident {
                    params.push(Param::Arg {
                        ident,
                        ty: ty.clone(),
                    });
                }
            }
        }
    }
    params
}

/// The field name of an ordinary argument: its pattern must be a plain name.
fn arg_ident(cx: &mut Ctxt, pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(pat_ident) if pat_ident.by_ref.is_none() && pat_ident.subpat.is_none() => {
            Some(pat_ident.ident.clone())
        }
        Pat::Wild(wild) => {
            cx.error_spanned_by(
                wild,
                "`#[job]` arguments need a name: each one is stored as a named field of the job; write `name: Type` (`_name` if it is unused)",
            );
            None
        }
        _ => {
            cx.error_spanned_by(
                pat,
                "`#[job]` cannot name this argument: each argument is stored as a named field of the job; bind it to a name (`point: Point`) and destructure it inside the function",
            );
            None
        }
    }
}

/// Argument types that cannot be stored and that the macro can see without
/// the compiler: borrows, `impl Trait`, trait objects, `_`. Types it cannot
/// judge are checked through `JobArg` by the compiler.
fn check_storable_syntax(cx: &mut Ctxt, ty: &Type) {
    struct Finder<'a> {
        cx: &'a mut Ctxt,
        top: &'a Type,
        reported: bool,
    }
    impl Finder<'_> {
        fn report(&mut self, tokens: &dyn ToTokens, message: String) {
            if !self.reported {
                self.reported = true;
                self.cx.error_spanned_by(tokens.to_token_stream(), message);
            }
        }
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
            let inner = r.elem.to_token_stream().to_string();
            let owned = match inner.as_str() {
                "str" => "`String` instead of `&str`".to_owned(),
                "[u8]" => "`Vec<u8>` instead of `&[u8]`".to_owned(),
                "Path" => "`PathBuf` instead of `&Path`".to_owned(),
                _ if inner.starts_with('[') => "`Vec<T>` instead of `&[T]`".to_owned(),
                _ => format!(
                    "`{}` instead of a reference to it",
                    inner.replace(" < ", "<").replace(" >", ">")
                ),
            };
            let top = self
                .top
                .to_token_stream()
                .to_string()
                .replace(" < ", "<")
                .replace(" >", ">")
                .replace("& ", "&");
            self.report(
                r,
                format!(
                    "`{top}` cannot be a job argument: it borrows, and job arguments are serialized into the store and read back later, so they must own their data; take {owned}"
                ),
            );
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident != "static" {
                self.report(
                    lifetime,
                    format!(
                        "job arguments cannot borrow (`{lifetime}`): they are serialized into the store and read back later, so they must own their data; use owned types or `'static`"
                    ),
                );
            }
        }
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            let closure = t.bounds.iter().any(|b| match b {
                syn::TypeParamBound::Trait(tb) => tb.path.segments.last().is_some_and(|s| {
                    matches!(s.ident.to_string().as_str(), "Fn" | "FnMut" | "FnOnce")
                }),
                _ => false,
            });
            let message = if closure {
                "a closure cannot be a job argument: job arguments are serialized into the store, and code cannot be; pass the data the closure would use, and do the work inside the job".to_owned()
            } else {
                "`impl Trait` cannot be a job argument: job arguments are serialized into the store and read back as one concrete type; take a concrete type, or take shared resources as `State<T>`".to_owned()
            };
            self.report(t, message);
        }
        fn visit_type_trait_object(&mut self, t: &'ast syn::TypeTraitObject) {
            self.report(
                t,
                "a trait object cannot be a job argument: job arguments are serialized into the store and read back as one concrete type; take a concrete type".to_owned(),
            );
        }
        fn visit_type_infer(&mut self, t: &'ast syn::TypeInfer) {
            self.report(
                t,
                "`#[job]` arguments need a written type; `_` cannot be stored".to_owned(),
            );
        }
        fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {
            // Left to the compiler's `JobArg` check; its lifetimes are not borrows.
        }
    }
    let mut finder = Finder {
        cx,
        top: ty,
        reported: false,
    };
    finder.visit_type(ty);
}

fn check_return(cx: &mut Ctxt, output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    match &**ty {
        Type::Tuple(tuple) if tuple.elems.is_empty() => None,
        Type::ImplTrait(_) => {
            cx.error_spanned_by(
                ty,
                "`#[job]` functions return `()` or `Result<(), E>`; name the type instead of `impl Trait`",
            );
            None
        }
        _ => Some((**ty).clone()),
    }
}

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

fn non_empty_string(cx: &mut Ctxt, setting: &Setting, what: &str, example: &str) -> Option<String> {
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

fn priority(cx: &mut Ctxt, setting: &Setting) -> Option<i16> {
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

fn max_attempts(cx: &mut Ctxt, setting: &Setting) -> Option<i32> {
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

fn timeout(cx: &mut Ctxt, setting: &Setting) -> Option<Duration> {
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
fn duration(cx: &mut Ctxt, value: &Expr, key: &str) -> Option<Duration> {
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

fn backoff(cx: &mut Ctxt, setting: &Setting) -> Option<Backoff> {
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

fn crate_path(cx: &mut Ctxt, setting: &Setting) -> Option<syn::Path> {
    let lit = string_value(cx, setting, "crate = \"my_crate::jobs\"")?;
    match lit.parse_with(syn::Path::parse_mod_style) {
        Ok(path) => Some(path),
        Err(_) => {
            cx.error_spanned_by(lit, "`crate` takes the path `jobs` is re-exported at, such as `crate = \"my_crate::jobs\"`");
            None
        }
    }
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
