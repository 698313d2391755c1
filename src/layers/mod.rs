//! Placeholder: filled in by the layers work.
