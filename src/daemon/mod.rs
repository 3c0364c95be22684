//! The daemon: supervisor, workers, reload, and systemd notification.

pub mod notify;
