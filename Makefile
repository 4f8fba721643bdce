# replication_kit: PGXS build.  `make && make install` as root, then
# `make installcheck` as a non-root user runs pg_regress (in a temporary
# instance that preloads the library) and the TAP suite in t/.
#
# Three layers, included by path from the source root: core/ (shared
# memory, settings, state file, registry, node-to-node client, connection
# strings, durable writes), extension/ (what psql calls) and worker/ (the
# background worker and its state machine).  extension/ and worker/ depend
# only on core/; extension/module.c (_PG_init) is the one place that knows
# both.

MODULE_big = replication_kit
OBJS = \
	core/answers.o \
	core/config.o \
	core/credentials.o \
	core/durable.o \
	core/fsm.o \
	core/conninfo.o \
	core/guard.o \
	core/local.o \
	core/peer.o \
	core/registry.o \
	core/settings.o \
	core/shmem.o \
	core/state_file.o \
	core/upstream.o \
	extension/checks.o \
	extension/failover.o \
	extension/hba.o \
	extension/maintenance.o \
	extension/module.o \
	extension/peer_api.o \
	extension/setup.o \
	extension/standby.o \
	extension/status.o \
	extension/transitions.o \
	worker/election.o \
	worker/fence_start.o \
	worker/follow.o \
	worker/hooks.o \
	worker/http.o \
	worker/journal.o \
	worker/pause.o \
	worker/fsm.o \
	worker/rejoin.o \
	worker/worker.o

EXTENSION = replication_kit
DATA = extension/replication_kit--1.0.sql extension/replication_kit--1.1.sql \
	extension/replication_kit--1.2.sql extension/replication_kit--1.0--1.1.sql \
	extension/replication_kit--1.1--1.2.sql extension/replication_kit--1.3.sql \
	extension/replication_kit--1.2--1.3.sql extension/replication_kit--1.4.sql \
	extension/replication_kit--1.3--1.4.sql extension/replication_kit--1.5.sql \
	extension/replication_kit--1.4--1.5.sql extension/replication_kit--1.6.sql \
	extension/replication_kit--1.5--1.6.sql
SCRIPTS = worker/rk_rejoin
PGFILEDESC = "replication_kit - streaming replication setup and automatic failover"

PG_CPPFLAGS = -I$(srcdir) -I$(shell $(PG_CONFIG) --includedir)
PG_CFLAGS = -Werror
SHLIB_LINK = -lpq

REGRESS = upgrade setup bad_input fsm
REGRESS_OPTS = --temp-instance=./tmp_regress --temp-config=$(srcdir)/sql/regress.conf
TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies; the shared memory layout lives in
# these headers, and an object built against an old one corrupts it.
$(OBJS): $(wildcard $(srcdir)/core/*.h $(srcdir)/extension/*.h $(srcdir)/worker/*.h)
