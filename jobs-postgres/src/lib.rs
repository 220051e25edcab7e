//! The PostgreSQL store of the `jobs` framework. (Being written.)
