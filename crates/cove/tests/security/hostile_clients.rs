//! Hostile clients of the API and the gateway.
