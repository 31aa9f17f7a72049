//! The agents config (in progress).
