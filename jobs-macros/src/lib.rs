//! The `#[job]` attribute of the `jobs` framework. Semver-exempt: use it through `jobs`.

use proc_macro::TokenStream;

/// Turns an `async fn` into a registered, typed job. (Being written.)
#[proc_macro_attribute]
pub fn job(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
