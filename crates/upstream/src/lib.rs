//! placeholder, see the upstream contract in the work plan
