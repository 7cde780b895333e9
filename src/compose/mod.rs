//! What a composite value is made of: the template syntax
//! (`{{ r4://… }}`, [`template`]) and the bundle encodings (dotenv, JSON,
//! [`bundle`]). Both are parsed when `r4.toml` is read, so a mistake fails
//! before anything is fetched; `crate::resolve` fills them with verified
//! values.

pub mod bundle;
pub mod template;
