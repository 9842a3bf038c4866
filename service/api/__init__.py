"""HTTP layer: controllers, auth, error mapping and response schemas."""
