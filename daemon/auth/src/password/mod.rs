//! Passwords: Argon2id hashing ([`hash`]) and the quality policy ([`policy`]).

pub mod hash;
pub mod policy;

pub use hash::{HashError, HashParams, PasswordHash};
pub use policy::{Badlist, PasswordPolicy, PasswordProblem, PasswordRejection};
