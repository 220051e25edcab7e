//! The `#[job]` attribute of the `jobs` framework. Semver-exempt: use it
//! through `jobs`, which re-exports it as `jobs::job`.
//!
//! The attribute is built in three steps: `parse.rs` reads the settings,
//! `validate.rs` checks the function and the settings and reports every
//! mistake at once, `expand.rs` writes the code.

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Turns an `async fn` into a typed, registered background job.
///
/// DOCS_PLACEHOLDER
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::job(attr.into(), item.into()).into()
}
