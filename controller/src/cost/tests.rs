//! End-to-end tests over plan fixtures.
