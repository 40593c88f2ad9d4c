//! The drop-folder lifecycle: finding ready files, claiming them, moving them to
//! done/ or failed/, the run lock, and recovery of what a dead run left behind.

pub mod scan;
