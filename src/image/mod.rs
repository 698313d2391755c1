//! Placeholder: filled in by the image work.
