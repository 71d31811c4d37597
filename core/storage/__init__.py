"""The single funnel to the database: `make_engine` + `Repository`. Nothing else in Wardsight runs SQL."""
