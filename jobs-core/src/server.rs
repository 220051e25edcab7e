//! The in-process job server. (Being written.)

/// The background job server.
#[derive(Debug)]
pub struct Server;
/// Configures a [`Server`].
#[derive(Debug)]
pub struct ServerBuilder;
/// A running server.
#[derive(Debug)]
pub struct ServerHandle;
