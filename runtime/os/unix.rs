//! Unix-specific I/O, mirroring `std::os::unix`.

pub mod net;
