# For PGXN clients and `make install` habits: the build is Cargo's (Rust and
# the server headers are needed), driven by scripts/install.
PG_CONFIG ?= pg_config

all:
	scripts/install --pg-config $(PG_CONFIG) --destdir "$(CURDIR)/.build-check" >/dev/null
	rm -rf "$(CURDIR)/.build-check"

install:
	scripts/install --pg-config $(PG_CONFIG)

.PHONY: all install
