//! Helpers for users' tests (being written).
