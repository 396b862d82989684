# grant-virtio: one Makefile for everything.
#   make            build all programs and tests (-Wall -Wextra -Werror)
#   make test       build and run the tests; ends with "N passed, M failed"
#   make asan       the same build with AddressSanitizer + UBSan, in build-asan/
#   make asan-test  run the tests on the sanitizer build
#   make deps       install the Debian packages the build and tests need
#
# Layout rule: in each of common/ sim/ frontend/ backend/, a file named gv-*.c
# is a program; every other .c is part of that folder's library. tools/gv-*.c
# are programs too; test/test_*.c are test programs, test/*.sh test scripts.

BUILD   ?= build
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -Wno-missing-field-initializers
CPPFLAGS = -D_GNU_SOURCE -D__XEN_TOOLS__ -Icommon -I$(BUILD)/gen -MMD -MP
LDLIBS   = -lxenstore -lxengnttab -lxenevtchn -lxenctrl -lpthread -lm

LIBDIRS  = frontend backend sim common
lib_srcs = $(filter-out $(1)/gv-%.c,$(wildcard $(1)/*.c))
lib_objs = $(patsubst %.c,$(BUILD)/%.o,$(call lib_srcs,$(1)))
LIBS     = $(foreach d,$(LIBDIRS),$(BUILD)/lib$(d).a)

PROG_SRCS = $(foreach d,$(LIBDIRS) tools bench,$(wildcard $(d)/gv-*.c))
PROGS    = $(addprefix $(BUILD)/,$(notdir $(basename $(PROG_SRCS))))
TEST_SUPPORT = $(patsubst %.c,$(BUILD)/%.o,$(filter-out test/test_%.c,$(wildcard test/*.c)))
TESTS    = $(patsubst test/%.c,$(BUILD)/test/%,$(wildcard test/test_*.c))
GEN      = $(BUILD)/gen/xs_keys.h

.SECONDARY:
.PHONY: check demo bench all test asan asan-test deps clean schema-doc xen-test xen-bench
all: $(PROGS) $(TESTS)

$(GEN): xenstore-schema/virtio.tsv xenstore-schema/gen-header.sh
	@mkdir -p $(dir $@)
	sh xenstore-schema/gen-header.sh $< > $@.tmp && mv $@.tmp $@

schema-doc: xenstore-schema/virtio.tsv
	sh xenstore-schema/gen-doc.sh $< > xenstore-schema/README.md

$(BUILD)/%.o: %.c $(GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c $< -o $@


define lib_rule
$(BUILD)/lib$(1).a: $(call lib_objs,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach d,$(LIBDIRS),$(eval $(call lib_rule,$(d))))

define prog_rule
$(BUILD)/$(notdir $(1:.c=)): $(BUILD)/$(1:.c=.o) $(LIBS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $$@ $$< $(LIBS) $(LDLIBS)
endef
$(foreach p,$(PROG_SRCS),$(eval $(call prog_rule,$(p))))

$(BUILD)/test/%: $(BUILD)/test/%.o $(TEST_SUPPORT) $(LIBS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT) $(LIBS) $(LDLIBS)

test: all
	BUILD=$(BUILD) sh test/run-tests.sh

asan:
	$(MAKE) BUILD=build-asan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" all
asan-test: asan
	BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  sh test/run-tests.sh

deps:
	sh tools/install-deps.sh

# Real Xen 4.20 under QEMU (software emulation); see xen-test/run.sh. Not part of `make test` yet.
# make xen-test [XEN_SCENARIOS="name..."]
xen-test:
	sh xen-test/run.sh $(XEN_SCENARIOS)

# The pair against Linux's xen-blkfront/xen-blkback on one dom0 ramdisk, same boot (xen-test/bench.sh)
xen-bench:
	XEN_SCENARIO_LIST=bench.list GV_XEN_TEST_LIMIT=$${GV_XEN_TEST_LIMIT:-1500} sh xen-test/run.sh; s=$$?; sh xen-test/bench-report.sh && exit $$s

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Benchmarks on the simulated Xen (docs/benchmarks.md): make bench [BENCH_ARGS=--quick]
bench: $(PROGS)
	GV_BUILD=$(CURDIR)/$(BUILD) sh bench/run.sh $(BENCH_ARGS)

# Everything CI runs: tests, tests under sanitizers, real Xen (see tools/check.sh).
check:
	sh tools/check.sh

# The main job: the pair on the simulated Xen (see README).
demo: $(PROGS)
	GV_BUILD=$(CURDIR)/$(BUILD) sh tools/demo.sh

# Fuzz targets and their corpus replay (fuzz/fuzz.mk), the stress run (make stress).
include fuzz/fuzz.mk

# make install [PREFIX=/usr/local] [DESTDIR=] (packaging/install.mk; docs/admin.md)
include packaging/install.mk

# make valgrind: the programs under memcheck end to end (test/valgrind.mk)
include test/valgrind.mk
