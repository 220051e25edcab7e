//! Code generation from a [`JobDef`]. Every path is rooted at the facade's
//! hidden `__private` module (or the `crate = "..."` path) or at `::core`, so
//! the output compiles whatever the user's crate shadows; helpers sit inside
//! `const _: () = { ... };` and the names that could clash start with `__jobs_`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::parse::Attrs;
use crate::validate::{self, Backoff, JobDef, Param};

/// The whole attribute: parse, validate, expand. On error the user's item is
/// still emitted, untouched, beside the errors, so editors keep working.
pub(crate) fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            let error = syn::Error::new(
                first_span(&item),
                "`#[job]` goes on an `async fn`, such as `#[job] async fn send_mail(user_id: i64) -> anyhow::Result<()>`",
            );
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };
    let attrs = syn::parse::Parser::parse2(<Attrs as syn::parse::Parse>::parse, attr);
    match validate::validate(attrs, &item_fn) {
        Ok(def) => {
            let generated = generate(&def);
            quote!(#item_fn #generated)
        }
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#item_fn #error)
        }
    }
}

fn first_span(tokens: &TokenStream) -> Span {
    tokens
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

fn duration(duration: std::time::Duration) -> TokenStream {
    // Durations are whole milliseconds (see `parse_duration`).
    let millis = duration.as_millis() as u64;
    quote!(__jobs::core::time::Duration::from_millis(#millis))
}

/// What every part of the expansion shares: the definition, the alias of
/// the facade, and the stored arguments with their keys.
struct Gen<'a> {
    def: &'a JobDef,
    p: TokenStream,
    result: TokenStream,
    fn_name: String,
    args: Vec<(&'a syn::Ident, &'a syn::Type)>,
    arg_idents: Vec<&'a syn::Ident>,
    arg_tys: Vec<&'a syn::Type>,
    arg_keys: Vec<String>,
}

fn generate(def: &JobDef) -> TokenStream {
    let gen = Gen::new(def);
    let type_def = gen.type_def();
    let inherent = gen.inherent();
    let options_fn = gen.options_fn();
    let serde_impls = gen.serde_impls();
    let check_stored = gen.check_stored();
    let registration = gen.registration();
    let JobDef {
        krate,
        type_ident,
        cfgs,
        name,
        ..
    } = def;
    let p = &gen.p;
    let produces = gen.produces();

    quote! {
        #type_def

        #(#cfgs)*
        const _: () = {
            use #krate::__private as __jobs;

            #inherent
            #serde_impls

            #options_fn

            impl #p::Job for #type_ident {
                const NAME: &'static str = #name;

                fn options() -> #p::JobOptions {
                    __jobs_options()
                }

                #check_stored
            }

            #produces

            #registration
        };
    }
}

impl<'a> Gen<'a> {
    /// `Produces`: the output type is what the return type's
    /// `IntoJobResult` says, so a type alias of `Result` works as well as
    /// `Result` itself.
    fn produces(&self) -> TokenStream {
        let Self { p, def, .. } = self;
        let type_ident = &def.type_ident;
        let ret_ty = match &def.ret {
            Some(ty) => ty.to_token_stream(),
            None => quote!(()),
        };
        // At the return type, as `job_result`'s check: a return type that
        // does not fit is then reported once, there.
        let ret_span = def
            .ret
            .as_ref()
            .map_or_else(|| def.fn_ident.span(), |ty| ty.span());
        // The alias is named with the return type's span, so that rustc
        // reports a return type that does not fit there, as `job_result`'s.
        let at_ret = proc_macro2::Ident::new("__jobs", ret_span);
        let _ = p;
        quote_spanned! {ret_span=>
            impl #at_ret::Produces for #type_ident {
                type Output = #at_ret::OutputOf<#ret_ty>;
            }
        }
    }

    fn new(def: &'a JobDef) -> Self {
        // One alias for the facade: a wrong `crate = "..."` path is then one
        // error, at the `use`, instead of one per generated path.
        let p = quote!(__jobs);
        let result = quote!(#p::core::result::Result);
        let fn_name = def.fn_ident.to_string();
        let fn_name = fn_name.strip_prefix("r#").unwrap_or(&fn_name).to_owned();
        let params = &def.params;
        let args: Vec<(&syn::Ident, &syn::Type)> = params
            .iter()
            .filter_map(|param| match param {
                Param::Arg { ident, ty } => Some((ident, ty)),
                Param::Inject { .. } => None,
            })
            .collect();
        let arg_idents: Vec<&syn::Ident> = args.iter().map(|(ident, _)| *ident).collect();
        let arg_tys: Vec<&syn::Type> = args.iter().map(|(_, ty)| *ty).collect();
        let arg_keys: Vec<String> = arg_idents
            .iter()
            .map(|ident| {
                let s = ident.to_string();
                s.strip_prefix("r#").unwrap_or(&s).to_owned()
            })
            .collect();
        Self {
            def,
            p,
            result,
            fn_name,
            args,
            arg_idents,
            arg_tys,
            arg_keys,
        }
    }

    /// The type, with the user's docs and `#[cfg]`s, and one field per stored argument.
    fn type_def(&self) -> TokenStream {
        let JobDef {
            type_ident,
            vis,
            docs,
            cfgs,
            name,
            ..
        } = self.def;
        let Self {
            fn_name,
            args,
            arg_idents,
            arg_tys,
            arg_keys,
            ..
        } = self;
        // The type and its doc.
        let mut doc = String::new();
        if docs.is_empty() {
            doc.push_str(&format!("The job that runs `{fn_name}`.\n"));
        }
        let generated_doc = format!(
            "\n\nGenerated by `#[job]` from the function `{fn_name}`: its fields are the job's stored arguments, \
             and jobs of this type are stored under the name `\"{name}\"`."
        );
        doc.push_str(&generated_doc);
        let fields = if args.is_empty() {
            quote!(;)
        } else {
            let field_docs = arg_keys
                .iter()
                .map(|key| format!("The argument `{key}` of `{fn_name}`."));
            quote!({ #( #[doc = #field_docs] #vis #arg_idents: #arg_tys, )* })
        };
        let type_def = quote! {
            #(#cfgs)*
            #(#docs)*
            #[doc = #doc]
            #vis struct #type_ident #fields
        };
        type_def
    }

    /// `NAME`, `new` and `enqueue` on the type.
    fn inherent(&self) -> TokenStream {
        let JobDef {
            type_ident,
            vis,
            name,
            ..
        } = self.def;
        let Self {
            p,
            result,
            fn_name,
            args,
            arg_idents,
            arg_tys,
            arg_keys,
            ..
        } = self;
        // Inherent items: NAME, new, enqueue.
        let client = if arg_keys.iter().any(|k| k == "jobs") {
            format_ident!("__jobs_client")
        } else {
            format_ident!("jobs")
        };
        let new_doc = format!(
            "A request to run `{fn_name}` with these arguments. Set a delay, a queue or a priority on it, \
             then store it with `.enqueue(&jobs)`."
        );
        let enqueue_doc = format!(
            "Stores a job that runs `{fn_name}` with these arguments; returns its id once it is durable."
        );
        let after_output_doc = format!(
            "A continuation that runs `{fn_name}` on the output of job `parent`, of type `P`, once it \
             succeeds: `{fn_name}`'s one argument must be of `P`'s output type, which the compiler \
             checks. Store it with `.enqueue(&jobs)`."
        );
        // A job of one stored argument can run on another's output of that type.
        let takes_output = match (arg_tys.as_slice(), arg_keys.as_slice()) {
            ([ty], [key]) => quote! {
                impl #p::TakesOutput<#ty> for #type_ident {
                    const INPUT: &'static str = #key;
                }
            },
            _ => quote!(),
        };
        let construct = if args.is_empty() {
            quote!(Self)
        } else {
            quote!(Self { #(#arg_idents),* })
        };
        let inherent = quote! {
            #[allow(dead_code)]
            impl #type_ident {
                /// The name jobs of this type are stored under.
                #vis const NAME: &'static str = #name;

                #[doc = #new_doc]
                #vis fn new(#(#arg_idents: #arg_tys),*) -> #p::Request<Self> {
                    #p::Request::new(#construct)
                }

                #[doc = #enqueue_doc]
                #vis async fn enqueue(
                    #client: &#p::Jobs,
                    #(#arg_idents: #arg_tys),*
                ) -> #result<#p::JobId, #p::Error> {
                    Self::new(#(#arg_idents),*).enqueue(#client).await
                }

                #[doc = #after_output_doc]
                #vis fn after_output_of<__JobsParent>(
                    parent: #p::JobId,
                ) -> #p::OnOutput<__JobsParent, Self>
                where
                    __JobsParent: #p::Job + #p::Produces,
                    Self: #p::TakesOutput<<__JobsParent as #p::Produces>::Output>,
                {
                    #p::OnOutput::new(parent)
                }
            }

            #takes_output
        };
        inherent
    }

    /// `__jobs_options()`: the attribute's settings over `JobOptions::default()`.
    fn options_fn(&self) -> TokenStream {
        let JobDef { options, .. } = self.def;
        let Self { p, .. } = self;
        // Job options.
        let mut option_calls = Vec::new();
        if let Some(queue) = &options.queue {
            option_calls.push(quote!(.queue(#queue)));
        }
        if let Some(priority) = options.priority {
            option_calls.push(quote!(.priority(#priority)));
        }
        if let Some(max_attempts) = options.max_attempts {
            option_calls.push(quote!(.max_attempts(#max_attempts)));
        }
        if let Some(backoff) = &options.backoff {
            let backoff = match backoff {
                Backoff::Fixed(delay) => {
                    let delay = duration(*delay);
                    quote!(#p::Backoff::fixed(#delay))
                }
                Backoff::Exponential { base, max } => {
                    let (base, max) = (duration(*base), duration(*max));
                    quote!(#p::Backoff::exponential(#base, #max))
                }
            };
            option_calls.push(quote!(.backoff(#backoff)));
        }
        if let Some(timeout) = options.timeout {
            let timeout = duration(timeout);
            option_calls.push(quote!(.timeout(#timeout)));
        }
        if let Some(unique) = &options.unique {
            let mut unique_calls = Vec::new();
            if let Some(by) = &unique.by {
                unique_calls.push(quote!(.by_args(&[#(#by),*])));
            }
            if let Some([succeeded, failed, cancelled]) = unique.held_after {
                unique_calls.push(quote! {
                    .held_after(#p::JobState::Succeeded, #succeeded)
                    .held_after(#p::JobState::Failed, #failed)
                    .held_after(#p::JobState::Cancelled, #cancelled)
                });
            }
            let base = match unique.period {
                Some(period) => {
                    let period = duration(period);
                    quote!(#p::Unique::per_period(#period))
                }
                None => quote!(#p::Unique::while_unfinished()),
            };
            option_calls.push(quote!(.unique(#base #(#unique_calls)*)));
        }
        if let Some(limit) = &options.key_limit {
            let running = limit.running;
            let base = match &limit.by {
                Some(by) => quote!(#p::KeyLimit::by_args(&[#(#by),*])),
                None => quote!(#p::KeyLimit::by_all_args()),
            };
            option_calls.push(quote!(.key_limit(#base.running(#running))));
        }
        quote! {
        fn __jobs_options() -> #p::JobOptions {
            <#p::JobOptions as #p::core::default::Default>::default() #(#option_calls)*
        }
            }
    }

    /// `Serialize` and `Deserialize`: a JSON object with one field per argument.
    fn serde_impls(&self) -> TokenStream {
        let JobDef {
            type_ident, name, ..
        } = self.def;
        let Self {
            p,
            result,
            args,
            arg_idents,
            arg_keys,
            ..
        } = self;
        // Every use of an argument goes through `job_arg::<T, _>` called at the
        // type's span: the one place `T: JobArg` is required, so rustc reports
        // one `JobArg` error per parameter instead of serde's bounds.
        let arg_use = |ty: &syn::Type, use_: TokenStream| quote_spanned!(ty.span()=> #p::job_arg::<#ty, _>(#use_));
        let serialize_fields: Vec<TokenStream> = args
            .iter()
            .zip(arg_keys)
            .map(|((ident, ty), key)| {
                arg_use(
                    ty,
                    quote!(#p::SerializeField::new(&mut __jobs_state, #key, &self.#ident)),
                )
            })
            .collect();
        let take_fields: Vec<TokenStream> = args
            .iter()
            .zip(arg_keys)
            .map(|((_, ty), key)| arg_use(ty, quote!(#p::TakeField::new(&mut __jobs_map, #key))))
            .collect();

        let type_name = type_ident.to_string();
        let field_count = args.len();
        let serde_impls = quote! {
            #[automatically_derived]
            impl #p::serde::Serialize for #type_ident {
                fn serialize<__JobsS: #p::serde::Serializer>(
                    &self,
                    __jobs_serializer: __JobsS,
                ) -> #result<__JobsS::Ok, __JobsS::Error> {
                    #[allow(unused_mut)]
                    let mut __jobs_state = #p::serde::Serializer::serialize_struct(
                        __jobs_serializer,
                        #type_name,
                        #field_count,
                    )?;
                    #( #serialize_fields?; )*
                    #p::serde::ser::SerializeStruct::end(__jobs_state)
                }
            }

            #[automatically_derived]
            impl<'__jobs_de> #p::serde::Deserialize<'__jobs_de> for #type_ident {
                fn deserialize<__JobsD: #p::serde::Deserializer<'__jobs_de>>(
                    __jobs_deserializer: __JobsD,
                ) -> #result<Self, __JobsD::Error> {
                    #[allow(unused_mut, unused_variables)]
                    let mut __jobs_map = #p::args_map(__jobs_deserializer, #name)?;
                    #result::Ok(#type_ident { #( #arg_idents: #take_fields?, )* })
                }
            }
        };
        serde_impls
    }

    /// `Job::check_stored`: each argument decoded in place from the stored
    /// object, through the same spanned `job_arg` call as its other uses.
    fn check_stored(&self) -> TokenStream {
        let Self {
            p,
            result,
            args,
            arg_keys,
            ..
        } = self;
        let checks = args.iter().zip(arg_keys).map(|((_, ty), key)| {
            quote_spanned!(ty.span()=> #p::job_arg::<#ty, _>(#p::CheckField::new(__jobs_stored, #key)))
        });
        quote! {
            #[allow(unused_variables)]
            fn check_stored(
                __jobs_stored: &#p::serde_json::Value,
            ) -> #result<(), #p::serde_json::Error> {
                #( #checks?; )*
                #result::Ok(())
            }
        }
    }

    /// The runner and the `inventory` registration.
    fn registration(&self) -> TokenStream {
        let JobDef {
            fn_ident,
            type_ident,
            name,
            params,
            ret,
            ..
        } = self.def;
        let Self { p, .. } = self;
        let type_name = type_ident.to_string();
        // The runner: arguments from the store, injected values from the server.
        let mut call_args = Vec::new();
        let mut injections = Vec::new();
        let mut requirements = Vec::new();
        let mut destructure = Vec::new();
        for (index, param) in params.iter().enumerate() {
            let var = format_ident!("__jobs_param_{}", index);
            match param {
                Param::Arg { ident, .. } => {
                    destructure.push(quote!(#ident: #var));
                    call_args.push(quote!(#var));
                }
                Param::Inject { ty } => {
                    // Both uses go through the same spanned call, so a type the
                    // server cannot provide is reported once.
                    let injector = quote_spanned!(ty.span()=> #p::injector::<#ty>());
                    injections.push(quote! {
                        let #var = (#injector.inject)(&__jobs_invocation)?;
                    });
                    requirements.push(quote!((#injector.requirement)()));
                    call_args.push(quote!(#var));
                }
            }
        }
        let call = quote_spanned! {fn_ident.span()=>
            #fn_ident(#(#call_args),*).await
        };
        let ret_ty = match ret {
            Some(ty) => ty.to_token_stream(),
            None => quote!(()),
        };
        let ret_span = ret.as_ref().map_or_else(|| fn_ident.span(), |ty| ty.span());
        // The facade named with the return type's span: rustc reports a
        // return type or an output that does not fit there.
        let at_ret = proc_macro2::Ident::new("__jobs", ret_span);
        let convert = quote_spanned! {ret_span=>
            #at_ret::job_result::<#ret_ty>(__jobs_outcome)
        };
        let boxed = quote_spanned! {fn_ident.span()=>
            #p::std::boxed::Box::pin(__jobs_run_async(__jobs_invocation))
        };
        let requirement_count = requirements.len();
        let location = quote!(#p::core::concat!(#p::core::file!(), ":", #p::core::line!()));
        let registration = quote! {
                async fn __jobs_run_async(
                    __jobs_invocation: #p::Invocation,
                ) -> #p::RunResult {
                    // Nothing of ours is held across the `.await`: only the
                    // user's own future decides whether the runner is `Send`.
                    #[allow(unused_variables)]
                    let #type_ident { #(#destructure,)* .. } =
                        __jobs_invocation.args::<#type_ident>(#name)?;
                    #(#injections)*
                    let __jobs_outcome = #call;
                    #convert
                }

                fn __jobs_run(
                    __jobs_invocation: #p::Invocation,
                ) -> #p::BoxFuture<'static, #p::RunResult> {
                    #boxed
                }

                fn __jobs_requirements() -> #p::std::vec::Vec<#p::Requirement> {
                    let __jobs_all: [#p::core::option::Option<#p::Requirement>; #requirement_count] =
                        [#(#requirements),*];
                    #p::core::iter::Iterator::collect(#p::core::iter::Iterator::flatten(
                        #p::core::iter::IntoIterator::into_iter(__jobs_all),
                    ))
                }

                #p::inventory::submit! {
                    #p::JobRegistration {
                        name: #name,
                        type_name: #p::core::concat!(#p::core::module_path!(), "::", #type_name),
                        location: #location,
                        options: __jobs_options,
                        requirements: __jobs_requirements,
                        run: __jobs_run,
                    }
                }
        };
        registration
    }
}
