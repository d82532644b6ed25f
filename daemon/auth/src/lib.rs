pub mod entropy;
pub mod ids;
pub mod password;
pub mod privilege;
pub mod secret;
pub mod time;
