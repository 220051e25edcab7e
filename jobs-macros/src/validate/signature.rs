//! Checks of the function's shape: `async`, no generics or receiver, typed
//! parameters told apart into stored arguments and injected values, types
//! that cannot be stored whatever they implement, and the return type.

use quote::ToTokens;
use syn::visit::Visit;
use syn::{FnArg, Ident, Pat, ReturnType, Type};

use super::{Ctxt, Param};

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

pub(super) fn check_signature(cx: &mut Ctxt, sig: &syn::Signature) {
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

pub(super) fn check_params(cx: &mut Ctxt, sig: &syn::Signature) -> Vec<Param> {
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

pub(super) fn check_return(cx: &mut Ctxt, output: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    match &**ty {
        Type::Tuple(tuple) if tuple.elems.is_empty() => None,
        Type::ImplTrait(_) => {
            cx.error_spanned_by(
                ty,
                "`#[job]` functions return `()` or `Result<T, E>`; name the type instead of `impl Trait`",
            );
            None
        }
        _ => {
            check_output_syntax(cx, ty);
            Some((**ty).clone())
        }
    }
}

/// A borrowed output (`Result<&str, E>`) is refused with a message of ours:
/// the compiler's would be about `Deserialize` lifetimes. Only a return type
/// spelt `...Result<T, ..>` is looked into; anything else is left to the
/// `JobOutput` bound.
fn check_output_syntax(cx: &mut Ctxt, ty: &Type) {
    let Type::Path(path) = ty else { return };
    let Some(last) = path.path.segments.last() else {
        return;
    };
    if last.ident != "Result" {
        return;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return;
    };
    let Some(syn::GenericArgument::Type(Type::Reference(reference))) = args.args.first() else {
        return;
    };
    let inner = reference.elem.to_token_stream().to_string();
    let owned = match inner.as_str() {
        "str" => "`String` instead of `&str`".to_owned(),
        "[u8]" => "`Vec<u8>` instead of `&[u8]`".to_owned(),
        _ => format!(
            "`{}` instead of a reference to it",
            inner.replace(" < ", "<").replace(" >", ">")
        ),
    };
    cx.error_spanned_by(
        reference,
        format!(
            "a job's output cannot borrow: it is stored with the job and read back later, so it must own its data; return {owned}"
        ),
    );
}
