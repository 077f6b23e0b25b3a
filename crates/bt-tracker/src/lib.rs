//! Tracker clients (HTTP BEP 3/23/48, UDP BEP 15, multitracker BEP 12) and a built-in tracker.
