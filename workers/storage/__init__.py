"""PostgreSQL: connections, the error mapping the runtime relies on, and versioned migrations."""
