//! The helpers that the code `#[job]` generates calls, reached through the
//! hidden `__private` module: how an argument is stored and read back, how an
//! injected parameter is obtained, how a return value becomes an outcome.
//!
//! Each bound the user's types must meet is required by exactly one function
//! here ([`job_arg`], [`injector`], [`job_result`]), and the generated code
//! calls it at the user's type, so a mistake is reported once, there, with the
//! message of the public trait ([`JobArg`], [`Inject`], [`IntoJobResult`]).
//! rustc deduplicates identical diagnostics, so several calls at the same span
//! still make one error.

use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{self, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::job::{
    BoxError, Inject, IntoJobResult, Invocation, JobArg, JobOutput, Requirement, RunResult,
};

/// One use of a job argument of type `T` by the generated code; [`job_arg`]
/// applies it once it knows that `T` is a [`JobArg`].
pub trait ArgUse<T> {
    /// What the use produces.
    type Output;
    /// Performs the use.
    fn apply(self) -> Self::Output
    where
        T: JobArg;
}

/// Requires `T: JobArg` and performs `arg_use`: the only place the generated
/// code needs `T` to be storable, so that rustc reports the `JobArg` message
/// instead of serde's bounds, once per parameter.
pub fn job_arg<T: JobArg, U: ArgUse<T>>(arg_use: U) -> U::Output {
    arg_use.apply()
}

/// Writes a field of the generated `Serialize` impl: the argument itself,
/// serialized straight into the serializer, with errors naming the argument.
pub struct SerializeField<'a, S, T> {
    state: &'a mut S,
    key: &'static str,
    value: &'a T,
}

impl<'a, S, T> SerializeField<'a, S, T> {
    /// Writes `value` as the field `key` of `state`.
    pub fn new(state: &'a mut S, key: &'static str, value: &'a T) -> Self {
        Self { state, key, value }
    }
}

impl<S: SerializeStruct, T> ArgUse<T> for SerializeField<'_, S, T> {
    type Output = Result<(), S::Error>;

    fn apply(self) -> Self::Output
    where
        T: JobArg,
    {
        self.state.serialize_field(
            self.key,
            &Named {
                key: self.key,
                value: self.value,
            },
        )
    }
}

/// An argument that serializes as itself, its errors prefixed with its name.
struct Named<'a, T> {
    key: &'static str,
    value: &'a T,
}

impl<T: Serialize> Serialize for Named<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer).map_err(|e| {
            <S::Error as ser::Error>::custom(format_args!("argument `{}`: {e}", self.key))
        })
    }
}

/// Takes a field out of the stored arguments read by [`args_map`]. A missing
/// field reads as `null`, so an `Option` parameter added later reads as
/// `None` in jobs stored before.
pub struct TakeField<'a, E> {
    map: &'a mut Map<String, Value>,
    key: &'static str,
    error: PhantomData<fn() -> E>,
}

impl<'a, E> TakeField<'a, E> {
    /// Takes the field `key` out of `map`.
    pub fn new(map: &'a mut Map<String, Value>, key: &'static str) -> Self {
        Self {
            map,
            key,
            error: PhantomData,
        }
    }
}

impl<T, E: de::Error> ArgUse<T> for TakeField<'_, E> {
    type Output = Result<T, E>;

    fn apply(self) -> Self::Output
    where
        T: JobArg,
    {
        let key = self.key;
        match self.map.remove(key) {
            Some(value) => {
                T::deserialize(value).map_err(|e| E::custom(format_args!("argument `{key}`: {e}")))
            }
            None => T::deserialize(Value::Null).map_err(|_| E::missing_field(key)),
        }
    }
}

/// Checks that the stored form of one argument decodes back into its type,
/// for [`Job::check_stored`](crate::Job::check_stored) as `#[job]` writes it:
/// the argument is decoded from the stored value in place (borrowed, not
/// cloned) and dropped. Errors name the argument, as [`TakeField`]'s do.
pub struct CheckField<'a> {
    stored: &'a Value,
    key: &'static str,
}

impl<'a> CheckField<'a> {
    /// Checks the field `key` of the stored arguments `stored`.
    pub fn new(stored: &'a Value, key: &'static str) -> Self {
        Self { stored, key }
    }
}

impl<T> ArgUse<T> for CheckField<'_> {
    type Output = Result<(), serde_json::Error>;

    fn apply(self) -> Self::Output
    where
        T: JobArg,
    {
        let key = self.key;
        // A missing field reads as `null`, as `TakeField` reads it.
        let value = self.stored.get(key).unwrap_or(&Value::Null);
        match T::deserialize(value) {
            Ok(_) => Ok(()),
            // The usual culprit: JSON has no NaN or infinity, and serde_json
            // writes such a float as `null`, which no `f64` decodes from.
            Err(e) if value.is_null() => Err(de::Error::custom(format_args!(
                "argument `{key}`: {e}; it is stored as `null` (JSON has no NaN or \
                 infinity: a non-finite float is stored as `null`)"
            ))),
            Err(e) => Err(de::Error::custom(format_args!("argument `{key}`: {e}"))),
        }
    }
}

/// Reads a job's stored arguments: a JSON object, by field name (`null`
/// reads as no arguments).
pub fn args_map<'de, D: Deserializer<'de>>(
    deserializer: D,
    job: &'static str,
) -> Result<Map<String, Value>, D::Error> {
    struct ArgsVisitor(&'static str);

    impl<'de> Visitor<'de> for ArgsVisitor {
        type Value = Map<String, Value>;

        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(f, "the arguments of job `{}` as a JSON object", self.0)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Map::new())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = Map::new();
            while let Some((key, value)) = access.next_entry::<String, Value>()? {
                map.insert(key, value);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(ArgsVisitor(job))
}

/// How the generated runner obtains one injected parameter; built only by
/// [`injector`], for the same reason as [`job_arg`].
pub struct Injector<I> {
    /// Takes the value out of the invocation.
    pub inject: fn(&Invocation) -> Result<I, BoxError>,
    /// The resource the server must have.
    pub requirement: fn() -> Option<Requirement>,
}

/// Requires `I: Inject`, and says how to obtain it.
pub fn injector<I: Inject>() -> Injector<I> {
    Injector {
        inject: I::inject,
        requirement: I::requirement,
    }
}

/// The output type of a job returning `R`: what the generated `Produces`
/// names, so that a return type that does not fit is reported at that type.
pub type OutputOf<R> = <R as IntoJobResult>::Output;

/// Converts what a job function returned into what the server records: the
/// error, or the output as JSON (`None` for `()`, or any output that is
/// `null`). The generated code calls it at the return type's span, where an
/// output that cannot be stored is reported with [`JobOutput`]'s message.
pub fn job_result<R>(result: R) -> RunResult
where
    R: IntoJobResult,
    R::Output: JobOutput,
{
    let output = result.into_job_result()?;
    let value = serde_json::to_value(&output)
        .map_err(|e| format!("the job's output could not be serialized: {e}"))?;
    Ok((!value.is_null()).then_some(value))
}
