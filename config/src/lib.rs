//! tortie-config: the TOML schema of `tortie.toml`, its defaults and its validation.
//!
//! Data flow: a file's text goes in, a validated [`Config`] or a list of problems
//! (each with file:line:column and a hint) comes out. No IO beyond reading the file.
