//! Placeholder: filled in by the cgroups work.
