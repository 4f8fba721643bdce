# replication_kit: PGXS build.  `make && make install` as root, then
# `make installcheck` as a non-root user runs pg_regress (in a temporary
# instance that preloads the library) and the TAP suite in t/.

MODULE_big = replication_kit
OBJS = \
	extension/replication_kit.o \
	extension/config.o \
	extension/failover.o \
	extension/fence_start.o \
	extension/hba.o \
	extension/peer_api.o \
	extension/registry.o \
	extension/setup.o \
	extension/standby.o \
	extension/state_file.o \
	extension/status.o \
	worker/election.o \
	worker/follow.o \
	worker/fsm.o \
	worker/peer.o \
	worker/rejoin.o \
	worker/worker.o

EXTENSION = replication_kit
DATA = extension/replication_kit--1.0.sql
SCRIPTS = worker/rk_rejoin
PGFILEDESC = "replication_kit - streaming replication setup and automatic failover"

PG_CPPFLAGS = -I$(srcdir)/extension -I$(srcdir)/worker -I$(shell $(PG_CONFIG) --includedir)
PG_CFLAGS = -Werror
SHLIB_LINK = -lpq

REGRESS = setup bad_input
REGRESS_OPTS = --temp-instance=./tmp_regress --temp-config=$(srcdir)/sql/regress.conf
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies; the shared memory layout lives in
# these headers, and an object built against an old one corrupts it.
$(OBJS): extension/replication_kit.h extension/compat.h worker/fsm.h worker/peer.h
