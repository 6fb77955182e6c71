//! Platform-specific I/O, mirroring `std::os`.

pub mod unix;
